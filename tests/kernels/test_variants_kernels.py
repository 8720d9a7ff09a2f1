"""The variant kernels (DESIGN.md §7) against fastdrop.reference, bit for bit, at every SIMD
level and thread count: broadcast masks (noise_shape), alpha dropout, Gaussian dropout,
over awkward lengths, offsets, layouts, out= arguments and guard zones."""
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastdrop
from fastdrop import _kernels, config, reference
from conftest import assert_bit_equal, assert_mask_equal

DTYPES = [np.float32, np.float64]
SMALL_SIZES = [0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 129, 1000]
OFFSETS = [0, 1, 2, 3, 5, 2**33 + 1]
SEED, STREAM = 0x0123456789ABCDEF, (5 << 32) | 77
SENTINEL = 12345.0

# (shape, noise_shape): channels first/last, time-locked, all-broadcast, odd periods,
# short and long runs, size-1 axes, zero-size arrays.
BROADCAST_CASES = [
    ((4, 5, 6, 7), (4, 5, 1, 1)),
    ((4, 6, 7, 5), (4, 1, 1, 5)),
    ((3, 100, 33), (3, 1, 33)),
    ((2, 3), (1, 1)),
    ((1000,), (1,)),
    ((5, 1, 3), (1, 1, 3)),
    ((64, 3, 70), (64, 3, 1)),
    ((2, 130, 3), (2, 1, 3)),
    ((2, 3, 130), (1, 3, 130)),
    ((3, 2, 5, 2, 7), (3, 1, 5, 1, 7)),
    ((7, 9), (7, 9)),
    ((9, 64, 2), (1, 64, 1)),
    ((2, 0, 3), (2, 1, 3)),
    ((0, 3, 4), (1, 3, 1)),
    ((), ()),
]


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@functools.lru_cache(maxsize=64)
def cached_data(shape, dtype):
    return data(shape, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_noise_shape_dropout_matches_reference(simd, dtype):
    for shape, noise in BROADCAST_CASES:
        x = cached_data(shape, dtype)
        for offset in (0, 3, 77, 2**64 - max(int(np.prod(noise)), 1)):
            kwargs = dict(seed=SEED, stream=STREAM, offset=offset, noise_shape=noise, return_mask=True)
            try:
                y, mask = fastdrop.dropout(x, 0.3, **kwargs)
                y_ref, mask_ref = reference.dropout(x, 0.3, **kwargs)
                assert_bit_equal(y, y_ref)
                assert_mask_equal(mask, mask_ref)
                assert mask.shape == noise
                assert_bit_equal(fastdrop.apply_mask(x, mask_ref), y_ref)
                grad = fastdrop.dropout_backward(x, rate=0.3, seed=SEED, stream=STREAM, offset=offset,
                                                 noise_shape=noise)
                assert_bit_equal(grad, y_ref)
            except AssertionError as exc:
                raise AssertionError(f"shape={shape} noise={noise} offset={offset}: {exc}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_mask_is_the_noise_mask_broadcast(simd, dtype):
    """Independently of the reference: y = where(broadcast(sample_mask(noise)), x * s, 0)."""
    for shape, noise in BROADCAST_CASES:
        x = cached_data(shape, dtype)
        mask = fastdrop.sample_mask(noise, 0.4, seed=3, stream=9, offset=11)
        assert fastdrop.sample_mask(shape, 0.4, seed=3, stream=9, offset=11, noise_shape=noise) == mask
        keep = np.broadcast_to(mask.to_bool(), shape)
        expected = np.where(keep, x * dtype(1 / 0.6), dtype(0))
        assert_bit_equal(fastdrop.dropout(x, 0.4, seed=3, stream=9, offset=11, noise_shape=noise),
                         expected)


LARGE_BROADCAST = [((3, 40, 100, 7), (3, 40, 1, 1)), ((3, 100, 70, 11), (3, 1, 1, 11)),
                   ((9, 5000, 3), (9, 1, 3)), ((70001, 2), (1, 2)), ((2, 70001), (2, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,noise", LARGE_BROADCAST)
def test_large_broadcast_on_threads(simd, threads, dtype, shape, noise):
    x = cached_data(shape, dtype)
    y, mask = fastdrop.dropout(x, 0.5, seed=SEED, stream=1, offset=5, noise_shape=noise,
                               return_mask=True)
    assert_bit_equal(y, reference.dropout(x, 0.5, seed=SEED, stream=1, offset=5, noise_shape=noise))
    a = fastdrop.alpha_dropout(x, 0.2, seed=SEED, stream=1, offset=5, noise_shape=noise)
    assert_bit_equal(a, reference.alpha_dropout(x, 0.2, seed=SEED, stream=1, offset=5,
                                                noise_shape=noise))


@pytest.mark.parametrize("dtype", DTYPES)
def test_alpha_dropout_matches_reference(simd, dtype):
    for size in SMALL_SIZES:
        x = cached_data((size,), dtype)
        for offset in OFFSETS:
            for keep_prob in (0.0, 1e-9, 0.5, 0.95, 1.0):
                kwargs = dict(keep_prob=keep_prob, seed=SEED, stream=STREAM, offset=offset,
                              return_mask=True)
                y, mask = fastdrop.alpha_dropout(x, **kwargs)
                y_ref, mask_ref = reference.alpha_dropout(x, **kwargs)
                try:
                    assert_bit_equal(y, y_ref)
                    assert_mask_equal(mask, mask_ref)
                except AssertionError as exc:
                    raise AssertionError(f"size={size} offset={offset} keep_prob={keep_prob}: {exc}")
    for shape, noise in BROADCAST_CASES:
        x = cached_data(shape, dtype)
        kwargs = dict(seed=SEED, stream=STREAM, offset=7, noise_shape=noise)
        assert_bit_equal(fastdrop.alpha_dropout(x, 0.1, **kwargs), reference.alpha_dropout(x, 0.1, **kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_dropout_matches_reference_exactly(simd, dtype):
    for size in SMALL_SIZES:
        x = cached_data((size,), dtype)
        for offset in OFFSETS + [2**64 - max(size, 1)]:
            for rate in (0.0, 0.1, 0.5, 0.999):
                kwargs = dict(seed=SEED, stream=STREAM, offset=offset, return_noise=True)
                y, noise = fastdrop.gaussian_dropout(x, rate, **kwargs)
                y_ref, noise_ref = reference.gaussian_dropout(x, rate, **kwargs)
                try:
                    assert_bit_equal(y, y_ref)
                    assert_bit_equal(noise, noise_ref)
                except AssertionError as exc:
                    raise AssertionError(f"size={size} offset={offset} rate={rate}: {exc}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [65536, 65537, 200003])
def test_large_gaussian_on_threads(simd, threads, dtype, size):
    x = cached_data((size,), dtype)
    for offset in (0, 3):
        y = fastdrop.gaussian_dropout(x, 0.3, seed=SEED, stream=2, offset=offset)
        assert_bit_equal(y, reference.gaussian_dropout(x, 0.3, seed=SEED, stream=2, offset=offset))


def test_million_element_gaussian_and_broadcast(threads):
    x = cached_data((1000003,), np.float32)
    assert_bit_equal(fastdrop.gaussian_dropout(x, 0.5, seed=1, offset=1),
                     reference.gaussian_dropout(x, 0.5, seed=1, offset=1))
    x2 = x[:1000000].reshape(1000, 1000)
    assert_bit_equal(fastdrop.dropout(x2, 0.5, seed=1, noise_shape=(1000, 1)),
                     reference.dropout(x2, 0.5, seed=1, noise_shape=(1000, 1)))


# Words with edge cases: u = 2^-32 and u = 1, every quadrant boundary, the ends of
# the float32 rounding ranges.
EDGE_WORDS = [0, 1, 2, 3, 2**23, 2**24 - 1, 2**24, 2**24 + 1, 2**29 - 1, 2**29, 2**30 - 1, 2**30,
              2**31 - 1, 2**31, 3 * 2**30, 2**32 - 2**29, 2**32 - 2**29 - 1, 2**32 - 2, 2**32 - 1]


@pytest.mark.parametrize("single", [False, True])
def test_box_muller_reference_equals_c(single):
    dtype = np.float32 if single else np.float64
    rng = np.random.default_rng(17)
    w0 = np.concatenate([np.repeat(EDGE_WORDS, len(EDGE_WORDS)), rng.integers(0, 2**32, 300)])
    w1 = np.concatenate([np.tile(EDGE_WORDS, len(EDGE_WORDS)), rng.integers(0, 2**32, 300)])
    z0, z1 = reference.box_muller(w0.astype(np.uint64), w1.astype(np.uint64), dtype)
    assert z0.dtype == dtype
    for a, b, r0, r1 in zip(w0, w1, z0, z1):
        c0, c1 = _kernels.box_muller_pair(int(a), int(b), single)
        assert np.array([c0, c1], dtype).tobytes() == np.array([r0, r1], dtype).tobytes(), (a, b)


@pytest.mark.parametrize("single", [False, True])
def test_box_muller_is_close_to_libm(single):
    """The polynomials are a specification, but they must also be the textbook transform."""
    dtype = np.float32 if single else np.float64
    words = np.random.default_rng(3).integers(0, 2**32, (2, 20000)).astype(np.uint64)
    words[:, :len(EDGE_WORDS)] = EDGE_WORDS
    z0, z1 = reference.box_muller(words[0], words[1], dtype)
    if single:  # float32 rounds w0 + 1 first
        u = (words[0].astype(np.float64).astype(np.float32) + np.float32(1)).astype(np.float64) * 2.0**-32
    else:
        u = (words[0].astype(np.float64) + 1.0) * 2.0**-32
    r = np.sqrt(-2.0 * np.log(u))
    theta = 2 * np.pi * words[1].astype(np.float64) * 2.0**-32
    tol = 3e-6 if single else 2e-14
    np.testing.assert_allclose(z0, r * np.cos(theta), rtol=0, atol=tol)
    np.testing.assert_allclose(z1, r * np.sin(theta), rtol=0, atol=tol)
    assert np.max(np.abs(np.concatenate([z0, z1]))) <= 6.6605


@pytest.mark.parametrize("dtype", DTYPES)
def test_variants_on_non_contiguous_input_and_out(simd, threads, dtype):
    base = cached_data((300, 233), dtype)
    x = base[::2, ::-1]
    holder = np.full((150, 2 * 233), SENTINEL, dtype=dtype)
    calls = [
        (lambda m, **k: m.dropout(x, 0.3, seed=6, noise_shape=(150, 1), **k)),
        (lambda m, **k: m.alpha_dropout(x, 0.3, seed=6, noise_shape=(1, 233), **k)),
        (lambda m, **k: m.alpha_dropout(x, 0.3, seed=6, **k)),
        (lambda m, **k: m.gaussian_dropout(x, 0.3, seed=6, offset=1, **k)),
    ]
    for call in calls:
        expected = call(reference)
        assert_bit_equal(call(fastdrop), expected)
        out = holder[:, ::2]
        assert call(fastdrop, out=out) is out
        assert_bit_equal(out, expected)
        assert np.all(holder[:, 1::2] == SENTINEL)


@pytest.mark.parametrize("dtype", DTYPES)
def test_variants_in_place(simd, dtype):
    x = cached_data((3, 70, 11), dtype)
    for name, kwargs in [("dropout", dict(noise_shape=(3, 1, 11))), ("alpha_dropout", {}),
                         ("alpha_dropout", dict(noise_shape=(3, 70, 1))), ("gaussian_dropout", {})]:
        expected = getattr(reference, name)(x, 0.25, seed=4, offset=2, **kwargs)
        y = x.copy()
        assert getattr(fastdrop, name)(y, 0.25, seed=4, offset=2, out=y, **kwargs) is y
        assert_bit_equal(y, expected)


@pytest.mark.parametrize("size", [1, 5, 63, 64, 65, 1000, 70001])
@pytest.mark.parametrize("dtype", DTYPES)
def test_variant_kernels_stay_inside_their_buffers(simd, threads, size, dtype):
    guard = 64
    x = cached_data((size,), dtype)
    nthreads = fastdrop.get_num_threads()

    def guarded():
        holder = np.full(size + 2 * guard, SENTINEL, dtype=dtype)
        return holder, holder[guard:guard + size]

    def intact(holder):
        return np.all(holder[:guard] == SENTINEL) and np.all(holder[guard + size:] == SENTINEL)

    holder, out = guarded()
    _kernels.gaussian_dropout(x, out, 3, SEED, STREAM, reference.gaussian_sigma(0.8), nthreads)
    assert intact(holder)
    assert_bit_equal(out, reference.gaussian_dropout(x, keep_prob=0.8, seed=SEED, stream=STREAM,
                                                     offset=3))
    holder, out = guarded()
    bits_holder = np.full((size + 7) // 8 + 2 * guard, 0xA5, dtype=np.uint8)
    bits = bits_holder[guard:guard + (size + 7) // 8]
    _kernels.alpha_dropout(x, out, bits, 3, SEED, STREAM, 2**31, 1.5, 0.25, -0.5, True, nthreads)
    assert intact(holder)
    assert np.all(bits_holder[:guard] == 0xA5) and np.all(bits_holder[guard + bits.size:] == 0xA5)
    mask_ref = reference.sample_mask(size, 0.5, seed=SEED, stream=STREAM, offset=3)
    np.testing.assert_array_equal(bits, mask_ref.bits)
    expected = np.where(mask_ref.to_bool(), x * dtype(1.5) + dtype(0.25), dtype(-0.5))
    assert_bit_equal(out, expected)
    # broadcast: rows of a (size, 3) array against a (size, 1) mask whose buffer is exact
    x2 = cached_data((size, 3), dtype)
    holder2 = np.full(3 * size + 2 * guard, SENTINEL, dtype=dtype)
    out2 = holder2[guard:guard + 3 * size]
    exact_bits = np.array(mask_ref.bits)
    _kernels.apply_mask_broadcast(x2.reshape(-1), out2, exact_bits, size, 3, 1, [size], [1], 2.0, 0.0, 0.0, False,
                   nthreads)
    assert np.all(holder2[:guard] == SENTINEL) and np.all(holder2[guard + 3 * size:] == SENTINEL)
    assert_bit_equal(out2.reshape(size, 3), np.where(mask_ref.to_bool()[:, None], x2 * dtype(2), dtype(0)))


def test_bcast_binding_rejects_bad_geometry():
    x = cached_data((100,), np.float32)
    y = np.empty_like(x)
    bits = np.zeros(2, np.uint8)
    with pytest.raises(ValueError, match="past the mask"):
        _kernels.apply_mask_broadcast(x, y, bits, 10, 10, 1, [10], [2], 2.0, 0.0, 0.0, False, 1)
    with pytest.raises(ValueError, match="does not cover"):
        _kernels.apply_mask_broadcast(x, y, bits, 10, 10, 1, [9], [1], 2.0, 0.0, 0.0, False, 1)
    with pytest.raises(ValueError, match="too short"):
        _kernels.apply_mask_broadcast(x, y, bits, 17, 10, 1, [10], [1], 2.0, 0.0, 0.0, False, 1)
    with pytest.raises(ValueError, match="differ in length"):
        _kernels.gaussian_dropout(x, y[:99], 0, 1, 0, 1.0, 1)
    with pytest.raises(ValueError, match="offset"):
        _kernels.gaussian_dropout(x, y, 2**64 - 99, 1, 0, 1.0, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_inputs(simd, dtype):
    x = np.tile(np.array([np.nan, np.inf, -np.inf, -0.0, 1.0], dtype=dtype), 401)
    y, mask = fastdrop.alpha_dropout(x, 0.5, seed=13, return_mask=True)
    assert_bit_equal(y, reference.alpha_dropout(x, 0.5, seed=13))
    fill = y[~mask.to_bool()]
    assert fill.size > 0 and np.all(fill == fill[0]) and np.isfinite(fill[0])
    assert_bit_equal(fastdrop.gaussian_dropout(x, 0.5, seed=13), reference.gaussian_dropout(x, 0.5, seed=13))
    y, mask = fastdrop.dropout(x.reshape(401, 5), 0.5, seed=13, noise_shape=(401, 1),
                               return_mask=True)
    dropped = y[~np.broadcast_to(mask.to_bool(), y.shape)]
    assert dropped.size > 0 and np.all(dropped == 0) and not np.any(np.signbit(dropped))


def test_every_level_gives_the_same_bits(threads):
    x = cached_data((123457,), np.float32)
    x4 = x[:123456].reshape(8, 12, 643, 2)
    results = []
    for level in config.available_simd_levels():
        config.set_simd_level(level)
        results.append([fastdrop.gaussian_dropout(x, 0.25, seed=77, stream=5, offset=6),
                        fastdrop.gaussian_dropout(x.astype(np.float64), 0.25, seed=77),
                        fastdrop.alpha_dropout(x, 0.25, seed=77, offset=6),
                        fastdrop.dropout(x4, 0.25, seed=77, noise_shape=(8, 1, 1, 2))])
    config.set_simd_level(config.available_simd_levels()[-1])
    for other in results[1:]:
        for a, b in zip(other, results[0]):
            assert_bit_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple),
       data_=st.data(), offset=st.integers(0, 2**20), seed=st.integers(0, 2**64 - 1),
       keep_prob=st.floats(0.0, 1.0), dtype=st.sampled_from(DTYPES),
       level=st.sampled_from(config.available_simd_levels()))
def test_random_noise_shapes_match_reference(shape, data_, offset, seed, keep_prob, dtype, level):
    noise = tuple(data_.draw(st.sampled_from([1, n])) for n in shape)
    config.set_simd_level(level)
    try:
        x = np.random.default_rng(seed % 1000).standard_normal(shape).astype(dtype)
        kwargs = dict(keep_prob=keep_prob, seed=seed, offset=offset, noise_shape=noise,
                      return_mask=True)
        y, mask = fastdrop.dropout(x, **kwargs)
        y_ref, mask_ref = reference.dropout(x, **kwargs)
        assert_bit_equal(y, y_ref)
        assert_mask_equal(mask, mask_ref)
        y, mask = fastdrop.alpha_dropout(x, **kwargs)
        y_ref, mask_ref = reference.alpha_dropout(x, **kwargs)
        assert_bit_equal(y, y_ref)
        assert_mask_equal(mask, mask_ref)
    finally:
        config.set_simd_level(config.available_simd_levels()[-1])


# -- float16 (§7.5) ---------------------------------------------------------------------------

def f16_data(shape, seed=0):
    """float16 values across the range: normals, subnormals, large values, signed zeros."""
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal(shape) * np.exp(rng.uniform(-18, 11, shape))).astype(np.float16)
    flat = x.reshape(-1)
    specials = np.array([0.0, -0.0, 6e-8, -6e-8, 65504, -65504, 1e-5, np.inf, -np.inf, np.nan],
                        np.float16)
    flat[:min(flat.size, specials.size)] = specials[:flat.size]
    return x


def test_f16_conversions_match_numpy():
    halves = np.arange(65536, dtype=np.uint16)
    widened = np.empty(65536, np.float32)
    _kernels.f16_to_f32(halves, widened)
    assert widened.tobytes() == halves.view(np.float16).astype(np.float32).tobytes()
    rng = np.random.default_rng(0)
    bits = np.concatenate([rng.integers(0, 2**32, 200000, dtype=np.uint64).astype(np.uint32),
                           np.arange(0x33000000, 0x47800000, 997, dtype=np.uint32),
                           np.arange(0x477FE000, 0x47800100, dtype=np.uint32)])
    bits = np.concatenate([bits, bits | np.uint32(0x80000000)])
    x = bits.view(np.float32)
    x = x[~np.isnan(x)]  # NaN payloads: the kernels only ever narrow quiet NaNs
    narrowed = np.empty(x.size, np.uint16)
    _kernels.f32_to_f16(x, narrowed)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(narrowed, x.astype(np.float16).view(np.uint16))
    quiet = np.array([np.nan, -np.nan], np.float32)
    narrowed = np.empty(2, np.uint16)
    _kernels.f32_to_f16(quiet, narrowed)
    np.testing.assert_array_equal(narrowed, quiet.astype(np.float16).view(np.uint16))


def test_float16_matches_reference(simd):
    for size in SMALL_SIZES + [70001]:
        x = f16_data(size, size)
        for offset in (0, 3, 2**33 + 1):
            for name, kwargs in [("dropout", dict(keep_prob=0.7)), ("dropout", dict(keep_prob=1e-9)),
                                 ("dropout", dict(keep_prob=0.7, inverted=False)),
                                 ("alpha_dropout", dict(keep_prob=0.7)),
                                 ("gaussian_dropout", dict(keep_prob=0.7))]:
                expected = getattr(reference, name)(x, seed=SEED, offset=offset, **kwargs)
                y = getattr(fastdrop, name)(x, seed=SEED, offset=offset, **kwargs)
                assert y.dtype == np.float16
                try:
                    assert_bit_equal(y, expected)
                except AssertionError as exc:
                    raise AssertionError(f"{name} {kwargs} size={size} offset={offset}: {exc}")
    for shape, noise in BROADCAST_CASES:
        x = f16_data(shape)
        for name in ("dropout", "alpha_dropout"):
            kwargs = dict(seed=SEED, offset=5, noise_shape=noise)
            assert_bit_equal(getattr(fastdrop, name)(x, 0.4, **kwargs), getattr(reference, name)(x, 0.4, **kwargs))


def test_float16_on_threads_in_place_and_strided(simd, threads):
    x = f16_data((300, 233), 1)
    for call in [lambda m, **k: m.dropout(x, 0.3, seed=6, **k),
                 lambda m, **k: m.dropout(x, 0.3, seed=6, noise_shape=(300, 1), **k),
                 lambda m, **k: m.alpha_dropout(x, 0.3, seed=6, **k),
                 lambda m, **k: m.gaussian_dropout(x, 0.3, seed=6, offset=1, **k)]:
        expected = call(reference)
        assert_bit_equal(call(fastdrop), expected)
        holder = np.full((300, 466), 7.0, np.float16)
        out = holder[:, ::2]
        assert call(fastdrop, out=out) is out
        assert_bit_equal(out, expected)
        assert np.all(holder[:, 1::2] == 7.0)
    y = x.copy()
    fastdrop.dropout(y, 0.3, seed=6, out=y)
    assert_bit_equal(y, reference.dropout(x, 0.3, seed=6))


def test_float16_product_is_the_float32_product_rounded_once():
    """§7.5: y = f16(f32(x) * s32), s32 the float32 factor (not rounded to float16 first)."""
    x = f16_data(100000, 3)
    y, mask = fastdrop.dropout(x, keep_prob=0.3, seed=2, return_mask=True)
    keep = mask.to_bool()
    s32 = np.float32(1 / 0.3)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = (x[keep].astype(np.float32) * s32).astype(np.float16)
        via_f16_scale = (x[keep].astype(np.float32) * np.float32(np.float16(s32))).astype(np.float16)
    assert_bit_equal(y[keep], expected)
    assert np.count_nonzero(expected != via_f16_scale) > 100


@pytest.mark.parametrize("size", [1, 63, 65, 1000])
def test_float16_kernels_stay_inside_their_buffers(simd, size):
    guard = 64
    x = f16_data(size).view(np.uint16)
    for run in [lambda out: _kernels.gaussian_dropout(x, out, 3, SEED, STREAM, 0.5, 1),
                lambda out: _kernels.alpha_dropout(x, out, None, 3, SEED, STREAM, 2**31, 2.0, 0.0, 0.0,
                                                False, 1),
                lambda out: _kernels.apply_mask_broadcast(x, out, np.full(1, 0xFF, np.uint8), 1, size, 1, [], [],
                                           1.5, 0.5, -1.0, True, 1)]:
        holder = np.full(size + 2 * guard, 0xABCD, np.uint16)
        run(holder[guard:guard + size])
        assert np.all(holder[:guard] == 0xABCD) and np.all(holder[guard + size:] == 0xABCD)

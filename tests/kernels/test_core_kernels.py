"""The kernels against fastdrop.reference, bit for bit, at every SIMD level and thread
count, over awkward lengths, offsets, rates, dtypes, layouts and out= arguments."""
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastdrop
from fastdrop import _kernels, config, reference
from conftest import assert_bit_equal, assert_mask_equal

DTYPES = [np.float32, np.float64]
SMALL_SIZES = [0, 1, 3, 4, 5, 15, 16, 17, 31, 63, 64, 65, 127, 129, 1000]
LARGE_SIZES = [65536, 65537, 200003, 1000003]  # above the single-thread threshold
OFFSETS = [0, 1, 2, 3, 5, 7, 13, 2**33 + 1]
KEEP_PROBS = [0.0, 1e-9, 0.5, 0.9, 1 - 1e-9, 1.0]
SEED, STREAM = 0x0123456789ABCDEF, (5 << 32) | 77
SENTINEL = 12345.0


def data(size, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(size).astype(dtype)


@functools.lru_cache(maxsize=256)
def expected(size, dtype, offset, keep_prob, inverted=True):
    x = data(size, dtype)
    y, mask = reference.dropout(x, keep_prob=keep_prob, seed=SEED, stream=STREAM, offset=offset,
                                inverted=inverted, return_mask=True)
    return x, y, mask


def check_against_reference(size, dtype, offset, keep_prob, inverted=True):
    x, y_ref, mask_ref = expected(size, dtype, offset, keep_prob, inverted)
    out = np.full_like(x, SENTINEL)
    y, mask = fastdrop.dropout(x, keep_prob=keep_prob, seed=SEED, stream=STREAM, offset=offset,
                               inverted=inverted, out=out, return_mask=True)
    assert y is out
    assert_bit_equal(y, y_ref)
    assert_mask_equal(mask, mask_ref)
    # regenerate-and-apply (no bits written), from bits, and the mask alone
    assert_bit_equal(fastdrop.dropout(x, keep_prob=keep_prob, seed=SEED, stream=STREAM,
                                      offset=offset, inverted=inverted), y_ref)
    assert_bit_equal(fastdrop.apply_mask(x, mask_ref), y_ref)
    assert_mask_equal(fastdrop.sample_mask(size, keep_prob=keep_prob, seed=SEED, stream=STREAM,
                                           offset=offset), reference.sample_mask(
        size, keep_prob=keep_prob, seed=SEED, stream=STREAM, offset=offset))


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_arrays_match_reference(simd, dtype):
    for size in SMALL_SIZES:
        for offset in OFFSETS + [2**64 - max(size, 1)]:
            for keep_prob in KEEP_PROBS:
                try:
                    check_against_reference(size, dtype, offset, keep_prob)
                except AssertionError as exc:
                    raise AssertionError(f"size={size} offset={offset} keep_prob={keep_prob}: {exc}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", LARGE_SIZES)
def test_large_arrays_match_reference_on_threads(simd, threads, dtype, size):
    for offset in (0, 3, 2**64 - size):
        check_against_reference(size, dtype, offset, 0.5)
    check_against_reference(size, dtype, 1, 0.1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_classical_dropout_matches_reference(simd, dtype):
    for size in (17, 1000, 65537):
        check_against_reference(size, dtype, 2, 0.7, inverted=False)


@pytest.mark.parametrize("rate", [0.0, 1e-9, 0.5, 1 - 1e-9, 1.0])
def test_rate_argument_matches_reference(simd, rate):
    x = data(777, np.float32)
    assert_bit_equal(fastdrop.dropout(x, rate, seed=3), reference.dropout(x, rate, seed=3))


def test_rate_one_drops_everything_and_rate_zero_keeps_everything(simd):
    x = data(1001, np.float64)
    y, mask = fastdrop.dropout(x, rate=1.0, seed=1, return_mask=True)
    assert mask.count() == 0 and np.all(y == 0) and not np.any(np.signbit(y))
    y, mask = fastdrop.dropout(x, rate=0.0, seed=1, return_mask=True)
    assert mask.count() == 1001
    assert_bit_equal(y, x)


SHAPES = [(), (0,), (0, 3), (3, 0, 2), (1,), (7, 9), (2, 3, 5, 7), (64, 65), (300, 301)]


@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_match_reference(simd, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    y, mask = fastdrop.dropout(x, 0.4, seed=11, stream=2, offset=9, return_mask=True)
    y_ref, mask_ref = reference.dropout(x, 0.4, seed=11, stream=2, offset=9, return_mask=True)
    assert y.shape == shape and mask.shape == shape
    assert_bit_equal(y, y_ref)
    assert_mask_equal(mask, mask_ref)


LAYOUTS = {
    "fortran": lambda a: np.asfortranarray(a),
    "every_second_row": lambda a: a[::2],
    "every_third_column": lambda a: a[:, ::3],
    "reversed": lambda a: a[::-1, ::-1],
    "transposed": lambda a: a.T,
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_input_equals_its_contiguous_copy(simd, threads, layout, dtype):
    base = np.random.default_rng(2).standard_normal((400, 333)).astype(dtype)
    x = LAYOUTS[layout](base)
    y = fastdrop.dropout(x, 0.5, seed=4, stream=1, offset=3)
    assert_bit_equal(y, fastdrop.dropout(np.ascontiguousarray(x), 0.5, seed=4, stream=1, offset=3))
    assert_bit_equal(y, reference.dropout(x, 0.5, seed=4, stream=1, offset=3))


def test_unaligned_data_pointer(simd):
    raw = np.zeros(8 * 1001 + 4, dtype=np.uint8)
    x = raw[4:].view(np.float64)  # 4-byte aligned only
    x[:] = np.arange(1001, dtype=np.float64)
    out = np.zeros(8 * 1001 + 4, dtype=np.uint8)[4:].view(np.float64)
    fastdrop.dropout(x, 0.5, seed=8, out=out)
    assert_bit_equal(out, reference.dropout(x, 0.5, seed=8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_strided_and_in_place(simd, threads, dtype):
    x = data(300001, dtype)
    y_ref = reference.dropout(x, 0.3, seed=6, stream=9)
    inplace = x.copy()
    assert fastdrop.dropout(inplace, 0.3, seed=6, stream=9, out=inplace) is inplace
    assert_bit_equal(inplace, y_ref)
    holder = np.full(2 * x.size, SENTINEL, dtype=dtype)
    out = holder[::2]
    assert fastdrop.dropout(x, 0.3, seed=6, stream=9, out=out) is out
    assert_bit_equal(out, y_ref)
    assert np.all(holder[1::2] == SENTINEL)
    grad = x.copy()
    mask = reference.sample_mask(x.shape, 0.3, seed=6, stream=9)
    assert fastdrop.dropout_backward(grad, mask, out=grad) is grad
    assert_bit_equal(grad, y_ref)


def test_out_overlapping_input_partially(simd):
    buf = data(2001, np.float32)
    x, out = buf[:-1], buf[1:]
    y_ref = reference.dropout(x.copy(), 0.5, seed=2)
    fastdrop.dropout(x, 0.5, seed=2, out=out)
    assert_bit_equal(buf[1:], y_ref)


@pytest.mark.parametrize("size", [1, 5, 63, 64, 65, 1000, 70001])
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_stay_inside_their_buffers(simd, threads, size, dtype):
    guard = 64
    x = data(size, dtype)
    out_holder = np.full(size + 2 * guard, SENTINEL, dtype=dtype)
    bits_holder = np.full((size + 7) // 8 + 2 * guard, 0xA5, dtype=np.uint8)
    out = out_holder[guard:guard + size]
    bits = bits_holder[guard:guard + (size + 7) // 8]
    nthreads = fastdrop.get_num_threads()
    _kernels.dropout(x, out, bits, 3, SEED, STREAM, 2**31, 2.0, nthreads)
    assert np.all(out_holder[:guard] == SENTINEL) and np.all(out_holder[guard + size:] == SENTINEL)
    assert np.all(bits_holder[:guard] == 0xA5) and np.all(bits_holder[guard + bits.size:] == 0xA5)
    mask_ref = reference.sample_mask(size, 0.5, seed=SEED, stream=STREAM, offset=3)
    np.testing.assert_array_equal(bits, mask_ref.bits)
    bits_holder[guard:guard + bits.size] = 0
    _kernels.sample_mask(bits, size, 3, SEED, STREAM, 2**31, nthreads)
    np.testing.assert_array_equal(bits, mask_ref.bits)
    assert np.all(bits_holder[:guard] == 0xA5) and np.all(bits_holder[guard + bits.size:] == 0xA5)
    out_holder[guard:guard + size] = SENTINEL
    _kernels.apply_mask(x, out, bits, 2.0, nthreads)
    assert_bit_equal(out, np.where(mask_ref.to_bool(), x * dtype(2.0), dtype(0)))
    assert np.all(out_holder[:guard] == SENTINEL) and np.all(out_holder[guard + size:] == SENTINEL)


def test_binding_rejects_short_buffers():
    x = data(100, np.float32)
    with pytest.raises(ValueError, match="bits is too short"):
        _kernels.dropout(x, x.copy(), np.zeros(12, np.uint8), 0, 1, 0, 2**31, 2.0, 1)
    with pytest.raises(ValueError, match="bits is too short"):
        _kernels.apply_mask(x, x.copy(), np.zeros(12, np.uint8), 2.0, 1)
    with pytest.raises(ValueError, match="bits is too short"):
        _kernels.sample_mask(np.zeros(12, np.uint8), 100, 0, 1, 0, 2**31, 1)
    with pytest.raises(ValueError, match="differ in length"):
        _kernels.dropout(x, x[:99].copy(), None, 0, 1, 0, 2**31, 2.0, 1)
    with pytest.raises(ValueError, match="offset"):
        _kernels.dropout(x, x.copy(), None, 2**64 - 99, 1, 0, 2**31, 2.0, 1)
    with pytest.raises(ValueError, match="threshold"):
        _kernels.sample_mask(np.zeros(13, np.uint8), 100, 0, 1, 0, 2**32 + 1, 1)


@pytest.mark.parametrize("a,b", [(0, 1000), (3, 17), (64, 129), (5, 70001), (65536, 140000)])
def test_slice_of_mask_is_mask_of_slice(simd, a, b):
    whole = fastdrop.sample_mask(140000, 0.5, seed=21, stream=4).to_bool()
    part = fastdrop.sample_mask(b - a, 0.5, seed=21, stream=4, offset=a).to_bool()
    np.testing.assert_array_equal(part, whole[a:b])
    x = data(140000, np.float32)
    y = fastdrop.dropout(x, 0.5, seed=21, stream=4)
    assert_bit_equal(fastdrop.dropout(x[a:b], 0.5, seed=21, stream=4, offset=a), y[a:b])


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_inputs_become_positive_zero_when_dropped(simd, dtype):
    x = np.tile(np.array([np.nan, np.inf, -np.inf, -0.0, 1.0], dtype=dtype), 4001)
    y, mask = fastdrop.dropout(x, 0.5, seed=13, return_mask=True)
    keep = mask.to_bool()
    dropped = y[~keep]
    assert dropped.size > 0 and np.all(dropped == 0) and not np.any(np.signbit(dropped))
    assert_bit_equal(y, reference.dropout(x, 0.5, seed=13))
    kept_x = x[keep]
    assert np.array_equal(np.isnan(y[keep]), np.isnan(kept_x))
    assert np.array_equal(y[keep][np.isinf(kept_x)], kept_x[np.isinf(kept_x)])


def test_every_level_gives_the_same_bits(threads):
    x = data(123457, np.float32)
    results = []
    for level in fastdrop.config.available_simd_levels():
        fastdrop.config.set_simd_level(level)
        results.append(fastdrop.dropout(x, 0.25, seed=77, stream=5, offset=6, return_mask=True))
    fastdrop.config.set_simd_level(fastdrop.config.available_simd_levels()[-1])
    for y, mask in results[1:]:
        assert_bit_equal(y, results[0][0])
        assert_mask_equal(mask, results[0][1])


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 40), min_size=0, max_size=3).map(tuple),
       offset=st.one_of(st.integers(0, 2**20), st.integers(2**63, 2**64 - 64001)),
       seed=st.integers(0, 2**64 - 1), stream=st.integers(0, 2**64 - 1),
       keep_prob=st.floats(0.0, 1.0), dtype=st.sampled_from(DTYPES),
       level=st.sampled_from(fastdrop.config.available_simd_levels()))
def test_random_calls_match_reference(shape, offset, seed, stream, keep_prob, dtype, level):
    fastdrop.config.set_simd_level(level)
    try:
        x = np.random.default_rng(seed % 1000).standard_normal(shape).astype(dtype)
        kwargs = dict(keep_prob=keep_prob, seed=seed, stream=stream, offset=offset, return_mask=True)
        y, mask = fastdrop.dropout(x, **kwargs)
        y_ref, mask_ref = reference.dropout(x, **kwargs)
        assert_bit_equal(y, y_ref)
        assert_mask_equal(mask, mask_ref)
    finally:
        fastdrop.config.set_simd_level(fastdrop.config.available_simd_levels()[-1])

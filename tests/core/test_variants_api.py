"""The variant contract (DESIGN.md §7), over the kernels and the reference: noise shapes,
user masks, Mask slicing and joining, alpha and Gaussian dropout semantics, and a clear
error for every kind of bad argument."""
import math

import numpy as np
import pytest

import fastdrop
from fastdrop import Mask
from conftest import assert_bit_equal, assert_mask_equal

SELU_NEG_SATURATION = 1.7580993408473766  # PyTorch's alpha for AlphaDropout


def x32(shape=(1000,), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- noise_shape ---------------------------------------------------------------------------

def test_channel_mask_is_constant_over_the_broadcast_axes(impl):
    x = np.ones((4, 6, 5, 5), np.float32)
    y, mask = impl.dropout(x, 0.5, seed=1, noise_shape=(4, 6, 1, 1), return_mask=True)
    assert mask.shape == (4, 6, 1, 1)
    per_channel = y.reshape(4, 6, 25)
    assert np.all(per_channel == per_channel[:, :, :1])
    np.testing.assert_array_equal(per_channel[:, :, 0] == 2.0, mask.to_bool()[:, :, 0, 0])


def test_none_entries_take_the_array_size(impl):
    x = x32((3, 4, 5))
    a = impl.dropout(x, 0.5, seed=2, noise_shape=(None, 1, None))
    b = impl.dropout(x, 0.5, seed=2, noise_shape=(3, 1, 5))
    assert_bit_equal(a, b)
    full = impl.dropout(x, 0.5, seed=2, noise_shape=(None, None, None))
    assert_bit_equal(full, impl.dropout(x, 0.5, seed=2))


def test_noise_counter_is_the_flat_index_in_the_noise_shape(impl):
    """§7.1: noise element i uses counter offset + i, so it is sample_mask(noise_shape)."""
    mask = impl.sample_mask((6, 50, 7), 0.5, seed=8, stream=3, offset=40, noise_shape=(6, 1, 7))
    flat = impl.sample_mask(42, 0.5, seed=8, stream=3, offset=40)
    np.testing.assert_array_equal(mask.to_bool().reshape(-1), flat.to_bool())
    assert (mask.seed, mask.stream, mask.offset) == (8, 3, 40)


def test_noise_shape_backward_by_regeneration_and_from_the_mask(impl):
    x, grad = x32((5, 20, 3)), x32((5, 20, 3), seed=1)
    _, mask = impl.dropout(x, 0.3, seed=4, stream=2, offset=9, noise_shape=(5, 1, 3), return_mask=True)
    from_mask = impl.dropout_backward(grad, mask)
    regenerated = impl.dropout_backward(grad, rate=0.3, seed=4, stream=2, offset=9, noise_shape=(5, 1, 3))
    assert_bit_equal(from_mask, regenerated)
    keep = np.broadcast_to(mask.to_bool(), grad.shape)
    np.testing.assert_array_equal(from_mask, np.where(keep, grad * np.float32(1 / 0.7), 0))


def test_noise_shape_in_eval_mode_samples_nothing(impl):
    x = x32((4, 5))
    y, mask = impl.dropout(x, 0.5, training=False, noise_shape=(4, 1), return_mask=True)
    assert y is x and mask is None


@pytest.mark.parametrize("noise_shape,error,match", [
    ((4, 2), ValueError, "does not broadcast"),
    ((4,), ValueError, "one entry per axis"),
    ((4, 5, 1), ValueError, "one entry per axis"),
    ((0, 5), ValueError, "does not broadcast"),
    ((4, 1.0), TypeError, "noise_shape must contain ints"),
    ("ab", TypeError, "noise_shape must contain ints"),
    (3.5, TypeError, "noise_shape must be a tuple"),
])
def test_bad_noise_shape(impl, noise_shape, error, match):
    x = x32((4, 5))
    with pytest.raises(error, match=match):
        impl.dropout(x, seed=0, noise_shape=noise_shape)
    with pytest.raises(error, match=match):
        impl.sample_mask((4, 5), seed=0, noise_shape=noise_shape)
    with pytest.raises(error, match=match):
        impl.alpha_dropout(x, seed=0, noise_shape=noise_shape)
    with pytest.raises(error, match=match):
        impl.dropout_backward(x, rate=0.5, seed=0, noise_shape=noise_shape)


def test_noise_shape_offset_counts_noise_elements(impl):
    with pytest.raises(ValueError, match="offset"):
        impl.dropout(x32((10, 10)), seed=0, offset=2**64 - 9, noise_shape=(10, 1))
    assert impl.dropout(x32((10, 10)), seed=0, offset=2**64 - 10, noise_shape=(10, 1)).shape == (10, 10)


# -- user masks (§7.6) -----------------------------------------------------------------------

def test_boolean_mask_in_dropout_apply_and_backward(impl):
    x = x32((20, 30))
    keep = np.random.default_rng(1).random((20, 30)) < 0.7
    expected = np.where(keep, x * np.float32(1 / 0.7), np.float32(0))
    assert_bit_equal(impl.dropout(x, 0.3, mask=keep), expected)
    assert_bit_equal(impl.apply_mask(x, keep, rate=0.3), expected)
    assert_bit_equal(impl.apply_mask(x, keep, keep_prob=0.7), expected)
    assert_bit_equal(impl.dropout_backward(x, keep, rate=0.3), expected)
    assert_bit_equal(impl.dropout(x, mask=keep), np.where(keep, x * np.float32(2), np.float32(0)))
    classical = impl.dropout(x, 0.3, mask=keep, inverted=False)
    assert_bit_equal(classical, np.where(keep, x, np.float32(0)))
    y, mask = impl.dropout(x, 0.3, mask=keep, return_mask=True)
    np.testing.assert_array_equal(mask.to_bool(), keep)
    assert mask.keep_prob == 0.7 and mask.seed is None


def test_user_mask_of_a_noise_shape_broadcasts(impl):
    x = x32((6, 4, 5))
    keep = np.array([True, False, True, True, False, True]).reshape(6, 1, 1)
    y = impl.dropout(x, 0.5, mask=keep)
    assert_bit_equal(y, np.where(keep, x * np.float32(2), np.float32(0)))
    m = Mask.from_bool(keep, 0.5)
    assert_bit_equal(impl.apply_mask(x, m), y)
    assert_bit_equal(impl.alpha_dropout(x, mask=m), impl.alpha_dropout(x, 0.5, mask=keep))


def test_mask_object_as_user_mask(impl):
    x = x32((100,))
    _, sampled = impl.dropout(x, 0.2, seed=3, return_mask=True)
    assert_bit_equal(impl.dropout(x, mask=sampled), impl.dropout(x, 0.2, seed=3))
    y_eval = impl.dropout(x, mask=sampled, training=False, inverted=False)
    assert_bit_equal(y_eval, x * np.float32(0.8))


def test_bad_user_masks(impl):
    x = x32((10, 10))
    with pytest.raises(ValueError, match="mask has shape"):
        impl.dropout(x, 0.5, mask=np.ones((10, 9), bool))
    with pytest.raises(ValueError, match="mask has shape"):
        impl.apply_mask(x, np.ones(100, bool), rate=0.5)
    with pytest.raises(TypeError, match="boolean array"):
        impl.dropout(x, 0.5, mask=np.ones((10, 10), np.float32))
    with pytest.raises(TypeError, match="boolean array"):
        impl.apply_mask(x, np.ones((10, 10), np.uint8), rate=0.5)
    with pytest.raises(TypeError, match="mask must be a fastdrop.Mask or a boolean array"):
        impl.dropout(x, 0.5, mask="all")
    with pytest.raises(TypeError, match="carries its own keep_prob"):
        impl.dropout(x, 0.3, mask=impl.sample_mask((10, 10), seed=1))
    with pytest.raises(TypeError, match="carries its own keep_prob"):
        impl.apply_mask(x, impl.sample_mask((10, 10), seed=1), keep_prob=0.5)
    with pytest.raises(TypeError, match="nothing is sampled"):
        impl.dropout(x, 0.5, mask=np.ones((10, 10), bool), seed=3)
    with pytest.raises(TypeError, match="nothing is sampled"):
        impl.dropout(x, 0.5, mask=np.ones((10, 10), bool), noise_shape=(10, 1))
    with pytest.raises(TypeError, match="nothing is sampled"):
        impl.alpha_dropout(x, 0.5, mask=np.ones((10, 10), bool), offset=3)
    with pytest.raises(TypeError, match="either mask or"):
        impl.dropout_backward(x, np.ones((10, 10), bool), rate=0.5, seed=1)
    with pytest.raises(TypeError, match="rate or keep_prob"):
        impl.dropout_backward(x, np.ones((10, 10), bool))


def test_mask_from_bool():
    keep = np.array([[True, False, True], [False, False, True]])
    mask = Mask.from_bool(keep, 0.25)
    np.testing.assert_array_equal(mask.to_bool(), keep)
    assert mask.keep_prob == 0.25 and mask.scale == 4.0 and mask.seed is None
    assert mask.bits.tolist() == [0b100101]
    assert Mask.from_bool(keep, 0.25, inverted=False).scale == 1.0
    assert Mask.from_bool(keep, 0.0).scale == 0.0
    with pytest.raises(TypeError, match="m must be a boolean array"):
        Mask.from_bool(keep.astype(int), 0.5)
    with pytest.raises(ValueError, match="keep_prob"):
        Mask.from_bool(keep, 1.5)
    with pytest.raises(TypeError, match="inverted"):
        Mask.from_bool(keep, 0.5, inverted=1)


@pytest.mark.parametrize("a,b", [(0, 10), (3, 17), (7, 8), (64, 129), (5, 5), (100, 1000)])
def test_slice_of_a_mask_is_the_mask_of_the_slice(impl, a, b):
    whole = impl.sample_mask(1000, 0.5, seed=21, stream=4, offset=6)
    part = whole[a:b]
    assert_mask_equal(part, impl.sample_mask(b - a, 0.5, seed=21, stream=4, offset=6 + a))
    assert (part.seed, part.stream, part.offset) == (21, 4, 6 + a)
    x = x32((1000,))
    assert_bit_equal(impl.apply_mask(x[a:b], part), impl.dropout(x, 0.5, seed=21, stream=4, offset=6)[a:b])


def test_rows_of_a_mask_keep_their_offset(impl):
    whole = impl.sample_mask((10, 7), 0.5, seed=2, offset=3)
    row = whole[4]
    assert row.shape == (7,) and row.offset == 3 + 28
    assert_mask_equal(row, impl.sample_mask(7, 0.5, seed=2, offset=31))
    rows = whole[2:5]
    assert rows.shape == (3, 7) and rows.offset == 3 + 14
    strided = whole[::2]
    assert strided.seed is None and strided.offset is None
    np.testing.assert_array_equal(strided.to_bool(), whole.to_bool()[::2])
    columns = whole[:, 1:3]
    assert columns.seed is None
    np.testing.assert_array_equal(columns.to_bool(), whole.to_bool()[:, 1:3])


def test_concatenate_masks_along_consecutive_offsets(impl):
    parts = [impl.sample_mask(n, 0.3, seed=5, stream=1, offset=o)
             for n, o in [(13, 0), (51, 13), (1, 64), (100, 65)]]
    joined = Mask.concatenate(parts)
    assert_mask_equal(joined, impl.sample_mask(165, 0.3, seed=5, stream=1))
    assert (joined.seed, joined.stream, joined.offset) == (5, 1, 0)
    gap = Mask.concatenate([parts[0], parts[2]])
    assert gap.seed is None
    np.testing.assert_array_equal(gap.to_bool(), np.concatenate([parts[0].to_bool(), parts[2].to_bool()]))
    rows = [impl.sample_mask((2, 3), 0.3, seed=5, offset=6 * k) for k in range(3)]
    assert_mask_equal(Mask.concatenate(rows), impl.sample_mask((6, 3), 0.3, seed=5))
    side = Mask.concatenate(rows, axis=1)
    assert side.shape == (2, 9) and side.seed is None


def test_concatenate_errors():
    a = fastdrop.sample_mask(10, 0.5, seed=1)
    with pytest.raises(ValueError, match="cannot be joined"):
        Mask.concatenate([a, fastdrop.sample_mask(10, 0.4, seed=1)])
    with pytest.raises(ValueError, match="at least one"):
        Mask.concatenate([])
    with pytest.raises(TypeError, match=r"masks\[1\] must be a fastdrop.Mask"):
        Mask.concatenate([a, np.ones(3, bool)])
    with pytest.raises(ValueError, match="cannot be concatenated"):
        Mask.concatenate([fastdrop.sample_mask((2, 3), seed=1), fastdrop.sample_mask((2, 4), seed=1)])
    with pytest.raises(ValueError, match="0-d"):
        Mask.concatenate([fastdrop.sample_mask((), seed=1)])
    with pytest.raises(ValueError, match="axis"):
        Mask.concatenate([a, a], axis=1)


# -- alpha dropout (§7.3) -------------------------------------------------------------------

def torch_style_alpha(x, keep, p):
    """PyTorch's _dropout_impl for alpha dropout, in float64, for one mask."""
    a = 1.0 / math.sqrt((SELU_NEG_SATURATION**2 * p + 1) * (1 - p))
    b = (keep.astype(np.float64) - 1) * (SELU_NEG_SATURATION * a) + SELU_NEG_SATURATION * a * p
    return x.astype(np.float64) * keep * a + b


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.5, 0.9])
def test_alpha_dropout_is_pytorchs_formula(impl, rate):
    x = np.random.default_rng(1).standard_normal(5000)
    y, mask = impl.alpha_dropout(x, rate, seed=7, return_mask=True)
    keep = mask.to_bool()
    np.testing.assert_allclose(y, torch_style_alpha(x, keep, rate), rtol=1e-15, atol=1e-15)
    dropped = y[~keep]
    alpha_a = SELU_NEG_SATURATION * mask.scale
    assert np.all(dropped == alpha_a * (1.0 - (1.0 - rate)) - alpha_a)
    q = 1.0 - rate  # §7.3: p = 1 - keep_prob, both as float64
    p = 1.0 - q
    assert mask.scale == 1.0 / math.sqrt((SELU_NEG_SATURATION * SELU_NEG_SATURATION * p + 1.0) * q)


def test_alpha_dropout_edge_rates_and_eval(impl):
    x = x32()
    assert_bit_equal(impl.alpha_dropout(x, 0.0, seed=1), x)
    y, mask = impl.alpha_dropout(x, 1.0, seed=1, return_mask=True)
    assert np.all(y == 0) and not np.any(np.signbit(y)) and mask.count() == 0 and mask.scale == 0
    y, mask = impl.alpha_dropout(x, 0.5, training=False, return_mask=True)
    assert y is x and mask is None
    out = np.empty_like(x)
    assert impl.alpha_dropout(x, 0.5, training=False, out=out) is out
    np.testing.assert_array_equal(out, x)


def test_feature_alpha_dropout_through_noise_shape(impl):
    x = x32((4, 3, 10))
    y, mask = impl.alpha_dropout(x, 0.4, seed=2, noise_shape=(4, 3, 1), return_mask=True)
    keep = np.broadcast_to(mask.to_bool(), x.shape)
    dropped = y[~keep]
    assert dropped.size and np.all(dropped == dropped[0])
    a = np.float32(mask.scale)
    alpha_a = SELU_NEG_SATURATION * mask.scale
    np.testing.assert_array_equal(y[keep], x[keep] * a + np.float32(alpha_a * 0.4))


def test_alpha_dropout_backward(impl):
    x, grad = x32((50, 7)), x32((50, 7), seed=3)
    _, mask = impl.alpha_dropout(x, 0.3, seed=5, stream=1, offset=2, noise_shape=(50, 1), return_mask=True)
    from_mask = impl.alpha_dropout_backward(grad, mask)
    regenerated = impl.alpha_dropout_backward(grad, rate=0.3, seed=5, stream=1, offset=2, noise_shape=(50, 1))
    assert_bit_equal(from_mask, regenerated)
    assert_bit_equal(impl.dropout_backward(grad, mask), from_mask)
    keep = np.broadcast_to(mask.to_bool(), grad.shape)
    np.testing.assert_array_equal(from_mask, np.where(keep, grad * np.float32(mask.scale), 0))
    boolean = impl.alpha_dropout_backward(grad, mask.to_bool(), rate=0.3)
    assert_bit_equal(boolean, from_mask)


def test_alpha_dropout_errors(impl):
    x = x32()
    with pytest.raises(ValueError, match="rate"):
        impl.alpha_dropout(x, 1.5, seed=0)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        impl.alpha_dropout(np.ones(3, int), seed=0)
    with pytest.raises(TypeError, match="training"):
        impl.alpha_dropout(x, seed=0, training=1)
    with pytest.raises(TypeError, match="either mask or"):
        impl.alpha_dropout_backward(x, impl.sample_mask(1000, seed=0), seed=1)
    with pytest.raises(ValueError, match="seed"):
        impl.alpha_dropout_backward(x, rate=0.5)


# -- Gaussian dropout (§7.2) ----------------------------------------------------------------

def test_gaussian_dropout_is_x_times_noise(impl):
    x = x32((30, 40))
    y, noise = impl.gaussian_dropout(x, 0.3, seed=4, stream=2, return_noise=True)
    assert noise.dtype == np.float32 and noise.shape == x.shape
    assert_bit_equal(y, x * noise)
    ones = impl.gaussian_dropout(np.ones_like(x), 0.3, seed=4, stream=2)
    assert_bit_equal(ones, noise)
    assert len(np.unique(noise)) > 1000


def test_gaussian_noise_follows_the_counter(impl):
    """Slices by offset give the slice of the noise, at any parity of the offset."""
    x = x32((1000,))
    y = impl.gaussian_dropout(x, 0.5, seed=9, stream=3, offset=10)
    for a, b in [(0, 1), (1, 2), (3, 17), (64, 700)]:
        assert_bit_equal(impl.gaussian_dropout(x[a:b], 0.5, seed=9, stream=3, offset=10 + a), y[a:b])


def test_gaussian_backward_by_regeneration_and_from_noise(impl):
    x, grad = x32((100,)), x32((100,), seed=2)
    _, noise = impl.gaussian_dropout(x, 0.2, seed=6, offset=3, return_noise=True)
    from_noise = impl.gaussian_dropout_backward(grad, noise)
    regenerated = impl.gaussian_dropout_backward(grad, rate=0.2, seed=6, offset=3)
    assert_bit_equal(from_noise, regenerated)
    assert_bit_equal(regenerated, grad * noise)
    assert_bit_equal(impl.gaussian_dropout_backward(grad, keep_prob=0.8, seed=6, offset=3), regenerated)


def test_gaussian_edge_rates_and_eval(impl):
    x = np.array([np.nan, np.inf, -0.0, 1.5, -2.0], np.float64)
    assert_bit_equal(impl.gaussian_dropout(x, 0.0, seed=1), x)
    y, noise = impl.gaussian_dropout(x, 0.5, training=False, return_noise=True)
    assert y is x and noise is None
    with pytest.raises(ValueError, match="rate < 1"):
        impl.gaussian_dropout(x, 1.0, seed=1)
    generator = np.random.default_rng(5)
    state = generator.bit_generator.state
    impl.gaussian_dropout(x, seed=generator, training=False)
    assert generator.bit_generator.state == state


def test_gaussian_errors(impl):
    x = x32((10,))
    with pytest.raises(TypeError, match="rate or keep_prob"):
        impl.gaussian_dropout(x, 0.3, keep_prob=0.7, seed=0)
    with pytest.raises(ValueError, match="rate"):
        impl.gaussian_dropout(x, -0.1, seed=0)
    with pytest.raises(TypeError, match="out must have dtype"):
        impl.gaussian_dropout(x, seed=0, out=np.empty(10, np.float64))
    with pytest.raises(ValueError, match="out must have shape"):
        impl.gaussian_dropout(x, seed=0, out=np.empty(11, np.float32))
    with pytest.raises(TypeError, match="either noise or"):
        impl.gaussian_dropout_backward(x, np.ones(10, np.float32), seed=1)
    with pytest.raises(ValueError, match="noise has shape"):
        impl.gaussian_dropout_backward(x, np.ones(11, np.float32))
    with pytest.raises(TypeError, match="noise has dtype"):
        impl.gaussian_dropout_backward(x, np.ones(10, np.float64))
    with pytest.raises(TypeError, match="noise must be the numpy.ndarray"):
        impl.gaussian_dropout_backward(x, [1.0] * 10)
    with pytest.raises(ValueError, match="seed"):
        impl.gaussian_dropout_backward(x, rate=0.5)
    with pytest.raises(TypeError, match="not a Generator"):
        impl.gaussian_dropout_backward(x, rate=0.5, seed=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rate or keep_prob"):
        impl.gaussian_dropout_backward(x, seed=1)
    with pytest.raises(TypeError, match="return_noise"):
        impl.gaussian_dropout(x, seed=1, return_noise="yes")


# -- float16 (§7.5) ---------------------------------------------------------------------------

def test_float16_in_float16_out(impl):
    x = np.linspace(-3, 3, 1001).astype(np.float16)
    for name in ("dropout", "alpha_dropout", "gaussian_dropout"):
        y = getattr(impl, name)(x, 0.25, seed=1)
        assert y.dtype == np.float16 and y.shape == x.shape
    y, mask = impl.dropout(x, 0.25, seed=1, return_mask=True)
    np.testing.assert_array_equal(y, np.where(mask.to_bool(), (x.astype(np.float32) * np.float32(4 / 3))
                                              .astype(np.float16), np.float16(0)))
    assert_bit_equal(impl.apply_mask(x, mask), y)
    assert_bit_equal(impl.dropout_backward(x, rate=0.25, seed=1), y)
    classical = impl.dropout(x, 0.25, training=False, inverted=False)
    assert_bit_equal(classical, (x.astype(np.float32) * np.float32(0.75)).astype(np.float16))
    g, noise = impl.gaussian_dropout(x, 0.25, seed=1, return_noise=True)
    assert noise.dtype == np.float32
    assert_bit_equal(impl.gaussian_dropout_backward(x, noise), g)
    assert_bit_equal(impl.gaussian_dropout_backward(x, rate=0.25, seed=1), g)


def test_mixed_dtypes_of_x_and_out_are_an_error(impl):
    x32_ = x32((10,))
    for name in ("dropout", "alpha_dropout", "gaussian_dropout"):
        with pytest.raises(TypeError, match="out must have dtype float32, got float16"):
            getattr(impl, name)(x32_, seed=0, out=np.empty(10, np.float16))
        with pytest.raises(TypeError, match="out must have dtype float16, got float32"):
            getattr(impl, name)(x32_.astype(np.float16), seed=0, out=np.empty(10, np.float32))
    with pytest.raises(TypeError, match="out must have dtype float16"):
        impl.apply_mask(x32_.astype(np.float16), impl.sample_mask(10, seed=0), out=x32_)
    with pytest.raises(TypeError, match="noise has dtype float16, expected float32"):
        impl.gaussian_dropout_backward(x32_.astype(np.float16), np.ones(10, np.float16))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_, np.complex64, np.longdouble])
def test_other_dtypes_still_rejected(impl, dtype):
    for name in ("dropout", "alpha_dropout", "gaussian_dropout"):
        with pytest.raises(TypeError, match="x must be float32 or float64"):
            getattr(impl, name)(np.ones(10, dtype), seed=0)

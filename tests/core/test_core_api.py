"""The public contract (DESIGN.md §1, §3-§5), run over the kernels and the reference:
semantics, eval mode, masks, and a clear error for every kind of bad argument."""
import numpy as np
import pytest

import fastdrop
from conftest import assert_bit_equal


def x32(n=1000):
    return np.random.default_rng(0).standard_normal(n).astype(np.float32)


def test_inverted_training_output(impl):
    x = x32()
    y, mask = impl.dropout(x, 0.2, seed=1, return_mask=True)
    keep = mask.to_bool()
    np.testing.assert_array_equal(y[keep], x[keep] * np.float32(1 / 0.8))
    assert np.all(y[~keep] == 0)
    assert mask.scale == 1 / 0.8 and mask.keep_prob == 0.8
    assert y.dtype == np.float32


def test_classical_training_and_eval(impl):
    x = x32()
    y, mask = impl.dropout(x, 0.2, seed=1, inverted=False, return_mask=True)
    keep = mask.to_bool()
    np.testing.assert_array_equal(y[keep], x[keep])
    assert mask.scale == 1.0
    y_eval = impl.dropout(x, 0.2, training=False, inverted=False)
    np.testing.assert_array_equal(y_eval, x * np.float32(0.8))


def test_inverted_eval_is_identity_and_samples_nothing(impl):
    x = x32()
    y, mask = impl.dropout(x, 0.2, training=False, return_mask=True)
    assert mask is None and y is x
    out = np.empty_like(x)
    assert impl.dropout(x, 0.2, training=False, out=out) is out
    np.testing.assert_array_equal(out, x)
    generator = np.random.default_rng(5)
    state = generator.bit_generator.state
    impl.dropout(x, seed=generator, training=False)
    assert generator.bit_generator.state == state


def test_rate_and_keep_prob_are_the_same_thing(impl):
    x = x32()
    assert_bit_equal(impl.dropout(x, 0.25, seed=3), impl.dropout(x, keep_prob=0.75, seed=3))
    assert_bit_equal(impl.dropout(x, seed=3), impl.dropout(x, rate=0.5, seed=3))


def test_same_seed_same_mask_other_stream_other_mask(impl):
    a = impl.sample_mask(4096, seed=10, stream=0)
    assert impl.sample_mask(4096, seed=10, stream=0) == a
    assert impl.sample_mask(4096, seed=10, stream=1) != a
    assert impl.sample_mask(4096, seed=11, stream=0) != a


def test_seed_none_records_the_key_used(impl):
    x = x32()
    y, mask = impl.dropout(x, seed=None, return_mask=True)
    assert isinstance(mask.seed, int) and 0 <= mask.seed < 2**64
    assert_bit_equal(impl.dropout_backward(x, rate=0.5, seed=mask.seed), y)
    assert impl.sample_mask(100, seed=None).seed != impl.sample_mask(100, seed=None).seed


def test_seed_generator_is_reproducible(impl):
    a = impl.sample_mask(1000, seed=np.random.default_rng(42))
    b = impl.sample_mask(1000, seed=np.random.default_rng(42))
    assert a == b and a.seed == b.seed


def test_backward_from_bits_and_by_regeneration_agree(impl):
    x, grad = x32(), x32()[::-1].copy()
    _, mask = impl.dropout(x, 0.3, seed=8, stream=2, offset=5, return_mask=True)
    from_bits = impl.dropout_backward(grad, mask)
    regenerated = impl.dropout_backward(grad, rate=0.3, seed=8, stream=2, offset=5)
    assert_bit_equal(from_bits, regenerated)
    assert_bit_equal(from_bits, impl.apply_mask(grad, mask))
    classical = impl.dropout_backward(grad, rate=0.3, seed=8, stream=2, offset=5, inverted=False)
    keep = mask.to_bool()
    np.testing.assert_array_equal(classical, np.where(keep, grad, 0))


def test_apply_mask_across_dtypes(impl):
    mask = impl.sample_mask((10, 10), 0.5, seed=1)
    for dtype in (np.float32, np.float64):
        x = np.ones((10, 10), dtype)
        y = impl.apply_mask(x, mask)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, np.where(mask.to_bool(), dtype(2.0), dtype(0)))


def test_mask_object(impl):
    mask = impl.sample_mask((4, 5), keep_prob=0.5, seed=2)
    assert mask.shape == (4, 5) and mask.size == 20 and mask.nbytes == 3
    assert mask.bits.dtype == np.uint8 and not mask.bits.flags.writeable
    assert mask.to_bool().shape == (4, 5) and mask.to_bool().dtype == bool
    assert mask.count() == mask.to_bool().sum()
    assert "Mask(shape=(4, 5)" in repr(mask)


def test_python_floats_and_lists_are_accepted(impl):
    y = impl.dropout([1.0, 2.0, 3.0], 0.0, seed=0)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [1.0, 2.0, 3.0])
    assert impl.dropout(2.5, 0.0, seed=0).shape == ()


# -- bad input -------------------------------------------------------------------------

BAD_RATES = [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
             (float("inf"), ValueError), ("0.5", TypeError), (None, TypeError), (True, TypeError)]


@pytest.mark.parametrize("rate,error", BAD_RATES)
def test_bad_rate(impl, rate, error):
    with pytest.raises(error, match="rate"):
        impl.dropout(x32(), rate, seed=0)
    with pytest.raises(error, match="keep_prob"):
        impl.sample_mask(10, keep_prob=rate if rate is not None else "x", seed=0)


def test_rate_and_keep_prob_together(impl):
    with pytest.raises(TypeError, match="rate or keep_prob"):
        impl.dropout(x32(), 0.3, keep_prob=0.7, seed=0)
    with pytest.raises(TypeError, match="rate or keep_prob"):
        impl.dropout(x32(), 0.5, keep_prob=0.5, seed=0)
    with pytest.raises(TypeError, match="rate or keep_prob"):
        impl.sample_mask(10, rate=0.2, keep_prob=0.8, seed=0)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_, np.complex64,
                                   np.complex128, object, np.longdouble])
def test_unsupported_dtypes(impl, dtype):
    x = np.ones(10, dtype=dtype)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        impl.dropout(x, seed=0)
    with pytest.raises(TypeError, match="must be float32 or float64"):
        impl.apply_mask(x, impl.sample_mask(10, seed=0))


def test_non_native_byte_order(impl):
    with pytest.raises(TypeError, match="byte order"):
        impl.dropout(np.ones(4, dtype=">f4") if np.little_endian else np.ones(4, dtype="<f4"), seed=0)


@pytest.mark.parametrize("name,value,error", [
    ("seed", -1, ValueError), ("seed", 2**64, ValueError), ("seed", 1.5, TypeError),
    ("seed", "7", TypeError), ("seed", True, TypeError),
    ("stream", -1, ValueError), ("stream", 2**64, ValueError), ("stream", 0.0, TypeError),
    ("offset", -1, ValueError), ("offset", 2**64, ValueError), ("offset", 2**64 - 999, ValueError),
    ("offset", None, TypeError),
])
def test_bad_seed_stream_offset(impl, name, value, error):
    kwargs = {"seed": 0, name: value}
    with pytest.raises(error, match=name):
        impl.dropout(x32(), **kwargs)
    with pytest.raises(error, match=name):
        impl.sample_mask(1000, **kwargs)


def test_offset_at_the_end_of_the_counter_space_is_fine(impl):
    assert impl.sample_mask(1000, seed=0, offset=2**64 - 1000).size == 1000
    assert impl.sample_mask(0, seed=0, offset=2**64 - 1).size == 0


def test_bad_shape(impl):
    with pytest.raises(ValueError, match="shape"):
        impl.sample_mask((3, -1), seed=0)
    with pytest.raises(TypeError, match="shape"):
        impl.sample_mask((3, 2.0), seed=0)
    with pytest.raises(TypeError, match="shape"):
        impl.sample_mask(None, seed=0)


def test_bad_out(impl):
    x = x32(100)
    with pytest.raises(ValueError, match="out must have shape"):
        impl.dropout(x, seed=0, out=np.empty(99, np.float32))
    with pytest.raises(TypeError, match="out must have dtype"):
        impl.dropout(x, seed=0, out=np.empty(100, np.float64))
    readonly = np.empty(100, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        impl.dropout(x, seed=0, out=readonly)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        impl.dropout(x, seed=0, out=[0.0] * 100)
    mask = impl.sample_mask(100, seed=0)
    with pytest.raises(ValueError, match="out must have shape"):
        impl.apply_mask(x, mask, out=np.empty(10, np.float32))
    with pytest.raises(ValueError, match="out must be writeable"):
        impl.dropout_backward(x, mask, out=readonly)


def test_bad_mask(impl):
    x = x32(100)
    with pytest.raises(ValueError, match="mask has shape"):
        impl.apply_mask(x, impl.sample_mask(99, seed=0))
    with pytest.raises(ValueError, match="mask has shape"):
        impl.apply_mask(x.reshape(10, 10), impl.sample_mask(100, seed=0))
    with pytest.raises(TypeError, match="mask must be a fastdrop.Mask"):
        impl.apply_mask(x, np.ones(100, bool))
    with pytest.raises(TypeError, match="mask must be a fastdrop.Mask"):
        impl.dropout_backward(x, "mask")
    with pytest.raises(ValueError, match="mask has shape"):
        impl.dropout_backward(x, impl.sample_mask(101, seed=0))


def test_flags_are_checked_with_a_stored_mask_too(impl):
    x = x32(100)
    mask = impl.sample_mask(100, seed=0)
    with pytest.raises(TypeError, match="inverted must be True or False"):
        impl.apply_mask(x, mask, inverted="yes")
    with pytest.raises(TypeError, match="inverted must be True or False"):
        impl.dropout_backward(x, mask, inverted="no")


def test_mask_constructor_rejects_wrong_bits():
    with pytest.raises(ValueError, match="bits must hold"):
        fastdrop.Mask(np.zeros(3, np.uint8), (100,), 0.5, 2.0)
    with pytest.raises(TypeError, match="bits must be a 1-D uint8"):
        fastdrop.Mask(np.zeros(13, np.int8), (100,), 0.5, 2.0)


def test_bad_backward_arguments(impl):
    x = x32(100)
    mask = impl.sample_mask(100, seed=0)
    with pytest.raises(TypeError, match="either mask or"):
        impl.dropout_backward(x, mask, rate=0.5)
    with pytest.raises(TypeError, match="either mask or"):
        impl.dropout_backward(x, mask, seed=3)
    with pytest.raises(ValueError, match="seed"):
        impl.dropout_backward(x, rate=0.5)
    with pytest.raises(TypeError, match="rate or keep_prob"):
        impl.dropout_backward(x, seed=3)
    with pytest.raises(TypeError, match="seed must be the int key"):
        impl.dropout_backward(x, rate=0.5, seed=np.random.default_rng(0))


def test_bad_flags(impl):
    with pytest.raises(TypeError, match="training"):
        impl.dropout(x32(), seed=0, training="yes")
    with pytest.raises(TypeError, match="inverted"):
        impl.dropout(x32(), seed=0, inverted=None)


def test_none_input(impl):
    with pytest.raises(TypeError, match="x must be an array"):
        impl.dropout(None, seed=0)

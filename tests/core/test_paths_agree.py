"""Calls where the fast path, the general path and the reference once disagreed."""
import numpy as np
import pytest

import fastdrop
from fastdrop import _general, reference

BOTH = [fastdrop, reference]


@pytest.mark.parametrize("lib", BOTH)
def test_apply_mask_rejects_string_inverted(lib):
    x = np.ones(16)
    mask = fastdrop.sample_mask(16, seed=1)
    with pytest.raises(TypeError, match="inverted"):
        lib.apply_mask(x, mask, inverted="yes")
    with pytest.raises(TypeError, match="inverted"):
        lib.dropout_backward(x, mask, inverted="no")


@pytest.mark.parametrize("lib", BOTH)
@pytest.mark.parametrize("value", [None, "yes", 1])
def test_dropout_checks_return_mask(lib, value):
    with pytest.raises(TypeError, match="return_mask"):
        lib.dropout(np.ones(4), seed=1, return_mask=value)


@pytest.mark.parametrize("kwargs", [
    dict(rate=2.0, seed=-1, return_mask="yes"),
    dict(rate="a", training=None, return_mask=None),
    dict(keep_prob=0.5, rate=0.2, stream=-1, return_mask=0),
    dict(seed=1.5, offset=-3, return_mask=None, out=[1.0]),
])
def test_several_bad_arguments_give_the_same_first_error(kwargs):
    errors = []
    for call in (lambda: fastdrop.dropout(np.ones(4), **kwargs),
                 lambda: reference.dropout(np.ones(4), **kwargs)):
        with pytest.raises((TypeError, ValueError)) as info:
            call()
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1]
    # the flags are checked before the sampling arguments
    assert "return_mask" in errors[0][1] or "training" in errors[0][1]


def _zero_d_calls(lib, x, g):
    mask0 = fastdrop.sample_mask((), seed=2)
    noise = reference.gaussian_dropout(np.ones(()), seed=3, return_noise=True)[1]
    return [
        lib.dropout(x, seed=1), lib.dropout(x, training=False, inverted=False),
        lib.dropout(x.astype(np.float16), training=False, inverted=False),
        lib.apply_mask(x, mask0), lib.dropout_backward(g, mask0),
        lib.dropout_backward(g, rate=0.5, seed=1), lib.alpha_dropout(x, seed=1),
        lib.alpha_dropout_backward(g, mask0), lib.gaussian_dropout(x, seed=1),
        lib.gaussian_dropout_backward(g, noise), lib.gaussian_dropout_backward(g, rate=0.3, seed=4),
        lib.gaussian_dropout_backward(g.astype(np.float32), rate=0.3, seed=4),
    ]


@pytest.mark.parametrize("lib", BOTH)
def test_zero_d_in_zero_d_array_out(lib):
    for y in _zero_d_calls(lib, np.array(1.5), np.array(2.0)):
        assert type(y) is np.ndarray and y.shape == ()


def test_gaussian_backward_zero_d_on_the_general_path():
    y = _general.gaussian_dropout_backward(np.array(2.0), np.array(1.5), None, None, None, 0, 0,
                                           None)
    assert type(y) is np.ndarray and y.shape == () and y == 3.0


@pytest.mark.parametrize("lib", BOTH)
@pytest.mark.parametrize("shape", [(2**32, 2**32), (2**63,), (2**64 + 1,), 2**64 + 1,
                                   (2**40, 2**40, 2**40)])
def test_impossible_mask_sizes_name_shape_before_allocating(lib, shape):
    with pytest.raises(ValueError, match="shape") as info:
        lib.sample_mask(shape, seed=1)
    assert "offset" not in str(info.value)


def test_impossible_mask_size_needs_no_offset_when_noise_is_small():
    m = fastdrop.sample_mask((2**32, 2**32), noise_shape=(1, 1), seed=1)
    assert m.shape == (1, 1) and m == reference.sample_mask((2**32, 2**32), noise_shape=(1, 1),
                                                           seed=1)


@pytest.mark.parametrize("lib", BOTH)
@pytest.mark.parametrize("name", ["rate", "keep_prob"])
def test_int_beyond_float_range_is_a_value_error(lib, name):
    with pytest.raises(ValueError, match=name):
        lib.dropout_backward(np.ones(3), **{name: 10**400}, seed=1)
    with pytest.raises(ValueError, match=name):
        lib.gaussian_dropout(np.ones(3), **{name: 10**400}, seed=1)


def test_mask_scale_beyond_float_range_is_a_value_error():
    with pytest.raises(ValueError, match="scale"):
        fastdrop.Mask(np.zeros(1, np.uint8), (3,), 0.5, 10**400)

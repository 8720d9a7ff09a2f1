"""Mask checks every field at construction and stays immutable through copies and pickle."""
import copy
import pickle

import numpy as np
import pytest

import fastdrop
from fastdrop import Mask


def _bits(n):
    return np.zeros((n + 7) // 8, np.uint8)


@pytest.mark.parametrize("shape, exc", [((-8,), ValueError), ((2.0, 4), TypeError),
                                        ((True,), TypeError), ("ab", TypeError)])
def test_mask_rejects_bad_shape(shape, exc):
    with pytest.raises(exc, match="shape") as info:
        Mask(_bits(8), shape, 0.5, 2.0)
    assert "-1 bytes" not in str(info.value)


def test_mask_bits_length_message_has_no_negative_ceil():
    with pytest.raises(ValueError, match="shape"):
        Mask(np.zeros(0, np.uint8), (-8,), 0.5, 2.0)
    with pytest.raises(ValueError, match="bits must hold 2 bytes for 9 elements"):
        Mask(_bits(8), (9,), 0.5, 2.0)


def test_mask_rejects_set_padding_bits():
    with pytest.raises(ValueError, match="padding"):
        Mask(np.array([0b1000_0001], np.uint8), (3,), 0.5, 2.0)
    Mask(np.array([0b0000_0101], np.uint8), (3,), 0.5, 2.0)  # no padding bit set: fine


@pytest.mark.parametrize("keep_prob, exc", [(7.0, ValueError), (-0.1, ValueError),
                                            (float("nan"), ValueError), ("x", TypeError),
                                            (True, TypeError)])
def test_mask_rejects_bad_keep_prob(keep_prob, exc):
    with pytest.raises(exc, match="keep_prob"):
        Mask(_bits(8), (8,), keep_prob, 1.0)


@pytest.mark.parametrize("scale, exc", [(float("nan"), ValueError), (3.0, ValueError),
                                        (float("inf"), ValueError), ("2", TypeError)])
def test_mask_rejects_bad_scale(scale, exc):
    with pytest.raises(exc, match="scale"):
        Mask(_bits(8), (8,), 0.5, scale)


@pytest.mark.parametrize("field, value, exc", [
    ("seed", -5, ValueError), ("seed", 2**64, ValueError), ("stream", "x", TypeError),
    ("offset", 1.5, TypeError), ("offset", True, TypeError)])
def test_mask_rejects_bad_provenance(field, value, exc):
    kwargs = dict(seed=1, stream=0, offset=0)
    kwargs[field] = value
    with pytest.raises(exc, match=field):
        Mask(_bits(8), (8,), 0.5, 2.0, **kwargs)


def test_mask_provenance_all_or_none_and_in_range():
    with pytest.raises(ValueError, match="seed, stream and offset"):
        Mask(_bits(8), (8,), 0.5, 2.0, seed=1)
    with pytest.raises(ValueError, match="offset"):
        Mask(_bits(8), (8,), 0.5, 2.0, seed=1, stream=0, offset=2**64 - 4)


def test_masks_that_exist_today_still_construct():
    x = np.ones(20)
    for kwargs in (dict(rate=1.0), dict(rate=0.0), dict(keep_prob=1e-320), dict(rate=0.3)):
        m = fastdrop.dropout(x, seed=3, return_mask=True, **kwargs)[1]
        assert Mask(m.bits, m.shape, m.keep_prob, m.scale, seed=m.seed, stream=m.stream,
                    offset=m.offset) == m
        m = fastdrop.alpha_dropout(x, seed=3, return_mask=True, **kwargs)[1]
        assert Mask(m.bits, m.shape, m.keep_prob, m.scale) == m
    m = fastdrop.dropout(x, seed=3, inverted=False, return_mask=True)[1]
    assert Mask(m.bits, m.shape, m.keep_prob, m.scale) == m


def test_mask_fields_are_read_only_and_bits_are_a_copy():
    bits = np.array([5], np.uint8)
    m = Mask(bits, (3,), 0.5, 2.0)
    bits[0] = 0
    assert m.bits[0] == 5
    for name in ("keep_prob", "scale", "seed", "stream", "offset", "bits", "shape"):
        with pytest.raises(AttributeError):
            setattr(m, name, 1)


def test_sampled_mask_equals_from_bool_of_its_booleans():
    m = fastdrop.sample_mask((3, 7), seed=5)
    assert m == Mask.from_bool(m.to_bool(), 0.5)
    assert m != Mask.from_bool(~m.to_bool(), 0.5)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_mask_pickles_read_only_at_every_protocol(protocol):
    m = fastdrop.sample_mask((5, 3), seed=9, stream=2, offset=7)
    back = pickle.loads(pickle.dumps(m, protocol=protocol))
    assert back == m and (back.seed, back.stream, back.offset) == (9, 2, 7)
    assert not back.bits.flags.writeable
    with pytest.raises(ValueError):
        back.bits.flags.writeable = True


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy])
def test_mask_copies_stay_read_only(copier):
    m = fastdrop.sample_mask(17, seed=1)
    c = copier(m)
    assert c == m and not c.bits.flags.writeable
    with pytest.raises(ValueError):
        c.bits[0] = 1

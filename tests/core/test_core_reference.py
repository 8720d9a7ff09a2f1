"""The reference against DESIGN.md §2: the upstream known-answer vectors, then the
mapping of (seed, stream, offset, index) onto Philox counters and keys, element by element:
the word stream of the Gaussian noise and the bit planes of the mask stream."""
import math

import numpy as np
import pytest

import fastdrop
from fastdrop import _kernels, reference

# DESIGN.md §2 (Random123's kat_vectors): counter, key, expected output.
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_reference_philox_known_answers(counter, key, expected):
    assert tuple(int(w) for w in reference.philox4x32_10(counter, key)) == expected


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_c_philox_known_answers(counter, key, expected):
    assert _kernels.philox_block(counter, key) == expected


def test_reference_philox_vectorised_equals_one_block_at_a_time():
    rng = np.random.default_rng(7)
    counters = rng.integers(0, 2**32, size=(4, 50), dtype=np.uint64)
    key = (0x01234567, 0x89ABCDEF)
    batch = np.stack(reference.philox4x32_10(tuple(counters), key))
    for col in range(50):
        one = _kernels.philox_block(tuple(int(c) for c in counters[:, col]), key)
        assert tuple(int(w) for w in batch[:, col]) == one


def word_of_element(seed, stream, j):
    """DESIGN.md §2, literally, through the C Philox block function."""
    block = j >> 2
    counter = (block & 0xFFFFFFFF, block >> 32, stream & 0xFFFFFFFF, stream >> 32)
    key = (seed & 0xFFFFFFFF, seed >> 32)
    return _kernels.philox_block(counter, key)[j & 3]


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5, 4 * (2**32 - 1) - 2, 2**64 - 23])
def test_random_words_follow_the_counter_layout(offset):
    seed, stream = 0xDEADBEEF12345678, (7 << 32) | 11
    words = reference.random_words(seed, stream, offset, 23)
    expected = [word_of_element(seed, stream, offset + i) for i in range(23)]
    assert [int(w) for w in words] == expected


def draw_of_element(seed, stream, j):
    """DESIGN.md §2.1, literally, through the C Philox block function: U_j = H_j << 24 | R_j."""
    key = (seed & 0xFFFFFFFF, seed >> 32)
    group, lane = j >> 7, j & 127
    top = 0
    for plane in range(8):
        counter = (group << 3) | plane
        words = _kernels.philox_block((counter & 0xFFFFFFFF, counter >> 32,
                                       stream & 0xFFFFFFFF, stream >> 32), key)
        top |= ((words[lane >> 5] >> (lane & 31)) & 1) << (7 - plane)
    block = (1 << 63) | (j >> 2)
    low = _kernels.philox_block((block & 0xFFFFFFFF, block >> 32,
                                 stream & 0xFFFFFFFF, stream >> 32), key)[j & 3] >> 8
    return (top << 24) | low


@pytest.mark.parametrize("offset", [0, 1, 127, 128, 1000, 2**57 * 128 - 300])
def test_uniform_words_follow_the_plane_layout(offset):
    seed, stream, size = 0xDEADBEEF12345678, (7 << 32) | 11, 300
    draws = reference.uniform_words(seed, stream, offset, size)
    assert [int(u) for u in draws] == [draw_of_element(seed, stream, offset + i)
                                       for i in range(size)]
    tops = reference.top_bytes(seed, stream, offset, size)
    lows = reference.low_bits(seed, stream, offset, size)
    assert np.array_equal((tops << np.uint64(24)) | lows, draws)
    assert tops.max() < 256 and lows.max() < 2**24


@pytest.mark.parametrize("keep_prob", [0.0, 1e-9, 0.1, 0.5, 0.75, 0.9, 1 - 1e-9, 1.0])
def test_reference_keeps_exactly_the_draws_below_the_threshold(keep_prob):
    seed, stream, offset, size = 99, 3, 6, 1500
    threshold = math.floor(keep_prob * 2**32)
    draws = np.array([draw_of_element(seed, stream, offset + i) for i in range(size)])
    mask = reference.sample_mask(size, keep_prob=keep_prob, seed=seed, stream=stream, offset=offset)
    np.testing.assert_array_equal(mask.to_bool(), draws < threshold)
    assert mask.count() == int(np.count_nonzero(draws < threshold))


def test_reference_output_numerics():
    x = np.array([1.5, -2.0, np.nan, np.inf, -np.inf, 3.0, 1e30, -0.0] * 8, dtype=np.float32)
    y, mask = reference.dropout(x, rate=0.3, seed=5, return_mask=True)
    keep = mask.to_bool()
    scale = np.float32(1.0 / 0.7)
    assert 0 < keep.sum() < keep.size
    np.testing.assert_array_equal(y[keep], x[keep] * scale)
    assert np.all(y[~keep] == 0) and not np.any(np.signbit(y[~keep]))


def test_mask_bits_layout_is_little_endian_packed():
    mask = reference.sample_mask((3, 7), keep_prob=0.5, seed=1)
    assert mask.bits.shape == (3,)
    flat = mask.to_bool().reshape(-1)
    for i in range(21):
        assert bool((mask.bits[i // 8] >> (i % 8)) & 1) == flat[i]
    assert mask.bits[2] >> 5 == 0  # padding bits are 0
    assert mask.nbytes == 3


def test_mask_records_its_origin_and_regenerates():
    mask = fastdrop.reference.sample_mask(100, rate=0.25, seed=2**63 + 5, stream=2**40, offset=17)
    assert (mask.seed, mask.stream, mask.offset) == (2**63 + 5, 2**40, 17)
    again = reference.sample_mask(100, keep_prob=mask.keep_prob, seed=mask.seed,
                                  stream=mask.stream, offset=mask.offset)
    assert again == mask

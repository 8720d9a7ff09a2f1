"""The mask stream (DESIGN.md §2.1, bit planes) on every level and thread count: the
known-answer masks, every number of planes the threshold needs, and the tie path."""
import math

import numpy as np
import pytest

import fastdrop
from fastdrop import reference

# DESIGN.md §2.1: (seed, stream, offset, n, keep_prob, packed mask as hex)
KNOWN_MASKS = [
    (0, 0, 0, 128, 0.5, "2a17d899723a961eb353a8432724ff64"),
    (0x0123456789ABCDEF, 1, 0, 256, 0.75,
     "b13be20ffc7feff3fa3a8ff6fc54fffeaddffffdfde7ebffe3fd97f3f9feac6f"),
    (42, 7, 0, 128, 0.9, "ff9733fbffffff9fcfb7f7fbee7fffff"),
    (42, 7, 1000, 100, 0.8, "bfcedbfcff9fefe2fdffadcb0f"),
    (2**64 - 1, 2**64 - 1, 2**64 - 128, 128, 0.25, "0002386d0800080238003a0484690702"),
    (4, 3, 0, 256, 0.9, "f7ffdfd7dfeffd9ffffefffbdfbfffffcfbffff5ffefff9fdaffffefffff7fff"),
]
AWKWARD_SIZES = [1, 3, 17, 63, 64, 65, 127, 128, 129, 255, 257, 1000, 4099]
AWKWARD_OFFSETS = [0, 1, 5, 63, 64, 100, 127, 128, 129, 2**40 + 77, 2**64 - 5000]


def planes_needed(keep_prob):
    """How many planes decide every element: 8 with ties possible, fewer when T's low 24
    bits are 0 (the planes below T's lowest set top bit cannot change a decision)."""
    threshold = math.floor(keep_prob * 2**32)
    top, low = threshold >> 24, threshold & 0xFFFFFF
    if low or top == 0:
        return 8
    return 8 - ((top & -top).bit_length() - 1)


def test_kernels_and_reference_draw_the_same_mask_stream():
    assert fastdrop.MASK_STREAM_VERSION == reference.MASK_STREAM_VERSION == 2


@pytest.mark.parametrize("seed,stream,offset,n,keep_prob,hex_bits", KNOWN_MASKS)
def test_known_masks_of_the_reference(seed, stream, offset, n, keep_prob, hex_bits):
    mask = reference.sample_mask(n, keep_prob=keep_prob, seed=seed, stream=stream, offset=offset)
    assert mask.bits.tobytes().hex() == hex_bits


@pytest.mark.parametrize("seed,stream,offset,n,keep_prob,hex_bits", KNOWN_MASKS)
def test_known_masks_of_the_kernels(simd, threads, seed, stream, offset, n, keep_prob, hex_bits):
    mask = fastdrop.sample_mask(n, keep_prob=keep_prob, seed=seed, stream=stream, offset=offset)
    assert mask.bits.tobytes().hex() == hex_bits
    x = np.full(n, 2.0, dtype=np.float32)
    y, forward_mask = fastdrop.dropout(x, keep_prob=keep_prob, seed=seed, stream=stream,
                                       offset=offset, return_mask=True)
    assert forward_mask.bits.tobytes().hex() == hex_bits
    np.testing.assert_array_equal(y != 0, mask.to_bool())
    grad = fastdrop.dropout_backward(x, keep_prob=keep_prob, seed=seed, stream=stream,
                                     offset=offset)
    np.testing.assert_array_equal(grad.view(np.uint32), y.view(np.uint32))


def test_known_masks_exercise_ties_and_plane_skipping():
    """The table holds a case decided by ties both ways and cases that skip planes."""
    seed, stream, offset, n, keep_prob, _ = KNOWN_MASKS[-1]
    threshold = math.floor(keep_prob * 2**32)
    tops = reference.top_bytes(seed, stream, offset, n)
    tied = np.flatnonzero(tops == threshold >> 24)
    kept = reference.uniform_words(seed, stream, offset, n)[tied] < threshold
    assert tied.tolist() == [155, 232] and kept.tolist() == [False, True]
    assert sorted({planes_needed(case[4]) for case in KNOWN_MASKS}) == [1, 2, 8]


# every plane count: keep_prob = k / 256 needs 8 - ctz(k) planes; + 2^-32 makes ties
PLANE_KEEP_PROBS = [1 / 256, 2 / 256, 12 / 256, 40 / 256, 0.0625, 0.125, 0.25, 0.5, 0.75,
                    255 / 256, 0.5 + 2**-32, 1 / 256 + 2**-32]


def test_plane_keep_probs_cover_every_plane_count():
    assert sorted({planes_needed(p) for p in PLANE_KEEP_PROBS}) == [1, 2, 3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("keep_prob", PLANE_KEEP_PROBS)
def test_every_plane_count_matches_the_reference(simd, keep_prob):
    seed, stream = 0x5EED, 9
    for n in AWKWARD_SIZES:
        for offset in AWKWARD_OFFSETS:
            expected = reference.sample_mask(n, keep_prob=keep_prob, seed=seed, stream=stream,
                                             offset=offset)
            actual = fastdrop.sample_mask(n, keep_prob=keep_prob, seed=seed, stream=stream,
                                          offset=offset)
            assert np.array_equal(actual.bits, expected.bits), (n, offset)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("keep_prob", [0.5 + 2**-32, 0.8, 0.5])
def test_ties_on_threads_match_the_reference(simd, threads, dtype, keep_prob):
    """T's low bits set: about one element in 256 is tied and decided by its low bits
    (with 0.5 + 2^-32, every tie is kept only if R_j == 0)."""
    seed, stream, offset, n = 77, 5, 333, 200_003
    threshold = math.floor(keep_prob * 2**32)
    if threshold & 0xFFFFFF:
        ties = np.count_nonzero(reference.top_bytes(seed, stream, offset, n) == threshold >> 24)
        assert ties > n // 512
    x = np.random.default_rng(1).standard_normal(n).astype(dtype)
    expected = reference.dropout(x, keep_prob=keep_prob, seed=seed, stream=stream, offset=offset)
    out = np.full_like(x, 7.0)
    fastdrop.dropout(x, keep_prob=keep_prob, seed=seed, stream=stream, offset=offset, out=out)
    unsigned = {2: np.uint16, 4: np.uint32, 8: np.uint64}[x.itemsize]
    assert np.array_equal(out.view(unsigned), expected.view(unsigned))

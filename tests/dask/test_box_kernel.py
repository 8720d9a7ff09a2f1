"""The box kernels: an N-d box of a larger C-order array, each element addressed by its
index in the whole array (DESIGN.md §8), against fastdrop.reference on the same box, bit
for bit, at every SIMD level and thread count; and every geometry that would leave a
buffer refused before any C code runs."""
import math

import numpy as np
import pytest

from conftest import assert_bit_equal
from fastdrop import _kernels, reference

SEED, STREAM = 0x1234_5678_9ABC_DEF0, 0xFEED_0000_0000_0007
U64 = 1 << 64

# (global shape, box start, box shape, offset): awkward row lengths, boxes touching every
# edge, empty and one-element boxes, a row of a million elements, offsets near 2**64.
GEOMETRIES = [
    ((17,), (3,), (11,), 0),
    ((65,), (1,), (63,), 5),
    ((1000003,), (0,), (1000003,), 3),
    ((3, 1000003), (1, 5), (1, 999990), 1),
    ((5, 17), (1, 1), (3, 15), 7),
    ((4, 64), (0, 0), (4, 64), 0),
    ((4, 16), (1, 0), (3, 16), 1),
    ((7, 13, 19), (2, 3, 5), (4, 9, 11), U64 - 7 * 13 * 19),
    ((2, 3, 5, 7), (1, 0, 2, 1), (1, 3, 3, 5), 11),
    ((6, 1, 5, 1), (2, 0, 1, 0), (3, 1, 4, 1), 2),
    ((9, 8), (4, 0), (1, 1), 1),
    ((9, 8), (4, 3), (0, 2), 1),
    ((), (), (), 9),
]
DTYPES = [np.float16, np.float32, np.float64]


def _small(global_shape):
    return math.prod(global_shape) < 100_000


def _box_slice(start, shape):
    return tuple(slice(s, s + n) for s, n in zip(start, shape)) + (Ellipsis,)


def _whole(global_shape, dtype):
    rng = np.random.default_rng(len(global_shape) + math.prod(global_shape))
    return (rng.standard_normal(global_shape) * 3).astype(dtype)


def _kview(a):
    return a.view(np.uint16) if a.dtype == np.float16 else a


def _run(kind, xb, y, global_shape, start, shape, offset, keep_prob, x_pitch=None,
         y_pitch=None):
    nthreads = _kernels.get_num_threads()
    if kind == "gauss":
        _kernels.box_gauss(_kview(xb), _kview(y), global_shape, start, shape, x_pitch, y_pitch,
                           offset, SEED, STREAM, reference.gaussian_sigma(keep_prob), nthreads)
        return
    if kind == "dropout":
        mul, add, fill, affine = 1.0 / keep_prob, 0.0, 0.0, False
    else:
        mul, add, fill = reference.alpha_constants(keep_prob)
        affine = 0.0 < keep_prob < 1.0  # at 0 and 1 a plain scale: a kept -0.0 stays -0.0
    _kernels.box_forward_op(_kview(xb), _kview(y), global_shape, start, shape, x_pitch, y_pitch,
                            offset, SEED, STREAM, reference.keep_threshold(keep_prob),
                            mul, add, fill, affine, nthreads)


def _expected(kind, x, offset, keep_prob):
    if kind == "gauss":
        return reference.gaussian_dropout(x, keep_prob=keep_prob, seed=SEED, stream=STREAM,
                                          offset=offset)
    f = reference.dropout if kind == "dropout" else reference.alpha_dropout
    return f(x, keep_prob=keep_prob, seed=SEED, stream=STREAM, offset=offset)


@pytest.mark.parametrize("geometry", [g for g in GEOMETRIES if _small(g[0])], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["dropout", "alpha", "gauss"])
def test_box_matches_the_reference_on_the_same_box(simd, threads, geometry, dtype, kind):
    _check_box(kind, geometry, dtype)


@pytest.mark.parametrize("geometry", [g for g in GEOMETRIES if not _small(g[0])], ids=str)
def test_million_element_rows_on_threads(simd, threads, geometry):
    """Rows long enough for the entry points to share them out across threads."""
    _check_box("dropout", geometry, np.float32)


def _check_box(kind, geometry, dtype):
    global_shape, start, shape, offset = geometry
    x = _whole(global_shape, dtype)
    keep_prob = 0.7
    expected = _expected(kind, x, offset, keep_prob)[_box_slice(start, shape)]
    xb = x[_box_slice(start, shape)].copy()
    y = np.full(xb.shape, np.nan, dtype)  # sentinel: every element must be written
    _run(kind, xb.reshape(-1), y.reshape(-1), global_shape, start, shape, offset, keep_prob)
    assert_bit_equal(y, expected)


@pytest.mark.parametrize("geometry", [g for g in GEOMETRIES if _small(g[0])], ids=str)
def test_box_sample_packs_the_box_of_the_whole_mask(simd, threads, geometry):
    global_shape, start, shape, offset = geometry
    whole = reference.sample_mask(global_shape, keep_prob=0.6, seed=SEED, stream=STREAM,
                                  offset=offset).to_bool()
    size = math.prod(shape)
    bits = np.full((size + 7) // 8 + 2, 0xA5, np.uint8)  # sentinel past the mask's bytes
    _kernels.box_sample(bits, global_shape, start, shape, offset, SEED, STREAM,
                        reference.keep_threshold(0.6), _kernels.get_num_threads())
    got = np.unpackbits(bits[:(size + 7) // 8], bitorder="little")
    np.testing.assert_array_equal(got[:size].astype(bool).reshape(shape),
                                  whole[_box_slice(start, shape)])
    assert not got[size:].any()  # padding bits 0 (§4)
    assert (bits[(size + 7) // 8:] == 0xA5).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["dropout", "gauss"])
def test_box_with_pitches_reads_and_writes_only_the_box(simd, threads, dtype, kind):
    """x and y are boxes inside larger buffers (a chunk in place in its array): the
    elements between the rows are neither read into the result nor written."""
    global_shape, start, shape, offset = (6, 9, 35), (1, 2, 3), (4, 5, 29), 13
    x = _whole(global_shape, dtype)
    expected = _expected(kind, x, offset, 0.55)[_box_slice(start, shape)]
    sentinel = np.full((5, 7, 33), -7.25, dtype)
    out = sentinel.copy()
    y_view = out[1:, 1:6, 2:31]  # the box inside a bigger output
    y_pitch = [s // out.itemsize for s in out.strides]
    x_pitch = [s // x.itemsize for s in x.strides]
    x_run = x.reshape(-1)[np.ravel_multi_index(start, global_shape):]
    y_run = out.reshape(-1)[np.ravel_multi_index((1, 1, 2), out.shape):]
    _run(kind, x_run, y_run, global_shape, start, shape, offset, 0.55, x_pitch, y_pitch)
    assert_bit_equal(np.ascontiguousarray(y_view), expected)
    untouched = np.ones(out.shape, bool)
    untouched[1:, 1:6, 2:31] = False
    assert (out[untouched] == -7.25).all()


def test_box_in_place(simd):
    global_shape, start, shape = (8, 21), (2, 4), (5, 13)
    x = _whole(global_shape, np.float32)
    expected = _expected("dropout", x, 0, 0.5)[_box_slice(start, shape)]
    xb = x[_box_slice(start, shape)].copy()
    _run("dropout", xb.reshape(-1), xb.reshape(-1), global_shape, start, shape, 0, 0.5)
    assert_bit_equal(xb, expected)


def test_every_level_and_thread_count_gives_the_same_box():
    from fastdrop import config

    global_shape, start, shape = (3, 70001), (1, 3), (2, 69990)
    x = _whole(global_shape, np.float64)
    xb = x[_box_slice(start, shape)].copy()
    results = []
    for level in config.available_simd_levels():
        for n in (1, 2, 3):
            with config.simd(level), config.threads(n):
                y = np.empty_like(xb)
                _run("gauss", xb.reshape(-1), y.reshape(-1), global_shape, start, shape, 1, 0.8)
                results.append(y)
    for y in results[1:]:
        assert_bit_equal(y, results[0])


# -- geometries that would leave a buffer ----------------------------------------------------

def _call(x_len=60, y_len=60, global_shape=(6, 10), start=(1, 2), shape=(5, 6), x_pitch=None,
          y_pitch=None, offset=0, x=None, y=None):
    x = np.zeros(x_len, np.float32) if x is None else x
    y = np.zeros(y_len, np.float32) if y is None else y
    _kernels.box_forward_op(x, y, global_shape, start, shape, x_pitch, y_pitch, offset, 1, 0,
                            2**31, 2.0, 0.0, 0.0, False, 1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(start=(2, 2)), "leaves the array on axis 0"),
    (dict(start=(1, 5)), "leaves the array on axis 1"),
    (dict(x_len=29), "reaches past the end of the buffer \\(x_pitch\\)"),
    (dict(y_len=29), "reaches past the end of the buffer \\(y_pitch\\)"),
    (dict(x_pitch=(10, 1), x_len=45), "reaches past the end of the buffer"),
    (dict(x_pitch=(5, 1)), "makes the rows overlap"),
    (dict(y_pitch=(6, 2)), "must end in 1"),
    (dict(offset=U64 - 59), "offset \\+ size must be at most 2\\*\\*64"),
    (dict(start=(1,)), "start must have 2 entries"),
    (dict(shape=(5, 6, 1)), "shape must have 2 entries"),
    (dict(start=(-1, 2)), "non-negative"),
])
def test_out_of_bounds_geometries_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _call(**kwargs)


def test_bad_entries_and_aliasing_are_refused():
    with pytest.raises(TypeError, match="start entries must be ints"):
        _call(start=(1.0, 2))
    buf = np.zeros(100, np.float32)
    with pytest.raises(ValueError, match="overlap partially"):
        _call(x=buf[:60], y=buf[10:70])
    with pytest.raises(ValueError, match="same buffer but with different pitches"):
        _call(x=buf, y=buf, x_pitch=(6, 1), y_pitch=(10, 1))
    with pytest.raises(ValueError, match="at most 64 axes"):
        _call(global_shape=(1,) * 65, start=(0,) * 65, shape=(1,) * 65)
    with pytest.raises(ValueError, match="bits is too short"):
        _kernels.box_sample(np.zeros(3, np.uint8), (6, 10), (1, 2), (5, 6), 0, 1, 0, 2**31, 1)
    with pytest.raises(ValueError, match="leaves the array"):
        _kernels.box_sample(np.zeros(8, np.uint8), (6, 10), (1, 5), (5, 6), 0, 1, 0, 2**31, 1)
    with pytest.raises(ValueError, match="offset \\+ size"):
        _kernels.box_gauss(np.zeros(30, np.float64), np.zeros(30, np.float64), (6, 10), (1, 2),
                           (5, 6), None, None, U64 - 10, 1, 0, 0.5, 1)

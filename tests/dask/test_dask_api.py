"""fastdrop.dask: lazy, and bit for bit the in-memory call on the whole array, for every
chunking (regular, irregular, one chunk) of 1-d, 2-d and 4-d arrays, with and without a
noise shape, on the synchronous and threaded schedulers (test_dask_cluster.py runs the
same cases on a distributed cluster)."""

import dask
import dask.array as da
import numpy as np
import pytest

import fastdrop
import fastdrop.dask as fdd
from conftest import assert_bit_equal, run_python

SEED, STREAM, OFFSET = 0xC0FFEE_1234, 3, 5

# shape -> (regular, irregular, one chunk) chunkings, and a noise shape
ARRAYS = {
    1: ((1003,), [(100,), ((1, 500, 2, 500),), -1], (1,)),
    2: ((37, 65), [(10, 22), ((1, 20, 16), (3, 1, 61)), -1], (37, 1)),
    4: ((5, 7, 3, 17), [(3, 4, 2, 9), ((1, 4), (2, 5), (3,), (16, 1)), -1], (5, 1, 3, 1)),
}
CASES = [(ndim, chunking, dtype)
         for ndim in ARRAYS for chunking in ("regular", "irregular", "one")
         for dtype in (np.float32, np.float64)]


def make_case(ndim, chunking, dtype):
    shape, chunkings, noise = ARRAYS[ndim]
    chunks = chunkings[("regular", "irregular", "one").index(chunking)]
    rng = np.random.default_rng(ndim)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    return x, g, da.from_array(x, chunks=chunks), da.from_array(g, chunks=chunks), noise


def calls(x, g, noise, lib):
    """The same calls on one library: fastdrop (in memory) or fastdrop.dask."""
    key = dict(seed=SEED, stream=STREAM, offset=OFFSET)
    return {
        "dropout": lib.dropout(x, 0.3, **key),
        "dropout classical": lib.dropout(x, 0.3, inverted=False, **key),
        "dropout eval classical": lib.dropout(x, 0.3, training=False, inverted=False, **key),
        "dropout noise_shape": lib.dropout(x, 0.3, noise_shape=noise, **key),
        "alpha_dropout": lib.alpha_dropout(x, 0.25, **key),
        "alpha_dropout noise_shape": lib.alpha_dropout(x, 0.25, noise_shape=noise, **key),
        "gaussian_dropout": lib.gaussian_dropout(x, 0.4, **key),
        "dropout_backward": lib.dropout_backward(g, rate=0.3, **key),
        "dropout_backward noise_shape": lib.dropout_backward(g, rate=0.3, noise_shape=noise,
                                                             **key),
        "alpha_dropout_backward": lib.alpha_dropout_backward(g, rate=0.25, **key),
        "gaussian_dropout_backward": lib.gaussian_dropout_backward(g, rate=0.4, **key),
    }


def lazy_and_expected(case):
    """(dict of lazy fastdrop.dask results, dict of the in-memory results) for one case."""
    x, g, dx, dg, noise = make_case(*case)
    expected = calls(x, g, noise, fastdrop)
    lazy = calls(dx, dg, noise, fdd)
    lazy["sample_mask"] = fdd.sample_mask(x.shape, 0.3, seed=SEED, stream=STREAM,
                                          offset=OFFSET, chunks=dx.chunks)
    expected["sample_mask"] = fastdrop.sample_mask(x.shape, 0.3, seed=SEED, stream=STREAM,
                                                   offset=OFFSET).to_bool()
    for name, array in lazy.items():
        assert isinstance(array, da.Array), name
    return lazy, expected


def assert_all_equal(got, expected):
    assert set(got) == set(expected)
    for name in expected:
        assert_bit_equal(got[name], expected[name])


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_chunking_gives_the_in_memory_bits(case, scheduler):
    lazy, expected = lazy_and_expected(case)
    assert_all_equal(dict(zip(lazy, dask.compute(*lazy.values(), scheduler=scheduler))),
                     expected)


def test_float16_and_a_chunk_view_with_pitches():
    """A float16 array, and chunks that are strided views into a bigger array."""
    x = np.random.default_rng(5).standard_normal((40, 30)).astype(np.float16)
    dx = da.from_array(x, chunks=(7, 11))
    assert_bit_equal(fdd.dropout(dx, 0.5, seed=1).compute(), fastdrop.dropout(x, 0.5, seed=1))
    big = np.random.default_rng(6).standard_normal((50, 64))
    dv = da.from_array(big, chunks=(50, 64))[3:41, 5:60].rechunk((13, 17))
    assert_bit_equal(fdd.gaussian_dropout(dv, 0.2, seed=2).compute(scheduler="sync"),
                     fastdrop.gaussian_dropout(big[3:41, 5:60], 0.2, seed=2))


def test_backward_regenerates_the_forward_mask():
    x = np.random.default_rng(7).standard_normal((64, 33)) + 10.0  # no zeros of its own
    dx = da.from_array(x, chunks=(10, 9))
    y = fdd.dropout(dx, 0.4, seed=11, stream=2, noise_shape=(64, 1)).compute()
    grad = fdd.dropout_backward(da.ones_like(dx), rate=0.4, seed=11, stream=2,
                                noise_shape=(64, 1)).compute()
    np.testing.assert_array_equal(grad != 0, y != 0)
    np.testing.assert_array_equal(grad[grad != 0], 1 / 0.6)


def test_nothing_runs_until_compute():
    ran = []

    def source(block):
        ran.append(block.shape)
        return block

    x = da.ones((20, 20), chunks=5).map_blocks(source, meta=np.empty((0, 0)))
    lazy = [fdd.dropout(x, seed=1), fdd.alpha_dropout(x, seed=1, noise_shape=(1, 20)),
            fdd.gaussian_dropout(x, seed=1), fdd.dropout_backward(x, rate=0.5, seed=1)]
    lazy.append(fdd.sample_mask((20, 20), seed=1, chunks=5))
    assert ran == []
    dask.compute(*lazy, scheduler="sync")
    assert len(ran) == 16  # the shared source, once per chunk


def test_eval_mode_is_the_array_itself():
    x = da.ones((6, 4), chunks=2)
    assert fdd.dropout(x, seed=1, training=False) is x
    assert fdd.alpha_dropout(x, seed=1, training=False) is x
    assert fdd.gaussian_dropout(x, seed=1, training=False) is x


@pytest.mark.parametrize("function", [fdd.dropout, fdd.alpha_dropout, fdd.gaussian_dropout])
def test_seed_none_is_refused_naming_seed(function):
    with pytest.raises(ValueError, match="seed"):
        function(da.ones(10, chunks=5))
    with pytest.raises(ValueError, match="seed"):
        fdd.sample_mask(10, chunks=5)
    with pytest.raises(ValueError, match="seed"):
        fdd.dropout_backward(da.ones(10, chunks=5), rate=0.5)


def test_bad_input_is_refused_with_the_in_memory_errors():
    x = da.ones((6, 4), chunks=2)
    with pytest.raises(TypeError, match="x must be a dask.array.Array"):
        fdd.dropout(np.ones(4), seed=1)
    with pytest.raises(TypeError, match="x must have a native float"):
        fdd.dropout(da.ones(4, dtype=np.int32, chunks=2), seed=1)
    with pytest.raises(ValueError, match="noise_shape"):
        fdd.dropout(x, seed=1, noise_shape=(6, 2))
    with pytest.raises(ValueError, match="rate must be in"):
        fdd.dropout(x, 1.5, seed=1)
    with pytest.raises(TypeError, match="either rate or keep_prob"):
        fdd.dropout(x, 0.2, keep_prob=0.8, seed=1)
    with pytest.raises(ValueError, match="offset \\+ size"):
        fdd.dropout(x, seed=1, offset=2**64 - 5)
    with pytest.raises(TypeError, match="needs rate or keep_prob"):
        fdd.dropout_backward(x, seed=1)
    with pytest.raises(ValueError, match="rate < 1"):
        fdd.gaussian_dropout(x, 1.0, seed=1)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        fdd.dropout(x[x[:, 0] > 0], seed=1)


def test_without_dask_the_import_error_names_the_extra():
    code = ("import sys; sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
            "try:\n    import fastdrop.dask\nexcept ImportError as e:\n    print(e)\n")
    out = run_python(code, check=True, timeout=120).stdout
    assert 'pip install "fastdrop[dask]"' in out

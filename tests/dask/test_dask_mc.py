"""fastdrop.dask.mc_predict: every row gets the masks (layer, pass, global row), the row
tiles and the pass grouping of the in-memory call on the whole batch, for any row chunking.

The "dyadic" model (weights, biases and inputs small multiples of powers of two, float64)
has exact products, so it checks the masks and the order of the sums alone; the general
float32 model rounds in every product, so equal bits there also need every row to meet the
same matrix products in every block (tiles aligned on the global row index, one BLAS
thread)."""
import dask
import dask.array as da
import numpy as np
import pytest

import fastdrop.dask as fdd
from conftest import assert_bit_equal
from fastdrop import theory
from fastdrop.nn import build_mlp

FIELDS = ("mean", "std", "predictive_entropy", "mutual_information", "expected_entropy")
ROWS, FEATURES = 53, 12
CHUNKINGS = {"regular": 10, "irregular": (1, 30, 2, 20), "one": -1, "single rows": 1}


def dyadic_model(fused=True):
    model = build_mlp((FEATURES, 32, 24, 5), input_rate=0.2, hidden_rate=0.5, fused=fused,
                      seed=4, dtype=np.float64)
    rng = np.random.default_rng(9)
    for layer in model.layers:
        if hasattr(layer, "W"):
            layer.W[...] = rng.integers(-4, 5, layer.W.shape) / 8
            layer.b[...] = rng.integers(-4, 5, layer.b.shape) / 8
    return model


def dyadic_inputs():
    return np.random.default_rng(3).integers(0, 4, (ROWS, FEATURES)) / 4


def assert_same_rows(result, expected):
    for name in FIELDS:
        got = getattr(result, name)
        assert isinstance(got, da.Array), name
        assert_bit_equal(got.compute(), getattr(expected, name))
    assert result.seed == expected.seed and result.T == expected.T


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
@pytest.mark.parametrize("chunking", CHUNKINGS, ids=str)
@pytest.mark.parametrize("fused", [True, False], ids=["DropoutDense", "Dropout+Dense"])
def test_mc_predict_is_row_for_row_the_in_memory_one(chunking, fused, scheduler):
    model, X = dyadic_model(fused), dyadic_inputs()
    expected = theory.mc_predict(model, X, 9, seed=77)
    result = fdd.mc_predict(model, da.from_array(X, chunks=(CHUNKINGS[chunking], -1)), 9,
                            seed=77)
    with dask.config.set(scheduler=scheduler):
        assert_same_rows(result, expected)


def test_chunk_bytes_changes_no_grouping():
    """chunk_bytes bounds the memory in flight only: blocks run with a small one give the
    bits of the whole batch with the default."""
    model, X = dyadic_model(), dyadic_inputs()
    expected = theory.mc_predict(model, X, 11, seed=5)
    result = fdd.mc_predict(model, da.from_array(X, chunks=(7, -1)), 11, seed=5,
                            chunk_bytes=20_000)
    assert_same_rows(result, expected)


def general_model():
    return build_mlp((FEATURES, 48, 5), input_rate=0.2, hidden_rate=0.5, seed=2)


def general_inputs(rows=ROWS):
    return np.random.default_rng(1).random((rows, FEATURES), dtype=np.float32)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
@pytest.mark.parametrize("chunks", [(9, 5), ((1, 30, 2, 20), -1), (1, -1), (53, 4)], ids=str)
def test_general_weights_give_the_in_memory_bits(chunks, scheduler):
    model, X = general_model(), general_inputs()
    expected = theory.mc_predict(model, X, 6, seed=3)
    result = fdd.mc_predict(model, da.from_array(X, chunks=chunks), 6, seed=3)
    with dask.config.set(scheduler=scheduler):
        assert_same_rows(result, expected)


def test_general_weights_on_many_tiles():
    """1000 rows: blocks that cut the row tiles anywhere, and a small chunk_bytes."""
    model = build_mlp((FEATURES, 200, 5), input_rate=0.2, hidden_rate=0.5, seed=6)
    X = general_inputs(1000)
    expected = theory.mc_predict(model, X, 5, seed=8, chunk_bytes=2**30)
    for chunks in (1000, 128, (1, 299, 700)):
        result = fdd.mc_predict(model, da.from_array(X, chunks=(chunks, -1)), 5, seed=8,
                                chunk_bytes=2**14)
        with dask.config.set(scheduler="threads"):
            assert_same_rows(result, expected)


def test_mc_predict_refuses_what_it_cannot_address():
    model = dyadic_model()
    X = da.from_array(dyadic_inputs(), chunks=10)
    with pytest.raises(ValueError, match="seed"):
        fdd.mc_predict(model, X, 5)
    with pytest.raises(ValueError, match="T must be at least 1"):
        fdd.mc_predict(model, X, 0, seed=1)
    with pytest.raises(ValueError, match="X must have shape"):
        fdd.mc_predict(model, X[:, 0], 5, seed=1)
    from fastdrop.nn import GaussianDropout
    model.layers.insert(1, GaussianDropout(0.3, seed=1))
    with pytest.raises(ValueError, match="Dropout and DropoutDense layers only"):
        fdd.mc_predict(model, X, 3, seed=1).mean.compute(scheduler="sync")

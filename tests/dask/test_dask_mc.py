"""fastdrop.dask.mc_predict: every row gets the masks (layer, pass, global row) and the
pass grouping of the in-memory call on the whole batch, for any row chunking.

The exact tests use a "dyadic" model (weights, biases and inputs small multiples of powers
of two, float64): every product and partial sum of its matrix products is exact, so the
logits do not depend on how the BLAS blocks a product of that many rows, and any
difference could only come from the masks or the order of the sums over passes.  With
general weights the BLAS itself rounds a row differently depending on the rows next to it
and on its thread count; those results agree to rounding (the masks are the same)."""
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


def test_pass_groups_follow_the_whole_batch():
    """A small chunk_bytes stacks few passes per group; the blocks group them as the whole
    batch does, so the sums over passes are the same."""
    model, X = dyadic_model(), dyadic_inputs()
    expected = theory.mc_predict(model, X, 11, seed=5, chunk_bytes=20_000)
    result = fdd.mc_predict(model, da.from_array(X, chunks=(7, -1)), 11, seed=5,
                            chunk_bytes=20_000)
    assert_same_rows(result, expected)


def test_general_weights_agree_to_rounding():
    model = build_mlp((FEATURES, 48, 5), input_rate=0.2, hidden_rate=0.5, seed=2)
    X = np.random.default_rng(1).random((ROWS, FEATURES), dtype=np.float32)
    expected = theory.mc_predict(model, X, 6, seed=3)
    result = fdd.mc_predict(model, da.from_array(X, chunks=(9, 5)), 6, seed=3)
    for name in FIELDS:
        np.testing.assert_allclose(getattr(result, name).compute(), getattr(expected, name),
                                   rtol=1e-5, atol=1e-6)


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

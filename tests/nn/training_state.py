"""Snapshots of everything a training run changes, for bit-exact comparisons (not a test module)."""
import numpy as np

from conftest import assert_bit_equal
from fastdrop.nn import NoiseSource

#: History fields that are measured times, which no two runs share.
TIMED = ("time", "step_seconds", "dropout_seconds")


def snapshot(model, optimizer=None):
    """Copies of the parameters, the noise layers' (seed, step) and the optimizer's state."""
    state = {"params": [p.copy() for p in model.params()],
             "noise": [(layer.seed, layer.step) for layer in model.layers
                       if isinstance(layer, NoiseSource)]}
    if optimizer is not None:
        scalars, arrays = optimizer.export_state()
        state["optimizer"] = (dict(scalars), {k: v.copy() for k, v in arrays.items()})
    return state


def assert_same_state(actual, expected):
    assert len(actual["params"]) == len(expected["params"])
    for a, b in zip(actual["params"], expected["params"]):
        assert_bit_equal(a, b)
    assert actual["noise"] == expected["noise"]
    if "optimizer" in expected:
        (scalars, arrays), (scalars_exp, arrays_exp) = actual["optimizer"], expected["optimizer"]
        assert scalars == scalars_exp
        assert sorted(arrays) == sorted(arrays_exp)
        for key in arrays:
            assert_bit_equal(arrays[key], arrays_exp[key])


def history_without_times(history):
    return {k: v for k, v in history.state().items() if k not in TIMED}


def same_floats(a, b):
    """Lists of floats equal bit for bit."""
    return np.array_equal(np.asarray(a, dtype=np.float64).view(np.uint64),
                          np.asarray(b, dtype=np.float64).view(np.uint64))

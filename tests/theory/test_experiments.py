"""Smoke tests of the experiments of `fastdrop.theory`, in tiny configurations.

Each experiment's core function runs with a one-hidden-layer net of 16 units, a few
hundred training digits and one or two epochs, and its numbers are checked for what
must hold whatever the training noise (exact identities, consistency between tables).
"""

import numpy as np
import pytest

from fastdrop import nn, theory
from fastdrop.theory import (experiment_bagging, experiment_coadaptation, experiment_datasize,
                             experiment_mc, experiment_nwgm, experiment_rate, experiments)

TINY = dict(hidden=(16,), n_train=300, seed=3)


def test_nwgm_experiment_shows_the_identity_and_the_gap():
    result = experiment_nwgm(units=5, depths=(0, 1), activations=("linear", "tanh"), inputs=10,
                             scales=(0.5, 4.0), width=8, seed=1)
    rows = {(r[0], r[1]): r for r in result.tables[0].rows}
    assert rows["linear", 0][2] < 1e-13 and rows["linear", 1][2] < 1e-13  # exact, any depth
    assert rows["tanh", 0][2] < 1e-13
    assert rows["tanh", 1][2] > 1e-4                                     # the gap
    small, large = (r[1] for r in result.tables[1].rows)
    assert large > small  # a stronger nonlinearity, a larger gap
    assert result.headline["max |det - NWGM| where exact (depth 0 or linear)"] < 1e-13
    text = str(result)
    assert "2^5 = 32 thinned nets" in text and "headline:" in text


def test_bagging_experiment():
    result = experiment_bagging(k=2, epochs=1, **TINY)
    labels = [row[0] for row in result.tables[0].rows]
    assert labels[0] == "one net, no dropout" and "mean of 2 bootstrap nets" in labels[1]
    errors = [row[1] for row in result.tables[0].rows]
    assert all(0 <= e <= 100 for e in errors)
    assert result.headline["parameter memory bag / dropout"] == 2.0  # k nets of the same shape
    single_mb = result.tables[0].rows[0][3]
    assert result.tables[0].rows[1][3] == pytest.approx(2 * single_mb)


def test_coadaptation_experiment():
    result = experiment_coadaptation(epochs=1, removals=(0.0, 0.5, 1.0), repeats=2, **TINY)
    errors = result.series["errors"]
    assert set(errors) == {"no dropout", "dropout"}
    for errs in errors.values():
        assert errs[2] == pytest.approx(0.9, abs=0.01)  # every unit removed: a constant guess
    assert len(result.series["mean_activations"]["dropout"]) == 16


def test_removing_no_units_is_the_eval_network():
    net = nn.build_mlp([20, 8, 8, 3], seed=0)
    X = np.random.default_rng(0).standard_normal((5, 20)).astype(np.float32)
    out = experiments._forward_removing_units(net, X, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(out, net.forward(X, training=False))
    removed = experiments._forward_removing_units(net, X, 0.5, np.random.default_rng(0))
    assert not np.array_equal(removed, out)


def test_rate_experiment_with_both_panels():
    result = experiment_rate(rates=(0.0, 0.5), epochs=1, fixed_pn=8, **TINY)
    assert list(result.series) == ["fixed n", "fixed pn = 8"]
    widths = [row[2] for row in result.tables[1].rows]
    assert widths == ["8", "16"]  # n = pn / p
    assert result.headline["best hidden rate (fixed n)"] in (0.0, 0.5)


def test_datasize_experiment_is_reproducible():
    a = experiment_datasize(sizes=(100, 200), hidden=(16,), steps=4, seed=5)
    b = experiment_datasize(sizes=(100, 200), hidden=(16,), steps=4, seed=5)
    assert [r[:2] for r in a.tables[0].rows] == [[100, 4], [200, 2]]  # epochs for ~4 steps
    assert str(a.tables[0]) == str(b.tables[0])


def test_mc_experiment_matches_mc_predict():
    result = experiment_mc(epochs=1, ks=(1, 3), repeats=2, **TINY)
    assert [row[0] for row in result.tables[0].rows] == [1, 3]
    assert 0 <= result.series["scaled"] <= 1
    assert all(0 <= m <= 1 for m in result.series["means"])


def test_every_experiment_has_quick_and_full_configurations():
    assert theory.EXPERIMENTS is experiments.EXPERIMENTS
    assert set(experiments.EXPERIMENTS) == {"nwgm", "bagging", "coadaptation", "rate", "datasize", "mc"}
    for name, (function, plot, quick, full) in experiments.EXPERIMENTS.items():
        code = function.__code__
        accepted = set(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
        assert set(quick) <= accepted and set(full) <= accepted, name
    with pytest.raises(ValueError, match="unknown experiment"):
        theory.run_experiment("dropconnect")


def test_experiment_plots(tmp_path):
    pytest.importorskip("matplotlib")
    results = [
        experiment_nwgm(units=3, depths=(0, 1), activations=("tanh",), inputs=4, scales=(1.0, 2.0), width=4),
        experiment_datasize(sizes=(100, 200), hidden=(8,), steps=2),
    ]
    for result in results:
        path = tmp_path / f"{result.name}.png"
        theory.plot_result(result, str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

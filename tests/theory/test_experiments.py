"""Smoke tests of the experiments of `fastdrop.theory`, in tiny configurations.

Each experiment's core function runs with a one-hidden-layer net of 16 units, a few
hundred training digits and a few dozen steps, and its numbers are checked for what
must hold whatever the training noise (exact identities, consistency between tables).
Whether the quick configurations reach the tutorial's conclusions is checked in
test_conclusions.py.
"""
import json


import numpy as np
import pytest

from fastdrop import nn, theory
from fastdrop.theory import (Spread, combine, experiment_bagging, experiment_coadaptation,
                             experiment_datasize, experiment_mc, experiment_nwgm, experiment_rate,
                             experiment_scaling, experiments)

TINY = dict(hidden=(16,), n_train=300, seed=3, max_steps=60, patience=20)


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


def test_scaling_experiment_is_exact_where_the_theory_says():
    result = experiment_scaling(units=6, width=8, inputs=5, samples=4000, seed=2)
    gaps = dict(zip(result.series["stages"], result.series["gaps"]))
    assert gaps["dropped units h*m/p"] < 1e-12
    assert gaps["after the affine layer W(h*m/p)+b"] < 1e-12
    assert gaps["after the ReLU"] > 1e-3
    assert result.headline["max |inverted * p - classical|"] < 1e-6
    conclusions = experiments._conclude_scaling(result)
    assert conclusions == dict.fromkeys(conclusions, True)


def test_bagging_experiment():
    result = experiment_bagging(k=2, **TINY)
    labels = [row[0] for row in result.tables[0].rows]
    assert labels[0] == "one net, no dropout" and "2 bootstrap nets, mean" in labels[1]
    assert "2 nets, all data" in labels[3] and labels[-1].startswith("one dropout net")
    errors = [row[1] for row in result.tables[0].rows]
    assert all(0 <= e <= 100 for e in errors)
    assert result.headline["parameter memory ensemble / dropout"] == 2.0  # k nets of the same shape
    single_mb = result.tables[0].rows[0][3]
    assert result.tables[0].rows[1][3] == pytest.approx(2 * single_mb)
    steps = [row[4] for row in result.tables[0].rows]
    assert all(0 < s <= 2 * 60 for s in steps)  # two members, each within the step cap
    assert "stops 20 steps after its best check or at 60 steps" in result.budget


def test_early_stopping_keeps_the_best_weights():
    X, y, _, _ = experiments._data(300, 0)
    X_fit, y_fit, X_val, y_val = experiments._split(X, y, 0)
    assert X_val.shape[0] == 60 and X_fit.shape[0] == 240
    net = experiments._build([784, 16, 10], 0.0, 0.0, 0)
    run = experiments._train(net, X_fit, y_fit, X_val, y_val, max_steps=400, patience=30, seed=0,
                             dropout=False)
    assert run.best_step <= run.steps <= 400
    assert run.steps - run.best_step >= 30 or run.steps >= 400
    best = nn.evaluate(net, X_val, y_val)
    # the kept weights score at least as well as one more check's worth of training
    nn.fit(net, X_fit, y_fit, epochs=50, batch_size=100, progress=False, seed=9,
           optimizer=nn.SGD(lr=0.05, momentum=0.9))
    assert best[1] <= nn.evaluate(net, X_val, y_val)[1] + 0.05


def test_coadaptation_experiment():
    result = experiment_coadaptation(removals=(0.0, 0.5, 1.0), repeats=2, **TINY)
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
    result = experiment_rate(rates=(0.0, 0.5), fixed_pn=8, **TINY)
    assert list(result.series) == ["fixed n", "fixed pn = 8"]
    widths = [row[2] for row in result.tables[1].rows]
    assert widths == ["8", "16"]  # n = pn / p
    assert result.headline["best hidden rate (fixed n)"] in (0.0, 0.5)


def test_datasize_experiment_is_reproducible():
    a = experiment_datasize(sizes=(100, 200), hidden=(16,), max_steps=40, patience=20, seed=5)
    b = experiment_datasize(sizes=(100, 200), hidden=(16,), max_steps=40, patience=20, seed=5)
    assert [r[0] for r in a.tables[0].rows] == [100, 200]
    assert all(0 < r[1] <= 40 and 0 < r[3] <= 40 for r in a.tables[0].rows)  # steps within the cap
    assert str(a.tables[0]) == str(b.tables[0])
    assert set(experiments._conclude_datasize(a)) == {
        "sign of the gain at 100 digits", "sign of the gain at 200 digits",
        "dropout helps at the largest size"}


def test_sharing_trained_nets_reuses_the_same_net():
    config = dict(hidden=(8,), n_train=200, seed=1, max_steps=20, patience=10)
    with experiments.sharing_trained_nets():
        a = experiment_coadaptation(removals=(0.0,), repeats=1, **config)
        b = experiment_mc(ks=(1,), repeats=1, **config)
        shared = dict(experiments._shared_nets)
    assert experiments._shared_nets is None
    assert len(shared) == 2  # no dropout and dropout; mc reused the dropout net
    c = experiment_mc(ks=(1,), repeats=1, **config)  # trained afresh: the same net
    assert b.series["scaled"] == c.series["scaled"]
    assert a.series["errors"]["dropout"][0] == b.series["scaled"]


def test_mc_experiment_matches_mc_predict():
    result = experiment_mc(ks=(1, 3), repeats=2, **TINY)
    assert [row[0] for row in result.tables[0].rows] == [1, 3]
    assert 0 <= result.series["scaled"] <= 1
    assert all(0 <= m <= 1 for m in result.series["means"])


def test_every_experiment_has_quick_and_full_configurations():
    assert theory.EXPERIMENTS is experiments.EXPERIMENTS
    assert set(experiments.EXPERIMENTS) == {"scaling", "nwgm", "bagging", "coadaptation", "rate",
                                            "datasize", "mc"}
    for name, e in experiments.EXPERIMENTS.items():
        code = e.function.__code__
        accepted = set(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
        assert set(e.quick) <= accepted and set(e.full) <= accepted, name
    with pytest.raises(ValueError, match="unknown experiment"):
        theory.run_experiment("dropconnect")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="seeds"):
            theory.run_experiment("scaling", seeds=bad)


def test_seeds_give_mean_and_sd():
    result = theory.run_experiment("datasize", seeds=3, sizes=(100,), hidden=(8,), max_steps=20,
                                   patience=10, seed=4)
    assert result.seeds == [4, 5, 6]
    row = result.tables[0].rows[0]
    assert row[0] == 100  # the same at every seed: a plain value
    singles = [experiment_datasize(sizes=(100,), hidden=(8,), max_steps=20, patience=10, seed=s)
               for s in (4, 5, 6)]
    errors = [r.tables[0].rows[0][2] for r in singles]
    assert isinstance(row[2], Spread) and row[2].n == 3
    assert row[2].mean == pytest.approx(np.mean(errors)) and row[2].sd == pytest.approx(np.std(errors))
    assert " ± " in str(result.tables[0]) and "mean ± sd over seeds [4, 5, 6]" in str(result)
    assert result.series_sd["errors"]["dropout"][0] == pytest.approx(
        np.std([r.series["errors"]["dropout"][0] for r in singles]))
    assert "sign of the gain at 100 digits" in result.conclusions
    assert combine(singles[:1]) is singles[0]


def test_results_as_json():
    result = theory.run_experiment("datasize", seeds=2, sizes=(100,), hidden=(8,), max_steps=20,
                                   patience=10)
    data = json.loads(json.dumps(result.as_dict()))
    assert data["name"] == "datasize" and data["seeds"] == [0, 1]
    assert data["config"]["hidden"] == [8] and data["budget"] == result.budget
    cell = data["tables"][0]["rows"][0][2]
    assert set(cell) == {"mean", "sd", "n"} and cell["n"] == 2
    assert data["tables"][0]["text"][0][0] == "100"
    assert len(data["series"]["errors"]["dropout"]) == 1 and "errors" in data["series_sd"]
    assert set(data["conclusions"]) == set(result.conclusions)


def test_experiment_plots(tmp_path):
    pytest.importorskip("matplotlib")
    results = [
        experiment_nwgm(units=3, depths=(0, 1), activations=("tanh",), inputs=4, scales=(1.0, 2.0), width=4),
        theory.run_experiment("datasize", seeds=2, sizes=(100, 200), hidden=(8,), max_steps=10,
                              patience=10),
        experiment_scaling(units=4, width=4, inputs=3, samples=100),
    ]
    for result in results:
        path = tmp_path / f"{result.name}.png"
        theory.plot_result(result, str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

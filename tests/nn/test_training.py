"""Optimizers, max-norm, schedules, `fit` (reproducibility, progress, errors), a short seeded
run on the bundled data, and classical training + scale_weights."""
import sys

import numpy as np
import pytest

from fastdrop.datasets import load_mnist5k
from fastdrop.nn import (SGD, Adam, Dense, Dropout, ExponentialLR, History, ReLU, Sequential,
                         SoftmaxCrossEntropy, StepLR, apply_max_norm, build_mlp, evaluate, fit,
                         scale_weights)

F64 = np.float64


@pytest.fixture(scope="module")
def mnist():
    return load_mnist5k()


def toy_problem(n=240, features=10, classes=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, features)) * 2
    y = rng.integers(0, classes, n)
    X = (centers[y] + rng.standard_normal((n, features))).astype(dtype)
    return X, y


def model_with_grads(seed=0):
    model = Sequential([Dense(4, 3, seed=seed, dtype=F64), ReLU(), Dense(3, 2, seed=seed + 1, dtype=F64)])
    rng = np.random.default_rng(seed + 10)
    for g in model.grads():
        g[...] = rng.standard_normal(g.shape)
    return model


# -- optimizers --------------------------------------------------------------------------

def test_sgd_momentum_and_nesterov_by_hand():
    for nesterov in (False, True):
        model = model_with_grads()
        w0 = [p.copy() for p in model.params()]
        grads = [g.copy() for g in model.grads()]
        opt = SGD(lr=0.1, momentum=0.9, nesterov=nesterov)
        opt.step(model)
        opt.step(model)  # same gradients twice: v1 = g, v2 = 1.9 g
        for w, start, g in zip(model.params(), w0, grads):
            if nesterov:
                expected = start - 0.1 * (g + 0.9 * g) - 0.1 * (g + 0.9 * 1.9 * g)
            else:
                expected = start - 0.1 * g - 0.1 * 1.9 * g
            np.testing.assert_allclose(w, expected, rtol=1e-12)


def test_weight_decay_only_on_weights():
    model = model_with_grads()
    for g in model.grads():
        g[...] = 0
    w0 = [p.copy() for p in model.params()]
    SGD(lr=0.1, weight_decay=0.5).step(model)
    for p, start in zip(model.param_groups(), w0):
        expected = start * (1 - 0.05) if p.kind == "weight" else start
        np.testing.assert_allclose(p.value, expected, rtol=1e-12)


def test_adam_first_step_is_lr_times_sign():
    model = model_with_grads()
    w0 = [p.copy() for p in model.params()]
    grads = [g.copy() for g in model.grads()]
    Adam(lr=0.01).step(model)
    for w, start, g in zip(model.params(), w0, grads):
        np.testing.assert_allclose(w, start - 0.01 * np.sign(g), rtol=1e-6)


def reference_updates(kind, W, grads, lr, **kw):
    """The textbook update rules, whole-array, in float64."""
    W = W.copy()
    v = np.zeros_like(W)
    m = np.zeros_like(W)
    for t, g in enumerate(grads, start=1):
        g = g + kw.get("weight_decay", 0.0) * W
        if kind == "sgd":
            v = kw["momentum"] * v + g
            W -= lr * ((g + kw["momentum"] * v) if kw.get("nesterov") else v)
        else:
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            W -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        if "max_norm" in kw:
            norms = np.linalg.norm(W, axis=0)
            W *= np.where(norms > kw["max_norm"], kw["max_norm"] / norms, 1.0)
    return W


@pytest.mark.parametrize("kind, kw", [
    ("sgd", dict(momentum=0.9, weight_decay=0.01, max_norm=1.5)),
    ("sgd", dict(momentum=0.5, nesterov=True)),
    ("adam", dict(weight_decay=0.001, max_norm=1.5)),
])
def test_blocked_update_matches_textbook_rules(kind, kw):
    # 300 x 700 spans several update blocks, so block edges are exercised
    model = Sequential([Dense(300, 700, seed=0, dtype=F64)])
    W0 = model.layers[0].W.copy()
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(W0.shape) for _ in range(3)]
    opt = SGD(lr=0.1, **kw) if kind == "sgd" else Adam(lr=0.01, **kw)
    for g in grads:
        model.layers[0].dW[...] = g
        model.layers[0].db[...] = 0
        opt.step(model)
    np.testing.assert_allclose(model.layers[0].W, reference_updates(kind, W0, grads, opt.lr, **kw),
                               rtol=1e-10, atol=1e-12)


def test_max_norm_holds_after_every_step():
    X, y = toy_problem()
    model = build_mlp([10, 32, 3], hidden_rate=0.5, seed=1)
    c = 0.8
    opt = SGD(lr=0.5, momentum=0.9, max_norm=c)
    clipped_somewhere = False
    loss = SoftmaxCrossEntropy()
    for step in range(15):
        index = np.arange(step * 16, step * 16 + 16) % len(y)
        loss.forward(model.forward(X[index]), y[index])
        model.backward(loss.backward())
        opt.step(model)
        for p in model.param_groups():
            if p.kind == "weight":
                norms = np.linalg.norm(p.value.astype(F64), axis=0)
                assert np.all(norms <= c * (1 + 1e-5)), f"step {step}: max column norm {norms.max()}"
                clipped_somewhere |= bool(np.any(norms > c * (1 - 1e-5)))
    assert clipped_somewhere  # the constraint was active, not vacuous
    b_norm = np.linalg.norm(model.layers[0].b)
    assert b_norm > 0  # biases move and are not constrained by the rule


def test_apply_max_norm_rescales_only_long_columns():
    W = np.array([[3.0, 0.1], [4.0, 0.1]])
    apply_max_norm(W, 1.0)
    np.testing.assert_allclose(W, [[0.6, 0.1], [0.8, 0.1]])


def test_schedules():
    step = StepLR(3, gamma=0.5)
    assert [step(e) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    expo = ExponentialLR(0.9)
    assert expo(2) == pytest.approx(0.81)
    opt = SGD(lr=0.2, schedule=step)
    assert opt.begin_epoch(4) == pytest.approx(0.1)
    X, y = toy_problem(n=32)
    history = fit(build_mlp([10, 3], seed=0), X, y, epochs=4, batch_size=16, seed=0, progress=False,
                  optimizer=SGD(lr=0.2, schedule=StepLR(2, gamma=0.1)))
    np.testing.assert_allclose(history.lr, [0.2, 0.2, 0.02, 0.02])


def test_optimizer_bad_arguments():
    with pytest.raises(ValueError, match="lr"):
        SGD(lr=0)
    with pytest.raises(ValueError, match="momentum"):
        SGD(momentum=1.0)
    with pytest.raises(ValueError, match="nesterov"):
        SGD(nesterov=True)
    with pytest.raises(ValueError, match="max_norm"):
        SGD(max_norm=-1)
    with pytest.raises(TypeError, match="weight_decay"):
        Adam(weight_decay="a lot")
    with pytest.raises(TypeError, match="schedule"):
        SGD(schedule=0.5)


# -- fit ---------------------------------------------------------------------------------

def test_fit_is_reproducible_for_a_seed():
    X, y = toy_problem()
    runs = []
    for seed in (3, 3, 4):
        model = build_mlp([10, 16, 3], input_rate=0.2, hidden_rate=0.5, seed=0)
        history = fit(model, X, y, epochs=3, batch_size=32, seed=seed, progress=False,
                      optimizer=SGD(lr=0.05, momentum=0.9))
        runs.append((model.params(), history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1].train_loss == runs[1][1].train_loss
    assert not np.array_equal(runs[0][0][0], runs[2][0][0])  # another shuffling seed differs


def test_fit_history_and_dropout_share():
    X, y = toy_problem()
    history = fit(build_mlp([10, 16, 3], hidden_rate=0.5, seed=0), X, y, epochs=2, batch_size=50,
                  X_val=X[:40], y_val=y[:40], progress=False)
    assert isinstance(history, History)
    assert len(history.train_loss) == len(history.val_error) == len(history.time) == 2
    assert history.steps == 2 * 5
    assert 0 < history.dropout_share < 1
    assert history.train_loss[1] < history.train_loss[0]
    plain = fit(build_mlp([10, 16, 3], seed=0), X, y, epochs=1, progress=False)
    assert plain.dropout_share == 0.0 and plain.val_error == []


def test_fit_progress_output(capsys, monkeypatch):
    X, y = toy_problem(n=40)
    fit(build_mlp([10, 3], seed=0), X, y, epochs=2, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    monkeypatch.setitem(sys.modules, "tqdm", None)  # behave as if tqdm were not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    fit(build_mlp([10, 3], seed=0), X, y, epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err


def test_fit_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    X, y = toy_problem(n=40)
    history = fit(build_mlp([10, 3], seed=0), X, y, epochs=2, progress=True)
    assert len(history.epoch) == 2


def test_fit_bad_input():
    X, y = toy_problem(n=20)
    model = build_mlp([10, 3], seed=0)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        fit(model, X, np.where(y == 0, 3, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match="y must have shape"):
        fit(model, X, y[:-1], epochs=1, progress=False)
    with pytest.raises(TypeError, match="integer"):
        fit(model, X, y.astype(float), epochs=1, progress=False)
    with pytest.raises(ValueError, match="2-D"):
        fit(model, X[0], y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, X, y, epochs=0, progress=False)
    with pytest.raises(ValueError, match="X_val and y_val"):
        fit(model, X, y, epochs=1, X_val=X, progress=False)
    with pytest.raises(ValueError, match="10 features"):
        fit(model, X[:, :5], y, epochs=1, progress=False)


# -- on the bundled data -----------------------------------------------------------------

def test_short_seeded_run_reaches_test_error_bound(mnist):
    X_train, y_train, X_test, y_test = mnist
    model = build_mlp([784, 128, 10], input_rate=0.2, hidden_rate=0.5, seed=0)
    fit(model, X_train, y_train, epochs=3, batch_size=100, seed=0, progress=False,
        optimizer=SGD(lr=0.05, momentum=0.9, max_norm=3.0))
    test_error = evaluate(model, X_test, y_test)[1]
    assert test_error < 0.10
    assert np.mean(model.predict(X_test) != y_test) == pytest.approx(test_error)


def test_classical_training_then_scale_weights_predicts_like_eval(mnist):
    X_train, y_train, X_test, y_test = mnist
    model = build_mlp([784, 64, 10], input_rate=0.2, hidden_rate=0.5, fused=False, inverted=False, seed=2)
    assert [type(layer).__name__ for layer in model.layers] == ["Dropout", "Dense", "ReLU", "Dropout", "Dense"]
    fit(model, X_train[:1000], y_train[:1000], epochs=2, batch_size=50, seed=0, progress=False,
        optimizer=SGD(lr=0.05, momentum=0.9))
    scaled = scale_weights(model)
    assert [type(layer).__name__ for layer in scaled.layers] == ["Dense", "ReLU", "Dense"]
    expected = model.eval().predict_proba(X_test)
    got = scaled.predict_proba(X_test)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(scaled.predict(X_test), model.predict(X_test))
    assert evaluate(scaled, X_test, y_test)[1] < 0.3
    # without the scaling the classical model's eval network would be different
    unscaled = Sequential([layer for layer in model.layers if not isinstance(layer, Dropout)])
    assert not np.allclose(unscaled.predict_proba(X_test), expected, atol=1e-3)

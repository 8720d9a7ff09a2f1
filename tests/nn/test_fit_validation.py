"""`fit` never trains on garbage and never leaves half a step: bad data is rejected before
the first step with nothing changed, a non-finite loss or gradient stops the run at the
last finite state, and `predict` / `evaluate` refuse non-finite input."""
import numpy as np
import pytest

from fastdrop.nn import (SGD, Adam, Dense, Dropout, DropoutDense, GaussianDropout, ReLU, Sequential,
                         SoftmaxCrossEntropy, evaluate, fit)
from training_state import assert_same_state, snapshot

N, FEATURES, CLASSES, BATCH = 96, 12, 4, 16  # 6 minibatches per epoch


def data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    X = (rng.standard_normal((CLASSES, FEATURES))[y] + rng.standard_normal((n, FEATURES)))
    return X.astype(np.float32), y


def build():
    return Sequential([Dropout(0.2, seed=1), Dense(FEATURES, 16, seed=2), ReLU(),
                       GaussianDropout(0.1, seed=3), DropoutDense(16, CLASSES, rate=0.3, seed=4)])


@pytest.fixture
def trained():
    """A model and optimizer one epoch into training: momentum, steps and counters are set."""
    X, y = data()
    model, optimizer = build(), SGD(lr=0.05, momentum=0.9)
    fit(model, X, y, epochs=1, batch_size=BATCH, optimizer=optimizer, progress=False)
    return model, optimizer


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


X0, Y0 = data()
XV, YV = data(seed=1, n=30)

BAD_CALLS = {
    "X empty": (ValueError, r"X is empty", dict(X=X0[:0], y=Y0[:0])),
    "X NaN": (ValueError, r"X\[37, 4\] = nan", dict(X=_with(X0, (37, 4), np.nan))),
    "X inf": (ValueError, r"X\[95, 11\] = inf", dict(X=_with(X0, (95, 11), np.inf))),
    "X -inf first": (ValueError, r"X\[0, 0\] = -inf", dict(X=_with(_with(X0, (0, 0), -np.inf), (50, 2), np.nan))),
    "y late label too big": (ValueError, r"y\[95\] = 4", dict(y=_with(Y0, 95, CLASSES))),
    "y negative label": (ValueError, r"y\[60\] = -1", dict(y=_with(Y0, 60, -1))),
    "y_val bad label": (ValueError, r"y_val\[29\] = 7", dict(y_val=_with(YV, 29, 7))),
    "X_val NaN": (ValueError, r"X_val\[3, 5\] = nan", dict(X_val=_with(XV, (3, 5), np.nan))),
    "X_val empty": (ValueError, r"X_val is empty", dict(X_val=XV[:0], y_val=YV[:0])),
    "X float64 for a float32 model": (TypeError, r"X must have the model's dtype float32",
                                      dict(X=X0.astype(np.float64))),
    "X integer": (TypeError, r"X must have the model's dtype", dict(X=X0.astype(np.int32))),
    "y float": (TypeError, r"y must hold integer", dict(y=Y0.astype(float))),
    "y too short": (ValueError, r"y must have shape \(96,\)", dict(y=Y0[:-1])),
    "y_val too long": (ValueError, r"y_val must have shape \(30,\)", dict(y_val=np.append(YV, 0))),
    "X 1-D": (ValueError, r"X must be 2-D", dict(X=X0[0])),
    "X 3-D": (ValueError, r"X must be 2-D", dict(X=X0[:, :, None])),
    "X_val wrong width": (ValueError, r"X_val must have 12 features", dict(X_val=XV[:, :5])),
    "X not an array": (TypeError, r"X must be a numpy array", dict(X=X0.tolist())),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_data_is_rejected_before_anything_changes(trained, case):
    model, optimizer = trained
    before = snapshot(model, optimizer)
    error, match, change = BAD_CALLS[case]
    arguments = dict(X=X0, y=Y0, X_val=XV, y_val=YV)
    arguments.update(change)
    with pytest.raises(error, match=match):
        fit(model, arguments["X"], arguments["y"], X_val=arguments["X_val"], y_val=arguments["y_val"],
            epochs=2, batch_size=BATCH, optimizer=optimizer, progress=False)
    assert_same_state(snapshot(model, optimizer), before)


class FlakyLoss(SoftmaxCrossEntropy):
    """Softmax cross-entropy whose loss (or gradient) turns NaN on the given call."""

    def __init__(self, bad_call, where="loss"):
        super().__init__()
        self.calls = 0
        self.bad_call = bad_call
        self.where = where

    def forward(self, logits, y):
        loss = super().forward(logits, y)
        self.calls += 1
        if self.calls - 1 == self.bad_call and self.where == "loss":
            return float("nan")
        return loss

    def backward(self):
        grad = super().backward()
        if self.calls - 1 == self.bad_call and self.where == "gradient":
            grad[1, 2] = np.inf
        return grad


@pytest.mark.parametrize("optimizer_type", [SGD, Adam])
@pytest.mark.parametrize("where, epoch, step", [("loss", 1, 0), ("gradient", 2, 0), ("loss", 0, 0)])
def test_non_finite_step_leaves_the_last_finite_state(optimizer_type, where, epoch, step):
    X, y = data()
    steps_per_epoch = N // BATCH
    expected_model, expected_optimizer = build(), optimizer_type(lr=0.01)
    if epoch:  # the state the finite epochs leave
        fit(expected_model, X, y, epochs=epoch, batch_size=BATCH, optimizer=expected_optimizer,
            progress=False)
    model, optimizer = build(), optimizer_type(lr=0.01)
    loss = FlakyLoss(epoch * steps_per_epoch + step, where)
    with pytest.raises(FloatingPointError, match=f"{where} is not finite.*epoch {epoch}, step {step}") as info:
        fit(model, X, y, epochs=4, batch_size=BATCH, optimizer=optimizer, loss=loss, progress=False)
    assert (info.value.epoch, info.value.step) == (epoch, step)
    assert_same_state(snapshot(model, optimizer), snapshot(expected_model, expected_optimizer))


def test_non_finite_gradient_mid_epoch_rolls_back_only_that_step():
    X, y = data()
    model, optimizer = build(), Adam(lr=0.01)
    with pytest.raises(FloatingPointError, match="epoch 0, step 3"):
        fit(model, X, y, epochs=1, batch_size=BATCH, optimizer=optimizer,
            loss=FlakyLoss(3, "gradient"), progress=False)
    assert optimizer.iterations == 3
    assert [layer.step for layer in model.layers if hasattr(layer, "step")] == [3, 3, 3]


def test_divergence_stops_with_finite_weights():
    X, y = data()
    model, optimizer = build(), SGD(lr=1e25)
    with pytest.raises(FloatingPointError, match="not finite.*at epoch"):
        fit(model, X * np.float32(1e10), y, epochs=20, batch_size=BATCH, optimizer=optimizer,
            progress=False)
    assert all(np.isfinite(p).all() for p in model.params())
    assert optimizer.iterations >= 1


def test_fit_still_trains_on_good_data():
    X, y = data()
    model = build()
    history = fit(model, X, y, epochs=3, batch_size=BATCH, X_val=XV, y_val=YV,
                  optimizer=Adam(lr=0.01), progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.steps == 3 * 6


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_predict_and_evaluate_refuse_non_finite_input(trained, bad):
    model, _ = trained
    X = _with(XV, (7, 3), bad)
    for call in (model.predict, model.predict_proba):
        with pytest.raises(ValueError, match=r"X\[7, 3\] = .*not finite"):
            call(X)
    with pytest.raises(ValueError, match=r"X\[7, 3\]"):
        evaluate(model, X, YV)
    with pytest.raises(ValueError, match=r"y\[2\] = 9"):
        evaluate(model, XV, _with(YV, 2, 9))
    assert model.predict(XV).shape == (30,)


def test_predict_on_float64_nan_and_empty():
    model = Sequential([Dense(3, 2, seed=0, dtype=np.float64)])
    with pytest.raises(ValueError, match=r"X\[1, 0\]"):
        model.predict(np.array([[0.0, 1, 2], [np.nan, 0, 0]]))
    assert model.predict_proba(np.zeros((0, 3))).shape == (0, 2)


def test_overflowing_update_is_undone_exactly():
    """Finite loss and gradients, but lr * gradient overflows: the epoch is replayed to the
    step before, bit for bit."""
    X, y = data()

    class Blowup(SGD):
        """SGD whose lr becomes huge on its 9th step (epoch 1, step 2)."""

        def step(self, model):
            self.lr = 1e39 if self.iterations == 8 else 0.05  # inf in float32
            super().step(model)

    model, optimizer = build(), Blowup(lr=0.05, momentum=0.9)
    with pytest.raises(FloatingPointError, match="update is not finite at epoch 1, step 2"):
        fit(model, X, y, epochs=3, batch_size=BATCH, optimizer=optimizer, progress=False)
    expected_model, expected_optimizer = build(), SGD(lr=0.05, momentum=0.9)
    fit(expected_model, X, y, epochs=1, batch_size=BATCH, optimizer=expected_optimizer, progress=False)
    # the first two steps of epoch 1, in fit's order for seed 0
    rng = np.random.default_rng(0)
    rng.permutation(N)
    order = rng.permutation(N)
    loss = SoftmaxCrossEntropy()
    for start in (0, BATCH):
        rows = order[start:start + BATCH]
        loss.forward(expected_model.forward(X[rows], training=True), y[rows])
        expected_model.backward(loss.backward(), need_input_grad=False)
        expected_optimizer.step(expected_model)
    assert all(np.isfinite(p).all() for p in model.params())
    got, expected = snapshot(model, optimizer), snapshot(expected_model, expected_optimizer)
    got["optimizer"][0]["lr"] = expected["optimizer"][0]["lr"]
    assert_same_state(got, expected)

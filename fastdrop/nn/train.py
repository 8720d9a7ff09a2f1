"""`fit`: minibatch training of a `Sequential` model with a softmax cross-entropy loss.

Reproducible: the minibatch order comes from ``numpy.random.default_rng(seed)``; the
initial weights and the dropout masks come from the layers' own seeds (fixed at
construction, see `fastdrop.nn.build_mlp`), so two identically built models trained
with the same arguments end with the same weights, bit for bit.

Progress is shown with a tqdm bar when tqdm is installed, else one text line per epoch
on stderr; ``progress=False`` prints nothing.
"""
import sys
import time

import numpy as np

from ._checks import check_int
from .losses import SoftmaxCrossEntropy
from .optim import SGD


class History:
    """Per-epoch record of a `fit` run.

    ``train_loss`` / ``train_error``: the running mean over the epoch's minibatches, in
    training mode (with dropout), as the model was being updated.  ``val_loss`` /
    ``val_error``: on (X_val, y_val) in eval mode after the epoch (empty without
    validation data).  ``time``: seconds of training steps in the epoch; ``lr``: the
    learning rate used.  Totals: ``steps``, ``step_seconds`` (all training steps) and
    ``dropout_seconds`` (time inside dropout work during them).
    """

    def __init__(self):
        self.epoch = []
        self.train_loss = []
        self.train_error = []
        self.val_loss = []
        self.val_error = []
        self.time = []
        self.lr = []
        self.steps = 0
        self.step_seconds = 0.0
        self.dropout_seconds = 0.0

    @property
    def dropout_share(self):
        """Fraction of training-step time spent in dropout."""
        return self.dropout_seconds / self.step_seconds if self.step_seconds else 0.0

    def as_dict(self):
        return {name: list(getattr(self, name)) for name in
                ("epoch", "train_loss", "train_error", "val_loss", "val_error", "time", "lr")}

    def __repr__(self):
        last = ""
        if self.epoch:
            last = f", last train_error={self.train_error[-1]:.4f}"
            if self.val_error:
                last += f", val_error={self.val_error[-1]:.4f}"
        return f"History(epochs={len(self.epoch)}{last})"


def _check_data(X, y, x_name, y_name):
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{x_name} must be a numpy array, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{x_name} must be 2-D (samples, features), got shape {X.shape}")
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{y_name} must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"{y_name} must have shape ({X.shape[0]},), one label per row of "
                         f"{x_name}, got {y.shape}")
    return X, y


def evaluate(model, X, y, *, batch_size=1024):
    """(mean loss, error rate) of the eval-mode model on (X, y)."""
    X, y = _check_data(X, y, "X", "y")
    loss_fn = SoftmaxCrossEntropy()
    total_loss = 0.0
    wrong = 0
    for start in range(0, X.shape[0], batch_size):
        logits = model.forward(X[start:start + batch_size], training=False)
        yb = y[start:start + batch_size]
        total_loss += loss_fn.forward(logits, yb) * yb.shape[0]
        wrong += int(np.count_nonzero(np.argmax(logits, axis=1) != yb))
    n = max(X.shape[0], 1)
    return total_loss / n, wrong / n


def fit(model, X, y, *, epochs, batch_size=128, optimizer=None, X_val=None, y_val=None, seed=0,
        progress=True, loss=None, shuffle=True):
    """Train `model` on (X, y) for `epochs` passes of minibatches; returns a `History`.

    `optimizer` defaults to ``SGD(lr=0.01, momentum=0.9)``; `loss` to
    `SoftmaxCrossEntropy`.  The last minibatch of an epoch may be smaller.  The model is
    left in training mode.
    """
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    X, y = _check_data(X, y, "X", "y")
    if (X_val is None) != (y_val is None):
        raise ValueError("pass both X_val and y_val, or neither")
    if X_val is not None:
        X_val, y_val = _check_data(X_val, y_val, "X_val", "y_val")
    if not hasattr(model, "forward") or not hasattr(model, "backward"):
        raise TypeError(f"model must be a Sequential (forward/backward), got {type(model).__name__}")
    if optimizer is None:
        optimizer = SGD(lr=0.01, momentum=0.9)
    loss_fn = SoftmaxCrossEntropy() if loss is None else loss
    rng = np.random.default_rng(seed)
    history = History()
    n = X.shape[0]
    reporter = _Progress(epochs, progress)
    model.train()
    try:
        for epoch in range(epochs):
            lr = optimizer.begin_epoch(epoch)
            order = rng.permutation(n) if shuffle else np.arange(n)
            dropout_before = getattr(model, "dropout_seconds", 0.0)
            epoch_seconds = 0.0
            loss_sum = 0.0
            wrong = 0
            for start in range(0, n, batch_size):
                index = order[start:start + batch_size]
                Xb, yb = X[index], y[index]
                t0 = time.perf_counter()
                logits = model.forward(Xb, training=True)
                batch_loss = loss_fn.forward(logits, yb)
                model.backward(loss_fn.backward(), need_input_grad=False, overwrite_grad=True)
                optimizer.step(model)
                epoch_seconds += time.perf_counter() - t0
                history.steps += 1
                loss_sum += batch_loss * index.shape[0]
                wrong += int(np.count_nonzero(np.argmax(logits, axis=1) != yb))
            history.step_seconds += epoch_seconds
            history.dropout_seconds += getattr(model, "dropout_seconds", 0.0) - dropout_before
            history.epoch.append(epoch)
            history.train_loss.append(loss_sum / n)
            history.train_error.append(wrong / n)
            history.time.append(epoch_seconds)
            history.lr.append(lr)
            if X_val is not None:
                val_loss, val_error = evaluate(model, X_val, y_val)
                history.val_loss.append(val_loss)
                history.val_error.append(val_error)
            reporter.update(history)
    finally:
        reporter.close()
        model.train()
    return history


class _Progress:
    """tqdm bar over epochs if available, else a line per epoch on stderr, or nothing."""

    def __init__(self, epochs, enabled):
        self.epochs = epochs
        self.enabled = bool(enabled)
        self.bar = None
        if self.enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=epochs, unit="epoch", leave=False, dynamic_ncols=True)

    def update(self, history):
        if not self.enabled:
            return
        fields = {"loss": f"{history.train_loss[-1]:.4f}", "err": f"{100 * history.train_error[-1]:.2f}%"}
        if history.val_error:
            fields["val_err"] = f"{100 * history.val_error[-1]:.2f}%"
        if self.bar is not None:
            self.bar.set_postfix(fields, refresh=False)
            self.bar.update(1)
            return
        text = " ".join(f"{k} {v}" for k, v in fields.items())
        print(f"epoch {history.epoch[-1] + 1}/{self.epochs} {text} ({history.time[-1]:.2f}s)",
              file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()

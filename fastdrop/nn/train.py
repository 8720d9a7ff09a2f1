"""`fit`: minibatch training of a `Sequential` model with a softmax cross-entropy loss.

Reproducible: the minibatch order comes from ``numpy.random.default_rng(seed)``; the
initial weights and the dropout masks come from the layers' own seeds (fixed at
construction, see `fastdrop.nn.build_mlp`), so two identically built models trained
with the same arguments end with the same weights, bit for bit.

Never on garbage, never half a step: X, y, X_val and y_val are checked completely before
the first step (a ValueError names the array and its first bad entry: an empty array, a
NaN or infinity, a label outside ``0..n_classes-1``, a wrong length or rank; a wrong
dtype is a TypeError), so a failed call changes nothing.  A minibatch whose loss or
gradient is not finite raises FloatingPointError (naming epoch and step) before the
optimizer touches anything, and the layers' step counters are set back.  An update that
overflows (finite gradient, non-finite weights) is undone exactly: `fit` keeps a copy of
the weights, optimizer state and counters from the start of each epoch, goes back to it
and replays the epoch's good steps (deterministic, so bit for bit the same).  Either way
the model and the optimizer stay as the last finite step left them.

``checkpoint=path`` writes a checkpoint (`fastdrop.nn.checkpoint`) after every epoch;
``resume=path`` continues the run such a checkpoint recorded, to the same ``epochs=``
total, bit for bit as if it had never stopped.  Ctrl-C during `fit` (in the main thread)
is acted on between two steps: the checkpoint, when one is configured, is written with
the position inside the epoch, then KeyboardInterrupt propagates; a second Ctrl-C
interrupts at once.

Progress is shown with a tqdm bar when tqdm is installed, else one text line per epoch
on stderr; ``progress=False`` prints nothing.
"""
import math
import os
import signal
import sys
import threading
import time

import numpy as np

from ._checks import check_finite, check_flag, check_int
from .base import NoiseSource
from .checkpoint import read_checkpoint, restore, write_checkpoint
from .losses import SoftmaxCrossEntropy
from .optim import SGD

#: The History fields a checkpoint keeps, one value per epoch.
_HISTORY_LISTS = ("epoch", "train_loss", "train_error", "val_loss", "val_error", "time", "lr")
_HISTORY_TOTALS = ("steps", "step_seconds", "dropout_seconds")


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
        return {name: list(getattr(self, name)) for name in _HISTORY_LISTS}

    def state(self):
        """Everything recorded, as JSON data (`from_state` reads it back)."""
        return {**self.as_dict(), **{name: getattr(self, name) for name in _HISTORY_TOTALS}}

    @classmethod
    def from_state(cls, state):
        history = cls()
        for name in _HISTORY_LISTS:
            setattr(history, name, list(state[name]))
        history.steps = int(state["steps"])
        history.step_seconds = float(state["step_seconds"])
        history.dropout_seconds = float(state["dropout_seconds"])
        return history

    def __repr__(self):
        last = ""
        if self.epoch:
            last = f", last train_error={self.train_error[-1]:.4f}"
            if self.val_error:
                last += f", val_error={self.val_error[-1]:.4f}"
        return f"History(epochs={len(self.epoch)}{last})"


def _check_data(model, X, y, x_name, y_name):
    """X and y checked completely: X a finite, non-empty 2-D array of the model's dtype and
    width, y one integer label in ``0..n_classes-1`` per row."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{x_name} must be a numpy array, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{x_name} must be 2-D (samples, features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{x_name} is empty (shape {X.shape}): there is nothing to train on")
    dtype = getattr(model, "dtype", None)
    if X.dtype not in (np.float32, np.float64) or (dtype is not None and X.dtype != dtype):
        raise TypeError(f"{x_name} must have the model's dtype {dtype or 'float32 or float64'}, "
                        f"got {X.dtype}")
    features = getattr(model, "in_features", None)
    if features is not None and X.shape[1] != features:
        raise ValueError(f"{x_name} must have {features} features (columns), got shape {X.shape}")
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{y_name} must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"{y_name} must have shape ({X.shape[0]},), one label per row of "
                         f"{x_name}, got {y.shape}")
    classes = getattr(model, "out_features", None)
    bad = np.flatnonzero((y < 0) | (y >= classes)) if classes else np.flatnonzero(y < 0)
    if bad.size:
        raise ValueError(f"{y_name} must hold labels in [0, {classes}); "
                         f"{y_name}[{bad[0]}] = {y[bad[0]]}")
    check_finite(X, x_name)
    return X, y


def evaluate(model, X, y, *, batch_size=1024):
    """(mean loss, error rate) of the eval-mode model on (X, y), checked as `fit` checks them."""
    X, y = _check_data(model, X, y, "X", "y")
    return _evaluate(model, X, y, check_int(batch_size, "batch_size", 1))


def _evaluate(model, X, y, batch_size):
    loss_fn = SoftmaxCrossEntropy()
    total_loss = 0.0
    wrong = 0
    for start in range(0, X.shape[0], batch_size):
        logits = model.forward(X[start:start + batch_size], training=False)
        yb = y[start:start + batch_size]
        total_loss += loss_fn.forward(logits, yb) * yb.shape[0]
        wrong += int(np.count_nonzero(np.argmax(logits, axis=1) != yb))
    n = X.shape[0]
    return total_loss / n, wrong / n


class _Position:
    """Where a run is: the next minibatch (epoch, batch), the shuffling generator's state at
    the start of that epoch, and the running sums of the epoch so far."""

    def __init__(self, epoch=0, batch=0, rng=None, loss_sum=0.0, wrong=0, seconds=0.0,
                 dropout_seconds=0.0):
        self.epoch = epoch
        self.batch = batch
        self.rng = rng
        self.loss_sum = loss_sum
        self.wrong = wrong
        self.seconds = seconds
        self.dropout_seconds = dropout_seconds

    def start_epoch(self, epoch, rng_state):
        self.epoch, self.batch, self.rng = epoch, 0, rng_state
        self.loss_sum, self.wrong, self.seconds, self.dropout_seconds = 0.0, 0, 0.0, 0.0

    def record(self, epochs, batch_size, shuffle, samples, history):
        return {"epochs": epochs, "epoch": self.epoch, "batch": self.batch,
                "batch_size": batch_size, "shuffle": shuffle, "samples": samples, "rng": self.rng,
                "partial": {"loss_sum": self.loss_sum, "wrong": self.wrong,
                            "seconds": self.seconds, "dropout_seconds": self.dropout_seconds},
                "history": history.state()}

    @classmethod
    def from_record(cls, record):
        partial = record["partial"]
        return cls(int(record["epoch"]), int(record["batch"]), record["rng"],
                   float(partial["loss_sum"]), int(partial["wrong"]), float(partial["seconds"]),
                   float(partial["dropout_seconds"]))


class _DeferredInterrupt:
    """While active in the main thread, the first Ctrl-C only sets ``requested`` (the loop
    acts on it between steps, so no step is left half done); a second one interrupts."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _check_path(path, name):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{name}: the folder {folder!r} does not exist")
    return path


def _resume(path, model, optimizer, rng, *, epochs, batch_size, shuffle, samples):
    """Restore the run recorded at `path` into model, optimizer and rng; its position and history."""
    manifest, arrays = read_checkpoint(path)
    record = manifest["training"]
    if record is None:
        raise ValueError(f"{path!r} holds no training position (it was written by save, not by fit)")
    try:
        position = _Position.from_record(record)
        history = History.from_state(record["history"])
        asked = {"batch_size": batch_size, "shuffle": shuffle, "samples": samples}
        for key, value in asked.items():
            if record[key] != value:
                raise ValueError(f"{path!r}: the run used {key}={record[key]!r}, this call "
                                 f"{key}={value!r}; resume needs the same data and batches")
        if position.epoch > epochs or (position.epoch == epochs and position.batch):
            raise ValueError(f"{path!r}: the run is at epoch {position.epoch}, beyond epochs={epochs}")
        probe = np.random.default_rng()
        probe.bit_generator.state = position.rng
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path!r}: malformed training position ({type(exc).__name__}: {exc})") from None
    restore(path, manifest, arrays, model, optimizer)
    rng.bit_generator.state = position.rng
    return position, history


def _all_finite(arrays):
    # one pass without temporaries; the float64 sum cannot overflow from float32 values
    return all(math.isfinite(np.add.reduce(a, axis=None, dtype=np.float64)) for a in arrays)


class _Snapshot:
    """Copies of the weights, the optimizer's state and the noise layers' counters."""

    def __init__(self, model, optimizer, noise_layers):
        self.params = [p.copy() for p in model.params()]
        scalars, arrays = optimizer.export_state()
        self.optimizer = (dict(scalars), {key: a.copy() for key, a in arrays.items()})
        self.counters = [layer.step for layer in noise_layers]

    def restore(self, model, optimizer, noise_layers):
        for target, source in zip(model.params(), self.params):
            np.copyto(target, source)
        optimizer.import_state(model, *self.optimizer)
        for layer, step in zip(noise_layers, self.counters):
            layer.step = step


def fit(model, X, y, *, epochs, batch_size=128, optimizer=None, X_val=None, y_val=None, seed=0,
        progress=True, loss=None, shuffle=True, checkpoint=None, resume=None):
    """Train `model` on (X, y) for `epochs` passes of minibatches; returns a `History`.

    `optimizer` defaults to ``SGD(lr=0.01, momentum=0.9)``; `loss` to
    `SoftmaxCrossEntropy`.  The last minibatch of an epoch may be smaller.  The model is
    left in training mode.  ``checkpoint=path`` writes a checkpoint after every epoch (and
    on Ctrl-C); ``resume=path`` continues the run recorded there (the model and optimizer
    must be built as for that run; their state is restored) and returns the whole run's
    History.  Both may be the same path.
    """
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    shuffle = check_flag(shuffle, "shuffle")
    if not hasattr(model, "forward") or not hasattr(model, "backward"):
        raise TypeError(f"model must be a Sequential (forward/backward), got {type(model).__name__}")
    X, y = _check_data(model, X, y, "X", "y")
    if (X_val is None) != (y_val is None):
        raise ValueError("pass both X_val and y_val, or neither")
    if X_val is not None:
        X_val, y_val = _check_data(model, X_val, y_val, "X_val", "y_val")
    checkpoint = None if checkpoint is None else _check_path(checkpoint, "checkpoint")
    if optimizer is None:
        optimizer = SGD(lr=0.01, momentum=0.9)
    loss_fn = SoftmaxCrossEntropy() if loss is None else loss
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    if resume is None:
        position, history = _Position(), History()
    else:
        position, history = _resume(os.fspath(resume), model, optimizer, rng, epochs=epochs,
                                    batch_size=batch_size, shuffle=shuffle, samples=n)

    def save_position():
        write_checkpoint(checkpoint, model, optimizer,
                         position.record(epochs, batch_size, shuffle, n, history))

    noise_layers = [layer for layer in getattr(model, "layers", ()) if isinstance(layer, NoiseSource)]
    params, grads = getattr(model, "params", list), getattr(model, "grads", list)
    can_undo = hasattr(optimizer, "export_state")
    reporter = _Progress(epochs, progress, initial=position.epoch)
    model.train()
    counters = None  # the noise layers' steps before the current minibatch, while it runs
    updating = False
    saved = False  # the checkpoint holds the current position
    try:
        with _DeferredInterrupt() as interrupt:
            for epoch in range(position.epoch, epochs):
                lr = optimizer.begin_epoch(epoch)
                if position.rng is None or position.epoch != epoch:
                    position.start_epoch(epoch, rng.bit_generator.state)
                order = rng.permutation(n) if shuffle else np.arange(n)
                first = position.batch
                epoch_start = _Snapshot(model, optimizer, noise_layers) if can_undo else None
                for start in range(first * batch_size, n, batch_size):
                    if interrupt.requested:
                        raise KeyboardInterrupt
                    saved = False
                    index = order[start:start + batch_size]
                    Xb, yb = X[index], y[index]
                    counters = [layer.step for layer in noise_layers]
                    dropout_before = getattr(model, "dropout_seconds", 0.0)
                    t0 = time.perf_counter()
                    logits = model.forward(Xb, training=True)
                    batch_loss = loss_fn.forward(logits, yb)
                    if not math.isfinite(batch_loss):
                        raise _non_finite("loss", batch_loss, epoch, position.batch, history.steps)
                    model.backward(loss_fn.backward(), need_input_grad=False, overwrite_grad=True)
                    if not _all_finite(grads()):
                        raise _non_finite("gradient", None, epoch, position.batch, history.steps)
                    updating = True
                    optimizer.step(model)
                    if not _all_finite(params()) and epoch_start is not None:
                        epoch_start.restore(model, optimizer, noise_layers)
                        for replayed in range(first * batch_size, start, batch_size):
                            rows = order[replayed:replayed + batch_size]
                            _replay_step(model, loss_fn, optimizer, X[rows], y[rows])
                        updating = False
                        raise _non_finite("update", None, epoch, position.batch, history.steps)
                    updating = False
                    counters = None
                    position.seconds += time.perf_counter() - t0
                    position.dropout_seconds += getattr(model, "dropout_seconds", 0.0) - dropout_before
                    position.loss_sum += batch_loss * index.shape[0]
                    position.wrong += int(np.count_nonzero(np.argmax(logits, axis=1) != yb))
                    position.batch += 1
                    history.steps += 1
                if X_val is not None:
                    val_loss, val_error = _evaluate(model, X_val, y_val, 1024)
                    history.val_loss.append(val_loss)
                    history.val_error.append(val_error)
                history.step_seconds += position.seconds
                history.dropout_seconds += position.dropout_seconds
                history.epoch.append(epoch)
                history.train_loss.append(position.loss_sum / n)
                history.train_error.append(position.wrong / n)
                history.time.append(position.seconds)
                history.lr.append(lr)
                position.start_epoch(epoch + 1, rng.bit_generator.state)
                if checkpoint is not None:
                    save_position()
                    saved = True
                reporter.update(history)
                if interrupt.requested:
                    raise KeyboardInterrupt
    except BaseException as exc:
        if counters is not None and not updating:  # the minibatch changed only the counters
            for layer, step in zip(noise_layers, counters):
                layer.step = step
        if isinstance(exc, KeyboardInterrupt) and checkpoint is not None and not (updating or saved):
            save_position()
        raise
    finally:
        reporter.close()
        model.train()
    return history


def _replay_step(model, loss_fn, optimizer, Xb, yb):
    """One minibatch again, whose loss, gradient and update were finite the first time."""
    loss_fn.forward(model.forward(Xb, training=True), yb)
    model.backward(loss_fn.backward(), need_input_grad=False, overwrite_grad=True)
    optimizer.step(model)


def _non_finite(what, value, epoch, step, steps):
    shown = "" if value is None else f" ({value})"
    error = FloatingPointError(
        f"the {what} is not finite{shown} at epoch {epoch}, step {step} (minibatch {steps} of the "
        "run); the model and the optimizer are left as the last finite step left them")
    error.epoch, error.step = epoch, step
    return error


class _Progress:
    """tqdm bar over epochs if available, else a line per epoch on stderr, or nothing."""

    def __init__(self, epochs, enabled, initial=0):
        self.epochs = epochs
        self.enabled = bool(enabled)
        self.bar = None
        if self.enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=epochs, initial=initial, unit="epoch", leave=False,
                                dynamic_ncols=True)

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

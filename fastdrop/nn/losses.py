"""Losses with forward/backward, for the NumPy trainer."""
import numbers

import numpy as np


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer class labels.

    ``forward(logits, y) -> loss`` (a Python float, averaged over the batch) and
    ``backward() -> dlogits = (softmax(logits) - onehot(y)) / batch``.  Computed through
    the log-sum-exp with the row maximum subtracted, so large logits cannot overflow.
    """

    def __init__(self):
        self._cache = None
        self.probs = None

    def forward(self, logits, y):
        logits = _check_logits(logits)
        y = _check_labels(y, logits.shape)
        shifted = logits - np.max(logits, axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = np.sum(exp, axis=1, keepdims=True)
        log_norm = np.log(sum_exp)
        rows = np.arange(logits.shape[0])
        loss = float(np.mean(log_norm[:, 0] - shifted[rows, y], dtype=np.float64)) if y.size else 0.0
        exp /= sum_exp
        self.probs = exp
        self._cache = (exp, y)
        return loss

    __call__ = forward

    def backward(self):
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        probs, y = self._cache
        grad = probs.copy()
        batch = grad.shape[0]
        grad[np.arange(batch), y] -= 1
        if batch:
            grad *= grad.dtype.type(1.0 / batch)
        return grad


def _check_logits(logits):
    if not isinstance(logits, np.ndarray):
        logits = np.asarray(logits)
    if logits.dtype not in (np.float32, np.float64):
        raise TypeError(f"logits must be float32 or float64, got dtype {logits.dtype}")
    if logits.ndim != 2 or logits.shape[1] < 1:
        raise ValueError(f"logits must be 2-D (batch, classes), got shape {logits.shape}")
    return logits


def _check_labels(y, logits_shape):
    if isinstance(y, numbers.Integral):
        raise TypeError("y must be a 1-D array of integer labels, got a scalar")
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (logits_shape[0],):
        raise ValueError(f"y must have shape ({logits_shape[0]},), one label per row of logits, "
                         f"got {y.shape}")
    classes = logits_shape[1]
    if y.size and (y.min() < 0 or y.max() >= classes):
        bad = y[(y < 0) | (y >= classes)][0]
        raise ValueError(f"y must hold labels in [0, {classes}), got {bad}")
    return y

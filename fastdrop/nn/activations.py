"""Elementwise activations: `ReLU`, `Tanh`, `Sigmoid`."""
import numpy as np

from ._checks import check_flag
from .base import Layer, check_array, check_grad


class Activation(Layer):
    """Elementwise activation; caches its output for backward.

    A subclass defines ``_apply(x, out=None)`` and ``_backward(grad, y, out)``.
    """

    def forward(self, x, training=True):
        check_flag(training, "training")
        x = check_array(x, "x", type(self).__name__)
        y = self._apply(x)
        self._cache = y
        return y

    def forward_eval(self, x, *, overwrite_input=False, scratch=None):
        return self._apply(x, out=x if overwrite_input else None)

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        y = self._check_cache(getattr(self, "_cache", None))
        grad = check_grad(grad, y.shape, y.dtype, type(self).__name__)
        if not need_input_grad:
            return None
        out = grad if overwrite_grad and grad.flags.writeable else None
        return self._backward(grad, y, out)

    def __repr__(self):
        return f"{type(self).__name__}()"


class ReLU(Activation):
    def _apply(self, x, out=None):
        return np.maximum(x, x.dtype.type(0), out=out)

    def _backward(self, grad, y, out):
        return np.multiply(grad, y > 0, out=out)


class Tanh(Activation):
    def _apply(self, x, out=None):
        return np.tanh(x, out=out)

    def _backward(self, grad, y, out):
        derivative = np.multiply(y, y)
        np.subtract(y.dtype.type(1), derivative, out=derivative)
        return np.multiply(grad, derivative, out=out)


class Sigmoid(Activation):
    def _apply(self, x, out=None):
        # exp of a non-positive argument only, so large |x| cannot overflow
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        if out is None:
            return y
        out[...] = y
        return out

    def _backward(self, grad, y, out):
        derivative = np.subtract(y.dtype.type(1), y)
        derivative *= y
        return np.multiply(grad, derivative, out=out)

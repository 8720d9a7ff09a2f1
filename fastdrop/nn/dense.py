"""Affine layers: `Dense`, and `AffineLayer`, the parameters and eval forward every
affine layer shares (`Dense`, `DropoutDense`, `DropConnectDense`).

`Dense` holds ``W`` ``(in, out)``, ``b`` ``(out,)`` and, after ``backward``, ``dW`` and
``db`` (arrays updated in place, so their identity is stable).
"""
import numpy as np

from ._checks import check_choice, check_flag, check_float_dtype, check_int
from .base import INITS, Layer, Parameter, check_array, check_grad, init_weights


class _AffineCache:
    """What an affine forward used: the (dropped / gathered) input, the W it multiplied,
    the kept input rows and computed output columns (None = all), the mask, x's shape."""

    __slots__ = ("kind", "x_used", "W_used", "rows", "cols", "bits", "x_shape")

    def __init__(self, kind, x_used, W_used, rows, cols, bits, x_shape):
        self.kind = kind
        self.x_used = x_used
        self.W_used = W_used
        self.rows = rows
        self.cols = cols
        self.bits = bits
        self.x_shape = x_shape


class AffineLayer(Layer):
    """What every affine layer shares: ``W`` (in, out), ``b`` (out,), their gradient
    buffers, the parameter list and the eval forward ``x @ W + b``."""

    def _init_affine(self, in_features, out_features, seed, init, dtype):
        in_features = check_int(in_features, "in_features", 1)
        out_features = check_int(out_features, "out_features", 1)
        self.init = check_choice(init, "init", INITS)
        dtype = check_float_dtype(dtype)
        self.W = init_weights(in_features, out_features, init, np.random.default_rng(seed), dtype)
        self.b = np.zeros(out_features, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self._cache = None

    @property
    def in_features(self):
        return self.W.shape[0]

    @property
    def out_features(self):
        return self.W.shape[1]

    @property
    def dtype(self):
        return self.W.dtype

    def parameters(self):
        return [Parameter(self, "W", "dW", "weight"), Parameter(self, "b", "db", "bias")]

    def _grad_buffers(self):
        """dW/db to write into: the existing arrays, unless W/b were replaced by new shapes."""
        if self.dW.shape != self.W.shape or self.dW.dtype != self.W.dtype:
            self.dW = np.zeros_like(self.W)
        if self.db.shape != self.b.shape or self.db.dtype != self.b.dtype:
            self.db = np.zeros_like(self.b)
        return self.dW, self.db

    def forward_eval(self, x, *, overwrite_input=False, scratch=None):
        shape = x.shape[:-1] + (self.W.shape[1],)
        dtype = np.result_type(x.dtype, self.W.dtype)
        out = scratch(shape, dtype) if scratch is not None else np.empty(shape, dtype)
        np.matmul(x, self.W, out=out)
        out += self.b
        return out


class Dense(AffineLayer):
    """Affine map ``z = x @ W + b`` with ``W`` of shape (in, out) and ``b`` of shape (out,).

    ``init="he"``: W ~ N(0, 2/in) (for ReLU); ``"glorot"``: W ~ U(±sqrt(6/(in+out))).
    b starts at 0.  ``seed`` (int, numpy Generator or None) seeds the initialisation.
    ``dtype`` (float32 by default, or float64) is the parameters' dtype; inputs must match.
    """

    def __init__(self, in_features, out_features, *, seed=None, init="he", dtype=np.float32):
        self._init_affine(in_features, out_features, seed, init, dtype)

    @classmethod
    def from_arrays(cls, W, b, *, init="he"):
        """A Dense layer holding the given W (in, out) and b (out,) (not copied)."""
        if not isinstance(W, np.ndarray) or W.ndim != 2:
            raise ValueError(f"W must be a 2-D array (in, out), got {getattr(W, 'shape', type(W))}")
        check_float_dtype(W.dtype)
        if not isinstance(b, np.ndarray) or b.shape != (W.shape[1],) or b.dtype != W.dtype:
            raise ValueError(f"b must be a {W.dtype} array of shape ({W.shape[1]},)")
        layer = Dense.__new__(Dense)
        layer.init = init
        layer.W, layer.b = W, b
        layer.dW, layer.db = np.zeros_like(W), np.zeros_like(b)
        layer._cache = None
        return layer

    def _check_input(self, x):
        return check_array(x, "x", type(self).__name__, ndim=2, features=self.in_features,
                           dtype=self.W.dtype)

    def _check_active_outputs(self, active_outputs):
        if active_outputs is None:
            return None
        cols = np.asarray(active_outputs)
        if cols.ndim != 1 or cols.dtype.kind not in "iu":
            raise TypeError("active_outputs must be a 1-D array of output unit indices")
        if cols.size and (cols.min() < 0 or cols.max() >= self.out_features):
            raise ValueError(f"active_outputs must index the {self.out_features} outputs")
        return cols

    def _affine_forward(self, x_used, rows, cols, kind, bits=None, x_shape=None):
        """z = x_used @ W[rows][:, cols] + b[cols], scattered to full width when cols is set."""
        W_used = self.W
        if rows is not None:
            W_used = np.take(W_used, rows, axis=0)
        if cols is not None:
            W_used = np.take(W_used, cols, axis=1)
        z = np.matmul(x_used, W_used)
        if cols is None:
            z += self.b
        else:
            z += np.take(self.b, cols)
            full = np.zeros((x_used.shape[0], self.out_features), dtype=z.dtype)
            full[:, cols] = z
            z = full
        self._cache = _AffineCache(kind, x_used, W_used, rows, cols, bits,
                                   x_shape if x_shape is not None else x_used.shape)
        return z

    def _affine_backward(self, grad, cache, need_input_grad):
        """dW, db into their buffers; returns dz @ W_usedᵀ (B, len(rows)) or None."""
        grad = check_grad(grad, (cache.x_shape[0], self.out_features), self.W.dtype,
                          type(self).__name__)
        dW, db = self._grad_buffers()
        rows, cols = cache.rows, cache.cols
        g = grad if cols is None else np.take(grad, cols, axis=1)
        if rows is None and cols is None:
            np.matmul(cache.x_used.T, g, out=dW)
        else:
            part = np.matmul(cache.x_used.T, g)
            if cols is None:
                dropped = np.ones(self.in_features, dtype=bool)
                dropped[rows] = False
                dW[dropped] = 0
                dW[rows] = part
            else:
                dW.fill(0)
                dW[np.ix_(np.arange(self.in_features) if rows is None else rows, cols)] = part
        if cols is None:
            np.sum(g, axis=0, out=db)
        else:
            db.fill(0)
            db[cols] = np.sum(g, axis=0)
        if not need_input_grad:
            return None
        return np.matmul(g, cache.W_used.T)

    def forward(self, x, training=True, *, active_outputs=None):
        """z = x @ W + b.  `active_outputs` (indices; used by Sequential) computes only those
        output columns and leaves the others 0: the next layer drops them anyway."""
        check_flag(training, "training")
        x = self._check_input(x)
        cols = self._check_active_outputs(active_outputs) if training else None
        return self._affine_forward(x, None, cols, "dense")

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        cache = self._check_cache(self._cache)
        return self._affine_backward(grad, cache, need_input_grad)

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features}, dtype={self.W.dtype})"

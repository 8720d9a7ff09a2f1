"""Layers with forward/backward for a NumPy trainer, with dropout running in the kernels.

Arrays are batch-major: ``x`` is ``(batch, features)``.  Every layer has
``forward(x, training=True) -> y`` and ``backward(grad) -> grad_x``; ``backward`` uses
what the last ``forward`` cached, and gives the gradient of that forward (so a backward
after an eval-mode forward is the gradient of the deterministic eval network).

Dropout layers draw their masks from the counter-based stream of DESIGN.md §2: a layer
with seed ``s`` uses ``stream = k`` (offset 0) on its k-th training forward, k = 0, 1, ...,
so the mask of step k is ``fastdrop.sample_mask(x.shape, keep_prob=..., seed=s, stream=k)``
(``(in_features,)`` for a per-batch `DropoutDense`).  The attribute ``step`` is that k for
the next training forward; setting it back replays the same masks.  ``seed=None`` draws
a 64-bit seed once, at construction (it is then stored in ``seed``).  An eval-mode
forward draws nothing and is deterministic.

Attributes other code relies on: `Dense` holds ``W`` ``(in, out)``, ``b`` ``(out,)`` and,
after ``backward``, ``dW`` and ``db`` (arrays updated in place, so their identity is
stable); `Dropout` has ``keep_prob`` (float) and ``inverted`` (bool); `DropoutDense` has
``keep_prob``, ``W`` and ``b`` and is inverted dropout on its input.

Optimizers see a layer's parameters through ``parameters()``: a list of `Parameter`
objects whose ``kind`` is ``"weight"`` for a weight matrix (its columns are the units'
incoming weight vectors: max-norm and weight decay act on these) or ``"bias"``.

``backward`` also takes two keywords a trainer uses to save work: ``need_input_grad=False``
skips computing ``grad_x`` (returns None; for the first layers of a model), and
``overwrite_grad=True`` lets the layer reuse the memory of ``grad``, which the caller
then must not use again.  Neither changes any result.
"""
import math
import numbers
import time

import numpy as np

from . import _core
from ._args import DEFAULT_RATE, resolve_keep_prob, resolve_seed

_perf_counter = time.perf_counter

MASK_MODES = ("per_sample", "per_batch")
STORE_MODES = ("bits", "seed")
INITS = ("he", "glorot")


class Parameter:
    """One trainable array of a layer, with its gradient and its kind.

    ``value`` and ``grad`` are read from the layer's attributes at each access, so
    assigning a new array to ``layer.W`` is seen by the optimizer.
    """

    __slots__ = ("layer", "name", "grad_name", "kind")

    def __init__(self, layer, name, grad_name, kind):
        if kind not in ("weight", "bias"):
            raise ValueError(f"kind must be 'weight' or 'bias', got {kind!r}")
        self.layer = layer
        self.name = name
        self.grad_name = grad_name
        self.kind = kind

    @property
    def value(self):
        return getattr(self.layer, self.name)

    @property
    def grad(self):
        return getattr(self.layer, self.grad_name)

    @property
    def is_weight(self):
        return self.kind == "weight"

    def __repr__(self):
        return (f"Parameter({type(self.layer).__name__}.{self.name}, kind={self.kind!r}, "
                f"shape={self.value.shape})")


class Layer:
    """Base class: forward/backward plus the parameter lists (empty by default)."""

    def forward(self, x, training=True):
        raise NotImplementedError

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        raise NotImplementedError

    def __call__(self, x, training=True):
        return self.forward(x, training)

    def parameters(self):
        """The layer's trainable arrays as `Parameter` objects (weights, then biases)."""
        return []

    def params(self):
        return [p.value for p in self.parameters()]

    def grads(self):
        return [p.grad for p in self.parameters()]

    def _check_cache(self, cache):
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return cache


# -- argument checks ------------------------------------------------------------------

def _check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def _check_features(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def _check_float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_array(x, name, layer, *, ndim=None, features=None, dtype=None):
    """x as a float ndarray; wrong type, dtype, rank or width is a clear error."""
    if not isinstance(x, np.ndarray):
        if x is None:
            raise TypeError(f"{layer}: {name} must be an array, got None")
        x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{layer}: {name} must be float32 or float64, got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{layer}: {name} has dtype {x.dtype} but the layer's parameters are "
                        f"{dtype}; cast the input (astype) or build the layer with dtype={x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{layer}: {name} must be {ndim}-D (batch, features), got shape {x.shape}")
    if features is not None and x.shape[-1] != features:
        raise ValueError(f"{layer}: {name} must have {features} features (last axis), "
                         f"got shape {x.shape}")
    return x


def _check_grad(grad, shape, dtype, layer):
    grad = _check_array(grad, "grad", layer, dtype=dtype)
    if grad.shape != tuple(shape):
        raise ValueError(f"{layer}: grad must have the forward output's shape {tuple(shape)}, "
                         f"got {grad.shape}")
    return grad


# -- dropout ----------------------------------------------------------------------------

class NoiseSource:
    """What every layer that draws random masks or noise shares (mixed into the layer).

    ``keep_prob``; ``seed``, drawn once when None; ``step``, the k whose ``stream = k``
    the next training forward uses (set it back to replay the same masks); and
    ``dropout_seconds``, the time spent in dropout work, for the trainer's report.
    """

    def _init_noise(self, rate, keep_prob, seed):
        self.keep_prob = resolve_keep_prob(rate, keep_prob)
        self.seed = resolve_seed(seed)
        self.step = 0
        self.dropout_seconds = 0.0

    @property
    def rate(self):
        return 1.0 - self.keep_prob


class Dropout(NoiseSource, Layer):
    """Dropout of its input: ``y = x * m * s`` in training, deterministic in eval.

    ``inverted=True`` (default): ``s = 1/keep_prob`` in training, identity in eval.
    ``inverted=False`` (classical): ``s = 1`` in training, ``x * keep_prob`` in eval.
    ``store="bits"`` keeps the sampled mask (1 bit per element) for backward;
    ``store="seed"`` keeps only (seed, stream) and regenerates the mask in backward.
    """

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, inverted=True, store="bits"):
        self._init_noise(rate, keep_prob, seed)
        self.inverted = _check_flag(inverted, "inverted")
        self.store = _check_choice(store, "store", STORE_MODES)
        self._cache = None

    def forward(self, x, training=True):
        training = _check_flag(training, "training")
        x = _check_array(x, "x", "Dropout")
        if not training:
            self._cache = ("eval", x.shape)
            return _core.dropout(x, keep_prob=self.keep_prob, training=False, inverted=self.inverted)
        start = _perf_counter()
        stream = self.step
        self.step += 1
        if self.store == "bits":
            y, mask = _core.dropout(x, keep_prob=self.keep_prob, seed=self.seed, stream=stream,
                                    inverted=self.inverted, return_mask=True)
            self._cache = ("bits", x.shape, mask)
        else:
            y = _core.dropout(x, keep_prob=self.keep_prob, seed=self.seed, stream=stream,
                              inverted=self.inverted)
            self._cache = ("seed", x.shape, stream)
        self.dropout_seconds += _perf_counter() - start
        return y

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        cache = self._check_cache(self._cache)
        grad = _check_grad(grad, cache[1], None, "Dropout")
        if not need_input_grad:
            return None
        out = grad if overwrite_grad and grad.flags.writeable else None
        kind = cache[0]
        if kind == "eval":
            if self.inverted:
                return grad if out is not None else grad.copy()
            return np.multiply(grad, grad.dtype.type(self.keep_prob), out=out)
        start = _perf_counter()
        if kind == "bits":
            gx = _core.apply_mask(grad, cache[2], out=out)
        else:
            gx = _core.dropout_backward(grad, keep_prob=self.keep_prob, seed=self.seed,
                                        stream=cache[2], inverted=self.inverted, out=out)
        self.dropout_seconds += _perf_counter() - start
        return gx

    @property
    def last_mask(self):
        """The Mask of the last training forward (regenerated when store="seed"), or None."""
        if self._cache is None or self._cache[0] == "eval":
            return None
        if self._cache[0] == "bits":
            return self._cache[2]
        return _core.sample_mask(self._cache[1], keep_prob=self.keep_prob, seed=self.seed,
                                 stream=self._cache[2])

    def __repr__(self):
        return (f"Dropout(keep_prob={self.keep_prob!r}, inverted={self.inverted}, "
                f"store={self.store!r}, seed={self.seed})")


# -- affine layers ----------------------------------------------------------------------

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


def _init_weights(in_features, out_features, init, rng, dtype):
    if init == "he":
        std = math.sqrt(2.0 / in_features)
        W = rng.standard_normal((in_features, out_features)) * std
    else:
        limit = math.sqrt(6.0 / (in_features + out_features))
        W = rng.uniform(-limit, limit, (in_features, out_features))
    return np.ascontiguousarray(W, dtype=dtype)


class Dense(Layer):
    """Affine map ``z = x @ W + b`` with ``W`` of shape (in, out) and ``b`` of shape (out,).

    ``init="he"``: W ~ N(0, 2/in) (for ReLU); ``"glorot"``: W ~ U(±sqrt(6/(in+out))).
    b starts at 0.  ``seed`` (int, numpy Generator or None) seeds the initialisation.
    ``dtype`` (float32 by default, or float64) is the parameters' dtype; inputs must match.
    """

    def __init__(self, in_features, out_features, *, seed=None, init="he", dtype=np.float32):
        in_features = _check_features(in_features, "in_features")
        out_features = _check_features(out_features, "out_features")
        _check_choice(init, "init", INITS)
        dtype = _check_float_dtype(dtype)
        self.init = init
        self.W = _init_weights(in_features, out_features, init, np.random.default_rng(seed), dtype)
        self.b = np.zeros(out_features, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self._cache = None

    @classmethod
    def from_arrays(cls, W, b, *, init="he"):
        """A Dense layer holding the given W (in, out) and b (out,) (not copied)."""
        if not isinstance(W, np.ndarray) or W.ndim != 2:
            raise ValueError(f"W must be a 2-D array (in, out), got {getattr(W, 'shape', type(W))}")
        _check_float_dtype(W.dtype)
        if not isinstance(b, np.ndarray) or b.shape != (W.shape[1],) or b.dtype != W.dtype:
            raise ValueError(f"b must be a {W.dtype} array of shape ({W.shape[1]},)")
        layer = Dense.__new__(Dense)
        layer.init = init
        layer.W, layer.b = W, b
        layer.dW, layer.db = np.zeros_like(W), np.zeros_like(b)
        layer._cache = None
        return layer

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

    def _check_input(self, x):
        return _check_array(x, "x", type(self).__name__, ndim=2, features=self.in_features,
                            dtype=self.W.dtype)

    def _grad_buffers(self):
        """dW/db to write into: the existing arrays, unless W/b were replaced by new shapes."""
        if self.dW.shape != self.W.shape or self.dW.dtype != self.W.dtype:
            self.dW = np.zeros_like(self.W)
        if self.db.shape != self.b.shape or self.db.dtype != self.b.dtype:
            self.db = np.zeros_like(self.b)
        return self.dW, self.db

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
        grad = _check_grad(grad, (cache.x_shape[0], self.out_features), self.W.dtype,
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
        _check_flag(training, "training")
        x = self._check_input(x)
        cols = self._check_active_outputs(active_outputs) if training else None
        return self._affine_forward(x, None, cols, "dense")

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        cache = self._check_cache(self._cache)
        return self._affine_backward(grad, cache, need_input_grad)

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features}, dtype={self.W.dtype})"


class DropoutDense(NoiseSource, Dense):
    """Inverted dropout on the input fused with an affine map: ``z = (x ⊙ m · s) @ W + b``.

    ``mask="per_sample"``: an independent mask per element of ``x`` (the dropout of
    Srivastava et al. 2014), sampled and applied by the kernels in one pass; backward
    computes ``dW = x̃ᵀ dz``, ``db = Σ dz`` and ``dx = (dz Wᵀ) ⊙ m · s``, the last applied
    in place by the kernel from the stored bits.

    ``mask="per_batch"``: one mask of shape ``(in_features,)`` shared by every row of the
    batch, i.e. one thinned network per step.  The layer then multiplies only the kept
    columns of ``x`` with the kept rows of ``W`` (gathered), so its cost shrinks with
    keep_prob; rows of ``dW`` for dropped inputs are 0 and so are the dropped columns of dx.

    In eval mode the layer is the plain affine map ``x @ W + b``.  ``seed`` seeds both the
    initialisation (as ``Dense(seed=seed)``) and the masks (as ``Dropout(seed=seed)``).
    """

    def __init__(self, in_features, out_features, rate=DEFAULT_RATE, *, keep_prob=None, seed=None,
                 mask="per_sample", init="he", dtype=np.float32):
        self.mask = _check_choice(mask, "mask", MASK_MODES)
        self._init_noise(rate, keep_prob, seed)
        Dense.__init__(self, in_features, out_features, seed=self.seed, init=init, dtype=dtype)
        self._pending = None

    @property
    def inverted(self):
        return True

    def upcoming_kept(self):
        """Indices of the inputs the next training forward keeps (per_batch only).

        Sampled once for stream ``step`` and reused by that forward, so a model can skip
        computing the units this layer is about to drop.
        """
        if self.mask != "per_batch":
            raise ValueError("upcoming_kept() is only defined for mask='per_batch'")
        stream = self.step
        pending = self._pending
        if pending is None or pending[0] != stream or pending[1] != self.in_features:
            start = _perf_counter()
            bits = _core.sample_mask((self.in_features,), keep_prob=self.keep_prob, seed=self.seed,
                                     stream=stream)
            pending = self._pending = (stream, self.in_features, bits, np.flatnonzero(bits.to_bool()))
            self.dropout_seconds += _perf_counter() - start
        return pending[3]

    def forward(self, x, training=True, *, active_outputs=None):
        training = _check_flag(training, "training")
        x = self._check_input(x)
        if not training:
            return self._affine_forward(x, None, None, "eval")
        cols = self._check_active_outputs(active_outputs)
        if self.mask == "per_sample":
            start = _perf_counter()
            x_dropped, bits = _core.dropout(x, keep_prob=self.keep_prob, seed=self.seed,
                                            stream=self.step, return_mask=True)
            self.step += 1
            self.dropout_seconds += _perf_counter() - start
            return self._affine_forward(x_dropped, None, cols, "per_sample", bits)
        kept = self.upcoming_kept()
        bits = self._pending[2]
        self._pending = None
        self.step += 1
        start = _perf_counter()
        x_kept = np.take(x, kept, axis=1)
        x_kept *= x.dtype.type(bits.scale)
        self.dropout_seconds += _perf_counter() - start
        return self._affine_forward(x_kept, kept, cols, "per_batch", bits, x.shape)

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        cache = self._check_cache(self._cache)
        dx = self._affine_backward(grad, cache, need_input_grad)
        if dx is None or cache.kind == "eval":
            return dx
        start = _perf_counter()
        if cache.kind == "per_sample":
            _core.apply_mask(dx, cache.bits, out=dx)
        else:
            dx *= dx.dtype.type(cache.bits.scale)
            full = np.zeros(cache.x_shape, dtype=dx.dtype)
            full[:, cache.rows] = dx
            dx = full
        self.dropout_seconds += _perf_counter() - start
        return dx

    @property
    def last_mask(self):
        """The Mask of the last training forward, or None."""
        if self._cache is None or self._cache.kind == "eval":
            return None
        return self._cache.bits

    def __repr__(self):
        return (f"DropoutDense({self.in_features}, {self.out_features}, keep_prob={self.keep_prob!r}, "
                f"mask={self.mask!r}, seed={self.seed}, dtype={self.W.dtype})")


# -- activations ------------------------------------------------------------------------

class _Activation(Layer):
    """Elementwise activation; caches its output for backward."""

    def forward(self, x, training=True):
        _check_flag(training, "training")
        x = _check_array(x, "x", type(self).__name__)
        y = self._apply(x)
        self._cache = y
        return y

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        y = self._check_cache(getattr(self, "_cache", None))
        grad = _check_grad(grad, y.shape, y.dtype, type(self).__name__)
        if not need_input_grad:
            return None
        out = grad if overwrite_grad and grad.flags.writeable else None
        return self._backward(grad, y, out)

    def __repr__(self):
        return f"{type(self).__name__}()"


class ReLU(_Activation):
    def _apply(self, x):
        return np.maximum(x, x.dtype.type(0))

    def _backward(self, grad, y, out):
        return np.multiply(grad, y > 0, out=out)


class Tanh(_Activation):
    def _apply(self, x):
        return np.tanh(x)

    def _backward(self, grad, y, out):
        derivative = np.multiply(y, y)
        np.subtract(y.dtype.type(1), derivative, out=derivative)
        return np.multiply(grad, derivative, out=out)


class Sigmoid(_Activation):
    def _apply(self, x):
        # exp of a non-positive argument only, so large |x| cannot overflow
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def _backward(self, grad, y, out):
        derivative = np.subtract(y.dtype.type(1), y)
        derivative *= y
        return np.multiply(grad, derivative, out=out)


# The variant layers (channel, time-locked, Gaussian, alpha dropout, DropConnect) live in
# fastdrop.variant_layers, which builds on this module; they are reachable from here too,
# imported on first use so that neither module has to import the other at load time.
_VARIANT_LAYERS = ("ChannelDropout", "Dropout1d", "Dropout2d", "Dropout3d", "SpatialDropout1D",
                   "SpatialDropout2D", "SpatialDropout3D", "TimeLockedDropout",
                   "VariationalDropout", "GaussianDropout", "AlphaDropout", "FeatureAlphaDropout",
                   "DropConnectDense")


def __getattr__(name):
    if name in _VARIANT_LAYERS:
        from . import variant_layers

        return getattr(variant_layers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_VARIANT_LAYERS))

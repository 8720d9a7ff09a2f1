"""What every layer shares: `Layer`, `Parameter`, the noise-seed mixin `NoiseSource`,
weight initialisation and the array checks of forward and backward.

Arrays are batch-major: ``x`` is ``(batch, features)``.  Every layer has
``forward(x, training=True) -> y`` and ``backward(grad) -> grad_x``; ``backward`` uses
what the last ``forward`` cached, and gives the gradient of that forward (so a backward
after an eval-mode forward is the gradient of the deterministic eval network).

Every layer also has ``forward_eval(x, *, overwrite_input=False, scratch=None)``: the
eval-mode output, computed without caching anything in the layer, for code that runs a
model's deterministic network many times (the ensemble and MC functions of
`fastdrop.theory`).  Subclasses inherit it, so they take the same path as their base.

Layers that draw random masks or noise (`NoiseSource`) draw from the counter-based
stream of the fastdrop contract: a layer with seed ``s`` uses ``stream = k`` (offset 0)
on its k-th training forward, k = 0, 1, ..., so the mask of step k is
``fastdrop.sample_mask(x.shape, keep_prob=..., seed=s, stream=k)``.  The attribute
``step`` is that k for the next training forward; setting it back replays the same
masks.  ``seed=None`` draws a 64-bit seed once, at construction (it is then stored in
``seed``).  An eval-mode forward draws nothing and is deterministic.

Optimizers see a layer's parameters through ``parameters()``: a list of `Parameter`
objects whose ``kind`` is ``"weight"`` for a weight matrix (its columns are the units'
incoming weight vectors: max-norm and weight decay act on these) or ``"bias"``.

``backward`` also takes two keywords a trainer uses to save work: ``need_input_grad=False``
skips computing ``grad_x`` (returns None; for the first layers of a model), and
``overwrite_grad=True`` lets the layer reuse the memory of ``grad``, which the caller
then must not use again.  Neither changes any result.
"""
import math

import numpy as np

from .._validate import resolve_keep_prob, resolve_seed
from ._checks import is_int

#: Weight initialisations: "he" for ReLU nets, "glorot" for tanh / sigmoid nets.
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

    def __repr__(self):
        return (f"Parameter({type(self.layer).__name__}.{self.name}, kind={self.kind!r}, "
                f"shape={self.value.shape})")


class Layer:
    """Base class: forward/backward, the eval-mode forward and the parameter list."""

    def forward(self, x, training=True):
        raise NotImplementedError

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        raise NotImplementedError

    def forward_eval(self, x, *, overwrite_input=False, scratch=None):
        """The eval-mode output for `x`, leaving the layer's state (its cache) untouched.

        ``overwrite_input=True`` lets the layer compute in the memory of `x`, which the
        caller owns and will not read again.  ``scratch`` is None or a callable
        ``(shape, dtype) -> array`` giving a writable array the caller owns, which a
        layer may use for its output (so many calls can reuse the same memory).  The
        result is `x` itself (or a view of it) or an array the caller may overwrite.
        This default runs ``forward(x, training=False)``.
        """
        return self.forward(x, training=False)

    def __call__(self, x, training=True):
        return self.forward(x, training)

    def parameters(self):
        """The layer's trainable arrays as `Parameter` objects (weights, then biases)."""
        return []

    def _check_cache(self, cache):
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return cache


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

    def noise_state(self):
        """``{"seed": ..., "step": ...}``: what fixes every mask the layer draws from now on."""
        return {"seed": self.seed, "step": self.step}

    def set_noise_state(self, seed, step):
        """Take over a `noise_state`: the next training forward draws ``(seed, stream=step)``."""
        seed = resolve_seed(seed) if seed is not None else None
        if seed is None or not is_int(step) or not 0 <= step < 1 << 64:
            raise ValueError(f"noise state must be an int seed and a step in [0, 2**64), got "
                             f"seed={seed!r}, step={step!r}")
        self.seed = seed
        self.step = int(step)
        # a mask sampled ahead for the old (seed, step) must not be used
        if getattr(self, "_pending", None) is not None:
            self._pending = None


def init_weights(in_features, out_features, init, rng, dtype):
    """An (in, out) weight matrix: ``"he"`` N(0, 2/in), ``"glorot"`` U(±sqrt(6/(in+out)))."""
    if init == "he":
        W = rng.standard_normal((in_features, out_features)) * math.sqrt(2.0 / in_features)
    else:
        limit = math.sqrt(6.0 / (in_features + out_features))
        W = rng.uniform(-limit, limit, (in_features, out_features))
    return np.ascontiguousarray(W, dtype=dtype)


def check_array(x, name, layer, *, ndim=None, features=None, dtype=None):
    """x as a float32/float64 ndarray; wrong type, dtype, rank or width is a clear error."""
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


def check_grad(grad, shape, dtype, layer):
    grad = check_array(grad, "grad", layer, dtype=dtype)
    if grad.shape != tuple(shape):
        raise ValueError(f"{layer}: grad must have the forward output's shape {tuple(shape)}, "
                         f"got {grad.shape}")
    return grad

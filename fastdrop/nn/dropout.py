"""Dropout layers: `Dropout` on its input, and `DropoutDense`, dropout fused with an
affine map.  Both draw their masks from the fast kernels, as `NoiseSource` describes.

`Dropout` has ``keep_prob`` (float) and ``inverted`` (bool); `DropoutDense` has
``keep_prob``, ``W`` and ``b`` and is inverted dropout on its input.
"""
import time

import numpy as np

from ..api import apply_mask, dropout, dropout_backward, sample_mask
from .._validate import DEFAULT_RATE
from ._checks import check_choice, check_flag
from .base import Layer, NoiseSource, check_array, check_grad
from .dense import Dense

_perf_counter = time.perf_counter

#: How `DropoutDense` draws its masks: one per element of x, or one per batch.
MODES = ("per_sample", "per_batch")
#: What `Dropout` keeps for backward: the mask bits, or only the seed and stream.
STORES = ("bits", "seed")


class Dropout(NoiseSource, Layer):
    """Dropout of its input: ``y = x * m * s`` in training, deterministic in eval.

    ``inverted=True`` (default): ``s = 1/keep_prob`` in training, identity in eval.
    ``inverted=False`` (classical): ``s = 1`` in training, ``x * keep_prob`` in eval.
    ``store="bits"`` keeps the sampled mask (1 bit per element) for backward;
    ``store="seed"`` keeps only (seed, stream) and regenerates the mask in backward.
    """

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, inverted=True, store="bits"):
        self._init_noise(rate, keep_prob, seed)
        self.inverted = check_flag(inverted, "inverted")
        self.store = check_choice(store, "store", STORES)
        self._cache = None

    def forward(self, x, training=True):
        training = check_flag(training, "training")
        x = check_array(x, "x", "Dropout")
        if not training:
            self._cache = ("eval", x.shape)
            return dropout(x, keep_prob=self.keep_prob, training=False, inverted=self.inverted)
        start = _perf_counter()
        stream = self.step
        self.step += 1
        if self.store == "bits":
            y, mask = dropout(x, keep_prob=self.keep_prob, seed=self.seed, stream=stream,
                              inverted=self.inverted, return_mask=True)
            self._cache = ("bits", x.shape, mask)
        else:
            y = dropout(x, keep_prob=self.keep_prob, seed=self.seed, stream=stream,
                        inverted=self.inverted)
            self._cache = ("seed", x.shape, stream)
        self.dropout_seconds += _perf_counter() - start
        return y

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        cache = self._check_cache(self._cache)
        grad = check_grad(grad, cache[1], None, "Dropout")
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
            gx = apply_mask(grad, cache[2], out=out)
        else:
            gx = dropout_backward(grad, keep_prob=self.keep_prob, seed=self.seed,
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
        return sample_mask(self._cache[1], keep_prob=self.keep_prob, seed=self.seed,
                           stream=self._cache[2])

    def forward_eval(self, x, *, overwrite_input=False, scratch=None):
        if self.inverted:
            return x
        return np.multiply(x, x.dtype.type(self.keep_prob), out=x if overwrite_input else None)

    def __repr__(self):
        return (f"Dropout(keep_prob={self.keep_prob!r}, inverted={self.inverted}, "
                f"store={self.store!r}, seed={self.seed})")


class DropoutDense(NoiseSource, Dense):
    """Inverted dropout on the input fused with an affine map: ``z = (x ⊙ m · s) @ W + b``.

    ``mode="per_sample"``: an independent mask per element of ``x`` (the dropout of
    Srivastava et al. 2014), sampled and applied by the kernels in one pass; backward
    computes ``dW = x̃ᵀ dz``, ``db = Σ dz`` and ``dx = (dz Wᵀ) ⊙ m · s``, the last applied
    in place by the kernel from the stored bits.

    ``mode="per_batch"``: one mask of shape ``(in_features,)`` shared by every row of the
    batch, i.e. one thinned network per step.  The layer then multiplies only the kept
    columns of ``x`` with the kept rows of ``W`` (gathered), so its cost shrinks with
    keep_prob; rows of ``dW`` for dropped inputs are 0 and so are the dropped columns of dx.

    In eval mode the layer is the plain affine map ``x @ W + b``.  ``seed`` seeds both the
    initialisation (as ``Dense(seed=seed)``) and the masks (as ``Dropout(seed=seed)``).
    """

    def __init__(self, in_features, out_features, rate=DEFAULT_RATE, *, keep_prob=None, seed=None,
                 mode="per_sample", init="he", dtype=np.float32):
        self.mode = check_choice(mode, "mode", MODES)
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
        if self.mode != "per_batch":
            raise ValueError("upcoming_kept() is only defined for mode='per_batch'")
        stream = self.step
        pending = self._pending
        if pending is None or pending[0] != stream or pending[1] != self.in_features:
            start = _perf_counter()
            bits = sample_mask((self.in_features,), keep_prob=self.keep_prob, seed=self.seed,
                               stream=stream)
            pending = self._pending = (stream, self.in_features, bits, np.flatnonzero(bits.to_bool()))
            self.dropout_seconds += _perf_counter() - start
        return pending[3]

    def forward(self, x, training=True, *, active_outputs=None):
        training = check_flag(training, "training")
        x = self._check_input(x)
        if not training:
            return self._affine_forward(x, None, None, "eval")
        cols = self._check_active_outputs(active_outputs)
        if self.mode == "per_sample":
            start = _perf_counter()
            x_dropped, bits = dropout(x, keep_prob=self.keep_prob, seed=self.seed,
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
            apply_mask(dx, cache.bits, out=dx)
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
                f"mode={self.mode!r}, seed={self.seed}, dtype={self.W.dtype})")

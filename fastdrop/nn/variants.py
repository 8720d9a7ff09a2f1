"""Layers for the dropout variants, in the house style of `fastdrop.nn.Dropout`.

Each layer has ``forward(x, training=True) -> y`` and ``backward(grad) -> grad_x`` (the
gradient of the last forward), ``keep_prob``, ``inverted`` (True: every variant here is the
identity, or the mean weights, at test time), ``seed`` and ``step``: the k-th training
forward (k = ``step`` before the call) draws from ``stream = k``, ``offset = 0``, like
`fastdrop.nn.Dropout`, so setting ``step`` back replays the same noise.  Eval-mode
forwards draw nothing.

- `ChannelDropout` (presets `Dropout1d/2d/3d`, channels-first, and `SpatialDropout1D/2D/3D`,
  channels-last by default): one Bernoulli draw per (example, channel).
- `TimeLockedDropout` (alias `VariationalDropout`): one mask per sequence and feature,
  shared by every time step of ``(batch, time, features)`` (Gal & Ghahramani 2016).
- `GaussianDropout`: multiplicative N(1, rate/(1-rate)) noise.
- `AlphaDropout` / `FeatureAlphaDropout`: for SELU networks.
- `DropConnectDense`: an affine map whose weights are masked each step.

For MC prediction every layer has ``mc_forward(h, passes, *, seed, stream, first_pass=0)``: ``h`` stacks ``passes`` batches (pass-major rows); pass t draws its noise at the
offset of pass ``first_pass + t`` of ``(seed, stream)``; the layer's state is untouched.
"""
import time

import numpy as np

from ..api import (alpha_dropout, alpha_dropout_backward, apply_mask, dropout, dropout_backward,
                     gaussian_dropout, gaussian_dropout_backward)
from .._validate import DEFAULT_RATE, check_input, resolve_seed
from ..mask import Mask
from ._checks import check_choice, check_flag, check_int, is_flag
from .base import Layer, NoiseSource
from .dense import AffineLayer
from .dropout import MODES

__all__ = ["ChannelDropout", "Dropout1d", "Dropout2d", "Dropout3d", "SpatialDropout1D",
           "SpatialDropout2D", "SpatialDropout3D", "TimeLockedDropout", "VariationalDropout",
           "GaussianDropout", "AlphaDropout", "FeatureAlphaDropout", "DropConnectDense"]

_perf_counter = time.perf_counter

DATA_FORMATS = ("channels_first", "channels_last")
#: per_sample DropConnect materialises masked weights for this many bytes of rows at a time
_PER_SAMPLE_CHUNK_BYTES = 32 << 20


def _check_x(x, layer, name="x"):
    try:
        return check_input(x, name)
    except TypeError as exc:
        raise TypeError(f"{layer}: {exc}") from None


def _check_grad(grad, shape, dtype, layer):
    grad = _check_x(grad, layer, "grad")
    if grad.shape != tuple(shape):
        raise ValueError(f"{layer}: grad must have the forward output's shape {tuple(shape)}, "
                         f"got {grad.shape}")
    if dtype is not None and grad.dtype != dtype:
        raise TypeError(f"{layer}: grad has dtype {grad.dtype}, the forward output had {dtype}")
    return grad


def _check_passes(h, passes, layer):
    passes = check_int(passes, "passes", 1)
    if h.ndim == 0 or h.shape[0] % passes:
        raise ValueError(f"{layer}: h must stack {passes} passes along its first axis, got shape "
                         f"{h.shape}")
    return passes


class _NoiseLayer(NoiseSource, Layer):
    """Shared machinery: eval mode, the per-step stream, timing and backward."""

    def __init__(self, rate, keep_prob, seed):
        self._init_noise(rate, keep_prob, seed)
        self._cache = None

    @property
    def inverted(self):
        return True

    def noise_shape(self, shape):
        """The noise shape of an input of `shape` (None: one draw per element)."""
        return None

    def forward_eval(self, x, *, overwrite_input=False, scratch=None):
        return x

    def _check_input(self, x):
        return _check_x(x, type(self).__name__)

    def forward(self, x, training=True):
        training = check_flag(training, "training")
        x = self._check_input(x)
        if not training:
            self._cache = ("eval", x.shape, x.dtype)
            return x
        start = _perf_counter()
        stream = self.step
        self.step += 1
        y, state = self._train_forward(x, self.seed, stream, 0)
        self._cache = ("train", x.shape, x.dtype, stream, state)
        self.dropout_seconds += _perf_counter() - start
        return y

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        cache = self._check_cache(self._cache)
        grad = _check_grad(grad, cache[1], cache[2], type(self).__name__)
        if not need_input_grad:
            return None
        out = grad if overwrite_grad and grad.flags.writeable else None
        if cache[0] == "eval":
            return grad if out is not None else grad.copy()
        start = _perf_counter()
        gx = self._train_backward(grad, cache[3], cache[4], out)
        self.dropout_seconds += _perf_counter() - start
        return gx

    def mc_forward(self, h, passes, *, seed, stream, first_pass=0):
        """Training-mode output of `passes` stacked batches, pass t at offset of pass first_pass + t."""
        h = self._check_input(h)
        passes = _check_passes(h, passes, type(self).__name__)
        first_pass = check_int(first_pass, "first_pass", 0)
        noise = self.noise_shape(h.shape) or h.shape
        per_pass = int(np.prod(noise, dtype=object)) // passes
        return self._train_forward(h, resolve_seed(seed), stream, first_pass * per_pass)[0]

    @property
    def last_mask(self):
        """The Mask of the last training forward, or None (eval, or no mask: Gaussian)."""
        if self._cache is None or self._cache[0] == "eval":
            return None
        state = self._cache[4]
        return state if isinstance(state, Mask) else None


class _MaskedNoiseLayer(_NoiseLayer):
    """Bernoulli masks over a noise shape: inverted dropout; backward from the stored mask."""

    def _train_forward(self, x, seed, stream, offset):
        return dropout(x, keep_prob=self.keep_prob, seed=seed, stream=stream, offset=offset,
                       noise_shape=self.noise_shape(x.shape), return_mask=True)

    def _train_backward(self, grad, stream, mask, out):
        return dropout_backward(grad, mask, out=out)


class ChannelDropout(_MaskedNoiseLayer):
    """Channel ("spatial") dropout: each example's channels are kept or zeroed whole.

    ``data_format="channels_first"``: x is ``(N, C, *spatial)`` and the noise shape is
    ``(N, C, 1, ..., 1)`` (PyTorch ``Dropout1d/2d/3d``); ``"channels_last"``: x is
    ``(N, *spatial, C)`` and the noise shape ``(N, 1, ..., 1, C)`` (Keras
    ``SpatialDropout1D/2D/3D``).  ``spatial_dims`` (1, 2, 3 or None for any) fixes the
    number of spatial axes the input must have.
    """

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None,
                 data_format="channels_first", spatial_dims=None):
        super().__init__(rate, keep_prob, seed)
        self.data_format = check_choice(data_format, "data_format", DATA_FORMATS)
        self.spatial_dims = None if spatial_dims is None else check_int(spatial_dims, "spatial_dims", 1)

    def _check_input(self, x):
        x = super()._check_input(x)
        name = type(self).__name__
        if self.spatial_dims is not None and x.ndim != self.spatial_dims + 2:
            layout = ("(N, C, " if self.data_format == "channels_first" else "(N, ") + \
                ", ".join("DHW"[3 - self.spatial_dims:]) + \
                (")" if self.data_format == "channels_first" else ", C)")
            raise ValueError(f"{name}: x must be {self.spatial_dims + 2}-D {layout}, got shape {x.shape}")
        if x.ndim < 2:
            raise ValueError(f"{name}: x must have a batch and a channel axis, got shape {x.shape}")
        return x

    def noise_shape(self, shape):
        noise = [1] * len(shape)
        noise[0] = shape[0]
        channel = 1 if self.data_format == "channels_first" else len(shape) - 1
        noise[channel] = shape[channel]
        return tuple(noise)

    def __repr__(self):
        return (f"{type(self).__name__}(keep_prob={self.keep_prob!r}, "
                f"data_format={self.data_format!r}, seed={self.seed})")


class Dropout1d(ChannelDropout):
    """PyTorch ``Dropout1d``: zero whole channels of ``(N, C, L)``."""

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, data_format="channels_first"):
        super().__init__(rate, keep_prob=keep_prob, seed=seed, data_format=data_format, spatial_dims=1)


class Dropout2d(ChannelDropout):
    """PyTorch ``Dropout2d``: zero whole channels of ``(N, C, H, W)``."""

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, data_format="channels_first"):
        super().__init__(rate, keep_prob=keep_prob, seed=seed, data_format=data_format, spatial_dims=2)


class Dropout3d(ChannelDropout):
    """PyTorch ``Dropout3d``: zero whole channels of ``(N, C, D, H, W)``."""

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, data_format="channels_first"):
        super().__init__(rate, keep_prob=keep_prob, seed=seed, data_format=data_format, spatial_dims=3)


class SpatialDropout1D(ChannelDropout):
    """Keras ``SpatialDropout1D``: zero whole feature maps of ``(N, steps, C)``."""

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, data_format="channels_last"):
        super().__init__(rate, keep_prob=keep_prob, seed=seed, data_format=data_format, spatial_dims=1)


class SpatialDropout2D(ChannelDropout):
    """Keras ``SpatialDropout2D``: zero whole feature maps of ``(N, H, W, C)``."""

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, data_format="channels_last"):
        super().__init__(rate, keep_prob=keep_prob, seed=seed, data_format=data_format, spatial_dims=2)


class SpatialDropout3D(ChannelDropout):
    """Keras ``SpatialDropout3D``: zero whole feature maps of ``(N, D, H, W, C)``."""

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, data_format="channels_last"):
        super().__init__(rate, keep_prob=keep_prob, seed=seed, data_format=data_format, spatial_dims=3)


class TimeLockedDropout(_MaskedNoiseLayer):
    """Time-locked ("variational") dropout of sequences: one mask per sequence and feature,
    the same at every time step (Gal & Ghahramani 2016).

    x is ``(batch, time, features)`` (``time_axis=1``) or ``(time, batch, features)``
    (``time_axis=0``); the noise shape is x's shape with 1 on the time axis.
    """

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, time_axis=1):
        super().__init__(rate, keep_prob, seed)
        if time_axis not in (0, 1) or is_flag(time_axis):
            raise ValueError(f"time_axis must be 0 or 1, got {time_axis!r}")
        self.time_axis = int(time_axis)

    def _check_input(self, x):
        x = super()._check_input(x)
        if x.ndim != 3:
            layout = "(batch, time, features)" if self.time_axis == 1 else "(time, batch, features)"
            raise ValueError(f"{type(self).__name__}: x must be 3-D {layout}, got shape {x.shape}")
        return x

    def noise_shape(self, shape):
        noise = list(shape)
        noise[self.time_axis] = 1
        return tuple(noise)

    def mc_forward(self, h, passes, *, seed, stream, first_pass=0):
        if self.time_axis == 0:  # passes are stacked on axis 0 = time: not supported
            raise ValueError("TimeLockedDropout.mc_forward needs batch-first input (time_axis=1)")
        return super().mc_forward(h, passes, seed=seed, stream=stream, first_pass=first_pass)

    def __repr__(self):
        return f"TimeLockedDropout(keep_prob={self.keep_prob!r}, time_axis={self.time_axis}, seed={self.seed})"


VariationalDropout = TimeLockedDropout


class GaussianDropout(_NoiseLayer):
    """Multiplicative Gaussian noise ``y = x * eps``, eps ~ N(1, rate/(1-rate)).

    Nothing is stored: backward regenerates eps from (seed, stream).
    """

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None):
        super().__init__(rate, keep_prob, seed)
        if self.keep_prob == 0.0:
            raise ValueError("GaussianDropout needs rate < 1 (keep_prob > 0)")

    def _train_forward(self, x, seed, stream, offset):
        return gaussian_dropout(x, keep_prob=self.keep_prob, seed=seed, stream=stream,
                                offset=offset), None

    def _train_backward(self, grad, stream, state, out):
        return gaussian_dropout_backward(grad, keep_prob=self.keep_prob, seed=self.seed,
                                         stream=stream, out=out)

    def __repr__(self):
        return f"GaussianDropout(keep_prob={self.keep_prob!r}, seed={self.seed})"


class AlphaDropout(_NoiseLayer):
    """Alpha dropout for SELU networks (PyTorch ``AlphaDropout``).

    ``feature=True`` (or `FeatureAlphaDropout`) drops whole channels of channels-first
    ``(N, C, ...)`` input, PyTorch's ``FeatureAlphaDropout``.
    """

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, feature=False):
        super().__init__(rate, keep_prob, seed)
        self.feature = check_flag(feature, "feature")

    def noise_shape(self, shape):
        if not self.feature or len(shape) < 2:
            return None
        return tuple(shape[:2]) + (1,) * (len(shape) - 2)

    def _train_forward(self, x, seed, stream, offset):
        return alpha_dropout(x, keep_prob=self.keep_prob, seed=seed, stream=stream,
                             offset=offset, noise_shape=self.noise_shape(x.shape),
                             return_mask=True)

    def _train_backward(self, grad, stream, mask, out):
        return alpha_dropout_backward(grad, mask, out=out)

    def __repr__(self):
        return f"{type(self).__name__}(keep_prob={self.keep_prob!r}, seed={self.seed})"


class FeatureAlphaDropout(AlphaDropout):
    """PyTorch ``FeatureAlphaDropout``: alpha dropout of whole channels of ``(N, C, ...)``."""

    def __init__(self, rate=DEFAULT_RATE, *, keep_prob=None, seed=None):
        super().__init__(rate, keep_prob=keep_prob, seed=seed, feature=True)


# -- DropConnect ----------------------------------------------------------------------------

class DropConnectDense(NoiseSource, AffineLayer):
    """DropConnect (Wan et al. 2013): ``z = x @ (M ⊙ W) / keep_prob + b`` in training.

    ``W`` is ``(in, out)``, ``b`` ``(out,)`` (not masked).  ``mode="per_batch"``: one
    weight mask per training step, ``sample_mask((in, out), keep_prob, seed, stream=k)``;
    ``mode="per_sample"``: row n of the batch has its own mask, the weights' mask at
    offset ``n * in * out`` of stream k.  Inference uses the mean weights:
    ``z = x @ W + b``.  Backward uses the same masks: ``dW = (xᵀ dz) ⊙ M / keep_prob``
    (summed over rows per example), ``db = Σ dz``, ``dx = dz (M ⊙ W / keep_prob)ᵀ``.
    ``seed`` seeds both the initialisation and the masks.
    """

    def __init__(self, in_features, out_features, rate=DEFAULT_RATE, *, keep_prob=None, seed=None,
                 mode="per_batch", init="he", dtype=np.float32):
        self._init_noise(rate, keep_prob, seed)
        self.mode = check_choice(mode, "mode", MODES)
        self._init_affine(in_features, out_features, self.seed, init, dtype)

    @property
    def inverted(self):
        return True

    def _check_input(self, x):
        name = type(self).__name__
        x = _check_x(x, name)
        if x.dtype != self.W.dtype:
            raise TypeError(f"{name}: x has dtype {x.dtype} but the layer's parameters are "
                            f"{self.W.dtype}; cast the input or build the layer with dtype={x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{name}: x must be 2-D (batch, {self.in_features}), got shape {x.shape}")
        return x

    def _masked_weights(self, seed, stream, offset, count=None):
        """M ⊙ W / keep_prob: one (in, out) matrix, or `count` of them at consecutive offsets."""
        W = self.W if count is None else np.broadcast_to(self.W, (count,) + self.W.shape)
        return dropout(W, keep_prob=self.keep_prob, seed=seed, stream=stream, offset=offset)

    def _rows_per_chunk(self):
        return max(1, _PER_SAMPLE_CHUNK_BYTES // max(self.W.nbytes, 1))

    def _per_sample_forward(self, x, seed, stream, first_row):
        z = np.empty((x.shape[0], self.out_features), dtype=x.dtype)
        rows = self._rows_per_chunk()
        for n0 in range(0, x.shape[0], rows):
            n1 = min(n0 + rows, x.shape[0])
            Wm = self._masked_weights(seed, stream, (first_row + n0) * self.W.size, n1 - n0)
            z[n0:n1] = np.einsum("ni,nio->no", x[n0:n1], Wm)
        z += self.b
        return z

    def forward(self, x, training=True):
        training = check_flag(training, "training")
        x = self._check_input(x)
        if not training:
            self._cache = ("eval", x, None, None)
            return np.matmul(x, self.W) + self.b
        stream = self.step
        self.step += 1
        if self.mode == "per_sample":
            self._cache = ("per_sample", x, stream, None)
            return self._per_sample_forward(x, self.seed, stream, 0)
        start = _perf_counter()
        W_masked, mask = dropout(self.W, keep_prob=self.keep_prob, seed=self.seed,
                                 stream=stream, return_mask=True)
        self.dropout_seconds += _perf_counter() - start
        self._cache = ("per_batch", x, stream, (W_masked, mask))
        return np.matmul(x, W_masked) + self.b

    def backward(self, grad, *, need_input_grad=True, overwrite_grad=False):
        kind, x, stream, state = self._check_cache(self._cache)
        grad = _check_grad(grad, (x.shape[0], self.out_features), self.W.dtype, type(self).__name__)
        dW, db = self._grad_buffers()
        np.sum(grad, axis=0, out=db)
        if kind == "eval":
            np.matmul(x.T, grad, out=dW)
            return np.matmul(grad, self.W.T) if need_input_grad else None
        if kind == "per_batch":
            W_masked, mask = state
            np.matmul(x.T, grad, out=dW)
            start = _perf_counter()
            apply_mask(dW, mask, out=dW)
            self.dropout_seconds += _perf_counter() - start
            return np.matmul(grad, W_masked.T) if need_input_grad else None
        dW[...] = 0
        dx = np.empty_like(x) if need_input_grad else None
        rows = self._rows_per_chunk()
        for n0 in range(0, x.shape[0], rows):
            n1 = min(n0 + rows, x.shape[0])
            offset = n0 * self.W.size
            outer = np.einsum("ni,no->nio", x[n0:n1], grad[n0:n1])
            masked = dropout_backward(outer, keep_prob=self.keep_prob, seed=self.seed,
                                      stream=stream, offset=offset)
            dW += masked.sum(axis=0)
            if need_input_grad:
                Wm = self._masked_weights(self.seed, stream, offset, n1 - n0)
                dx[n0:n1] = np.einsum("no,nio->ni", grad[n0:n1], Wm)
        return dx

    def mc_forward(self, h, passes, *, seed, stream, first_pass=0):
        """Training-mode output for `passes` stacked batches: pass t uses the mask at
        pass index first_pass + t (per_batch: offset (first_pass + t) * in * out)."""
        h = self._check_input(h)
        passes = _check_passes(h, passes, type(self).__name__)
        first_pass = check_int(first_pass, "first_pass", 0)
        seed = resolve_seed(seed)
        batch = h.shape[0] // passes
        if self.mode == "per_sample":
            return self._per_sample_forward(h, seed, stream, first_pass * batch)
        z = np.empty((h.shape[0], self.out_features), dtype=h.dtype)
        for t in range(passes):
            W_masked = self._masked_weights(seed, stream, (first_pass + t) * self.W.size)
            np.matmul(h[t * batch:(t + 1) * batch], W_masked, out=z[t * batch:(t + 1) * batch])
        z += self.b
        return z

    @property
    def last_mask(self):
        """The weight Mask of the last per-batch training forward, or None."""
        if self._cache is None or self._cache[0] != "per_batch":
            return None
        return self._cache[3][1]

    def __repr__(self):
        return (f"DropConnectDense({self.in_features}, {self.out_features}, "
                f"keep_prob={self.keep_prob!r}, mode={self.mode!r}, seed={self.seed}, "
                f"dtype={self.W.dtype})")

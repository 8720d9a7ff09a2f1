"""The public dropout functions.

Each asks the compiled module for its fast path (`fastdrop._kernels.try_<name>`, which
returns the result of a plain call or NotImplemented) and otherwise runs the general
path in `fastdrop._general`, which checks every argument.  Both give the same bits; the
random stream, mask format and numerics are the contract of DESIGN.md (in the source
distribution), and `fastdrop.reference` is their pure-NumPy transcription.

Seeds.  Every function that samples takes ``seed``, ``stream`` and ``offset``; the mask
(or noise) is a pure function of the 64-bit key ``seed`` gives, the stream and the
offset.  ``seed`` maps to the key in one way everywhere (these functions, fastdrop.reference,
fastdrop.nn, fastdrop.torch):

==========================  ======================================================  ============
seed                        64-bit key                                              same key on
                                                                                    every call?
==========================  ======================================================  ============
int in [0, 2**64)           the int itself                                          yes
numpy.random.SeedSequence   ``int(seed.generate_state(1, numpy.uint64)[0])``        yes
numpy.random.BitGenerator   the key of its ``seed_seq``, whatever its state         yes
numpy.random.Generator      ``int(seed.integers(0, 2**64, dtype=numpy.uint64))``:   no
                            one draw, which advances the Generator
None                        ``secrets.randbits(64)``, fresh OS entropy              no
==========================  ======================================================  ============

bool, float and anything else is a TypeError.  A returned Mask records the key used, so a
backward can regenerate the mask from ``mask.seed``; the backward functions take no
Generator (it would draw a new key).

A fixed seed gives the same mask on every call.  Training with one seed needs a new
``stream`` each step (for instance the step number), as fastdrop.nn layers and the
fastdrop.torch modules do for you; otherwise every step drops the same units.
"""
from __future__ import annotations

from typing import (Any, Callable, Literal, Optional, Sequence, SupportsIndex, TypeVar, Union,
                    overload)

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _general, _kernels
from ._validate import DEFAULT_RATE, given_rate
from .mask import Mask

__all__ = ["dropout", "sample_mask", "apply_mask", "dropout_backward", "alpha_dropout",
           "alpha_dropout_backward", "gaussian_dropout", "gaussian_dropout_backward"]


#: rate / keep_prob: a probability in [0, 1]
_Prob = Union[float, np.floating[Any]]
#: what ``seed`` takes (see Seeds above)
_Seed = Union[int, np.integer[Any], np.random.Generator, np.random.SeedSequence,
              np.random.BitGenerator, None]
#: stream and offset: ints in [0, 2**64)
_Index = Union[int, np.integer[Any]]
_Shape = Union[SupportsIndex, Sequence[SupportsIndex]]
#: a noise shape: one entry per axis, each 1, None or the array's size there
_NoiseShape = Union[SupportsIndex, Sequence[Optional[SupportsIndex]], None]
#: a Mask, or a boolean array (True = kept) whose scale comes from rate/keep_prob
_MaskLike = Union[Mask, ArrayLike]
_Function = TypeVar("_Function", bound=Callable[..., Any])

_SEED_DOC = """seed, stream, offset: the mask is a pure function of the key ``seed`` gives, the
    stream and the offset.  seed: an int in [0, 2**64) (the key), a numpy SeedSequence
    or BitGenerator (a key derived from it, the same on every call), a numpy Generator (a
    key drawn from it, a new one each call) or None (fresh OS entropy); see Seeds in
    fastdrop.api.  A fixed seed gives the same mask on every call: give each training step
    a new stream (fastdrop.nn layers and fastdrop.torch modules do)."""


def _seed_doc(function: _Function) -> _Function:
    """Put the seed paragraph in place of {seed} in `function`'s docstring."""
    function.__doc__ = (function.__doc__ or "").replace("{seed}", _SEED_DOC)
    return function


def _stored_mask_only(rate: object, keep_prob: object, seed: object,
                      stream: object, offset: object, noise_shape: object) -> bool:
    """A backward given its mask and nothing that would regenerate one."""
    return (rate is None and keep_prob is None and seed is None
            and noise_shape is None and type(stream) is int and stream == 0
            and type(offset) is int and offset == 0)


@overload
def dropout(x: ArrayLike, rate: _Prob = ..., *, keep_prob: Optional[_Prob] = ..., seed: _Seed = ...,
            stream: _Index = ..., offset: _Index = ..., training: bool = ..., inverted: bool = ...,
            out: Optional[NDArray[Any]] = ..., return_mask: Literal[False] = ...,
            noise_shape: _NoiseShape = ..., mask: Optional[_MaskLike] = ...) -> NDArray[Any]: ...
@overload
def dropout(x: ArrayLike, rate: _Prob = ..., *, keep_prob: Optional[_Prob] = ..., seed: _Seed = ...,
            stream: _Index = ..., offset: _Index = ..., training: bool = ..., inverted: bool = ...,
            out: Optional[NDArray[Any]] = ..., return_mask: Literal[True],
            noise_shape: _NoiseShape = ..., mask: Optional[_MaskLike] = ...
            ) -> tuple[NDArray[Any], Optional[Mask]]: ...
@overload
def dropout(x: ArrayLike, rate: _Prob = ..., *, keep_prob: Optional[_Prob] = ..., seed: _Seed = ...,
            stream: _Index = ..., offset: _Index = ..., training: bool = ..., inverted: bool = ...,
            out: Optional[NDArray[Any]] = ..., return_mask: bool,
            noise_shape: _NoiseShape = ..., mask: Optional[_MaskLike] = ...
            ) -> Union[NDArray[Any], tuple[NDArray[Any], Optional[Mask]]]: ...
@_seed_doc
def dropout(x: ArrayLike, rate: _Prob = DEFAULT_RATE, *, keep_prob: Optional[_Prob] = None,
            seed: _Seed = None, stream: _Index = 0, offset: _Index = 0, training: bool = True,
            inverted: bool = True, out: Optional[NDArray[Any]] = None, return_mask: bool = False,
            noise_shape: _NoiseShape = None, mask: Optional[_MaskLike] = None
            ) -> Union[NDArray[Any], tuple[NDArray[Any], Optional[Mask]]]:
    """Dropout of `x`: kept elements scaled (by 1/keep_prob when inverted), others +0.0.

    Give the drop probability as `rate` or the keep probability as `keep_prob` (not
    both).  Element i of `x` (C order) is kept iff the Philox4x32-10 word of counter
    ``offset + i`` under key `seed` and `stream` is below ``floor(keep_prob * 2**32)``, so
    the same (seed, stream, offset) gives the same mask on every machine, thread count
    and SIMD level.

    {seed}

    Returns y, or (y, Mask) with return_mask (the Mask is None when not training).  In
    eval mode (training=False) nothing is sampled and inverted dropout returns x itself
    (unless out is given); classical dropout (inverted=False) returns x * keep_prob.

    noise_shape: sample the mask over this shape (same rank as x; each entry 1, None or
    x's size there) and broadcast it, as Keras.  mask: use this Mask, or boolean array
    (True = kept, scaled by rate/keep_prob), instead of sampling.
    """
    r = _kernels.try_dropout(x, given_rate(rate, keep_prob), keep_prob, seed, stream, offset,
                             training, inverted, out, return_mask, noise_shape, mask)
    if r is NotImplemented:
        return _general.dropout(x, rate, keep_prob, seed, stream, offset, training, inverted,
                                out, return_mask, noise_shape, mask)
    if return_mask:
        y, fields = r
        return y, None if fields is None else Mask._from_kernels(*fields)
    return r


@_seed_doc
def sample_mask(shape: _Shape, rate: _Prob = DEFAULT_RATE, *, keep_prob: Optional[_Prob] = None,
                seed: _Seed = None, stream: _Index = 0, offset: _Index = 0,
                noise_shape: _NoiseShape = None) -> Mask:
    """Sample a bit-packed `Mask` of `shape` from (seed, stream, offset), as dropout would.

    With `noise_shape` the mask is the one a dropout of an array of `shape` with that
    noise shape uses: it has the noise shape and broadcasts to `shape`.

    {seed}
    """
    r = _kernels.try_sample_mask(shape, given_rate(rate, keep_prob), keep_prob, seed, stream,
                                 offset, noise_shape)
    if r is NotImplemented:
        return _general.sample_mask(shape, rate, keep_prob, seed, stream, offset, noise_shape)
    return Mask._from_kernels(*r)


def apply_mask(x: ArrayLike, mask: _MaskLike, *, rate: Optional[_Prob] = None,
               keep_prob: Optional[_Prob] = None, inverted: bool = True,
               out: Optional[NDArray[Any]] = None) -> NDArray[Any]:
    """x * mask.scale where the mask keeps, +0.0 elsewhere.

    `mask` is a Mask of x's shape or of a noise shape that broadcasts to it, or a boolean
    array (True = kept) whose scale comes from rate/keep_prob and `inverted`.
    """
    if type(mask) is Mask and rate is None and keep_prob is None:
        r = _kernels.try_apply_mask(x, mask.bits, mask.shape, mask.scale, inverted, out)
        if r is not NotImplemented:
            return r
    return _general.apply_mask(x, mask, rate, keep_prob, inverted, out)


@_seed_doc
def dropout_backward(grad: ArrayLike, mask: Optional[_MaskLike] = None, *,
                     rate: Optional[_Prob] = None, keep_prob: Optional[_Prob] = None,
                     seed: _Seed = None, stream: _Index = 0, offset: _Index = 0,
                     inverted: bool = True, out: Optional[NDArray[Any]] = None,
                     noise_shape: _NoiseShape = None) -> NDArray[Any]:
    """Gradient of dropout: grad * scale where kept, else 0.

    From a stored `Mask` (or a boolean mask with rate/keep_prob), or (mask=None) by
    regenerating the same mask from rate/keep_prob, seed, stream, offset and noise_shape
    without storing it.

    {seed}
    """
    if mask is None:
        r = _kernels.try_dropout(grad, rate, keep_prob, seed, stream, offset, True, inverted,
                                 out, False, noise_shape, None)
    elif type(mask) is Mask and _stored_mask_only(rate, keep_prob, seed, stream, offset,
                                                  noise_shape):
        r = _kernels.try_apply_mask(grad, mask.bits, mask.shape, mask.scale, inverted, out)
    else:
        r = NotImplemented
    if r is NotImplemented:
        return _general.dropout_backward(grad, mask, rate, keep_prob, seed, stream, offset,
                                         inverted, out, noise_shape)
    return r


@overload
def alpha_dropout(x: ArrayLike, rate: _Prob = ..., *, keep_prob: Optional[_Prob] = ...,
                  seed: _Seed = ..., stream: _Index = ..., offset: _Index = ...,
                  noise_shape: _NoiseShape = ..., training: bool = ...,
                  out: Optional[NDArray[Any]] = ..., return_mask: Literal[False] = ...,
                  mask: Optional[_MaskLike] = ...) -> NDArray[Any]: ...
@overload
def alpha_dropout(x: ArrayLike, rate: _Prob = ..., *, keep_prob: Optional[_Prob] = ...,
                  seed: _Seed = ..., stream: _Index = ..., offset: _Index = ...,
                  noise_shape: _NoiseShape = ..., training: bool = ...,
                  out: Optional[NDArray[Any]] = ..., return_mask: Literal[True],
                  mask: Optional[_MaskLike] = ...) -> tuple[NDArray[Any], Optional[Mask]]: ...
@overload
def alpha_dropout(x: ArrayLike, rate: _Prob = ..., *, keep_prob: Optional[_Prob] = ...,
                  seed: _Seed = ..., stream: _Index = ..., offset: _Index = ...,
                  noise_shape: _NoiseShape = ..., training: bool = ...,
                  out: Optional[NDArray[Any]] = ..., return_mask: bool,
                  mask: Optional[_MaskLike] = ...
                  ) -> Union[NDArray[Any], tuple[NDArray[Any], Optional[Mask]]]: ...
@_seed_doc
def alpha_dropout(x: ArrayLike, rate: _Prob = DEFAULT_RATE, *, keep_prob: Optional[_Prob] = None,
                  seed: _Seed = None, stream: _Index = 0, offset: _Index = 0,
                  noise_shape: _NoiseShape = None, training: bool = True,
                  out: Optional[NDArray[Any]] = None, return_mask: bool = False,
                  mask: Optional[_MaskLike] = None
                  ) -> Union[NDArray[Any], tuple[NDArray[Any], Optional[Mask]]]:
    """Alpha dropout for SELU networks (PyTorch AlphaDropout semantics).

    Dropped elements become the SELU saturation value and the result is mapped by the
    affine correction (a, b) so that zero mean / unit variance input keeps them:
    kept ``a*x + b``, dropped ``a*alpha' + b``.  ``noise_shape`` gives the feature
    (channel) variant, PyTorch's FeatureAlphaDropout.  Identity when not training.
    With return_mask, the Mask's scale is ``a`` (so dropout_backward(grad, mask) is the
    gradient too).

    {seed}
    """
    r = _kernels.try_alpha_dropout(x, given_rate(rate, keep_prob), keep_prob, seed, stream,
                                   offset, noise_shape, training, out, return_mask, mask)
    if r is NotImplemented:
        return _general.alpha_dropout(x, rate, keep_prob, seed, stream, offset, noise_shape,
                                      training, out, return_mask, mask)
    if return_mask:
        y, fields = r
        return y, None if fields is None else Mask._from_kernels(*fields)
    return r


@_seed_doc
def alpha_dropout_backward(grad: ArrayLike, mask: Optional[_MaskLike] = None, *,
                           rate: Optional[_Prob] = None, keep_prob: Optional[_Prob] = None,
                           seed: _Seed = None, stream: _Index = 0, offset: _Index = 0,
                           noise_shape: _NoiseShape = None,
                           out: Optional[NDArray[Any]] = None) -> NDArray[Any]:
    """Gradient of alpha dropout: grad * a where kept, 0 where dropped (a from keep_prob).

    From the stored `Mask` (or a boolean mask with rate/keep_prob), or (mask=None) by
    regenerating the same mask from rate/keep_prob, seed, stream, offset and noise_shape.

    {seed}
    """
    if mask is None:
        r = _kernels.try_alpha_dropout_backward(grad, rate, keep_prob, seed, stream, offset,
                                                noise_shape, out)
    elif type(mask) is Mask and _stored_mask_only(rate, keep_prob, seed, stream, offset,
                                                  noise_shape):
        r = _kernels.try_apply_mask(grad, mask.bits, mask.shape,
                                    _kernels.alpha_scale(mask.keep_prob), True, out)
    else:
        r = NotImplemented
    if r is NotImplemented:
        return _general.alpha_dropout_backward(grad, mask, rate, keep_prob, seed, stream,
                                               offset, noise_shape, out)
    return r


@overload
def gaussian_dropout(x: ArrayLike, rate: _Prob = ..., *, keep_prob: Optional[_Prob] = ...,
                     seed: _Seed = ..., stream: _Index = ..., offset: _Index = ...,
                     training: bool = ..., out: Optional[NDArray[Any]] = ...,
                     return_noise: Literal[False] = ...) -> NDArray[Any]: ...
@overload
def gaussian_dropout(x: ArrayLike, rate: _Prob = ..., *, keep_prob: Optional[_Prob] = ...,
                     seed: _Seed = ..., stream: _Index = ..., offset: _Index = ...,
                     training: bool = ..., out: Optional[NDArray[Any]] = ...,
                     return_noise: Literal[True]
                     ) -> tuple[NDArray[Any], Optional[NDArray[Any]]]: ...
@overload
def gaussian_dropout(x: ArrayLike, rate: _Prob = ..., *, keep_prob: Optional[_Prob] = ...,
                     seed: _Seed = ..., stream: _Index = ..., offset: _Index = ...,
                     training: bool = ..., out: Optional[NDArray[Any]] = ...,
                     return_noise: bool
                     ) -> Union[NDArray[Any], tuple[NDArray[Any], Optional[NDArray[Any]]]]: ...
@_seed_doc
def gaussian_dropout(x: ArrayLike, rate: _Prob = DEFAULT_RATE, *,
                     keep_prob: Optional[_Prob] = None, seed: _Seed = None, stream: _Index = 0,
                     offset: _Index = 0, training: bool = True,
                     out: Optional[NDArray[Any]] = None, return_noise: bool = False
                     ) -> Union[NDArray[Any], tuple[NDArray[Any], Optional[NDArray[Any]]]]:
    """Multiplicative Gaussian noise: ``y = x * eps``, eps ~ N(1, rate/(1-rate)).

    The normals come from the same Philox stream (Box-Muller on word pairs), so the same
    (seed, stream, offset) gives the same noise everywhere.  Identity when not training.
    With return_noise, also returns eps (None when not training) in the precision it was
    computed in (float64 for float64 x, float32 otherwise), for
    gaussian_dropout_backward(grad, noise).  float16 x is computed in float32.

    {seed}
    """
    r = _kernels.try_gaussian_dropout(x, given_rate(rate, keep_prob), keep_prob, seed, stream,
                                      offset, training, out, return_noise)
    if r is NotImplemented:
        return _general.gaussian_dropout(x, rate, keep_prob, seed, stream, offset, training, out,
                                         return_noise)
    return r


@_seed_doc
def gaussian_dropout_backward(grad: ArrayLike, noise: Optional[NDArray[Any]] = None, *,
                              rate: Optional[_Prob] = None, keep_prob: Optional[_Prob] = None,
                              seed: _Seed = None, stream: _Index = 0, offset: _Index = 0,
                              out: Optional[NDArray[Any]] = None) -> NDArray[Any]:
    """Gradient of gaussian_dropout: grad * eps, from the stored noise or regenerated from
    rate/keep_prob, seed, stream and offset.

    {seed}
    """
    r = _kernels.try_gaussian_dropout_backward(grad, noise, rate, keep_prob, seed, stream,
                                               offset, out)
    if r is NotImplemented:
        return _general.gaussian_dropout_backward(grad, noise, rate, keep_prob, seed, stream,
                                                  offset, out)
    return r

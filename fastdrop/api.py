"""The public dropout functions.

Each asks the compiled module for its fast path (`fastdrop._kernels.try_<name>`, which
returns the result of a plain call or NotImplemented) and otherwise runs the general
path in `fastdrop._general`, which checks every argument.  Both give the same bits; the
random stream, mask format and numerics are the contract of DESIGN.md (in the source
distribution), and `fastdrop.reference` is their pure-NumPy transcription.
"""
from . import _general, _kernels
from ._validate import DEFAULT_RATE, given_rate
from .mask import Mask

__all__ = ["dropout", "sample_mask", "apply_mask", "dropout_backward", "alpha_dropout",
           "alpha_dropout_backward", "gaussian_dropout", "gaussian_dropout_backward"]


def _stored_mask_only(mask, rate, keep_prob, seed, stream, offset, noise_shape):
    """A backward given a fastdrop.Mask and nothing that would regenerate one."""
    return (type(mask) is Mask and rate is None and keep_prob is None and seed is None
            and noise_shape is None and type(stream) is int and stream == 0
            and type(offset) is int and offset == 0)


def dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
            training=True, inverted=True, out=None, return_mask=False, noise_shape=None,
            mask=None):
    """Dropout of `x`: kept elements scaled (by 1/keep_prob when inverted), others +0.0.

    Give the drop probability as `rate` or the keep probability as `keep_prob` (not
    both).  Element i of `x` (C order) is kept iff the Philox4x32-10 word of counter
    ``offset + i`` under key `seed` and `stream` is below ``floor(keep_prob * 2**32)``, so
    the same (seed, stream, offset) gives the same mask on every machine, thread count
    and SIMD level; `seed` may also be a numpy Generator (a key is drawn from it) or None
    (fresh OS entropy; the returned Mask records the key).

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


def sample_mask(shape, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                noise_shape=None):
    """Sample a bit-packed `Mask` of `shape` from (seed, stream, offset), as dropout would.

    With `noise_shape` the mask is the one a dropout of an array of `shape` with that
    noise shape uses: it has the noise shape and broadcasts to `shape`.
    """
    r = _kernels.try_sample_mask(shape, given_rate(rate, keep_prob), keep_prob, seed, stream,
                                 offset, noise_shape)
    if r is NotImplemented:
        return _general.sample_mask(shape, rate, keep_prob, seed, stream, offset, noise_shape)
    return Mask._from_kernels(*r)


def apply_mask(x, mask, *, rate=None, keep_prob=None, inverted=True, out=None):
    """x * mask.scale where the mask keeps, +0.0 elsewhere.

    `mask` is a Mask of x's shape or of a noise shape that broadcasts to it, or a boolean
    array (True = kept) whose scale comes from rate/keep_prob and `inverted`.
    """
    if type(mask) is Mask and rate is None and keep_prob is None:
        r = _kernels.try_apply_mask(x, mask.bits, mask.shape, mask.scale, inverted, out)
        if r is not NotImplemented:
            return r
    return _general.apply_mask(x, mask, rate, keep_prob, inverted, out)


def dropout_backward(grad, mask=None, *, rate=None, keep_prob=None, seed=None, stream=0,
                     offset=0, inverted=True, out=None, noise_shape=None):
    """Gradient of dropout: grad * scale where kept, else 0.

    From a stored `Mask` (or a boolean mask with rate/keep_prob), or (mask=None) by
    regenerating the same mask from rate/keep_prob, seed, stream, offset and noise_shape
    without storing it.
    """
    if mask is None:
        r = _kernels.try_dropout(grad, rate, keep_prob, seed, stream, offset, True, inverted,
                                 out, False, noise_shape, None)
    elif _stored_mask_only(mask, rate, keep_prob, seed, stream, offset, noise_shape):
        r = _kernels.try_apply_mask(grad, mask.bits, mask.shape, mask.scale, inverted, out)
    else:
        r = NotImplemented
    if r is NotImplemented:
        return _general.dropout_backward(grad, mask, rate, keep_prob, seed, stream, offset,
                                         inverted, out, noise_shape)
    return r


def alpha_dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                  noise_shape=None, training=True, out=None, return_mask=False, mask=None):
    """Alpha dropout for SELU networks (PyTorch AlphaDropout semantics).

    Dropped elements become the SELU saturation value and the result is mapped by the
    affine correction (a, b) so that zero mean / unit variance input keeps them:
    kept ``a*x + b``, dropped ``a*alpha' + b``.  ``noise_shape`` gives the feature
    (channel) variant, PyTorch's FeatureAlphaDropout.  Identity when not training.
    With return_mask, the Mask's scale is ``a`` (so dropout_backward(grad, mask) is the
    gradient too).
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


def alpha_dropout_backward(grad, mask=None, *, rate=None, keep_prob=None, seed=None, stream=0,
                           offset=0, noise_shape=None, out=None):
    """Gradient of alpha dropout: grad * a where kept, 0 where dropped (a from keep_prob).

    From the stored `Mask` (or a boolean mask with rate/keep_prob), or (mask=None) by
    regenerating the same mask from rate/keep_prob, seed, stream, offset and noise_shape.
    """
    if mask is None:
        r = _kernels.try_alpha_dropout_backward(grad, rate, keep_prob, seed, stream, offset,
                                                noise_shape, out)
    elif _stored_mask_only(mask, rate, keep_prob, seed, stream, offset, noise_shape):
        r = _kernels.try_apply_mask(grad, mask.bits, mask.shape,
                                    _kernels.alpha_scale(mask.keep_prob), True, out)
    else:
        r = NotImplemented
    if r is NotImplemented:
        return _general.alpha_dropout_backward(grad, mask, rate, keep_prob, seed, stream,
                                               offset, noise_shape, out)
    return r


def gaussian_dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                     training=True, out=None, return_noise=False):
    """Multiplicative Gaussian noise: ``y = x * eps``, eps ~ N(1, rate/(1-rate)).

    The normals come from the same Philox stream (Box-Muller on word pairs), so the same
    (seed, stream, offset) gives the same noise everywhere.  Identity when not training.
    With return_noise, also returns eps (None when not training) in the precision it was
    computed in (float64 for float64 x, float32 otherwise), for
    gaussian_dropout_backward(grad, noise).  float16 x is computed in float32.
    """
    r = _kernels.try_gaussian_dropout(x, given_rate(rate, keep_prob), keep_prob, seed, stream,
                                      offset, training, out, return_noise)
    if r is NotImplemented:
        return _general.gaussian_dropout(x, rate, keep_prob, seed, stream, offset, training, out,
                                         return_noise)
    return r


def gaussian_dropout_backward(grad, noise=None, *, rate=None, keep_prob=None, seed=None,
                              stream=0, offset=0, out=None):
    """Gradient of gaussian_dropout: grad * eps, from the stored noise or regenerated from
    rate/keep_prob, seed, stream and offset."""
    r = _kernels.try_gaussian_dropout_backward(grad, noise, rate, keep_prob, seed, stream,
                                               offset, out)
    if r is NotImplemented:
        return _general.gaussian_dropout_backward(grad, noise, rate, keep_prob, seed, stream,
                                                  offset, out)
    return r

"""The public dropout functions, running the C kernels (DESIGN.md §5).

Every argument is checked here (through fastdrop._args, shared with the reference)
before any C code runs; arrays reach the kernels as 1-D C-contiguous views, and an
input or output that is not C-contiguous goes through a contiguous copy, so the
element order is always the logical C order of DESIGN.md §2.
"""
import math
from types import SimpleNamespace

import numpy as np

from . import _kernels
from ._args import (DEFAULT_RATE, FLOAT16, DropoutCall, alpha_constants, alpha_op,
                    check_gaussian_backward_args, check_input, check_mask_only_args,
                    check_noise_array, check_noise_shape, check_out, check_regeneration_args,
                    check_shape, check_training_flag, gaussian_noise_dtype, gaussian_sigma,
                    kernel_constant, resolve_user_mask)
from ._mask import Mask

# -- array plumbing -----------------------------------------------------------------------

def _flat_input(x):
    return np.require(x, requirements=("C", "A")).reshape(-1)


def _same_memory(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.nbytes == b.nbytes)


def _run_elementwise(x, out, kernel):
    """Run kernel(x_flat, y_flat) writing the result into `out` (or a new array)."""
    x_flat = _flat_input(x)
    if out is None:
        y = np.empty(x.shape, dtype=x.dtype)
        kernel(x_flat, y.reshape(-1))
        return y
    direct = out.flags.c_contiguous and out.flags.aligned and (
        _same_memory(out, x_flat) or not np.may_share_memory(out, x_flat))
    if direct:
        kernel(x_flat, out.reshape(-1))
    else:  # strided out, or partial overlap with x: go through a temporary
        y = np.empty(x.shape, dtype=x.dtype)
        kernel(x_flat, y.reshape(-1))
        np.copyto(out, y)
    return out


def _kview(a):
    """The array the kernels take: float16 data as its uint16 bit patterns (§7.5)."""
    return a.view(np.uint16) if a.dtype == FLOAT16 else a


def _eval_output(x, keep_prob, inverted, out):
    """§1 test-time output: x (inverted) or x * keep_prob (classical); samples nothing."""
    if not inverted:
        if x.dtype == FLOAT16:  # §7.5: in float32, rounded once
            y = np.multiply(x.astype(np.float32), np.float32(keep_prob)).astype(FLOAT16)
            if out is None:
                return y
            np.copyto(out, y)
            return out
        return np.multiply(x, x.dtype.type(keep_prob), out=out)
    if out is None:
        return x
    np.copyto(out, x)
    return out


# -- the general path -------------------------------------------------------------------
#
# The public dropout / apply_mask / dropout_backward are the Cython front door in
# _kernels.pyx, which handles plain arrays with plain arguments in C and hands every
# other call (odd layouts, array-likes, generators, noise shapes, user masks, and all
# bad input) to these.

def _size_of(shape):
    return math.prod(shape)  # Python ints: exact for any shape


def _sample_bits(size, call):
    bits = np.empty((size + 7) // 8, dtype=np.uint8)
    _kernels.sample(bits, size, call.offset, call.key, call.stream, call.threshold,
                    _kernels.get_num_threads())
    return bits


def _sampled_mask(shape, call, scale=None):
    size = _size_of(shape)
    return Mask._from_kernels(_sample_bits(size, call), shape, size, call.keep_prob,
                              call.scale if scale is None else scale,
                              call.key, call.stream, call.offset)


def sample_mask(shape, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                noise_shape=None):
    """Sample a bit-packed `Mask` from (seed, stream, offset).

    With `noise_shape` (DESIGN.md §7.1) the mask is the one a dropout of an array of
    `shape` with that noise shape uses: it has the noise shape and broadcasts to `shape`.
    """
    shape = check_shape(shape)
    noise = check_noise_shape(noise_shape, shape)
    call = DropoutCall(_size_of(noise), rate, keep_prob, seed, stream, offset)
    return _sampled_mask(noise, call)


def _broadcast_plan(shape, noise_shape):
    """§7.1 geometry for the broadcast kernel: (outer dims, their mask strides, run, period).

    Axes of size 1 are dropped and neighbouring axes that are both sampled (noise size =
    array size) or both broadcast (noise size 1) are merged.  The innermost sampled run is
    the period; a broadcast run just outside it repeats it; the rest are outer axes.
    """
    merged = []  # [size, sampled]
    for size, noise in zip(shape, noise_shape):
        if size == 1:
            continue
        sampled = noise == size
        if merged and merged[-1][1] == sampled:
            merged[-1][0] *= size
        else:
            merged.append([size, sampled])
    period = merged.pop()[0] if merged and merged[-1][1] else 1
    run = merged.pop()[0] if merged and not merged[-1][1] else 1
    dims, strides = [], []
    step = period
    for size, sampled in reversed(merged):
        dims.append(size)
        strides.append(step if sampled else 0)
        if sampled:
            step *= size
    return dims[::-1], strides[::-1], run, period


def _masked(x, mask, out, mul, add=0.0, fill=0.0, affine=False):
    """x through a mask of x's shape or of a noise shape: kept x*mul (+add), dropped +0.0 (fill)."""
    mul, add, fill = (kernel_constant(x.dtype, v) for v in (mul, add, fill))
    nthreads = _kernels.get_num_threads()
    bits = mask.bits
    if mask.shape == x.shape and not affine and x.dtype != FLOAT16:
        return _run_elementwise(x, out, lambda xf, yf: _kernels.apply(xf, yf, bits, mul, nthreads))
    dims, strides, run, period = _broadcast_plan(x.shape, mask.shape)
    return _run_elementwise(x, out, lambda xf, yf: _kernels.bcast(
        _kview(xf), _kview(yf), bits, mask.size, run, period, dims, strides, mul, add, fill,
        affine, nthreads))


def _identity(x, out):
    """Eval-mode output of the variants that are the identity at test time: x itself, or a copy in out."""
    if out is None:
        return x
    np.copyto(out, x)
    return out


def _dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
            training=True, inverted=True, out=None, return_mask=False, noise_shape=None,
            mask=None):
    """Dropout of `x`: kept elements scaled (by 1/keep_prob when inverted), others +0.0.

    Returns y, or (y, Mask) with return_mask (Mask is None when not training).  In eval
    mode (training=False) nothing is sampled and inverted dropout returns x itself
    (unless out is given).  `noise_shape` (§7.1) samples one mask over a shape that
    broadcasts to x; `mask` (§7.6) uses the caller's Mask or boolean array instead.
    """
    x = check_input(x)
    training = check_training_flag(training, "training")
    inverted = check_training_flag(inverted, "inverted")
    return_mask = check_training_flag(return_mask, "return_mask")
    if mask is not None:
        check_mask_only_args(seed, stream, offset, noise_shape)
        user = resolve_user_mask(mask, x.shape, rate, keep_prob, inverted)
        if out is not None:
            check_out(out, x.shape, x.dtype)
        if not training:
            y = _eval_output(x, user.keep_prob, inverted, out)
            return (y, None) if return_mask else y
        y = _masked(x, user, out, user.scale)
        return (y, user) if return_mask else y
    noise = check_noise_shape(noise_shape, x.shape)
    call = DropoutCall(_size_of(noise), rate, keep_prob, seed if training else 0, stream, offset,
                       inverted)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    if not training:
        y = _eval_output(x, call.keep_prob, inverted, out)
        return (y, None) if return_mask else y
    if noise != x.shape:
        sampled = _sampled_mask(noise, call)
        y = _masked(x, sampled, out, call.scale)
        return (y, sampled) if return_mask else y
    bits = np.empty((x.size + 7) // 8, dtype=np.uint8) if return_mask else None
    scale = kernel_constant(x.dtype, call.scale)
    nthreads = _kernels.get_num_threads()
    if x.dtype == FLOAT16:
        y = _run_elementwise(x, out, lambda xf, yf: _kernels.forward_op(
            _kview(xf), _kview(yf), bits, call.offset, call.key, call.stream, call.threshold,
            scale, 0.0, 0.0, False, nthreads))
    else:
        y = _run_elementwise(x, out, lambda xf, yf: _kernels.forward(
            xf, yf, bits, call.offset, call.key, call.stream, call.threshold, scale, nthreads))
    if not return_mask:
        return y
    return y, Mask(bits, x.shape, call.keep_prob, call.scale,
                   seed=call.key, stream=call.stream, offset=call.offset)


def _apply_mask(x, mask, *, rate=None, keep_prob=None, inverted=True, out=None):
    """x * mask.scale where the mask keeps, +0.0 elsewhere.

    `mask` is a Mask of x's shape or of a noise shape broadcasting to it, or a boolean
    array (True = kept) whose scale comes from rate/keep_prob and `inverted` (§7.6).
    """
    x = check_input(x)
    inverted = check_training_flag(inverted, "inverted")
    user = resolve_user_mask(mask, x.shape, rate, keep_prob, inverted)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    return _masked(x, user, out, user.scale)


def _dropout_backward(grad, mask=None, *, rate=None, keep_prob=None, seed=None, stream=0,
                     offset=0, inverted=True, out=None, noise_shape=None):
    """Gradient of dropout: grad * scale where kept, else 0.

    From a stored `Mask` (or a boolean mask with rate/keep_prob), or (mask=None) by
    regenerating the same mask from rate/keep_prob, seed, stream, offset and noise_shape.
    """
    check_regeneration_args(mask, rate, keep_prob, seed, stream, offset, noise_shape)
    if mask is not None:
        return _apply_mask(grad, mask, rate=rate, keep_prob=keep_prob, inverted=inverted, out=out)
    return _dropout(grad, rate, keep_prob=keep_prob, seed=seed, stream=stream, offset=offset,
                   inverted=inverted, out=out, noise_shape=noise_shape)


# -- alpha dropout (§7.3) -----------------------------------------------------------------------

def _alpha_source(x_shape, rate, keep_prob, seed, stream, offset, noise_shape, mask, training,
                  function):
    """Where an alpha-dropout call's mask comes from: (user Mask or None, call, noise shape)."""
    if mask is not None:
        check_mask_only_args(seed, stream, offset, noise_shape, function)
        user = resolve_user_mask(mask, x_shape, rate, keep_prob)
        return user, None, user.shape
    noise = check_noise_shape(noise_shape, x_shape)
    call = DropoutCall(_size_of(noise), rate, keep_prob, seed if training else 0, stream, offset)
    return None, call, noise


def _fused(x, out, call, bits, mul, add, fill, affine):
    """Sample and apply in one pass over x (mask of x's shape): kept x*mul (+add), else 0 (fill)."""
    mul, add, fill = (kernel_constant(x.dtype, v) for v in (mul, add, fill))
    nthreads = _kernels.get_num_threads()
    return _run_elementwise(x, out, lambda xf, yf: _kernels.forward_op(
        _kview(xf), _kview(yf), bits, call.offset, call.key, call.stream, call.threshold,
        mul, add, fill, affine, nthreads))


def _alpha_apply(x, out, user, call, noise, mul, add=0.0, fill=0.0, affine=False, return_mask=False):
    """y (and the Mask used, scale = mul) for a user mask or a sampled one."""
    if user is None and noise == x.shape:
        bits = np.empty((x.size + 7) // 8, dtype=np.uint8) if return_mask else None
        y = _fused(x, out, call, bits, mul, add, fill, affine)
        used = None if bits is None else Mask(bits, noise, call.keep_prob, mul, seed=call.key,
                                              stream=call.stream, offset=call.offset)
        return y, used
    if user is None:
        user = _sampled_mask(noise, call, scale=mul)
    elif user.scale != mul:  # a user Mask: report the scale alpha dropout used
        user = Mask(user.bits, user.shape, user.keep_prob, mul,
                    seed=user.seed, stream=user.stream, offset=user.offset)
    return _masked(x, user, out, mul, add, fill, affine), user


def alpha_dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                  noise_shape=None, training=True, out=None, return_mask=False, mask=None):
    """Alpha dropout for SELU networks (DESIGN.md §7.3; PyTorch AlphaDropout semantics).

    Dropped elements become the SELU saturation value and the result is mapped by the
    affine correction (a, b) so that zero mean / unit variance input keeps them:
    kept ``a*x + b``, dropped ``a*alpha' + b``.  ``noise_shape`` gives the feature
    (channel) variant, PyTorch's FeatureAlphaDropout.  Identity when not training.
    With return_mask, the Mask's scale is ``a`` (so dropout_backward(grad, mask) is the
    gradient too).
    """
    x = check_input(x)
    training = check_training_flag(training, "training")
    return_mask = check_training_flag(return_mask, "return_mask")
    user, call, noise = _alpha_source(x.shape, rate, keep_prob, seed, stream, offset, noise_shape,
                                      mask, training, "alpha_dropout")
    if out is not None:
        check_out(out, x.shape, x.dtype)
    if not training:
        y = _identity(x, out)
        return (y, None) if return_mask else y
    keep = user.keep_prob if user is not None else call.keep_prob
    y, used = _alpha_apply(x, out, user, call, noise, *alpha_op(keep), return_mask=return_mask)
    return (y, used) if return_mask else y


def alpha_dropout_backward(grad, mask=None, *, rate=None, keep_prob=None, seed=None, stream=0,
                           offset=0, noise_shape=None, out=None):
    """Gradient of alpha dropout: grad * a where kept, 0 where dropped (a from keep_prob)."""
    check_regeneration_args(mask, rate, keep_prob, seed, stream, offset, noise_shape)
    grad = check_input(grad, "grad")
    user, call, noise = _alpha_source(grad.shape, rate, keep_prob, seed, stream, offset,
                                      noise_shape, mask, True, "alpha_dropout_backward")
    if out is not None:
        check_out(out, grad.shape, grad.dtype)
    keep = user.keep_prob if user is not None else call.keep_prob
    return _alpha_apply(grad, out, user, call, noise, alpha_constants(keep)[0])[0]


# -- Gaussian dropout (§7.2) --------------------------------------------------------------------

def _gaussian(x, out, call, sigma):
    nthreads = _kernels.get_num_threads()
    return _run_elementwise(x, out, lambda xf, yf: _kernels.gauss(
        _kview(xf), _kview(yf), call.offset, call.key, call.stream, sigma, nthreads))


def _times_noise(grad, noise, out):
    """grad * eps in the compute precision, rounded once to grad's dtype (§7.2, §7.5)."""
    if grad.dtype != FLOAT16:
        return np.multiply(grad, noise, out=out)
    y = np.multiply(grad.astype(np.float32), noise).astype(FLOAT16)
    if out is None:
        return y
    np.copyto(out, y)
    return out


def gaussian_dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                     training=True, out=None, return_noise=False):
    """Multiplicative Gaussian noise (DESIGN.md §7.2): ``y = x * eps``, eps ~ N(1, rate/(1-rate)).

    The normals come from the same Philox stream (Box-Muller on word pairs), so the same
    (seed, stream, offset) gives the same noise everywhere.  Identity when not training.
    With return_noise, also returns eps (None when not training) in the precision it was
    computed in (float64 for float64 x, float32 otherwise), for
    gaussian_dropout_backward(grad, noise).  float16 x is computed in float32 (§7.5).
    """
    x = check_input(x)
    training = check_training_flag(training, "training")
    return_noise = check_training_flag(return_noise, "return_noise")
    call = DropoutCall(x.size, rate, keep_prob, seed if training else 0, stream, offset)
    sigma = gaussian_sigma(call.keep_prob)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    if not training:
        y = _identity(x, out)
        return (y, None) if return_noise else y
    noise = None
    if return_noise:  # eps itself: the kernel on ones, in the noise precision
        noise = _gaussian(np.ones(x.shape, gaussian_noise_dtype(x.dtype)), None, call, sigma)
    y = _gaussian(x, out, call, sigma)
    return (y, noise) if return_noise else y


def gaussian_dropout_backward(grad, noise=None, *, rate=None, keep_prob=None, seed=None,
                              stream=0, offset=0, out=None):
    """Gradient of gaussian_dropout: grad * eps, from the stored noise or regenerated."""
    check_gaussian_backward_args(noise, rate, keep_prob, seed, stream, offset)
    grad = check_input(grad, "grad")
    if out is not None:
        check_out(out, grad.shape, grad.dtype)
    if noise is not None:
        check_noise_array(noise, grad.shape, gaussian_noise_dtype(grad.dtype))
        return _times_noise(grad, noise, out)
    call = DropoutCall(grad.size, rate, keep_prob, seed, stream, offset)
    return _gaussian(grad, out, call, gaussian_sigma(call.keep_prob))


_kernels._register_general(SimpleNamespace(
    dropout=_dropout, apply_mask=_apply_mask, dropout_backward=_dropout_backward))

dropout = _kernels.dropout
apply_mask = _kernels.apply_mask
dropout_backward = _kernels.dropout_backward

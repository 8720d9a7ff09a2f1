"""The general path of the public functions: every call the compiled fast path does
not take (odd layouts, array-likes, generators, noise shapes, user masks, float16, and
every invalid argument).

Every argument is checked first, by the one checker of each function
(fastdrop._validate.check_<name>_args or fastdrop.mask.check_<name>_args) that
fastdrop.reference calls too, before any C code runs.  Arrays reach the
kernels as 1-D C-contiguous views, and an input or output that is not C-contiguous goes
through a contiguous copy, so the element order is always the logical C order of the
random-stream contract.  The threshold, scales and constants come from fastdrop._kernels,
their one definition.
"""
import math

import numpy as np

from . import _kernels
from ._validate import (FLOAT16, check_gaussian_dropout_args,
                        check_gaussian_dropout_backward_args, check_sample_mask_args,
                        gaussian_noise_dtype)
from .mask import (Mask, check_alpha_dropout_args, check_alpha_dropout_backward_args,
                   check_apply_mask_args, check_dropout_args, check_dropout_backward_args)

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
    """The array the kernels take: float16 data as its uint16 bit patterns."""
    return a.view(np.uint16) if a.dtype == FLOAT16 else a


def _eval_output(x, keep_prob, inverted, out):
    """Test-time output: x (inverted) or x * keep_prob (classical); samples nothing."""
    if not inverted:
        if x.dtype == FLOAT16:  # in float32, rounded once
            y = np.asarray(np.multiply(x.astype(np.float32), np.float32(keep_prob)).astype(FLOAT16))
            if out is None:
                return y
            np.copyto(out, y)
            return out
        return np.asarray(np.multiply(x, x.dtype.type(keep_prob), out=out))
    if out is None:
        return x
    np.copyto(out, x)
    return out


# -- sampling -----------------------------------------------------------------------------

def _size_of(shape):
    return math.prod(shape)  # Python ints: exact for any shape


def _sampled_mask(shape, call, scale):
    """The Mask of `shape` sampled from `call`, recording `scale`."""
    size = _size_of(shape)
    bits = np.empty((size + 7) // 8, dtype=np.uint8)
    _kernels.sample_mask(bits, size, call.offset, call.key, call.stream,
                         _kernels.keep_threshold(call.keep_prob), _kernels.get_num_threads())
    return Mask(bits, shape, call.keep_prob, scale,
                seed=call.key, stream=call.stream, offset=call.offset)


def sample_mask(shape, rate, keep_prob, seed, stream, offset, noise_shape):
    noise, call = check_sample_mask_args(shape, rate, keep_prob, seed, stream, offset, noise_shape)
    return _sampled_mask(noise, call, _kernels.dropout_scale(call.keep_prob, True))


def broadcast_plan(shape, noise_shape):
    """Noise-shape geometry for the broadcast kernel: (outer dims, their mask strides, run, period).

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
    nthreads = _kernels.get_num_threads()
    bits = mask.bits
    if mask.shape == x.shape and not affine and x.dtype != FLOAT16:
        return _run_elementwise(x, out, lambda xf, yf: _kernels.apply_mask(xf, yf, bits, mul,
                                                                           nthreads))
    dims, strides, run, period = broadcast_plan(x.shape, mask.shape)
    return _run_elementwise(x, out, lambda xf, yf: _kernels.apply_mask_broadcast(
        _kview(xf), _kview(yf), bits, mask.size, run, period, dims, strides, mul, add, fill,
        affine, nthreads))


def _identity(x, out):
    """Eval-mode output of the variants that are the identity at test time: x itself, or a copy in out."""
    if out is None:
        return x
    np.copyto(out, x)
    return out


def _fused(x, out, call, bits, mul, add=0.0, fill=0.0, affine=False):
    """Sample and apply in one pass over x (mask of x's shape): kept x*mul (+add), else 0 (fill)."""
    nthreads = _kernels.get_num_threads()
    threshold = _kernels.keep_threshold(call.keep_prob)
    if not affine:
        return _run_elementwise(x, out, lambda xf, yf: _kernels.dropout(
            _kview(xf), _kview(yf), bits, call.offset, call.key, call.stream, threshold, mul,
            nthreads))
    return _run_elementwise(x, out, lambda xf, yf: _kernels.alpha_dropout(
        _kview(xf), _kview(yf), bits, call.offset, call.key, call.stream, threshold,
        mul, add, fill, affine, nthreads))


def _new_bits(size, wanted):
    return np.empty((size + 7) // 8, dtype=np.uint8) if wanted else None


# -- dropout ------------------------------------------------------------------------------

def _packed(user, inverted=True):
    """check_user_mask's pair as a Mask: a Mask as it is, a boolean array packed with its scale."""
    checked, bool_keep_prob = user
    if bool_keep_prob is None:
        return checked
    return Mask.from_bool(checked, bool_keep_prob, inverted=inverted)


def _dropout(x, training, inverted, out, return_mask, user, call, noise):
    if user is not None:
        user = _packed(user, inverted)
        if not training:
            y = _eval_output(x, user.keep_prob, inverted, out)
            return (y, None) if return_mask else y
        y = _masked(x, user, out, user.scale)
        return (y, user) if return_mask else y
    if not training:
        y = _eval_output(x, call.keep_prob, inverted, out)
        return (y, None) if return_mask else y
    scale = _kernels.dropout_scale(call.keep_prob, inverted)
    if noise != x.shape:
        sampled = _sampled_mask(noise, call, scale)
        y = _masked(x, sampled, out, scale)
        return (y, sampled) if return_mask else y
    bits = _new_bits(x.size, return_mask)
    y = _fused(x, out, call, bits, scale)
    if not return_mask:
        return y
    return y, Mask(bits, x.shape, call.keep_prob, scale,
                   seed=call.key, stream=call.stream, offset=call.offset)


def dropout(x, rate, keep_prob, seed, stream, offset, training, inverted, out, return_mask,
            noise_shape, mask):
    x, training, inverted, return_mask, user, call, noise = check_dropout_args(
        x, rate, keep_prob, seed, stream, offset, training, inverted, out, return_mask,
        noise_shape, mask)
    return _dropout(x, training, inverted, out, return_mask, user, call, noise)


def apply_mask(x, mask, rate, keep_prob, inverted, out):
    x, inverted, user = check_apply_mask_args(x, mask, rate, keep_prob, inverted, out)
    user = _packed(user, inverted)
    return _masked(x, user, out, user.scale)


def dropout_backward(grad, mask, rate, keep_prob, seed, stream, offset, inverted, out,
                     noise_shape):
    grad, inverted, user, call, noise = check_dropout_backward_args(
        grad, mask, rate, keep_prob, seed, stream, offset, inverted, out, noise_shape)
    if user is not None:
        user = _packed(user, inverted)
        return _masked(grad, user, out, user.scale)
    return _dropout(grad, True, inverted, out, False, None, call, noise)


# -- alpha dropout ------------------------------------------------------------------------

def _alpha_apply(x, out, user, call, noise, mul, add=0.0, fill=0.0, affine=False, return_mask=False):
    """y (and the Mask used, scale = mul) for a user mask or a sampled one."""
    if user is None and noise == x.shape:
        bits = _new_bits(x.size, return_mask)
        y = _fused(x, out, call, bits, mul, add, fill, affine)
        used = None if bits is None else Mask(bits, noise, call.keep_prob, mul, seed=call.key,
                                             stream=call.stream, offset=call.offset)
        return y, used
    if user is None:
        user = _sampled_mask(noise, call, mul)
    elif user.scale != mul:  # a user Mask: report the scale alpha dropout used
        user = Mask(user.bits, user.shape, user.keep_prob, mul,
                    seed=user.seed, stream=user.stream, offset=user.offset)
    return _masked(x, user, out, mul, add, fill, affine), user


def alpha_dropout(x, rate, keep_prob, seed, stream, offset, noise_shape, training, out,
                  return_mask, mask):
    x, training, return_mask, user, call, noise = check_alpha_dropout_args(
        x, rate, keep_prob, seed, stream, offset, noise_shape, training, out, return_mask, mask)
    user = None if user is None else _packed(user)
    if not training:
        y = _identity(x, out)
        return (y, None) if return_mask else y
    keep = user.keep_prob if user is not None else call.keep_prob
    mul, add, fill = _kernels.alpha_constants(keep)
    y, used = _alpha_apply(x, out, user, call, noise, mul, add, fill, 0.0 < keep < 1.0,
                           return_mask=return_mask)
    return (y, used) if return_mask else y


def alpha_dropout_backward(grad, mask, rate, keep_prob, seed, stream, offset, noise_shape, out):
    grad, user, call, noise = check_alpha_dropout_backward_args(
        grad, mask, rate, keep_prob, seed, stream, offset, noise_shape, out)
    user = None if user is None else _packed(user)
    keep = user.keep_prob if user is not None else call.keep_prob
    return _alpha_apply(grad, out, user, call, noise, _kernels.alpha_scale(keep))[0]


# -- Gaussian dropout ---------------------------------------------------------------------

def _gaussian(x, out, call):
    nthreads = _kernels.get_num_threads()
    sigma = _kernels.gaussian_sigma(call.keep_prob)
    return _run_elementwise(x, out, lambda xf, yf: _kernels.gaussian_dropout(
        _kview(xf), _kview(yf), call.offset, call.key, call.stream, sigma, nthreads))


def _times_noise(grad, noise, out):
    """grad * eps in the compute precision, rounded once to grad's dtype."""
    if grad.dtype != FLOAT16:
        return np.asarray(np.multiply(grad, noise, out=out))  # 0-d in, 0-d array out
    y = np.asarray(np.multiply(grad.astype(np.float32), noise).astype(FLOAT16))
    if out is None:
        return y
    np.copyto(out, y)
    return out


def gaussian_dropout(x, rate, keep_prob, seed, stream, offset, training, out, return_noise):
    x, training, return_noise, call = check_gaussian_dropout_args(
        x, rate, keep_prob, seed, stream, offset, training, out, return_noise)
    if not training:
        y = _identity(x, out)
        return (y, None) if return_noise else y
    noise = None
    if return_noise:  # eps itself: the kernel on ones, in the noise precision
        noise = _gaussian(np.ones(x.shape, gaussian_noise_dtype(x.dtype)), None, call)
    y = _gaussian(x, out, call)
    return (y, noise) if return_noise else y


def gaussian_dropout_backward(grad, noise, rate, keep_prob, seed, stream, offset, out):
    grad, noise, call = check_gaussian_dropout_backward_args(grad, noise, rate, keep_prob, seed,
                                                             stream, offset, out)
    if noise is not None:
        return _times_noise(grad, noise, out)
    return _gaussian(grad, out, call)

"""The public dropout functions, running the C kernels (DESIGN.md §5).

Every argument is checked here (through fastdrop._args, shared with the reference)
before any C code runs; arrays reach the kernels as 1-D C-contiguous views, and an
input or output that is not C-contiguous goes through a contiguous copy, so the
element order is always the logical C order of DESIGN.md §2.
"""
import os
import warnings
from types import SimpleNamespace

import numpy as np

from . import _kernels
from ._args import (DEFAULT_RATE, DropoutCall, check_input, check_mask, check_out,
                    check_regeneration_args, check_shape, check_training_flag, scale_in)
from ._mask import Mask

SIMD_LEVELS = ("scalar", "avx2", "avx512")



# -- configuration ----------------------------------------------------------------------

def cpu_simd_levels():
    """The SIMD levels this CPU (and build) can run, lowest first."""
    return SIMD_LEVELS[:_kernels.cpu_level() + 1]


def simd_level():
    """The SIMD level the kernels run: "avx512", "avx2" or "scalar"."""
    return SIMD_LEVELS[_kernels.get_level()]


def set_simd_level(name):
    """Run the kernels at `name` (no higher than the CPU has); for tests and benchmarks."""
    if name not in SIMD_LEVELS:
        raise ValueError(f"SIMD level must be one of {SIMD_LEVELS}, got {name!r}")
    level = SIMD_LEVELS.index(name)
    if level > _kernels.cpu_level():
        raise ValueError(f"SIMD level {name!r} is not available on this CPU "
                         f"(it has {cpu_simd_levels()[-1]!r})")
    _kernels.set_level(level)


def _init_simd_from_environment():
    _kernels.set_level(_kernels.cpu_level())
    forced = os.environ.get("FASTDROP_SIMD", "").strip().lower()
    if not forced:
        return
    if forced not in SIMD_LEVELS:
        raise ValueError(f"FASTDROP_SIMD must be one of {SIMD_LEVELS}, got {forced!r}")
    if SIMD_LEVELS.index(forced) > _kernels.cpu_level():
        warnings.warn(f"FASTDROP_SIMD={forced} is above what this CPU has; "
                      f"using {cpu_simd_levels()[-1]}", RuntimeWarning, stacklevel=3)
        return
    set_simd_level(forced)


_init_simd_from_environment()


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


def _eval_output(x, keep_prob, inverted, out):
    """§1 test-time output: x (inverted) or x * keep_prob (classical); samples nothing."""
    if not inverted:
        return np.multiply(x, x.dtype.type(keep_prob), out=out)
    if out is None:
        return x
    np.copyto(out, x)
    return out


# -- the general path -------------------------------------------------------------------
#
# The public dropout / apply_mask / dropout_backward are the Cython front door in
# _kernels.pyx, which handles plain arrays with plain arguments in C and hands every
# other call (odd layouts, array-likes, generators, and all bad input) to these.

def sample_mask(shape, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0):
    """Sample a bit-packed `Mask` of `shape` from (seed, stream, offset)."""
    shape = check_shape(shape)
    size = int(np.prod(shape, dtype=object)) if shape else 1
    call = DropoutCall(size, rate, keep_prob, seed, stream, offset)
    bits = np.empty((size + 7) // 8, dtype=np.uint8)
    _kernels.sample(bits, size, call.offset, call.key, call.stream, call.threshold,
                    _kernels.get_num_threads())
    return Mask(bits, shape, call.keep_prob, call.scale,
                seed=call.key, stream=call.stream, offset=call.offset)


def _dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
            training=True, inverted=True, out=None, return_mask=False):
    """Dropout of `x`: kept elements scaled (by 1/keep_prob when inverted), others +0.0.

    Returns y, or (y, Mask) with return_mask (Mask is None when not training).  In eval
    mode (training=False) nothing is sampled and inverted dropout returns x itself
    (unless out is given).
    """
    x = check_input(x)
    training = check_training_flag(training, "training")
    inverted = check_training_flag(inverted, "inverted")
    return_mask = check_training_flag(return_mask, "return_mask")
    call = DropoutCall(x.size, rate, keep_prob, seed if training else 0, stream, offset,
                       inverted)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    if not training:
        y = _eval_output(x, call.keep_prob, inverted, out)
        return (y, None) if return_mask else y
    bits = np.empty((x.size + 7) // 8, dtype=np.uint8) if return_mask else None
    scale = float(scale_in(x.dtype, call.scale))
    nthreads = _kernels.get_num_threads()
    y = _run_elementwise(x, out, lambda xf, yf: _kernels.forward(
        xf, yf, bits, call.offset, call.key, call.stream, call.threshold, scale, nthreads))
    if not return_mask:
        return y
    return y, Mask(bits, x.shape, call.keep_prob, call.scale,
                   seed=call.key, stream=call.stream, offset=call.offset)


def _apply_mask(x, mask, *, out=None):
    """x * mask.scale where the mask keeps, +0.0 elsewhere."""
    x = check_input(x)
    check_mask(mask, x.shape)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    scale = float(scale_in(x.dtype, mask.scale))
    nthreads = _kernels.get_num_threads()
    return _run_elementwise(x, out, lambda xf, yf: _kernels.apply(
        xf, yf, mask.bits, scale, nthreads))


def _dropout_backward(grad, mask=None, *, rate=None, keep_prob=None, seed=None, stream=0,
                     offset=0, inverted=True, out=None):
    """Gradient of dropout: grad * scale where kept, else 0.

    From a stored `Mask`, or (mask=None) by regenerating the same mask from
    rate/keep_prob, seed, stream and offset without storing it.
    """
    check_regeneration_args(mask, rate, keep_prob, seed, stream, offset)
    if mask is not None:
        return _apply_mask(grad, mask, out=out)
    return _dropout(grad, rate, keep_prob=keep_prob, seed=seed, stream=stream, offset=offset,
                   inverted=inverted, out=out)


_kernels._register_general(SimpleNamespace(
    dropout=_dropout, apply_mask=_apply_mask, dropout_backward=_dropout_backward))

dropout = _kernels.dropout
apply_mask = _kernels.apply_mask
dropout_backward = _kernels.dropout_backward
get_num_threads = _kernels.get_num_threads
set_num_threads = _kernels.set_num_threads

"""fastdrop on Dask arrays: the same bits on any chunking and any cluster.

A mask is a pure function of (seed, stream, global element index) (DESIGN.md §2), so each
chunk computes exactly its part of the whole array's result: ``f(x).compute()`` equals the
in-memory ``fastdrop.f(x.compute())`` bit for bit, whatever the chunks, the scheduler or
the number of workers.  Every function is lazy (nothing runs until ``.compute()``,
``.persist()`` or ``da.store``) and runs one box-kernel call per chunk (DESIGN.md §8).
A noise shape samples the box of the small mask each chunk needs and broadcasts it.

``seed`` must be an int (or a Generator, drawn once here): with ``seed=None`` every chunk
would need to agree on one fresh key, so it is refused.  Needs the ``dask`` extra:
``pip install "fastdrop[dask]"``.
"""
try:
    import dask
    import dask.array as da
except ImportError as error:  # pragma: no cover - exercised by a test without dask
    raise ImportError('fastdrop.dask needs dask[array] and distributed: '
                      'pip install "fastdrop[dask]"') from error

import math
from dataclasses import dataclass

import numpy as np

import fastdrop
from . import _kernels
from ._validate import resolve_seed
from .theory import ensemble
from ._validate import (DEFAULT_RATE, FLOAT16, FLOAT_DTYPES, SamplingArgs,
                        check_gaussian_keep_prob, check_noise_shape, check_shape,
                        check_training_flag)
from .mask import Mask

__all__ = ["dropout", "dropout_backward", "alpha_dropout", "alpha_dropout_backward",
           "gaussian_dropout", "gaussian_dropout_backward", "sample_mask", "mc_predict"]


# -- checking ------------------------------------------------------------------------------

def _check_seed(seed, function):
    if seed is None:
        raise ValueError(f"{function}: seed must be given (an int): every chunk of a dask "
                         f"computation must draw from one key, so seed=None (a fresh key) "
                         f"is not possible")
    return seed


def _check_array(x, name):
    if not isinstance(x, da.Array):
        raise TypeError(f"{name} must be a dask.array.Array, got {type(x).__name__} "
                        f"(fastdrop's own functions take NumPy arrays)")
    if x.dtype not in FLOAT_DTYPES or not x.dtype.isnative:
        raise TypeError(f"{name} must have a native float16, float32 or float64 dtype, "
                        f"got {x.dtype}")
    if any(math.isnan(c) for chunks in x.chunks for c in chunks):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")
    return x


# -- one chunk -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    """What every chunk of one call computes: the noise of the whole array of `shape`."""
    kind: str            # "mask": kept x*mul (+add), dropped +0.0 (fill); "gauss": x*eps
    shape: tuple         # the whole array's shape
    noise_shape: tuple   # the whole mask's shape (== shape: sampled per element)
    key: int
    stream: int
    offset: int
    threshold: int = 0
    keep_prob: float = 1.0
    mul: float = 1.0     # float64 constants (§3, §7.3); rounded to the dtype in the kernels
    add: float = 0.0
    fill: float = 0.0
    affine: bool = False
    sigma: float = 0.0


def _rows_of(a):
    """a's memory as one 1-D run and its element pitches, when its rows are contiguous and
    in C order (a chunk sliced out of a larger array); otherwise a C-order copy."""
    item = a.itemsize
    if (a.ndim and a.size and a.flags.aligned and a.strides[-1] == item
            and all(s > 0 and s % item == 0 for s in a.strides)):
        pitch = [s // item for s in a.strides]
        if all(pitch[k] >= pitch[k + 1] * a.shape[k + 1] for k in range(a.ndim - 1)):
            span = sum((n - 1) * p for n, p in zip(a.shape, pitch)) + 1
            return np.lib.stride_tricks.as_strided(a, (span,), (item,)), pitch
    return np.ascontiguousarray(a).reshape(-1), None


def _kview(a):
    return a.view(np.uint16) if a.dtype == FLOAT16 else a


def _block_start(block_info):
    return tuple(lo for lo, _ in block_info[0]["array-location"])


def _noise_box(plan, start, shape):
    """The box of the whole mask that a chunk at `start` of `shape` uses (§7.1)."""
    box_start = tuple(s if n == g else 0 for s, n, g in zip(start, plan.noise_shape, plan.shape))
    box_shape = tuple(b if n == g else 1 for b, n, g in zip(shape, plan.noise_shape, plan.shape))
    return box_start, box_shape


def _sample_box(plan, start, shape):
    """The keep bits of a box of the whole mask, packed in the box's C order."""
    bits = np.empty((math.prod(shape) + 7) // 8, dtype=np.uint8)
    _kernels.box_sample(bits, plan.noise_shape, start, shape, plan.offset, plan.key,
                        plan.stream, plan.threshold, _kernels.get_num_threads())
    return bits


def _noise_chunk(block, block_info=None, plan=None):
    """One chunk of the result: one box-kernel call (sampled per element), or the chunk's
    box of a noise-shape mask broadcast over it."""
    start = _block_start(block_info)
    nthreads = _kernels.get_num_threads()
    if plan.kind == "mask" and plan.noise_shape != plan.shape:
        box_start, box_shape = _noise_box(plan, start, block.shape)
        mask = Mask(_sample_box(plan, box_start, box_shape), box_shape, plan.keep_prob, plan.mul)
        if plan.affine:
            return fastdrop.alpha_dropout(block, mask=mask)
        return fastdrop.apply_mask(block, mask)
    x, pitch = _rows_of(block)
    y = np.empty(block.shape, block.dtype)
    if plan.kind == "gauss":
        _kernels.box_gauss(_kview(x), _kview(y.reshape(-1)), plan.shape, start, block.shape,
                           pitch, None, plan.offset, plan.key, plan.stream, plan.sigma, nthreads)
        return y
    _kernels.box_forward_op(_kview(x), _kview(y.reshape(-1)), plan.shape, start, block.shape,
                            pitch, None, plan.offset, plan.key, plan.stream, plan.threshold,
                            plan.mul, plan.add, plan.fill, plan.affine, nthreads)
    return y


def _map_noise(x, plan):
    return x.map_blocks(_noise_chunk, plan=plan, dtype=x.dtype,
                        meta=np.empty((0,) * x.ndim, x.dtype))


def _mask_plan(x, rate, keep_prob, seed, stream, offset, noise_shape, inverted, op):
    """The plan of a masked call; op(keep_prob) -> (mul, add, fill, affine) or None for
    dropout's scale."""
    noise = check_noise_shape(noise_shape, x.shape)
    call = SamplingArgs(math.prod(noise), rate, keep_prob, seed, stream, offset)
    if op is None:
        mul, add, fill, affine = _kernels.dropout_scale(call.keep_prob, inverted), 0.0, 0.0, False
    else:
        mul, add, fill, affine = op(call.keep_prob)
    return _Plan("mask", x.shape, noise, call.key, call.stream, call.offset,
                 _kernels.keep_threshold(call.keep_prob), call.keep_prob, mul, add, fill, affine)


def _alpha_op(keep_prob):
    """(mul, add, fill, affine) of alpha dropout; at keep_prob 0 and 1 a plain scale, so a
    kept -0.0 stays -0.0 (x * 1, not x * 1 + 0)."""
    mul, add, fill = _kernels.alpha_constants(keep_prob)
    return mul, add, fill, 0.0 < keep_prob < 1.0


# -- the public functions ------------------------------------------------------------------

def dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
            training=True, inverted=True, noise_shape=None):
    """`fastdrop.dropout` of a dask array, lazily; equal bit for bit to the in-memory call
    on the whole array for every chunking.  `seed` is required."""
    x = _check_array(x, "x")
    training = check_training_flag(training, "training")
    inverted = check_training_flag(inverted, "inverted")
    _check_seed(seed, "dropout")
    plan = _mask_plan(x, rate, keep_prob, seed, stream, offset, noise_shape, inverted, None)
    if not training:
        if inverted:
            return x
        return x.map_blocks(fastdrop.dropout, keep_prob=plan.keep_prob, training=False,
                            inverted=False, dtype=x.dtype)
    return _map_noise(x, plan)


def dropout_backward(grad, rate=None, *, keep_prob=None, seed=None, stream=0, offset=0,
                     inverted=True, noise_shape=None):
    """Gradient of `dropout` by regenerating its mask chunk by chunk (nothing stored)."""
    grad = _check_array(grad, "grad")
    _check_seed(seed, "dropout_backward")
    if rate is None and keep_prob is None:
        raise TypeError("dropout_backward needs rate or keep_prob")
    return _map_noise(grad, _mask_plan(grad, rate, keep_prob, seed, stream, offset, noise_shape,
                                       check_training_flag(inverted, "inverted"), None))


def alpha_dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                  noise_shape=None, training=True):
    """`fastdrop.alpha_dropout` (DESIGN.md §7.3) of a dask array, lazily, bit for bit."""
    x = _check_array(x, "x")
    training = check_training_flag(training, "training")
    _check_seed(seed, "alpha_dropout")
    plan = _mask_plan(x, rate, keep_prob, seed, stream, offset, noise_shape, True, _alpha_op)
    return _map_noise(x, plan) if training else x


def alpha_dropout_backward(grad, rate=None, *, keep_prob=None, seed=None, stream=0, offset=0,
                           noise_shape=None):
    """Gradient of `alpha_dropout`: grad * a where kept, +0.0 where dropped (regenerated)."""
    grad = _check_array(grad, "grad")
    _check_seed(seed, "alpha_dropout_backward")
    if rate is None and keep_prob is None:
        raise TypeError("alpha_dropout_backward needs rate or keep_prob")
    return _map_noise(grad, _mask_plan(grad, rate, keep_prob, seed, stream, offset, noise_shape,
                                       True, lambda q: (_kernels.alpha_scale(q), 0.0, 0.0, False)))


def _gauss_plan(x, rate, keep_prob, seed, stream, offset):
    call = SamplingArgs(math.prod(x.shape), rate, keep_prob, seed, stream, offset)
    keep = check_gaussian_keep_prob(call.keep_prob)
    return _Plan("gauss", x.shape, x.shape, call.key, call.stream, call.offset,
                 keep_prob=keep, sigma=_kernels.gaussian_sigma(keep))


def gaussian_dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                     training=True):
    """`fastdrop.gaussian_dropout` (DESIGN.md §7.2) of a dask array, lazily, bit for bit."""
    x = _check_array(x, "x")
    training = check_training_flag(training, "training")
    _check_seed(seed, "gaussian_dropout")
    plan = _gauss_plan(x, rate, keep_prob, seed, stream, offset)
    return _map_noise(x, plan) if training else x


def gaussian_dropout_backward(grad, rate=None, *, keep_prob=None, seed=None, stream=0,
                              offset=0):
    """Gradient of `gaussian_dropout`: grad * eps with eps regenerated chunk by chunk."""
    grad = _check_array(grad, "grad")
    _check_seed(seed, "gaussian_dropout_backward")
    if rate is None and keep_prob is None:
        raise TypeError("gaussian_dropout_backward needs rate or keep_prob")
    return _map_noise(grad, _gauss_plan(grad, rate, keep_prob, seed, stream, offset))


def _mask_chunk(block_info=None, plan=None):
    shape = block_info[None]["chunk-shape"]
    start = tuple(lo for lo, _ in block_info[None]["array-location"])
    bits = _sample_box(plan, start, shape)
    return np.unpackbits(bits, count=math.prod(shape), bitorder="little").view(bool).reshape(shape)


def sample_mask(shape, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                chunks="auto"):
    """The boolean mask (True = kept) of `fastdrop.sample_mask(shape, ...)` as a lazy dask
    array with the given chunks: ``sample_mask(...).compute()`` equals
    ``fastdrop.sample_mask(shape, ...).to_bool()``."""
    shape = check_shape(shape)
    _check_seed(seed, "sample_mask")
    call = SamplingArgs(math.prod(shape), rate, keep_prob, seed, stream, offset)
    plan = _Plan("mask", shape, shape, call.key, call.stream, call.offset,
                 _kernels.keep_threshold(call.keep_prob), call.keep_prob)
    chunks = da.core.normalize_chunks(chunks, shape, dtype=np.dtype(bool))
    return da.map_blocks(_mask_chunk, plan=plan, chunks=chunks, dtype=bool,
                         meta=np.empty((0,) * len(shape), bool))


# -- distributed MC prediction -------------------------------------------------------------

_MC_FIELDS = ("mean", "std", "predictive_entropy", "mutual_information", "expected_entropy")


def _mc_rows(block, model, T, key, total_rows, chunk_bytes, block_info=None):
    """The MC fields of one block of rows, side by side: mean | std | the three entropies."""
    first_row = block_info[0]["array-location"][0][0]
    r = ensemble.mc_predict(model, block, T, seed=key, chunk_bytes=chunk_bytes,
                            row_offset=first_row, total_rows=total_rows)
    return np.concatenate([r.mean, r.std, r.predictive_entropy[:, None],
                           r.mutual_information[:, None], r.expected_entropy[:, None]], axis=1)


def mc_predict(model, X, T, *, seed=None, chunk_bytes=None):
    """Monte Carlo dropout prediction of the rows of a dask array ``X`` (chunked by rows).

    Returns a `fastdrop.theory.MCResult` whose mean, std, predictive_entropy,
    mutual_information and expected_entropy are lazy dask arrays chunked like X's rows.
    Each block is `fastdrop.theory.mc_predict` of its rows with ``row_offset`` at the
    block's first row and ``total_rows=len(X)``: the whole batch's masks (layer i, pass t,
    global row r: DESIGN.md §8.2), row tiles and pass groups, so whatever the chunking and
    the workers, the fields equal those of ``fastdrop.theory.mc_predict(model, X.compute(),
    T, seed=seed)`` bit for bit (with the same BLAS on the same kind of CPU).
    The model enters the graph once, as one `dask.delayed` key that every block depends
    on: a distributed scheduler sends it to each worker once, not once per task.
    """
    X = _check_array(X, "X")
    _check_seed(seed, "mc_predict")
    key = resolve_seed(seed)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must have shape (batch, features) with batch >= 1, got {X.shape}")
    if chunk_bytes is None:
        chunk_bytes = ensemble._DEFAULT_CHUNK_BYTES
    # The fields' widths and dtype: the same call on one row, here, on zeros.
    probe = ensemble.mc_predict(model, np.zeros((1, X.shape[1]), X.dtype), T, seed=key)
    dtypes = [getattr(probe, name).dtype for name in _MC_FIELDS]
    classes, dtype = probe.mean.shape[1], np.result_type(*dtypes)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    model_key = dask.delayed(model, pure=True, traverse=False)
    width = 2 * classes + 3
    fields = X.map_blocks(_mc_rows, model_key, T, key, X.shape[0], chunk_bytes,
                          chunks=(X.chunks[0], (width,)), dtype=dtype,
                          meta=np.empty((0, 0), dtype))
    columns = (slice(0, classes), slice(classes, 2 * classes), 2 * classes, 2 * classes + 1,
               2 * classes + 2)
    return ensemble.MCResult(*(fields[:, c].astype(d) for c, d in zip(columns, dtypes)),
                             samples=None, T=int(T), seed=key)

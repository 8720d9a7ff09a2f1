"""Argument checks shared by the general path and `fastdrop.reference`.

Each public function has one checker (`check_<name>_args`, here or in `fastdrop.mask`)
that both call, so a bad argument gets the same `TypeError`/`ValueError` (the same first
one, where several are bad) from either, before any random word is drawn or any C code
runs.
(The compiled fast path takes only calls whose arguments are plainly valid and hands
every other call to the general path, so it raises nothing of its own.)  Nothing here
knows `fastdrop.Mask`; the checks that do live next to it in `fastdrop.mask`.  The
numbers derived from valid arguments (keep threshold, scale, alpha-dropout constants,
Gaussian sigma) are not computed here: see `fastdrop._kernels`.
"""
import math
import numbers
import secrets
import sys

import numpy as np

U64 = 1 << 64

#: The largest buffer that could exist: no more bytes than sys.maxsize, nor than a 64-bit
#: user address space spans (2**56 bytes with 5-level paging; 2**47 with 4 levels).
MAX_BUFFER_BYTES = min(sys.maxsize, 1 << 56)

#: dtypes the kernels take; float16 is computed in float32.
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)


class _DefaultRate(float):
    """The default `rate=0.5`, told apart from an explicit 0.5 so rate + keep_prob is caught."""

    def __repr__(self):
        return "0.5"


DEFAULT_RATE = _DefaultRate(0.5)


def given_rate(rate, keep_prob):
    """The rate a call asks for: the default counts only where keep_prob is not given."""
    if rate is DEFAULT_RATE:
        return None if keep_prob is not None else float(rate)
    return rate


def resolve_keep_prob(rate, keep_prob, *, required=True):
    """Return keep_prob as a float in [0, 1] from exactly one of `rate` / `keep_prob`."""
    rate = given_rate(rate, keep_prob)
    if rate is not None and keep_prob is not None:
        raise TypeError("pass either rate or keep_prob, not both")
    if rate is None and keep_prob is None:
        if required:
            raise TypeError("one of rate or keep_prob is required")
        return None
    name, value = ("rate", rate) if rate is not None else ("keep_prob", keep_prob)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float range
        raise ValueError(f"{name} must be in [0, 1], got {value!r}") from None
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return 1.0 - value if name == "rate" else value


def compute_dtype(dtype):
    """The precision an array of `dtype` is computed in: float16 in float32."""
    return FLOAT32 if np.dtype(dtype) == FLOAT16 else np.dtype(dtype)


def gaussian_noise_dtype(dtype):
    """The Gaussian noise of float64 arrays is float64; of float32 and float16 arrays float32."""
    return compute_dtype(dtype)


def _u64(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if not (0 <= value < U64):
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return value


def resolve_seed(seed):
    """The 64-bit Philox key of `seed`, the one mapping every function uses.

    - None: 64 fresh bits of OS entropy (``secrets.randbits(64)``).
    - int (or numpy integer) in [0, 2**64): the key itself.
    - numpy.random.SeedSequence: ``int(seed.generate_state(1, numpy.uint64)[0])``, i.e. the
      key words k0, k1 are the first two uint32 words of ``generate_state``.  Deterministic:
      the same SeedSequence (entropy and spawn key) always gives the same key.
    - numpy.random.BitGenerator: the key of the SeedSequence it was made from (its
      ``seed_seq``), whatever its state, so it is deterministic too; one made by legacy
      seeding has none and is a ValueError.
    - numpy.random.Generator: one 64-bit word drawn from it
      (``seed.integers(0, 2**64, dtype=numpy.uint64)``), which advances it: consecutive
      calls get different keys, as they would from any draw.
    Anything else, bool and float included, is a TypeError naming `seed`.
    """
    if seed is None:
        return secrets.randbits(64)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, U64, dtype=np.uint64))
    if isinstance(seed, np.random.BitGenerator):
        sequence = seed.seed_seq
        if not isinstance(sequence, np.random.SeedSequence):
            raise ValueError(f"seed: this {type(seed).__name__} was not made from a SeedSequence "
                             "(legacy seeding), so it has no key; pass an int, a SeedSequence "
                             "or a Generator")
        seed = sequence
    if isinstance(seed, np.random.SeedSequence):
        return int(seed.generate_state(1, np.uint64)[0])
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError("seed must be an int in [0, 2**64), None, or a numpy Generator, "
                        f"SeedSequence or BitGenerator, got {type(seed).__name__}")
    return _u64(seed, "seed")


def check_stream(stream):
    return _u64(stream, "stream")


def check_offset(offset, size):
    offset = _u64(offset, "offset")
    if offset + size > U64:
        raise ValueError(f"offset + size must be at most 2**64, got {offset} + {size}")
    return offset


def check_shape(shape):
    """A tuple of non-negative ints from an int or a sequence of ints."""
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints, got {type(shape).__name__}") from None
    for d in dims:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"shape must contain ints, got {type(d).__name__}")
        if d < 0:
            raise ValueError(f"shape must not contain negative sizes, got {dims}")
    return tuple(int(d) for d in dims)


def check_mask_size(shape, name="shape"):
    """A mask of `shape` (1 bit per element) must fit in a buffer that could exist."""
    nbytes = (math.prod(shape) + 7) // 8
    if nbytes > MAX_BUFFER_BYTES:
        raise ValueError(f"{name} {tuple(shape)} needs a mask of {nbytes} bytes, more than "
                         f"any buffer can hold ({MAX_BUFFER_BYTES})")
    return shape


def check_input(x, name="x"):
    """An ndarray of a supported float dtype; anything else is a TypeError (no silent cast)."""
    if isinstance(x, np.ndarray):
        arr = x
    else:
        if x is None:
            raise TypeError(f"{name} must be an array, got None")
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be an array of floats: {exc}") from None
    if arr.dtype.kind == "f" and not arr.dtype.isnative and arr.dtype.newbyteorder("=") in FLOAT_DTYPES:
        raise TypeError(f"{name} must be in native byte order, got {arr.dtype.str}")
    if arr.dtype not in FLOAT_DTYPES:
        kinds = {"b": "bool", "i": "integer", "u": "integer", "c": "complex", "O": "object"}
        kind = kinds.get(arr.dtype.kind, str(arr.dtype))
        raise TypeError(f"{name} must be float32 or float64 (or float16), got {kind} dtype "
                        f"{arr.dtype} (cast it explicitly; fastdrop never casts silently)")
    return arr


def check_out(out, shape, dtype):
    """`out` must be a writeable ndarray of exactly the result's shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")
    return out


def broadcasts_to(noise_shape, shape):
    """Same rank, and along every axis the noise size is 1 or the array's size."""
    return len(noise_shape) == len(shape) and all(n == 1 or n == s for n, s in zip(noise_shape, shape))


def check_noise_shape(noise_shape, shape, name="noise_shape"):
    """The noise shape as a tuple: None -> `shape`; a None entry -> the array's size there."""
    shape = tuple(shape)
    if noise_shape is None:
        return shape
    if isinstance(noise_shape, (numbers.Integral, np.integer)) and not isinstance(noise_shape, (bool, np.bool_)):
        noise_shape = (noise_shape,)
    try:
        dims = tuple(noise_shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints (or None entries), "
                        f"got {type(noise_shape).__name__}") from None
    if len(dims) != len(shape):
        raise ValueError(f"{name} {dims} does not broadcast to the array's shape {shape}: it "
                         f"must have one entry per axis ({len(shape)})")
    resolved = []
    for d, s in zip(dims, shape):
        if d is None:
            resolved.append(s)
            continue
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{name} must contain ints or None, got {type(d).__name__}")
        resolved.append(int(d))
    resolved = tuple(resolved)
    if not broadcasts_to(resolved, shape):
        raise ValueError(f"{name} {dims} does not broadcast to the array's shape {shape}: each "
                         "entry must be 1, None or the array's size along that axis")
    return resolved


def check_bool_mask(m, name="mask"):
    """A user's boolean mask as an ndarray (True = kept); no casting from other dtypes."""
    arr = m if isinstance(m, np.ndarray) else np.asarray(m)
    if arr.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean array (True = kept), got dtype {arr.dtype}")
    return arr


def check_training_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


class SamplingArgs:
    """The checked sampling arguments of one call: keep_prob, the 64-bit key, stream, offset."""

    __slots__ = ("keep_prob", "key", "stream", "offset")

    def __init__(self, size, rate, keep_prob, seed, stream, offset):
        self.keep_prob = resolve_keep_prob(rate, keep_prob)
        self.stream = check_stream(stream)
        self.offset = check_offset(offset, size)
        self.key = resolve_seed(seed)


def check_mask_only_args(seed, stream, offset, noise_shape, function="dropout"):
    """With a user mask= there is nothing to sample: seed/stream/offset/noise_shape must be unset."""
    if seed is not None or stream != 0 or offset != 0 or noise_shape is not None:
        raise TypeError(f"{function}: with mask= nothing is sampled; do not pass seed, stream, "
                        "offset or noise_shape (the mask's shape is its noise shape)")


def check_gaussian_keep_prob(keep_prob):
    """Gaussian dropout needs keep_prob > 0: its noise variance rate / (1 - rate) is finite."""
    if keep_prob == 0.0:
        raise ValueError("gaussian_dropout needs rate < 1 (keep_prob > 0): the noise "
                         "variance rate / (1 - rate) is infinite at rate 1")
    return keep_prob


def check_noise_array(noise, shape, dtype):
    """The stored Gaussian noise of a forward: an ndarray of the gradient's shape."""
    if not isinstance(noise, np.ndarray):
        raise TypeError(f"noise must be the numpy.ndarray returned by gaussian_dropout("
                        f"return_noise=True), got {type(noise).__name__}")
    if noise.shape != tuple(shape):
        raise ValueError(f"noise has shape {noise.shape}, but the gradient has shape {tuple(shape)}")
    if noise.dtype != dtype:
        raise TypeError(f"noise has dtype {noise.dtype}, expected {dtype}")
    return noise


def check_stored_or_regenerated(function, stored_name, stored, rate, keep_prob, seed, stream,
                                offset, noise_shape=None, *, stored_takes_rate=False):
    """A backward takes what its forward stored (mask, noise) *or* what regenerates it
    (rate/keep_prob + seed, stream, offset, noise_shape), never a mix.

    stored_takes_rate: the stored value may come with rate/keep_prob (a boolean mask,
    whose scale they give).
    """
    if stored is not None:
        with_rate = not stored_takes_rate and (rate is not None or keep_prob is not None)
        if with_rate or seed is not None or stream != 0 or offset != 0 or noise_shape is not None:
            also = "stream, offset, noise_shape" if stored_name == "mask" else "stream, offset"
            raise TypeError(f"{function}: pass either {stored_name} or rate/keep_prob + seed "
                            f"(+ {also}) to regenerate it, not both")
        return
    if seed is None:
        raise ValueError(f"{function} needs the {stored_name}, or the seed it was made with")
    if isinstance(seed, np.random.Generator):
        raise TypeError(f"{function}: seed must be the int key the {stored_name} was made "
                        "with, not a Generator")
    if rate is None and keep_prob is None:
        raise TypeError(f"{function} without {stored_name} needs rate or keep_prob")


def check_gaussian_backward_args(noise, rate, keep_prob, seed, stream, offset):
    """The stored noise, or what regenerates it, not both."""
    check_stored_or_regenerated("gaussian_dropout_backward", "noise", noise, rate, keep_prob,
                                seed, stream, offset)


# -- one checker per public function (the ones that take a Mask are in fastdrop.mask) -----

def check_sample_mask_args(shape, rate, keep_prob, seed, stream, offset, noise_shape):
    """sample_mask: (noise shape, SamplingArgs)."""
    shape = check_shape(shape)
    noise = check_mask_size(check_noise_shape(noise_shape, shape))
    return noise, SamplingArgs(math.prod(noise), rate, keep_prob, seed, stream, offset)


def _gaussian_call(size, rate, keep_prob, seed, stream, offset):
    call = SamplingArgs(size, rate, keep_prob, seed, stream, offset)
    check_gaussian_keep_prob(call.keep_prob)
    return call


def check_gaussian_dropout_args(x, rate, keep_prob, seed, stream, offset, training, out,
                                return_noise):
    """gaussian_dropout: (x, training, return_noise, SamplingArgs); not training, the key is 0."""
    x = check_input(x)
    training = check_training_flag(training, "training")
    return_noise = check_training_flag(return_noise, "return_noise")
    call = _gaussian_call(x.size, rate, keep_prob, seed if training else 0, stream, offset)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    return x, training, return_noise, call


def check_gaussian_dropout_backward_args(grad, noise, rate, keep_prob, seed, stream, offset, out):
    """gaussian_dropout_backward: (grad, noise, SamplingArgs); exactly one of noise and the
    SamplingArgs is None."""
    check_gaussian_backward_args(noise, rate, keep_prob, seed, stream, offset)
    grad = check_input(grad, "grad")
    if out is not None:
        check_out(out, grad.shape, grad.dtype)
    if noise is not None:
        return grad, check_noise_array(noise, grad.shape, gaussian_noise_dtype(grad.dtype)), None
    return grad, None, _gaussian_call(grad.size, rate, keep_prob, seed, stream, offset)

"""Argument checking shared by the kernels' front end and `fastdrop.reference`.

Both implementations call these same functions, so a bad argument gets the same
`TypeError`/`ValueError` from either, before any random word is drawn or any C code runs.
The numeric rules here (threshold, scale) are DESIGN.md §2 and §3.
"""
import math
import numbers
import secrets

import numpy as np

U64 = 1 << 64

#: dtypes the kernels take (DESIGN.md §3, §7.5); float16 is computed in float32.
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)


class _DefaultRate(float):
    """The default `rate=0.5`, told apart from an explicit 0.5 so rate + keep_prob is caught."""

    def __repr__(self):
        return "0.5"


DEFAULT_RATE = _DefaultRate(0.5)


def resolve_keep_prob(rate, keep_prob, *, required=True):
    """Return keep_prob as a float in [0, 1] from exactly one of `rate` / `keep_prob`."""
    if rate is DEFAULT_RATE:
        rate = None if keep_prob is not None else 0.5
    if rate is not None and keep_prob is not None:
        raise TypeError("pass either rate or keep_prob, not both")
    if rate is None and keep_prob is None:
        if required:
            raise TypeError("one of rate or keep_prob is required")
        return None
    name, value = ("rate", rate) if rate is not None else ("keep_prob", keep_prob)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return 1.0 - value if name == "rate" else value


def keep_threshold(keep_prob):
    """T = floor(keep_prob * 2**32); an element is kept iff its word < T (exact: a power of two)."""
    return int(math.floor(keep_prob * 4294967296.0))


def inverted_scale(keep_prob, inverted=True):
    """The float64 factor applied to kept elements: 1/keep_prob (inverted) or 1 (classical).

    With keep_prob = 0 nothing is kept, so the factor is never used; it is 0, not a division.
    """
    if not inverted:
        return 1.0
    return 1.0 / keep_prob if keep_prob > 0.0 else 0.0


def scale_in(dtype, scale):
    """§3: s = dtype(scale), the float64 factor rounded once (to inf if it overflows)."""
    with np.errstate(over="ignore"):
        return dtype.type(scale)


def compute_dtype(dtype):
    """The precision an array of `dtype` is computed in: float16 in float32 (§7.5)."""
    return FLOAT32 if np.dtype(dtype) == FLOAT16 else np.dtype(dtype)


def kernel_constant(dtype, value):
    """A float64 constant rounded once to the compute precision of `dtype`, as a float."""
    return float(scale_in(compute_dtype(dtype), value))


def gaussian_noise_dtype(dtype):
    """§7.2: the noise of float64 arrays is float64; of float32 and float16 arrays float32."""
    return compute_dtype(dtype)


def _u64(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if not (0 <= value < U64):
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return value


def resolve_seed(seed):
    """The 64-bit Philox key: an int as given, drawn from a Generator, or fresh OS entropy."""
    if seed is None:
        return secrets.randbits(64)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, U64, dtype=np.uint64))
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
    """§7.1: same rank, and along every axis the noise size is 1 or the array's size."""
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


def check_mask(mask, shape, name="mask"):
    """A fastdrop.Mask whose shape is `shape` or broadcasts to it (a noise shape, §7.1)."""
    from ._mask import Mask

    if not isinstance(mask, Mask):
        raise TypeError(f"{name} must be a fastdrop.Mask, got {type(mask).__name__}")
    if mask.shape != tuple(shape) and not broadcasts_to(mask.shape, tuple(shape)):
        raise ValueError(f"{name} has shape {mask.shape}, but the array has shape {tuple(shape)} "
                         "(a mask must have the array's shape, or 1 along broadcast axes)")
    return mask


def check_bool_mask(m, name="mask"):
    """A user's boolean mask as an ndarray (True = kept); no casting from other dtypes."""
    arr = m if isinstance(m, np.ndarray) else np.asarray(m)
    if arr.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean array (True = kept), got dtype {arr.dtype}")
    return arr


def resolve_user_mask(mask, shape, rate=None, keep_prob=None, inverted=True, name="mask"):
    """§7.6: a `Mask` as it is, or a boolean array made into one with rate/keep_prob.

    A Mask carries its own keep_prob and scale, so rate/keep_prob must not come with it.
    """
    from ._mask import Mask

    if isinstance(mask, Mask):
        if (rate is not None and rate is not DEFAULT_RATE) or keep_prob is not None:
            raise TypeError(f"{name} is a fastdrop.Mask, which carries its own keep_prob; "
                            "pass rate/keep_prob only with a boolean mask")
        return check_mask(mask, shape, name)
    if not isinstance(mask, (np.ndarray, list, tuple, bool, np.bool_)):
        raise TypeError(f"{name} must be a fastdrop.Mask or a boolean array, "
                        f"got {type(mask).__name__}")
    if rate is None and keep_prob is None:
        raise TypeError(f"{name} must be a fastdrop.Mask, or a boolean array together with "
                        "rate or keep_prob (which give its scale)")
    keep = check_bool_mask(mask, name)
    if keep.shape != tuple(shape) and not broadcasts_to(keep.shape, tuple(shape)):
        raise ValueError(f"{name} has shape {keep.shape}, but the array has shape {tuple(shape)} "
                         "(a mask must have the array's shape, or 1 along broadcast axes)")
    return Mask.from_bool(keep, resolve_keep_prob(rate, keep_prob), inverted=inverted)


def check_training_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


class DropoutCall:
    """The checked arguments of one dropout / sample_mask / backward call."""

    __slots__ = ("keep_prob", "key", "stream", "offset", "threshold", "scale")

    def __init__(self, size, rate, keep_prob, seed, stream, offset, inverted=True):
        self.keep_prob = resolve_keep_prob(rate, keep_prob)
        self.stream = check_stream(stream)
        self.offset = check_offset(offset, size)
        self.key = resolve_seed(seed)
        self.threshold = keep_threshold(self.keep_prob)
        self.scale = inverted_scale(self.keep_prob, inverted)


def check_regeneration_args(mask, rate, keep_prob, seed, stream, offset, noise_shape=None):
    """dropout_backward takes a stored mask *or* what regenerates it, never a mix.

    A boolean (user) mask comes with rate/keep_prob, which give its scale (§7.6).
    """
    from ._mask import Mask

    if mask is not None:
        with_rate = isinstance(mask, Mask) and (rate is not None or keep_prob is not None)
        if with_rate or seed is not None or stream != 0 or offset != 0 or noise_shape is not None:
            raise TypeError("dropout_backward: pass either mask or rate/keep_prob + seed "
                            "(+ stream, offset, noise_shape) to regenerate it, not both")
        return
    if seed is None:
        raise ValueError("dropout_backward needs the Mask, or the seed it was sampled with")
    if isinstance(seed, np.random.Generator):
        raise TypeError("dropout_backward: seed must be the int key the mask was sampled "
                        "with (Mask.seed), not a Generator")
    if rate is None and keep_prob is None:
        raise TypeError("dropout_backward without a mask needs rate or keep_prob")


def check_mask_only_args(seed, stream, offset, noise_shape, function="dropout"):
    """With a user mask= there is nothing to sample: seed/stream/offset/noise_shape must be unset."""
    if seed is not None or stream != 0 or offset != 0 or noise_shape is not None:
        raise TypeError(f"{function}: with mask= nothing is sampled; do not pass seed, stream, "
                        "offset or noise_shape (the mask's shape is its noise shape)")


# -- variants (DESIGN.md §7) ------------------------------------------------------------------

#: -alpha' = lambda * alpha of SELU, as PyTorch's AlphaDropout spells it (the correctly
#: rounded product is one ulp larger; this literal keeps fastdrop equal to PyTorch).
SELU_NEG_SATURATION = 1.7580993408473766


def alpha_constants(keep_prob):
    """§7.3: (a, kept_add, fill) in float64 for alpha dropout with keep probability q.

    kept: a*x + kept_add, dropped: fill, with p = 1 - q, a = 1/sqrt((A^2 p + 1) q),
    kept_add = (A a) p and fill = (A a) p - A a (A = SELU_NEG_SATURATION).  q = 1 is the
    identity and q = 0 drops everything to +0.0; alpha_op() turns those into plain scales.
    """
    if keep_prob == 0.0:
        return 0.0, 0.0, 0.0
    if keep_prob == 1.0:
        return 1.0, 0.0, 0.0
    p = 1.0 - keep_prob
    alpha = SELU_NEG_SATURATION
    a = 1.0 / math.sqrt((alpha * alpha * p + 1.0) * keep_prob)
    alpha_a = alpha * a
    return a, alpha_a * p, alpha_a * p - alpha_a


def alpha_op(keep_prob):
    """(mul, add, fill, affine) of the kernels' masked op for alpha dropout (float64)."""
    a, kept_add, fill = alpha_constants(keep_prob)
    if keep_prob == 0.0 or keep_prob == 1.0:  # x * 1 = x kept; x * 0 never used, dropped = +0.0
        return a, 0.0, 0.0, False
    return a, kept_add, fill, True


def gaussian_sigma(keep_prob):
    """§7.2: sigma = sqrt((1 - q) / q) in float64; q = 0 (rate 1) has no Gaussian dropout."""
    if keep_prob == 0.0:
        raise ValueError("gaussian_dropout needs rate < 1 (keep_prob > 0): the noise "
                         "variance rate / (1 - rate) is infinite at rate 1")
    return math.sqrt((1.0 - keep_prob) / keep_prob)


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


def check_gaussian_backward_args(noise, rate, keep_prob, seed, stream, offset):
    """Like check_regeneration_args: the stored noise, or what regenerates it, not both."""
    if noise is not None:
        if rate is not None or keep_prob is not None or seed is not None or stream != 0 or offset != 0:
            raise TypeError("gaussian_dropout_backward: pass either noise or rate/keep_prob + "
                            "seed (+ stream, offset) to regenerate it, not both")
        return
    if seed is None:
        raise ValueError("gaussian_dropout_backward needs the noise, or the seed it was drawn with")
    if isinstance(seed, np.random.Generator):
        raise TypeError("gaussian_dropout_backward: seed must be the int key the noise was "
                        "drawn with, not a Generator")
    if rate is None and keep_prob is None:
        raise TypeError("gaussian_dropout_backward without noise needs rate or keep_prob")

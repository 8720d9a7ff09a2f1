"""`fastdrop.Mask`, a dropout mask stored as 1 bit per element, and the checks of
arguments that may be a Mask."""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Optional

import numpy as np

from . import _kernels
from ._validate import (DEFAULT_RATE, U64, SamplingArgs, broadcasts_to, check_bool_mask,
                        check_input, check_mask_only_args, check_noise_shape, check_out,
                        check_shape, check_stored_or_regenerated, check_training_flag,
                        resolve_keep_prob)


def _check_real(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        raise ValueError(f"{name} must be a float, got {value!r}") from None


def _check_u64_or_none(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if not 0 <= value < U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return int(value)


def _check_scale(scale, keep_prob):
    """The factor a mask of keep_prob can carry: 1/keep_prob (inverted dropout; 0 when
    keep_prob is 0), 1 (classical dropout) or a (alpha dropout, as alpha_scale)."""
    scale = _check_real(scale, "scale")
    if math.isnan(scale):
        raise ValueError("scale must be a number, got nan")
    # Finite except where 1/keep_prob itself overflows (keep_prob below ~5.6e-309).
    allowed = (_kernels.dropout_scale(keep_prob, True), 1.0, _kernels.alpha_scale(keep_prob))
    if scale not in allowed:
        raise ValueError(f"scale {scale!r} does not fit keep_prob {keep_prob!r}: it must be "
                         f"1/keep_prob ({allowed[0]!r}), 1 (classical dropout) or alpha "
                         f"dropout's a ({allowed[2]!r})")
    return scale


def _check_bits(bits, size):
    """1-D uint8, exactly ceil(size / 8) bytes, the bits past `size` 0: a read-only copy."""
    if not isinstance(bits, np.ndarray) or bits.dtype != np.uint8 or bits.ndim != 1:
        raise TypeError("bits must be a 1-D uint8 numpy array")
    nbytes = (size + 7) // 8
    if bits.shape[0] != nbytes:
        raise ValueError(f"bits must hold {nbytes} bytes for {size} elements (1 bit each), "
                         f"got {bits.shape[0]}")
    if size % 8 and int(bits[-1]) >> (size % 8):
        raise ValueError(f"bits past element {size} (the padding of the last byte) must be 0, "
                         f"got byte {int(bits[-1]):#04x}")
    return np.frombuffer(bits.tobytes(), dtype=np.uint8)  # a copy over bytes: never writeable


def _restore(bits, shape, keep_prob, scale, seed, stream, offset):
    """Unpickling: a Mask of the pickled bytes, every field checked again."""
    return Mask(np.frombuffer(bits, dtype=np.uint8), shape, keep_prob, scale, seed=seed,
                stream=stream, offset=offset)


class Mask:
    """A bit-packed dropout mask.

    ``bits`` is a read-only 1-D uint8 array of ``ceil(size / 8)`` bytes; bit ``i % 8``
    (least significant first) of byte ``i // 8`` is 1 iff element ``i`` (C order) is kept,
    so ``to_bool()`` is ``np.unpackbits(bits, bitorder="little")[:size]``.  Bits past
    ``size`` in the last byte are 0.

    ``scale`` is the float64 factor a kept element is multiplied by (``1/keep_prob`` for
    inverted dropout, 1 for classical, alpha dropout's ``a``); ``seed``, ``stream`` and
    ``offset`` say where the mask was sampled from (all three, or all None), so the same
    mask can be regenerated instead of stored.

    The constructor checks every field (``TypeError``/``ValueError`` naming it) and copies
    ``bits``; a Mask is immutable, and stays so through copy, deepcopy and pickle (every
    protocol; unpickling checks the fields again).  ``==`` compares what a mask does:
    shape, keep_prob, scale and bits; not where it came from (seed, stream, offset), so
    a sampled mask equals ``Mask.from_bool`` of its booleans with the same keep_prob.
    Masks are unhashable.
    """

    __slots__ = ("_bits", "_shape", "_size", "_keep_prob", "_scale", "_seed", "_stream",
                 "_offset")
    __hash__ = None

    def __init__(self, bits: np.ndarray, shape: Iterable[int] | int, keep_prob: float,
                 scale: float, *, seed: Optional[int] = None, stream: Optional[int] = None,
                 offset: Optional[int] = None) -> None:
        shape = check_shape(shape)
        size = math.prod(shape)
        bits = _check_bits(bits, size)
        keep_prob = resolve_keep_prob(None, keep_prob)
        scale = _check_scale(scale, keep_prob)
        seed = _check_u64_or_none(seed, "seed")
        stream = _check_u64_or_none(stream, "stream")
        offset = _check_u64_or_none(offset, "offset")
        if (seed is None) != (stream is None) or (seed is None) != (offset is None):
            raise ValueError("seed, stream and offset must all be given (where the mask was "
                             "sampled from) or all be None")
        if offset is not None and offset + size > U64:
            raise ValueError(f"offset + size must be at most 2**64, got {offset} + {size}")
        self._set(bits, shape, size, keep_prob, scale, seed, stream, offset)

    def _set(self, bits, shape, size, keep_prob, scale, seed, stream, offset):
        self._bits = bits
        self._shape = shape
        self._size = size
        self._keep_prob = keep_prob
        self._scale = scale
        self._seed = seed
        self._stream = stream
        self._offset = offset

    @classmethod
    def _from_kernels(cls, bits, shape, size, keep_prob, scale, seed, stream, offset):
        """A Mask of what a fast path just returned: read-only bits, shape a tuple of ints,
        and the rest checked already, so nothing is checked or copied again."""
        mask = cls.__new__(cls)
        mask._set(bits, shape, size, keep_prob, scale, seed, stream, offset)
        return mask

    def __reduce__(self):
        return _restore, (self._bits.tobytes(), self._shape, self._keep_prob, self._scale,
                          self._seed, self._stream, self._offset)

    def __copy__(self) -> Mask:
        return self  # immutable

    def __deepcopy__(self, memo: Any) -> Mask:
        return self

    @property
    def bits(self) -> np.ndarray:
        """The packed bits: read-only 1-D uint8, ceil(size / 8) bytes."""
        return self._bits

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def size(self) -> int:
        return self._size

    @property
    def keep_prob(self) -> float:
        """The probability the mask keeps an element with, in [0, 1]."""
        return self._keep_prob

    @property
    def scale(self) -> float:
        """The float64 factor of kept elements."""
        return self._scale

    @property
    def seed(self) -> Optional[int]:
        return self._seed

    @property
    def stream(self) -> Optional[int]:
        return self._stream

    @property
    def offset(self) -> Optional[int]:
        return self._offset

    @property
    def nbytes(self) -> int:
        """Bytes of mask storage (the packed bits)."""
        return self._bits.nbytes

    def to_bool(self) -> np.ndarray:
        """The mask as a boolean array of `shape` (True = kept)."""
        flat = np.unpackbits(self._bits, count=self._size, bitorder="little")
        return flat.view(np.bool_).reshape(self._shape)

    def count(self) -> int:
        """Number of kept elements."""
        return int(np.count_nonzero(np.unpackbits(self._bits, count=self._size, bitorder="little")))

    @classmethod
    def from_bool(cls, m: Any, keep_prob: float, *, inverted: bool = True) -> Mask:
        """A Mask of a user's boolean array `m` (True = kept).

        ``keep_prob`` is the probability the mask was meant to keep with; the scale is
        ``1/keep_prob`` (``inverted=True``) or 1.  The mask has no seed/stream/offset.
        """
        keep_prob = resolve_keep_prob(None, keep_prob)
        inverted = check_training_flag(inverted, "inverted")
        m = check_bool_mask(m, "m")
        bits = np.packbits(m.reshape(-1), bitorder="little")
        return cls(bits, m.shape, keep_prob, _kernels.dropout_scale(keep_prob, inverted))

    def _with_bool(self, keep, offset):
        """A Mask of the same keep_prob/scale holding `keep`; provenance kept iff offset is not None."""
        bits = np.packbits(keep.reshape(-1), bitorder="little")
        if offset is None or self.seed is None:
            return Mask(bits, keep.shape, self.keep_prob, self.scale)
        return Mask(bits, keep.shape, self.keep_prob, self.scale,
                    seed=self.seed, stream=self.stream, offset=offset)

    def __getitem__(self, key: Any) -> Mask:
        """NumPy indexing of the boolean mask, as a Mask.

        Where the selected elements are a contiguous run of C-order indices a .. b-1 (a
        slice of the first axis, a row, ...), the result remembers its origin: offset is
        ``self.offset + a``, so it equals the mask sampled for that part of the array.
        Any other selection gives a Mask without seed/stream/offset.
        """
        keep = self.to_bool()[key]
        if not isinstance(keep, np.ndarray):
            keep = np.asarray(keep)
        flat_index = np.arange(self._size, dtype=np.int64).reshape(self._shape)[key]
        flat_index = np.asarray(flat_index).reshape(-1)
        offset = None
        if self.seed is not None:
            if flat_index.size == 0:
                if isinstance(key, slice) and key.step in (None, 1) and self._shape:
                    row = self._size // self._shape[0] if self._shape[0] else 0
                    offset = self.offset + key.indices(self._shape[0])[0] * row
            elif np.array_equal(flat_index, np.arange(flat_index[0], flat_index[0] + flat_index.size)):
                offset = self.offset + int(flat_index[0])
        return self._with_bool(keep, offset)

    @classmethod
    def concatenate(cls, masks: Iterable[Mask], axis: int = 0) -> Mask:
        """Join masks along `axis` (as numpy.concatenate).

        All must share keep_prob and scale.  Joining along axis 0 masks sampled from one
        (seed, stream) at consecutive offsets gives the mask of the whole range, with the
        first one's offset; otherwise the result has no seed/stream/offset.
        """
        masks = list(masks)
        if not masks:
            raise ValueError("masks must hold at least one Mask")
        for i, m in enumerate(masks):
            if not isinstance(m, Mask):
                raise TypeError(f"masks[{i}] must be a fastdrop.Mask, got {type(m).__name__}")
            if m.keep_prob != masks[0].keep_prob or m.scale != masks[0].scale:
                raise ValueError(f"masks[{i}] has keep_prob={m.keep_prob!r}, scale={m.scale!r}; "
                                 f"masks[0] has keep_prob={masks[0].keep_prob!r}, "
                                 f"scale={masks[0].scale!r}: they cannot be joined")
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"axis must be an int, got {type(axis).__name__}")
        ndim = len(masks[0].shape)
        if ndim == 0:
            raise ValueError("0-d masks cannot be concatenated")
        if not -ndim <= axis < ndim:
            raise ValueError(f"axis {axis} is out of range for {ndim}-d masks")
        axis = int(axis) % ndim
        try:
            keep = np.concatenate([m.to_bool() for m in masks], axis=axis)
        except ValueError as exc:
            raise ValueError(f"masks cannot be concatenated along axis {axis}: {exc}") from None
        first = masks[0]
        offset = None
        if axis == 0 and first.seed is not None:
            expected = first.offset
            for m in masks:
                if m.seed != first.seed or m.stream != first.stream or m.offset != expected:
                    break
                expected += m.size
            else:
                offset = first.offset
        return first._with_bool(keep, offset)

    def __eq__(self, other: object) -> bool:
        """Same shape, keep_prob, scale and bits (provenance is not compared)."""
        if not isinstance(other, Mask):
            return NotImplemented
        return (self._shape == other._shape and self.keep_prob == other.keep_prob
                and self.scale == other.scale and np.array_equal(self._bits, other._bits))

    def __repr__(self) -> str:
        origin = ""
        if self.seed is not None:
            origin = f", seed={self.seed}, stream={self.stream}, offset={self.offset}"
        return (f"Mask(shape={self._shape}, keep_prob={self.keep_prob!r}, "
                f"kept={self.count()}/{self._size}{origin})")


def check_mask(mask, shape, name="mask"):
    """A fastdrop.Mask whose shape is `shape` or a noise shape that broadcasts to it."""
    if not isinstance(mask, Mask):
        raise TypeError(f"{name} must be a fastdrop.Mask, got {type(mask).__name__}")
    _check_mask_shape(mask.shape, shape, name)
    return mask


def _check_mask_shape(mask_shape, shape, name):
    if mask_shape != tuple(shape) and not broadcasts_to(mask_shape, tuple(shape)):
        raise ValueError(f"{name} has shape {mask_shape}, but the array has shape {tuple(shape)} "
                         "(a mask must have the array's shape, or 1 along broadcast axes)")


def check_user_mask(mask, shape, rate=None, keep_prob=None, name="mask"):
    """A caller's mask: (the Mask, None), or (the boolean array, the keep_prob giving its scale).

    A Mask carries its own keep_prob and scale, so rate/keep_prob must not come with it;
    a boolean array (True = kept) needs one of them.
    """
    if isinstance(mask, Mask):
        if (rate is not None and rate is not DEFAULT_RATE) or keep_prob is not None:
            raise TypeError(f"{name} is a fastdrop.Mask, which carries its own keep_prob; "
                            "pass rate/keep_prob only with a boolean mask")
        return check_mask(mask, shape, name), None
    if not isinstance(mask, (np.ndarray, list, tuple, bool, np.bool_)):
        raise TypeError(f"{name} must be a fastdrop.Mask or a boolean array, "
                        f"got {type(mask).__name__}")
    if rate is None and keep_prob is None:
        raise TypeError(f"{name} must be a fastdrop.Mask, or a boolean array together with "
                        "rate or keep_prob (which give its scale)")
    keep = check_bool_mask(mask, name)
    _check_mask_shape(keep.shape, shape, name)
    return keep, resolve_keep_prob(rate, keep_prob)


def check_regeneration_args(mask, rate, keep_prob, seed, stream, offset, noise_shape=None,
                            function="dropout_backward"):
    """The stored mask, or what regenerates it, not both; a boolean (user) mask comes with
    rate/keep_prob, which give its scale."""
    check_stored_or_regenerated(function, "mask", mask, rate, keep_prob, seed, stream, offset,
                                noise_shape, stored_takes_rate=not isinstance(mask, Mask))


# -- one checker per public function that takes a mask -------------------------------------

def _mask_or_sampling(shape, rate, keep_prob, seed, stream, offset, noise_shape, mask, training,
                      function):
    """Where a forward's mask comes from: (user, SamplingArgs, noise shape).

    user is check_user_mask's (mask, keep_prob) pair where mask= is given, else None (and
    then the SamplingArgs is set; not training, its key is 0 and nothing is drawn)."""
    if mask is not None:
        check_mask_only_args(seed, stream, offset, noise_shape, function)
        user = check_user_mask(mask, shape, rate, keep_prob)
        return user, None, user[0].shape
    noise = check_noise_shape(noise_shape, shape)
    call = SamplingArgs(math.prod(noise), rate, keep_prob, seed if training else 0, stream,
                        offset)
    return None, call, noise


def check_dropout_args(x, rate, keep_prob, seed, stream, offset, training, inverted, out,
                       return_mask, noise_shape, mask, name="x", function="dropout"):
    """dropout: (x, training, inverted, return_mask, user, SamplingArgs, noise shape)."""
    x = check_input(x, name)
    training = check_training_flag(training, "training")
    inverted = check_training_flag(inverted, "inverted")
    return_mask = check_training_flag(return_mask, "return_mask")
    user, call, noise = _mask_or_sampling(x.shape, rate, keep_prob, seed, stream, offset,
                                          noise_shape, mask, training, function)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    return x, training, inverted, return_mask, user, call, noise


def check_apply_mask_args(x, mask, rate, keep_prob, inverted, out, name="x"):
    """apply_mask (and a backward from a stored mask): (x, inverted, user)."""
    x = check_input(x, name)
    inverted = check_training_flag(inverted, "inverted")
    user = check_user_mask(mask, x.shape, rate, keep_prob)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    return x, inverted, user


def check_dropout_backward_args(grad, mask, rate, keep_prob, seed, stream, offset, inverted,
                                out, noise_shape):
    """dropout_backward: (grad, inverted, user, SamplingArgs, noise shape); user is None
    where the mask is regenerated."""
    check_regeneration_args(mask, rate, keep_prob, seed, stream, offset, noise_shape)
    if mask is not None:
        return check_apply_mask_args(grad, mask, rate, keep_prob, inverted, out,
                                     "grad") + (None, None)
    x, _, inverted, _, _, call, noise = check_dropout_args(
        grad, rate, keep_prob, seed, stream, offset, True, inverted, out, False, noise_shape,
        None, "grad")
    return x, inverted, None, call, noise


def check_alpha_dropout_args(x, rate, keep_prob, seed, stream, offset, noise_shape, training,
                             out, return_mask, mask):
    """alpha_dropout: (x, training, return_mask, user, SamplingArgs, noise shape)."""
    x, training, _, return_mask, user, call, noise = check_dropout_args(
        x, rate, keep_prob, seed, stream, offset, training, True, out, return_mask, noise_shape,
        mask, function="alpha_dropout")
    return x, training, return_mask, user, call, noise


def check_alpha_dropout_backward_args(grad, mask, rate, keep_prob, seed, stream, offset,
                                      noise_shape, out):
    """alpha_dropout_backward: (grad, user, SamplingArgs, noise shape)."""
    check_regeneration_args(mask, rate, keep_prob, seed, stream, offset, noise_shape,
                            "alpha_dropout_backward")
    grad = check_input(grad, "grad")
    user, call, noise = _mask_or_sampling(grad.shape, rate, keep_prob, seed, stream, offset,
                                          noise_shape, mask, True, "alpha_dropout_backward")
    if out is not None:
        check_out(out, grad.shape, grad.dtype)
    return grad, user, call, noise

"""`fastdrop.Mask`, a dropout mask stored as 1 bit per element, and the checks of
arguments that may be a Mask."""
import math
import numbers

import numpy as np

from . import _kernels
from ._validate import (DEFAULT_RATE, broadcasts_to, check_bool_mask,
                        check_stored_or_regenerated, check_training_flag, resolve_keep_prob)


class Mask:
    """A bit-packed dropout mask.

    ``bits`` is a read-only 1-D uint8 array of ``ceil(size / 8)`` bytes; bit ``i % 8``
    (least significant first) of byte ``i // 8`` is 1 iff element ``i`` (C order) is kept,
    so ``to_bool()`` is ``np.unpackbits(bits, bitorder="little")[:size]``.  Bits past
    ``size`` in the last byte are 0.

    ``scale`` is the float64 factor a kept element is multiplied by (``1/keep_prob`` for
    inverted dropout, 1 for classical); ``seed``, ``stream`` and ``offset`` say where the
    mask was sampled from, so the same mask can be regenerated instead of stored.
    """

    __slots__ = ("_bits", "_shape", "_size", "keep_prob", "scale", "seed", "stream", "offset")
    __hash__ = None

    def __init__(self, bits, shape, keep_prob, scale, *, seed=None, stream=None, offset=None):
        shape = tuple(int(d) for d in shape)
        size = math.prod(shape)
        if not isinstance(bits, np.ndarray) or bits.dtype != np.uint8 or bits.ndim != 1:
            raise TypeError("bits must be a 1-D uint8 numpy array")
        if bits.shape[0] != (size + 7) // 8:
            raise ValueError(f"bits must hold ceil({size} / 8) = {(size + 7) // 8} bytes, "
                             f"got {bits.shape[0]}")
        bits = np.ascontiguousarray(bits)
        bits.flags.writeable = False
        self._bits = bits
        self._shape = shape
        self._size = size
        self.keep_prob = float(keep_prob)
        self.scale = float(scale)
        self.seed = seed
        self.stream = stream
        self.offset = offset

    @classmethod
    def _from_kernels(cls, bits, shape, size, keep_prob, scale, seed, stream, offset):
        """A Mask of what a fast path just returned: read-only bits, shape a tuple of ints,
        and the rest checked already, so nothing is checked or copied again."""
        mask = cls.__new__(cls)
        mask._bits = bits
        mask._shape = shape
        mask._size = size
        mask.keep_prob = keep_prob
        mask.scale = scale
        mask.seed = seed
        mask.stream = stream
        mask.offset = offset
        return mask

    @property
    def bits(self):
        return self._bits

    @property
    def shape(self):
        return self._shape

    @property
    def size(self):
        return self._size

    @property
    def nbytes(self):
        """Bytes of mask storage (the packed bits)."""
        return self._bits.nbytes

    def to_bool(self):
        """The mask as a boolean array of `shape` (True = kept)."""
        flat = np.unpackbits(self._bits, count=self._size, bitorder="little")
        return flat.view(np.bool_).reshape(self._shape)

    def count(self):
        """Number of kept elements."""
        return int(np.count_nonzero(np.unpackbits(self._bits, count=self._size, bitorder="little")))

    @classmethod
    def from_bool(cls, m, keep_prob, *, inverted=True):
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

    def __getitem__(self, key):
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
    def concatenate(cls, masks, axis=0):
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

    def __eq__(self, other):
        if not isinstance(other, Mask):
            return NotImplemented
        return (self._shape == other._shape and self.keep_prob == other.keep_prob
                and self.scale == other.scale and np.array_equal(self._bits, other._bits))

    def __repr__(self):
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


def resolve_user_mask(mask, shape, rate=None, keep_prob=None, inverted=True, name="mask"):
    """A caller's mask as a Mask: a Mask as it is, a boolean array packed with its scale."""
    checked, bool_keep_prob = check_user_mask(mask, shape, rate, keep_prob, name)
    if bool_keep_prob is None:
        return checked
    return Mask.from_bool(checked, bool_keep_prob, inverted=inverted)


def check_regeneration_args(mask, rate, keep_prob, seed, stream, offset, noise_shape=None,
                            function="dropout_backward"):
    """The stored mask, or what regenerates it, not both; a boolean (user) mask comes with
    rate/keep_prob, which give its scale."""
    check_stored_or_regenerated(function, "mask", mask, rate, keep_prob, seed, stream, offset,
                                noise_shape, stored_takes_rate=not isinstance(mask, Mask))

"""`fastdrop.Mask`: a dropout mask stored as 1 bit per element (DESIGN.md §4)."""
import numpy as np


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
        size = int(np.prod(shape, dtype=object)) if shape else 1
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
        """A Mask the kernels just wrote: its arguments hold the invariants already."""
        mask = cls.__new__(cls)
        bits.flags.writeable = False
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

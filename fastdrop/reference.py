"""Pure-NumPy twin of fastdrop's kernels: same names, same arguments, same bits.

Read this next to DESIGN.md §2-§5.  Nothing here is fast; everything here is plain.
The C kernels are tested against these functions bit for bit, and these functions are
tested against the known-answer vectors of DESIGN.md §2 (from Random123), so neither
implementation is its own oracle.
"""
import numpy as np

from ._args import (DEFAULT_RATE, DropoutCall, check_input, check_mask, check_out,
                    check_regeneration_args, check_shape, check_training_flag, scale_in)
from ._mask import Mask

__all__ = ["philox4x32_10", "random_words", "sample_mask", "dropout", "apply_mask",
           "dropout_backward"]

# §2: Philox4x32-10 constants (Salmon et al., SC'11).
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint64(0x9E3779B9)
PHILOX_W1 = np.uint64(0xBB67AE85)
LOW32 = np.uint64(0xFFFFFFFF)
ROUNDS = 10


def philox4x32_10(counter, key):
    """Philox4x32-10 of counter words (c0, c1, c2, c3) under key words (k0, k1).

    Words are 32-bit values held in uint64 (scalars or equal-shaped arrays), so the
    32x32 -> 64-bit products are exact.  Returns the four output words, uint64.
    """
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in counter)
    k0, k1 = (np.uint64(k) for k in key)
    for round_ in range(ROUNDS):
        if round_ > 0:  # the key is bumped between rounds
            k0 = (k0 + PHILOX_W0) & LOW32
            k1 = (k1 + PHILOX_W1) & LOW32
        product0 = PHILOX_M0 * c0
        product1 = PHILOX_M1 * c2
        hi0, lo0 = product0 >> np.uint64(32), product0 & LOW32
        hi1, lo1 = product1 >> np.uint64(32), product1 & LOW32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def random_words(seed, stream, offset, size):
    """The 32-bit random words of elements offset, offset+1, ..., offset+size-1 (uint64).

    Element j uses block b = j >> 2 (counter c0 = b & 0xffffffff, c1 = b >> 32,
    c2 = stream & 0xffffffff, c3 = stream >> 32; key k0 = seed & 0xffffffff,
    k1 = seed >> 32) and takes output word j & 3 of that block.
    """
    if size == 0:
        return np.zeros(0, dtype=np.uint64)
    first_block = offset >> 2
    last_block = (offset + size - 1) >> 2
    blocks = np.arange(last_block - first_block + 1, dtype=np.uint64) + np.uint64(first_block)
    counter = (blocks & LOW32, blocks >> np.uint64(32),
               np.uint64(stream & 0xFFFFFFFF), np.uint64(stream >> 32))
    key = (seed & 0xFFFFFFFF, seed >> 32)
    out0, out1, out2, out3 = philox4x32_10(counter, key)
    # Row b holds the four words of block b, so the flat array is the stream in j order.
    stream_words = np.stack([out0, out1, out2, out3], axis=1).reshape(-1)
    start = offset - 4 * first_block  # = offset & 3
    return stream_words[start:start + size]


def _keep(call, size):
    """Boolean keep decisions: kept iff word < T = floor(keep_prob * 2**32)."""
    words = random_words(call.key, call.stream, call.offset, size)
    return words < np.uint64(call.threshold) if call.threshold < 2**32 else np.ones(size, bool)


def _mask_of(call, shape, keep):
    bits = np.packbits(keep, bitorder="little")  # §4: bit i % 8 of byte i // 8, padding 0
    return Mask(bits, shape, call.keep_prob, call.scale,
                seed=call.key, stream=call.stream, offset=call.offset)


def sample_mask(shape, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0):
    """Sample a bit-packed Mask of `shape` from (seed, stream, offset)."""
    shape = check_shape(shape)
    size = int(np.prod(shape, dtype=object)) if shape else 1
    call = DropoutCall(size, rate, keep_prob, seed, stream, offset)
    return _mask_of(call, shape, _keep(call, size))


def _masked_scale(x, keep, scale, out):
    """§3: kept -> x * dtype(scale); dropped -> +0.0, whatever x is (NaN and inf too)."""
    s = scale_in(x.dtype, scale)
    with np.errstate(all="ignore"):
        y = np.where(keep.reshape(x.shape), x * s, x.dtype.type(0.0))
    if out is None:
        return y
    np.copyto(out, y)
    return out


def apply_mask(x, mask, *, out=None):
    """x * mask.scale where the mask keeps, +0.0 elsewhere."""
    x = check_input(x)
    check_mask(mask, x.shape)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    return _masked_scale(x, mask.to_bool(), mask.scale, out)


def dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
            training=True, inverted=True, out=None, return_mask=False):
    """Dropout of x; with return_mask, also the Mask (None when not training)."""
    x = check_input(x)
    training = check_training_flag(training, "training")
    inverted = check_training_flag(inverted, "inverted")
    call = DropoutCall(x.size, rate, keep_prob,
                       seed if training else 0, stream, offset, inverted)
    if out is not None:
        check_out(out, x.shape, x.dtype)
    if not training:
        # §1: test output is x (inverted) or x * keep_prob (classical).
        if inverted:
            y = x if out is None else out
            if out is not None:
                np.copyto(out, x)
        else:
            y = np.multiply(x, x.dtype.type(call.keep_prob), out=out)
        return (y, None) if return_mask else y
    keep = _keep(call, x.size)
    y = _masked_scale(x, keep, call.scale, out)
    return (y, _mask_of(call, x.shape, keep)) if return_mask else y


def dropout_backward(grad, mask=None, *, rate=None, keep_prob=None, seed=None, stream=0,
                     offset=0, inverted=True, out=None):
    """grad * scale where kept, else 0: from a stored Mask, or by regenerating it."""
    check_regeneration_args(mask, rate, keep_prob, seed, stream, offset)
    if mask is not None:
        return apply_mask(grad, mask, out=out)
    return dropout(grad, rate, keep_prob=keep_prob, seed=seed, stream=stream, offset=offset,
                   inverted=inverted, out=out)

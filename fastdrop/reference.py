"""Pure-NumPy twin of fastdrop's kernels: same names, same arguments, same bits.

Read this next to the design contract (DESIGN.md in the source distribution): the random
stream, the mask format, the numerics and the variants.  Nothing here is fast; everything
here is plain.  The C kernels are tested against these functions bit for bit, and these
functions are tested against the Philox known-answer vectors (from Random123), so neither
implementation is its own oracle.  The argument checks are the library's own (each
function calls the same checker as the library, so a bad call raises the same first error
here), but every number (random words, keep threshold,
scales, alpha-dropout constants, Gaussian noise) is derived here from the contract.
"""
import math

import numpy as np

from ._validate import (DEFAULT_RATE, FLOAT16, FLOAT32, check_gaussian_dropout_args,
                        check_gaussian_dropout_backward_args, check_sample_mask_args,
                        compute_dtype, gaussian_noise_dtype)
from .mask import (Mask, check_alpha_dropout_args, check_alpha_dropout_backward_args,
                   check_apply_mask_args, check_dropout_args, check_dropout_backward_args)

__all__ = ["philox4x32_10", "random_words", "top_bytes", "low_bits", "uniform_words",
           "sample_mask", "dropout", "apply_mask",
           "dropout_backward", "alpha_dropout", "alpha_dropout_backward", "box_muller",
           "gaussian_normals", "gaussian_dropout", "gaussian_dropout_backward"]

#: The mask stream transcribed here (DESIGN.md §2.1, bit planes).
MASK_STREAM_VERSION = 2

# Philox4x32-10 constants (Salmon et al., SC'11).
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


def _philox_at(seed, stream, counters):
    """The four output words of the Philox blocks at 64-bit `counters` (uint64 array)."""
    counter = (counters & LOW32, counters >> np.uint64(32),
               np.uint64(stream & 0xFFFFFFFF), np.uint64(stream >> 32))
    return philox4x32_10(counter, (seed & 0xFFFFFFFF, seed >> 32))


def _indices(offset, size):
    """The global indices j = offset .. offset + size - 1 (uint64)."""
    return np.arange(size, dtype=np.uint64) + np.uint64(offset)


def top_bytes(seed, stream, offset, size):
    """H_j, the top 8 bits of each element's 32-bit draw (mask stream v2), as uint64.

    Element j is lane l = j & 127 of group g = j >> 7.  Plane i (0 <= i < 8) of group g is
    the Philox block at counter (g << 3) | i; bit i of H_j, counted from the most
    significant bit, is bit (l & 31) of that block's output word l >> 5.
    """
    j = _indices(offset, size)
    group, lane = j >> np.uint64(7), j & np.uint64(127)
    first = group[0] if size else np.uint64(0)
    groups = np.arange(int(group[-1] - first) + 1 if size else 0, dtype=np.uint64) + first
    row = (group - first).astype(np.intp)  # the element's group among `groups`
    word, bit = (lane >> np.uint64(5)).astype(np.intp), lane & np.uint64(31)
    top = np.zeros(size, dtype=np.uint64)
    for plane in range(8):
        words = np.stack(_philox_at(seed, stream, (groups << np.uint64(3)) | np.uint64(plane)))
        top |= ((words[word, row] >> bit) & np.uint64(1)) << np.uint64(7 - plane)
    return top


def low_bits(seed, stream, offset, size):
    """R_j, the low 24 bits of each element's draw: output word j & 3 of the Philox block at
    counter 2^63 | (j >> 2), shifted right by 8 (uint64)."""
    j = _indices(offset, size)
    words = np.stack(_philox_at(seed, stream, np.uint64(1 << 63) | (j >> np.uint64(2))))
    return words[(j & np.uint64(3)).astype(np.intp), np.arange(size)] >> np.uint64(8)


def uniform_words(seed, stream, offset, size):
    """U_j = (H_j << 24) | R_j: each element's 32-bit draw, which it keeps iff U_j < T."""
    return ((top_bytes(seed, stream, offset, size) << np.uint64(24)) |
            low_bits(seed, stream, offset, size))


def keep_threshold(keep_prob):
    """T = floor(keep_prob * 2**32) (exact: the product is by a power of two)."""
    return int(math.floor(keep_prob * 2.0**32))


def dropout_scale(keep_prob, inverted=True):
    """The float64 factor of kept elements: 1/keep_prob (inverted) or 1; 0 when nothing is kept."""
    if not inverted:
        return 1.0
    return 1.0 / keep_prob if keep_prob > 0.0 else 0.0


def scale_in(dtype, scale):
    """A float64 factor rounded once to `dtype` (to inf where it overflows)."""
    with np.errstate(over="ignore"):
        return np.dtype(dtype).type(scale)


def _keep(call, size):
    """Boolean keep decisions: kept iff U_j < T = floor(keep_prob * 2**32)."""
    threshold = keep_threshold(call.keep_prob)
    if threshold >= 2**32:
        return np.ones(size, bool)
    return uniform_words(call.key, call.stream, call.offset, size) < np.uint64(threshold)


def _mask_of(call, shape, keep, scale):
    bits = np.packbits(keep, bitorder="little")  # bit i % 8 of byte i // 8, padding 0
    return Mask(bits, shape, call.keep_prob, scale,
                seed=call.key, stream=call.stream, offset=call.offset)


def _user_mask(user, inverted=True):
    """A checked mask= as a Mask; a boolean array is packed here with its scale."""
    checked, bool_keep_prob = user
    if bool_keep_prob is None:
        return checked
    return Mask(np.packbits(checked.reshape(-1), bitorder="little"), checked.shape,
                bool_keep_prob, dropout_scale(bool_keep_prob, inverted))


def sample_mask(shape, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                noise_shape=None):
    """Sample a bit-packed Mask from (seed, stream, offset), of `shape` or of its noise shape."""
    noise, call = check_sample_mask_args(shape, rate, keep_prob, seed, stream, offset, noise_shape)
    size = math.prod(noise)
    return _mask_of(call, noise, _keep(call, size), dropout_scale(call.keep_prob))


def _masked_scale(x, keep, scale, out):
    """Kept -> x * dtype(scale); dropped -> +0.0, whatever x is (NaN and inf too).

    `keep` has x's shape or a noise shape, broadcast against x.
    """
    keep = np.broadcast_to(keep, x.shape)
    with np.errstate(all="ignore"):
        if x.dtype == FLOAT16:  # in float32 with the float32 factor, rounded once
            kept = (x.astype(np.float32) * scale_in(FLOAT32, scale)).astype(FLOAT16)
        else:
            kept = x * scale_in(x.dtype, scale)
        y = np.where(keep, kept, x.dtype.type(0.0))
    if out is None:
        return y
    np.copyto(out, y)
    return out


def apply_mask(x, mask, *, rate=None, keep_prob=None, inverted=True, out=None):
    """x * mask.scale where the mask keeps, +0.0 elsewhere (a Mask, or booleans + rate)."""
    x, inverted, user = check_apply_mask_args(x, mask, rate, keep_prob, inverted, out)
    mask = _user_mask(user, inverted)
    return _masked_scale(x, mask.to_bool(), mask.scale, out)


def _eval(x, keep_prob, inverted, out):
    """Test output: x (inverted) or x * keep_prob (classical)."""
    if inverted:
        y = x if out is None else out
        if out is not None:
            np.copyto(out, x)
        return y
    if x.dtype == FLOAT16:  # in float32, rounded once
        y = np.asarray((x.astype(np.float32) * np.float32(keep_prob)).astype(FLOAT16))
        if out is not None:
            np.copyto(out, y)
        return y if out is None else out
    return np.asarray(np.multiply(x, x.dtype.type(keep_prob), out=out))  # 0-d: an array


def dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
            training=True, inverted=True, out=None, return_mask=False, noise_shape=None,
            mask=None):
    """Dropout of x; with return_mask, also the Mask (None when not training).

    noise_shape: the mask is sampled over the noise shape, counter index = flat index in
    the noise shape, and broadcast.  mask: the caller's mask instead.
    """
    x, training, inverted, return_mask, user, call, noise = check_dropout_args(
        x, rate, keep_prob, seed, stream, offset, training, inverted, out, return_mask,
        noise_shape, mask)
    return _dropout(x, training, inverted, out, return_mask, user, call, noise)


def _dropout(x, training, inverted, out, return_mask, user, call, noise):
    if user is not None:
        user = _user_mask(user, inverted)
        if not training:
            y = _eval(x, user.keep_prob, inverted, out)
            return (y, None) if return_mask else y
        y = _masked_scale(x, user.to_bool(), user.scale, out)
        return (y, user) if return_mask else y
    size = math.prod(noise)
    if not training:
        y = _eval(x, call.keep_prob, inverted, out)
        return (y, None) if return_mask else y
    keep = _keep(call, size).reshape(noise)
    scale = dropout_scale(call.keep_prob, inverted)
    y = _masked_scale(x, keep, scale, out)
    return (y, _mask_of(call, noise, keep, scale)) if return_mask else y


def dropout_backward(grad, mask=None, *, rate=None, keep_prob=None, seed=None, stream=0,
                     offset=0, inverted=True, out=None, noise_shape=None):
    """grad * scale where kept, else 0: from a stored Mask, or by regenerating it."""
    grad, inverted, user, call, noise = check_dropout_backward_args(
        grad, mask, rate, keep_prob, seed, stream, offset, inverted, out, noise_shape)
    if user is not None:
        mask = _user_mask(user, inverted)
        return _masked_scale(grad, mask.to_bool(), mask.scale, out)
    return _dropout(grad, True, inverted, out, False, None, call, noise)


# -- alpha dropout ------------------------------------------------------------------------

#: A = -alpha' = lambda * alpha of SELU, PyTorch's literal.
SELU_NEG_SATURATION = 1.7580993408473766


def alpha_constants(keep_prob):
    """(a, kept_add, fill) in float64 for keep probability q: kept a*x + kept_add, dropped fill.

    p = 1 - q, a = 1/sqrt((A^2 p + 1) q), kept_add = (A a) p, fill = (A a) p - A a;
    q = 1 is the identity (1, 0, 0) and q = 0 drops everything to +0.0 (0, 0, 0).
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


def _alpha_keep(user, call, noise, training):
    """(keep booleans of the noise shape or None, keep_prob, the Mask to report or None)."""
    if user is not None:
        user = _user_mask(user)
        return user.to_bool(), user.keep_prob, user
    size = math.prod(noise)
    if not training:
        return None, call.keep_prob, None
    keep = _keep(call, size).reshape(noise)
    return keep, call.keep_prob, _mask_of(call, noise, keep, dropout_scale(call.keep_prob))


def alpha_dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                  noise_shape=None, training=True, out=None, return_mask=False, mask=None):
    """Kept -> a*x + b, dropped -> a*alpha' + b, in x's dtype (identity when not training)."""
    x, training, return_mask, user, call, noise = check_alpha_dropout_args(
        x, rate, keep_prob, seed, stream, offset, noise_shape, training, out, return_mask, mask)
    keep, q, used = _alpha_keep(user, call, noise, training)
    if not training:
        y = _eval(x, q, True, out)
        return (y, None) if return_mask else y
    a, kept_add, fill = alpha_constants(q)
    if q == 0.0 or q == 1.0:  # nothing kept (+0.0 everywhere), or the identity x * 1
        y = _masked_scale(x, keep, a, out)
    else:
        work = compute_dtype(x.dtype)  # float16: computed in float32, rounded once
        with np.errstate(all="ignore"):
            kept = x.astype(work) * scale_in(work, a) + scale_in(work, kept_add)  # two roundings
            y = np.where(np.broadcast_to(keep, x.shape), kept, scale_in(work, fill)).astype(x.dtype)
        if out is not None:
            np.copyto(out, y)
            y = out
    if not return_mask:
        return y
    return y, Mask(used.bits, used.shape, used.keep_prob, a,
                   seed=used.seed, stream=used.stream, offset=used.offset)


def alpha_dropout_backward(grad, mask=None, *, rate=None, keep_prob=None, seed=None, stream=0,
                           offset=0, noise_shape=None, out=None):
    """grad * a where kept, 0 where dropped."""
    grad, user, call, noise = check_alpha_dropout_backward_args(
        grad, mask, rate, keep_prob, seed, stream, offset, noise_shape, out)
    keep, q, _ = _alpha_keep(user, call, noise, True)
    return _masked_scale(grad, keep, alpha_constants(q)[0], out)


# -- Gaussian dropout ---------------------------------------------------------------------

def gaussian_sigma(keep_prob):
    """sigma = sqrt((1 - q) / q) in float64."""
    return math.sqrt((1.0 - keep_prob) / keep_prob)


class BoxMullerConstants:
    """The Box-Muller constants in one precision: float64 (float64 output) or float32."""

    def __init__(self, dtype, ln2_hi, n_ln, n_sin, n_cos):
        t = np.dtype(dtype).type
        self.dtype = np.dtype(dtype)
        self.sqrt2 = t(math.sqrt(2.0))
        self.ln2_hi = t(ln2_hi)                                  # ln 2 = LN2_HI + LN2_LO
        self.ln2_lo = t(math.log(2.0) - ln2_hi) if self.dtype == np.float32 else \
            t(float.fromhex("0x1.a39ef35793c76p-33"))
        self.two_pi_2m32 = t(2.0 * math.pi) * t(2.0**-32)        # (2 pi) 2^-32, exact scaling
        self.ln = [t(2.0 / (2 * k + 1)) for k in range(1, n_ln + 1)]                    # L_k
        self.sin = [t((-1) ** k / math.factorial(2 * k + 1)) for k in range(1, n_sin + 1)]  # S_k
        self.cos = [t((-1) ** k / math.factorial(2 * k)) for k in range(1, n_cos + 1)]      # C_k


#: float64: fdlibm's ln 2 split; 9 / 7 / 8 terms.  float32: a 17-bit LN2_HI; 4 / 4 / 5 terms.
BOX_MULLER = {
    np.dtype(np.float64): BoxMullerConstants(np.float64, float.fromhex("0x1.62e42feep-1"), 9, 7, 8),
    np.dtype(np.float32): BoxMullerConstants(np.float32, float.fromhex("0x1.62e4p-1"), 4, 4, 5),
}


def _horner(t, coeffs):
    """c1 + t*(c2 + t*(... + t*cn)), innermost first: the operation order of the kernels."""
    q = np.full_like(t, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        q = c + t * q
    return q


def _to_float(words, dtype):
    """Integers (held in int64/uint64) rounded once to dtype (via exact float64)."""
    return words.astype(np.float64).astype(dtype)


def box_muller(w0, w1, dtype=np.float64):
    """The standard normals (z0, z1) of word pairs (w0, w1), computed in `dtype`.

    w0 and w1 are uint64 arrays of 32-bit words.  Every step is one IEEE operation in
    float64 (or float32), in the order the kernels use.
    """
    k_ = BOX_MULLER[np.dtype(dtype)]
    t = k_.dtype.type
    one = t(1.0)
    # radius sqrt(-2 ln u), u = m 2^-32 in (0, 1]
    m = _to_float(w0, k_.dtype) + one                  # float64: exact; float32: rounded twice
    mantissa, exponent = np.frexp(m)                  # m = mantissa 2^exponent, mantissa in [0.5, 1)
    f = mantissa * t(2.0)                             # m = f 2^e, f in [1, 2)
    e = exponent.astype(k_.dtype) - one
    big = f > k_.sqrt2
    f = np.where(big, f * t(0.5), f)
    e = np.where(big, e + one, e)
    k = e - t(32.0)                                   # ln u = k ln 2 + ln f
    s = (f - one) / (f + one)                         # ln f = 2 atanh s
    s2 = s * s
    ln_f = t(2.0) * s + (s * s2) * _horner(s2, k_.ln)
    ln_u = k * k_.ln2_hi + (k * k_.ln2_lo + ln_f)
    r = np.sqrt(t(-2.0) * ln_u)
    # angle 2 pi w1 2^-32 = quadrant pi/2 + p with |p| <= pi/4
    quadrant = ((w1 + np.uint64(0x20000000)) & LOW32) >> np.uint64(30)
    rest = ((w1 - (quadrant << np.uint64(30))) & LOW32).astype(np.int64)
    rest = np.where(rest >= 2**31, rest - 2**32, rest)  # as a signed 32-bit integer
    p = _to_float(rest, k_.dtype) * k_.two_pi_2m32
    p2 = p * p
    sin_p = p + (p * p2) * _horner(p2, k_.sin)
    cos_p = one + p2 * _horner(p2, k_.cos)
    swap = (quadrant & np.uint64(1)) == 1
    c = np.where(swap, sin_p, cos_p)
    sn = np.where(swap, cos_p, sin_p)
    c = np.where(((quadrant + np.uint64(1)) >> np.uint64(1)) & np.uint64(1) == 1, -c, c)
    sn = np.where((quadrant >> np.uint64(1)) == 1, -sn, sn)
    return r * c, r * sn


def gaussian_normals(seed, stream, offset, size, dtype=np.float64):
    """z of elements offset .. offset+size-1: the pair (2i, 2i+1) of counters is Box-Muller
    of words (2i, 2i+1); an even counter takes the cosine, an odd one the sine."""
    if size == 0:
        return np.zeros(0, dtype)
    first = offset & ~1
    last = (offset + size + 1) & ~1                   # exclusive, even
    words = random_words(seed, stream, first, last - first)
    z0, z1 = box_muller(words[0::2], words[1::2], dtype)
    z = np.stack([z0, z1], axis=1).reshape(-1)
    return z[offset - first:offset - first + size]


def gaussian_dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
                     training=True, out=None, return_noise=False):
    """y = x * eps, eps = 1 + sigma z, sigma = sqrt((1 - q) / q), all in x's precision."""
    x, training, return_noise, call = check_gaussian_dropout_args(
        x, rate, keep_prob, seed, stream, offset, training, out, return_noise)
    return _gaussian_dropout(x, training, out, return_noise, call)


def _gaussian_dropout(x, training, out, return_noise, call):
    sigma = gaussian_sigma(call.keep_prob)
    if not training:
        y = _eval(x, call.keep_prob, True, out)
        return (y, None) if return_noise else y
    work = gaussian_noise_dtype(x.dtype)
    with np.errstate(over="ignore"):
        sigma = work.type(sigma)                      # rounded once to the working precision
    z = gaussian_normals(call.key, call.stream, call.offset, x.size, work)
    with np.errstate(all="ignore"):
        noise = (work.type(1.0) + sigma * z).reshape(x.shape)  # eps, in the working precision
    y = _times_noise(x, noise, out)
    return (y, noise) if return_noise else y


def _times_noise(x, noise, out):
    """x * eps in the working precision, rounded once to x's dtype."""
    with np.errstate(all="ignore"):
        y = np.asarray(x.astype(noise.dtype) * noise).astype(x.dtype)
    if out is None:
        return y
    np.copyto(out, y)
    return out


def gaussian_dropout_backward(grad, noise=None, *, rate=None, keep_prob=None, seed=None,
                              stream=0, offset=0, out=None):
    """grad * eps: from the stored noise, or regenerated from seed/stream/offset."""
    grad, noise, call = check_gaussian_dropout_backward_args(grad, noise, rate, keep_prob, seed,
                                                             stream, offset, out)
    if noise is not None:
        return _times_noise(grad, noise, out)
    return _gaussian_dropout(grad, True, out, False, call)

# cython: language_level=3, boundscheck=False, wraparound=False
"""Typed bindings of the C kernels in src/.

Each function checks the lengths it is given, releases the GIL and makes one C call.
The arrays are 1-D and C-contiguous; fastdrop._core prepares them and has already
checked every user-facing argument.  These checks are the last line that keeps the C
code inside its buffers."""
from cython cimport floating
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

# The variant kernels also take float16, held as its uint16_t bit patterns (DESIGN.md §7.5).
ctypedef fused kernel_t:
    float
    double
    uint16_t

cdef extern from "threads.h" nogil:
    int fd_have_threads()
    int fd_default_threads()

cdef extern from "fastdrop.h" nogil:
    ctypedef struct fd_stream:
        uint32_t k0
        uint32_t k1
        uint32_t c2
        uint32_t c3
        uint64_t threshold
    int fd_cpu_level()
    int fd_set_level(int level)
    int fd_get_level()
    void fd_forward_f32(const float *x, float *y, uint8_t *bits, size_t n, uint64_t offset,
                        const fd_stream *s, float scale, int nthreads)
    void fd_forward_f64(const double *x, double *y, uint8_t *bits, size_t n, uint64_t offset,
                        const fd_stream *s, double scale, int nthreads)
    void fd_sample(uint8_t *bits, size_t n, uint64_t offset, const fd_stream *s, int nthreads)
    void fd_apply_f32(const float *x, float *y, const uint8_t *bits, size_t n, float scale,
                      int nthreads)
    void fd_apply_f64(const double *x, double *y, const uint8_t *bits, size_t n, double scale,
                      int nthreads)
    void fd_philox_block(const uint32_t *ctr, const uint32_t *key, uint32_t *out)
    ctypedef struct fd_op_f32:
        float mul
        float add
        float fill
        int affine
    ctypedef struct fd_op_f64:
        double mul
        double add
        double fill
        int affine
    enum: FD_MAX_DIMS
    ctypedef struct fd_bcast:
        const uint8_t *bits
        uint64_t nbits
        size_t run
        size_t period
        int ndim
        size_t dims[64]
        uint64_t strides[64]
    void fd_forward_op_f32(const float *x, float *y, uint8_t *bits, size_t n, uint64_t offset,
                           const fd_stream *s, const fd_op_f32 *op, int nthreads)
    void fd_forward_op_f64(const double *x, double *y, uint8_t *bits, size_t n, uint64_t offset,
                           const fd_stream *s, const fd_op_f64 *op, int nthreads)
    void fd_bcast_f32(const float *x, float *y, size_t n, const fd_bcast *b, const fd_op_f32 *op,
                      int nthreads)
    void fd_bcast_f64(const double *x, double *y, size_t n, const fd_bcast *b,
                      const fd_op_f64 *op, int nthreads)
    void fd_gauss_f32(const float *x, float *y, size_t n, uint64_t offset, const fd_stream *s,
                      double sigma, int nthreads)
    void fd_gauss_f64(const double *x, double *y, size_t n, uint64_t offset, const fd_stream *s,
                      double sigma, int nthreads)
    ctypedef fd_op_f32 fd_op_f16
    void fd_forward_op_f16(const uint16_t *x, uint16_t *y, uint8_t *bits, size_t n, uint64_t offset,
                           const fd_stream *s, const fd_op_f16 *op, int nthreads)
    void fd_bcast_f16(const uint16_t *x, uint16_t *y, size_t n, const fd_bcast *b,
                      const fd_op_f16 *op, int nthreads)
    void fd_gauss_f16(const uint16_t *x, uint16_t *y, size_t n, uint64_t offset, const fd_stream *s,
                      double sigma, int nthreads)
    void fd_f32_to_f16_array(const float *x, uint16_t *y, size_t n)
    void fd_f16_to_f32_array(const uint16_t *x, float *y, size_t n)
    void fd_box_muller_pair(uint32_t w0, uint32_t w1, double *z)
    void fd_box_muller_pair_f32(uint32_t w0, uint32_t w1, float *z)

cdef fd_stream make_stream(uint64_t key, uint64_t stream, uint64_t threshold, size_t n,
                           uint64_t offset, int nthreads) except *:
    if threshold > (<uint64_t>1 << 32):
        raise ValueError("threshold must be at most 2**32")
    if n > 0 and offset > <uint64_t>(0xFFFFFFFFFFFFFFFF) - (n - 1):
        raise ValueError("offset + size must be at most 2**64")
    if nthreads < 1:
        raise ValueError("nthreads must be at least 1")
    cdef fd_stream s
    s.k0 = <uint32_t>(key & 0xFFFFFFFFu)
    s.k1 = <uint32_t>(key >> 32)
    s.c2 = <uint32_t>(stream & 0xFFFFFFFFu)
    s.c3 = <uint32_t>(stream >> 32)
    s.threshold = threshold
    return s


cdef inline size_t mask_bytes(size_t n) noexcept nogil:
    return (n + 7) // 8


cdef int check_same_length(size_t n, Py_ssize_t ny) except -1:
    if <size_t>ny != n:
        raise ValueError("x and y differ in length")
    return 0


cdef uint8_t *optional_bits(uint8_t[::1] bits, size_t n) except? NULL:
    """Where a forward stores its mask: NULL for none; a buffer too short is an error."""
    if bits is None:
        return NULL
    if <size_t>bits.shape[0] < mask_bytes(n):
        raise ValueError("bits is too short for the array")
    return &bits[0] if n > 0 else NULL


def forward(const floating[::1] x, floating[::1] y, uint8_t[::1] bits, uint64_t offset,
            uint64_t key, uint64_t stream, uint64_t threshold, double scale, int nthreads):
    """y = kept ? x * scale : +0.0, sampling the mask and, if bits is not None, storing it."""
    cdef size_t n = x.shape[0]
    check_same_length(n, y.shape[0])
    cdef uint8_t *bits_ptr = optional_bits(bits, n)
    cdef fd_stream s = make_stream(key, stream, threshold, n, offset, nthreads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            fd_forward_f32(&x[0], &y[0], bits_ptr, n, offset, &s, <float>scale, nthreads)
        else:
            fd_forward_f64(&x[0], &y[0], bits_ptr, n, offset, &s, scale, nthreads)


def sample(uint8_t[::1] bits not None, size_t n, uint64_t offset, uint64_t key,
           uint64_t stream, uint64_t threshold, int nthreads):
    """Store the keep bits of n elements."""
    if <size_t>bits.shape[0] < mask_bytes(n):
        raise ValueError("bits is too short for the array")
    cdef fd_stream s = make_stream(key, stream, threshold, n, offset, nthreads)
    if n == 0:
        return
    with nogil:
        fd_sample(&bits[0], n, offset, &s, nthreads)


def apply(const floating[::1] x, floating[::1] y, const uint8_t[::1] bits not None,
          double scale, int nthreads):
    """y = bit set ? x * scale : +0.0."""
    cdef size_t n = x.shape[0]
    check_same_length(n, y.shape[0])
    if <size_t>bits.shape[0] < mask_bytes(n):
        raise ValueError("bits is too short for the array")
    if nthreads < 1:
        raise ValueError("nthreads must be at least 1")
    if n == 0:
        return
    with nogil:
        if floating is float:
            fd_apply_f32(&x[0], &y[0], &bits[0], n, <float>scale, nthreads)
        else:
            fd_apply_f64(&x[0], &y[0], &bits[0], n, scale, nthreads)


# -- variants (DESIGN.md §7) -----------------------------------------------------------------

def forward_op(const kernel_t[::1] x, kernel_t[::1] y, uint8_t[::1] bits, uint64_t offset,
               uint64_t key, uint64_t stream, uint64_t threshold, double mul, double add,
               double fill, bint affine, int nthreads):
    """y = kept ? x * mul (+ add when affine) : (+0.0 or fill), sampling the mask.

    uint16_t arrays are float16 data, computed with the float32 constants."""
    cdef size_t n = x.shape[0]
    check_same_length(n, y.shape[0])
    cdef uint8_t *bits_ptr = optional_bits(bits, n)
    cdef fd_stream s = make_stream(key, stream, threshold, n, offset, nthreads)
    cdef fd_op_f32 op32
    cdef fd_op_f64 op64
    if n == 0:
        return
    if kernel_t is float or kernel_t is uint16_t:
        op32.mul, op32.add, op32.fill, op32.affine = to_f32(mul), to_f32(add), to_f32(fill), affine
    if kernel_t is float:
        with nogil:
            fd_forward_op_f32(&x[0], &y[0], bits_ptr, n, offset, &s, &op32, nthreads)
    elif kernel_t is uint16_t:
        with nogil:
            fd_forward_op_f16(&x[0], &y[0], bits_ptr, n, offset, &s, &op32, nthreads)
    else:
        op64.mul, op64.add, op64.fill, op64.affine = mul, add, fill, affine
        with nogil:
            fd_forward_op_f64(&x[0], &y[0], bits_ptr, n, offset, &s, &op64, nthreads)


def bcast(const kernel_t[::1] x, kernel_t[::1] y, const uint8_t[::1] bits not None,
          uint64_t nbits, size_t run, size_t period, dims, strides, double mul, double add,
          double fill, bint affine, int nthreads):
    """Apply a noise-shape mask broadcast over x (the merged geometry of _core._broadcast_plan).

    The geometry is checked here against the buffers: every mask index the C code can
    form is below nbits, and the array holds exactly prod(dims) * run * period elements.
    """
    cdef size_t n = x.shape[0]
    check_same_length(n, y.shape[0])
    if <size_t>bits.shape[0] < mask_bytes(nbits):
        raise ValueError("bits is too short for the mask")
    if len(dims) != len(strides) or len(dims) > FD_MAX_DIMS:
        raise ValueError("dims and strides must have the same length, at most 64")
    if nthreads < 1:
        raise ValueError("nthreads must be at least 1")
    if n == 0:
        return
    cdef fd_bcast b
    b.bits = &bits[0] if bits.shape[0] > 0 else NULL
    b.nbits = nbits
    b.run = run
    b.period = period
    b.ndim = len(dims)
    total = run * period
    highest = period - 1
    for d in range(b.ndim):
        if dims[d] < 1 or strides[d] < 0:
            raise ValueError("dims must be positive and strides non-negative")
        b.dims[d] = dims[d]
        b.strides[d] = strides[d]
        total *= dims[d]
        highest += (dims[d] - 1) * strides[d]
    if total != n or run < 1 or period < 1:
        raise ValueError("the broadcast geometry does not cover the array")
    if highest >= nbits:
        raise ValueError("the broadcast geometry reaches past the mask")
    cdef fd_op_f32 op32
    cdef fd_op_f64 op64
    if kernel_t is float or kernel_t is uint16_t:
        op32.mul, op32.add, op32.fill, op32.affine = to_f32(mul), to_f32(add), to_f32(fill), affine
    if kernel_t is float:
        with nogil:
            fd_bcast_f32(&x[0], &y[0], n, &b, &op32, nthreads)
    elif kernel_t is uint16_t:
        with nogil:
            fd_bcast_f16(&x[0], &y[0], n, &b, &op32, nthreads)
    else:
        op64.mul, op64.add, op64.fill, op64.affine = mul, add, fill, affine
        with nogil:
            fd_bcast_f64(&x[0], &y[0], n, &b, &op64, nthreads)


def gauss(const kernel_t[::1] x, kernel_t[::1] y, uint64_t offset, uint64_t key,
          uint64_t stream, double sigma, int nthreads):
    """y = x * eps, eps = 1 + sigma * z in x's precision, z the Box-Muller normal of each
    element's counter (DESIGN.md §7.2)."""
    cdef size_t n = x.shape[0]
    check_same_length(n, y.shape[0])
    cdef fd_stream s = make_stream(key, stream, 0, n, offset, nthreads)
    if n == 0:
        return
    cdef double sigma32 = to_f32(sigma)  # float32/float16 outputs compute in float32 (§7.2)
    with nogil:
        if kernel_t is float:
            fd_gauss_f32(&x[0], &y[0], n, offset, &s, sigma32, nthreads)
        elif kernel_t is uint16_t:
            fd_gauss_f16(&x[0], &y[0], n, offset, &s, sigma32, nthreads)
        else:
            fd_gauss_f64(&x[0], &y[0], n, offset, &s, sigma, nthreads)


def f32_to_f16(const float[::1] x, uint16_t[::1] y):
    """The scalar C float32 -> float16 rounding, for its tests."""
    check_same_length(x.shape[0], y.shape[0])
    if x.shape[0]:
        fd_f32_to_f16_array(&x[0], &y[0], x.shape[0])


def f16_to_f32(const uint16_t[::1] x, float[::1] y):
    """The scalar C float16 -> float32 widening, for its tests."""
    check_same_length(x.shape[0], y.shape[0])
    if x.shape[0]:
        fd_f16_to_f32_array(&x[0], &y[0], x.shape[0])


def box_muller_pair(uint32_t w0, uint32_t w1, bint single=False):
    """The C Box-Muller pair of two words (DESIGN.md §7.2), in float64 or (single) float32."""
    cdef double z[2]
    cdef float zf[2]
    if single:
        fd_box_muller_pair_f32(w0, w1, zf)
        return (zf[0], zf[1])
    fd_box_muller_pair(w0, w1, z)
    return (z[0], z[1])


def philox_block(counter, key):
    """The C Philox4x32-10 on one block: for the known-answer tests."""
    cdef uint32_t c[4]
    cdef uint32_t k[2]
    cdef uint32_t out[4]
    for i in range(4):
        c[i] = counter[i]
    for i in range(2):
        k[i] = key[i]
    fd_philox_block(c, k, out)
    return (out[0], out[1], out[2], out[3])


def cpu_level():
    return fd_cpu_level()


def set_level(int level):
    if fd_set_level(level) != 0:
        raise ValueError(f"SIMD level {level} is not available on this CPU")


def get_level():
    return fd_get_level()


def have_threads():
    return bool(fd_have_threads())


def default_threads():
    return fd_default_threads()


# -- Fast front door -------------------------------------------------------------------
#
# A 1024-element dropout costs well under a microsecond in C, so Python-level argument
# checking would dominate small calls.  The public dropout / apply_mask /
# dropout_backward therefore start here: for the common case (a native, aligned,
# C-contiguous float32/float64 ndarray; plain int seed/stream/offset; a float rate; out
# None or a matching C-contiguous array) every check is a few C comparisons.  Anything
# else - including every invalid argument - goes to the general Python implementation
# in fastdrop._core, which checks it fully and raises the documented errors.

cimport numpy as cnp
from libc.math cimport INFINITY
import numpy as np

from ._args import DEFAULT_RATE
from ._mask import Mask

cnp.import_array()

cdef object _general = None       # fastdrop._core, registered at its import
cdef int _num_threads = 0         # 0: never set; the default is fd_default_threads()
cdef object _ndarray = np.ndarray
cdef object _default_rate = DEFAULT_RATE
cdef object _Mask = Mask
cdef object _U64 = 1 << 64


def _register_general(module):
    global _general
    _general = module


def get_num_threads():
    """Threads the kernels use on large arrays (set_num_threads, else OMP_NUM_THREADS)."""
    return _num_threads if _num_threads > 0 else max(1, fd_default_threads())


def set_num_threads(n):
    """Use n threads on large arrays; None goes back to the default."""
    global _num_threads
    if n is None:
        _num_threads = 0
        return
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    _num_threads = min(int(n), 1 << 16)


def num_threads_setting():
    """The value given to set_num_threads, or None where it was never set (or reset)."""
    return _num_threads if _num_threads > 0 else None


cdef inline int threads() noexcept:
    return _num_threads if _num_threads > 0 else max(1, fd_default_threads())


cdef inline bint plain_float_array(object a) noexcept:
    """A native-order, aligned, C-contiguous float32/float64 ndarray."""
    if type(a) is not _ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int typenum = cnp.PyArray_TYPE(arr)
    return ((typenum == cnp.NPY_FLOAT32 or typenum == cnp.NPY_FLOAT64)
            and cnp.PyArray_ISNOTSWAPPED(arr)
            and cnp.PyArray_CHKFLAGS(arr, cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED))


cdef inline bint plain_u64(object v) noexcept:
    return type(v) is int and v >= 0 and v < _U64


cdef object fast_out(cnp.ndarray x, object out):
    """The array to write into, or None if `out` needs the general path."""
    if out is None:
        return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), cnp.PyArray_TYPE(x), 0)
    if not plain_float_array(out):
        return None
    cdef cnp.ndarray o = <cnp.ndarray>out
    if (cnp.PyArray_TYPE(o) != cnp.PyArray_TYPE(x) or cnp.PyArray_NDIM(o) != cnp.PyArray_NDIM(x)
            or not cnp.PyArray_ISWRITEABLE(o)):
        return None
    cdef int d
    for d in range(cnp.PyArray_NDIM(x)):
        if cnp.PyArray_DIM(o, d) != cnp.PyArray_DIM(x, d):
            return None
    cdef char *xp = <char *>cnp.PyArray_DATA(x)
    cdef char *op = <char *>cnp.PyArray_DATA(o)
    cdef size_t nbytes = <size_t>cnp.PyArray_NBYTES(x)
    if xp != op and xp < op + nbytes and op < xp + nbytes:
        return None  # partial overlap: the general path goes through a temporary
    return o


cdef inline double scale_of(double keep_prob, bint inverted) noexcept:
    if not inverted:
        return 1.0
    return 1.0 / keep_prob if keep_prob > 0.0 else 0.0


cdef inline float to_f32(double v) noexcept:
    # DESIGN.md §3: the float64 value rounded once to nearest.  At or past FLT_MAX plus half
    # an ulp that is inf, which C leaves undefined, so it is spelled out.
    if v >= 3.4028235677973366e38:
        return INFINITY
    return <float>v


cdef void run_forward(cnp.ndarray x, cnp.ndarray y, uint8_t *bits, uint64_t offset,
                      fd_stream *s, double scale, int nthreads) noexcept:
    cdef size_t n = <size_t>cnp.PyArray_SIZE(x)
    if n == 0:
        return
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    cdef float scale32 = to_f32(scale)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            fd_forward_f32(<const float *>xp, <float *>yp, bits, n, offset, s, scale32, nthreads)
    else:
        with nogil:
            fd_forward_f64(<const double *>xp, <double *>yp, bits, n, offset, s, scale, nthreads)


def dropout(x, rate=DEFAULT_RATE, *, keep_prob=None, seed=None, stream=0, offset=0,
            training=True, inverted=True, out=None, return_mask=False, noise_shape=None,
            mask=None):
    """Dropout of `x`: kept elements scaled (by 1/keep_prob when inverted), others +0.0.

    Returns y, or (y, Mask) with return_mask (the Mask is None when not training).  In
    eval mode (training=False) nothing is sampled and inverted dropout returns x itself
    (unless out is given).  See DESIGN.md for the random stream and numerics.

    noise_shape: sample the mask over this shape (same rank as x; each entry 1, None or
    x's size there) and broadcast it, as Keras (DESIGN.md §7.1).  mask: use this Mask,
    or boolean array (True = kept, scaled by rate/keep_prob), instead of sampling (§7.6).
    """
    cdef double kp
    if (training is True and noise_shape is None and mask is None
            and (inverted is True or inverted is False)
            and (return_mask is True or return_mask is False)
            and plain_float_array(x) and plain_u64(seed) and plain_u64(stream)
            and plain_u64(offset)):
        if keep_prob is None and (rate is _default_rate or type(rate) is float):
            kp = 1.0 - <double>rate
        elif rate is _default_rate and type(keep_prob) is float:
            kp = <double>keep_prob
        else:
            kp = -1.0
        size = cnp.PyArray_SIZE(<cnp.ndarray>x)
        if 0.0 <= kp <= 1.0 and offset + size <= _U64:
            y = fast_out(<cnp.ndarray>x, out)
            if y is not None:
                s = make_stream(seed, stream, <uint64_t>(kp * 4294967296.0), size, offset, 1)
                scale = scale_of(kp, inverted)
                if not return_mask:
                    run_forward(<cnp.ndarray>x, <cnp.ndarray>y, NULL, offset, &s, scale, threads())
                    return y
                bits = np.empty((size + 7) // 8, dtype=np.uint8)
                run_forward(<cnp.ndarray>x, <cnp.ndarray>y,
                            <uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>bits), offset, &s, scale,
                            threads())
                return y, _Mask._from_kernels(bits, x.shape, size, kp, scale, seed, stream, offset)
    return _general.dropout(x, rate, keep_prob=keep_prob, seed=seed, stream=stream,
                            offset=offset, training=training, inverted=inverted, out=out,
                            return_mask=return_mask, noise_shape=noise_shape, mask=mask)


def apply_mask(x, mask, *, rate=None, keep_prob=None, inverted=True, out=None):
    """x * mask.scale where the mask keeps, +0.0 elsewhere.

    `mask` is a Mask of x's shape or of a noise shape that broadcasts to it, or a boolean
    array (True = kept) whose scale comes from rate/keep_prob and `inverted` (§7.6).
    """
    if (plain_float_array(x) and type(mask) is _Mask and mask.shape == x.shape
            and rate is None and keep_prob is None):
        bits = mask.bits
        size = cnp.PyArray_SIZE(<cnp.ndarray>x)
        if (type(bits) is _ndarray and cnp.PyArray_TYPE(<cnp.ndarray>bits) == cnp.NPY_UINT8
                and cnp.PyArray_CHKFLAGS(<cnp.ndarray>bits, cnp.NPY_ARRAY_C_CONTIGUOUS)
                and cnp.PyArray_SIZE(<cnp.ndarray>bits) * 8 >= size):
            y = fast_out(<cnp.ndarray>x, out)
            if y is not None:
                run_apply(<cnp.ndarray>x, <cnp.ndarray>y, <cnp.ndarray>bits, mask.scale)
                return y
    return _general.apply_mask(x, mask, rate=rate, keep_prob=keep_prob, inverted=inverted,
                               out=out)


cdef void run_apply(cnp.ndarray x, cnp.ndarray y, cnp.ndarray bits, double scale) noexcept:
    cdef size_t n = <size_t>cnp.PyArray_SIZE(x)
    if n == 0:
        return
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *yp = cnp.PyArray_DATA(y)
    cdef const uint8_t *bp = <const uint8_t *>cnp.PyArray_DATA(bits)
    cdef float scale32 = to_f32(scale)
    cdef int nthreads = threads()
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            fd_apply_f32(<const float *>xp, <float *>yp, bp, n, scale32, nthreads)
    else:
        with nogil:
            fd_apply_f64(<const double *>xp, <double *>yp, bp, n, scale, nthreads)


def dropout_backward(grad, mask=None, *, rate=None, keep_prob=None, seed=None, stream=0,
                     offset=0, inverted=True, out=None, noise_shape=None):
    """Gradient of dropout: grad * scale where kept, else 0.

    From a stored `Mask` (or a boolean mask with rate/keep_prob), or (mask=None) by
    regenerating the same mask from rate/keep_prob, seed, stream, offset and noise_shape
    without storing it.
    """
    if noise_shape is not None:
        pass
    elif mask is not None:
        if (type(mask) is _Mask and rate is None and keep_prob is None and seed is None
                and type(stream) is int and stream == 0 and type(offset) is int and offset == 0):
            return apply_mask(grad, mask, out=out)
    elif seed is not None and type(seed) is int and (rate is None) != (keep_prob is None):
        if rate is None:
            return dropout(grad, keep_prob=keep_prob, seed=seed, stream=stream, offset=offset,
                           inverted=inverted, out=out)
        return dropout(grad, rate, seed=seed, stream=stream, offset=offset, inverted=inverted,
                       out=out)
    return _general.dropout_backward(grad, mask, rate=rate, keep_prob=keep_prob, seed=seed,
                                     stream=stream, offset=offset, inverted=inverted, out=out,
                                     noise_shape=noise_shape)


# -- Box kernels (DESIGN.md §8) ----------------------------------------------------------
#
# An N-d box (a chunk, tile or shard) of a larger C-order array, every element addressed by
# its index in the whole array.  The geometry is checked here in full, so every row the C
# code walks lies inside x, y (or bits) and every counter index stays below 2**64.

cdef extern from "box.h" nogil:
    ctypedef struct fd_box:
        int ndim
        size_t shape[64]
        uint64_t counter_pitch[64]
        size_t x_pitch[64]
        size_t y_pitch[64]
        uint64_t j0
    void fd_box_forward_op_f32(const float *x, float *y, const fd_box *b, const fd_stream *s,
                               const fd_op_f32 *op, int nthreads)
    void fd_box_forward_op_f64(const double *x, double *y, const fd_box *b, const fd_stream *s,
                               const fd_op_f64 *op, int nthreads)
    void fd_box_forward_op_f16(const uint16_t *x, uint16_t *y, const fd_box *b,
                               const fd_stream *s, const fd_op_f16 *op, int nthreads)
    void fd_box_gauss_f32(const float *x, float *y, const fd_box *b, const fd_stream *s,
                          double sigma, int nthreads)
    void fd_box_gauss_f64(const double *x, double *y, const fd_box *b, const fd_stream *s,
                          double sigma, int nthreads)
    void fd_box_gauss_f16(const uint16_t *x, uint16_t *y, const fd_box *b, const fd_stream *s,
                          double sigma, int nthreads)
    int fd_box_sample(uint8_t *bits, const fd_box *b, const fd_stream *s, int nthreads)


def _box_ints(values, name, ndim):
    if len(values) != ndim:
        raise ValueError(f"{name} must have {ndim} entries (one per axis), got {len(values)}")
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} entries must be ints, got {type(v).__name__}")
        if v < 0:
            raise ValueError(f"{name} entries must be non-negative, got {v}")
        out.append(int(v))
    return out


def _box_pitches(pitch, shape, name, Py_ssize_t length):
    """Element pitches of a buffer holding the box (None: the box's own C order), checked
    to lay the rows out without overlap inside `length` elements."""
    ndim = len(shape)
    if pitch is None:
        pitch, step = [0] * ndim, 1
        for k in range(ndim - 1, -1, -1):
            pitch[k] = step
            step *= shape[k]
    pitch = _box_ints(pitch, name, ndim)
    if pitch[ndim - 1] != 1:
        raise ValueError(f"{name} must end in 1: the rows are contiguous")
    for k in range(ndim - 1):
        if pitch[k] < pitch[k + 1] * shape[k + 1]:
            raise ValueError(f"{name} makes the rows overlap: axis {k} steps {pitch[k]} "
                             f"elements, less than the {pitch[k + 1] * shape[k + 1]} "
                             f"that axis {k + 1} spans")
    if 0 not in shape and sum((s - 1) * p for s, p in zip(shape, pitch)) >= length:
        raise ValueError(f"the box reaches past the end of the buffer ({name})")
    return pitch


cdef int fill_box(fd_box *b, global_shape, start, shape, x_pitch, y_pitch, Py_ssize_t nx,
                  Py_ssize_t ny, uint64_t offset) except -1:
    """Check the box against the whole array and the buffers, and fill in b.  A 0-d box
    is the 1-d box of its one element."""
    ndim = len(global_shape)
    if ndim == 0:
        global_shape, start, shape = (1,), tuple(start) or (0,), tuple(shape) or (1,)
        ndim = 1
    if ndim > FD_MAX_DIMS:
        raise ValueError(f"the array may have at most {FD_MAX_DIMS} axes, got {ndim}")
    global_shape = _box_ints(global_shape, "global_shape", ndim)
    start = _box_ints(start, "start", ndim)
    shape = _box_ints(shape, "shape", ndim)
    for k in range(ndim):
        if start[k] + shape[k] > global_shape[k]:
            raise ValueError(f"the box leaves the array on axis {k}: start {start[k]} + "
                             f"shape {shape[k]} > {global_shape[k]}")
    total = 1
    for g in global_shape:
        total *= g
    if offset + total > _U64:
        raise ValueError("offset + size must be at most 2**64")
    xp = _box_pitches(x_pitch, shape, "x_pitch", nx)
    yp = _box_pitches(y_pitch, shape, "y_pitch", ny)
    b.ndim = ndim
    j0 = offset
    step = 1
    for k in range(ndim - 1, -1, -1):
        b.shape[k] = shape[k]
        b.counter_pitch[k] = step
        b.x_pitch[k] = xp[k]
        b.y_pitch[k] = yp[k]
        j0 += start[k] * step
        step *= global_shape[k]
    b.j0 = j0
    return 0


cdef int check_box_alias(const void *x, const void *y, size_t nbytes_x, size_t nbytes_y,
                         x_pitch, y_pitch) except -1:
    cdef const char *xc = <const char *>x
    cdef const char *yc = <const char *>y
    if xc == yc:
        if x_pitch != y_pitch:
            raise ValueError("x and y are the same buffer but with different pitches")
    elif xc < yc + nbytes_y and yc < xc + nbytes_x:
        raise ValueError("x and y overlap partially")
    return 0


def box_forward_op(const kernel_t[::1] x, kernel_t[::1] y, global_shape, start, shape,
                   x_pitch, y_pitch, uint64_t offset, uint64_t key, uint64_t stream,
                   uint64_t threshold, double mul, double add, double fill, bint affine,
                   int nthreads):
    """forward_op over the box `shape` at `start` of a C-order array of `global_shape`,
    held in x and y with the given element pitches (None: the box in its own C order)."""
    cdef fd_box b
    fill_box(&b, global_shape, start, shape, x_pitch, y_pitch, x.shape[0], y.shape[0], offset)
    cdef fd_stream s = make_stream(key, stream, threshold, 0, offset, nthreads)
    if 0 in shape or x.shape[0] == 0:
        return
    check_box_alias(&x[0], &y[0], x.shape[0] * sizeof(kernel_t), y.shape[0] * sizeof(kernel_t),
                    x_pitch, y_pitch)
    # float32 and float16 take the constants rounded to float32 (§7.5)
    cdef fd_op_f32 op32 = fd_op_f32(to_f32(mul), to_f32(add), to_f32(fill), affine)
    cdef fd_op_f64 op64 = fd_op_f64(mul, add, fill, affine)
    with nogil:
        if kernel_t is float:
            fd_box_forward_op_f32(&x[0], &y[0], &b, &s, &op32, nthreads)
        elif kernel_t is uint16_t:
            fd_box_forward_op_f16(&x[0], &y[0], &b, &s, &op32, nthreads)
        else:
            fd_box_forward_op_f64(&x[0], &y[0], &b, &s, &op64, nthreads)


def box_gauss(const kernel_t[::1] x, kernel_t[::1] y, global_shape, start, shape, x_pitch,
              y_pitch, uint64_t offset, uint64_t key, uint64_t stream, double sigma,
              int nthreads):
    """gauss (DESIGN.md §7.2) over a box, as box_forward_op."""
    cdef fd_box b
    fill_box(&b, global_shape, start, shape, x_pitch, y_pitch, x.shape[0], y.shape[0], offset)
    cdef fd_stream s = make_stream(key, stream, 0, 0, offset, nthreads)
    if 0 in shape or x.shape[0] == 0:
        return
    check_box_alias(&x[0], &y[0], x.shape[0] * sizeof(kernel_t), y.shape[0] * sizeof(kernel_t),
                    x_pitch, y_pitch)
    cdef double sigma32 = to_f32(sigma)  # float32/float16 compute in float32 (§7.2)
    with nogil:
        if kernel_t is float:
            fd_box_gauss_f32(&x[0], &y[0], &b, &s, sigma32, nthreads)
        elif kernel_t is uint16_t:
            fd_box_gauss_f16(&x[0], &y[0], &b, &s, sigma32, nthreads)
        else:
            fd_box_gauss_f64(&x[0], &y[0], &b, &s, sigma, nthreads)


def box_sample(uint8_t[::1] bits not None, global_shape, start, shape, uint64_t offset,
               uint64_t key, uint64_t stream, uint64_t threshold, int nthreads):
    """The keep bits of a box, packed in the box's own C order (DESIGN.md §4 layout)."""
    cdef fd_box b
    size = 1
    for n in shape:
        size *= n
    fill_box(&b, global_shape, start, shape, None, None, size, size, offset)
    if <size_t>bits.shape[0] < mask_bytes(size):
        raise ValueError("bits is too short for the box")
    cdef fd_stream s = make_stream(key, stream, threshold, 0, offset, nthreads)
    cdef int status
    if size == 0:
        return
    with nogil:
        status = fd_box_sample(&bits[0], &b, &s, nthreads)
    if status != 0:
        raise MemoryError("no memory for the box's scratch row")

# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled layer of fastdrop: the numbers a keep probability gives, typed bindings
of the C kernels in src/, and the fast path of every public function.

Numbers.  keep_threshold, dropout_scale, alpha_constants and gaussian_sigma are the one
definition, in the library, of the values derived from a valid keep_prob (the
random-stream and numerics contract, DESIGN.md in the source distribution): the fast
paths here use them in C, and fastdrop._general and fastdrop.mask call the same
functions.  fastdrop.reference derives its own from the contract, so it stays an
independent oracle.

Bindings (dropout, sample_mask, apply_mask, apply_mask_broadcast, alpha_dropout,
gaussian_dropout) take 1-D C-contiguous arrays whose every user-facing argument has been
checked.  Each checks the lengths and geometry it is given, releases the GIL and makes
one C call; these checks are the last line that keeps the C code inside its buffers.

Fast paths.  try_<name> takes the arguments of the public function <name> (or, for a
stored Mask, its fields).  For a plain call (native, aligned, C-contiguous float32 or
float64 arrays; int seed, stream and offset; float rate or keep_prob; no noise_shape or
user mask) every check is a few C comparisons and it returns the result.  For anything
else, every invalid argument included, it returns NotImplemented and raises nothing:
fastdrop.api then runs the general path, which checks everything.  Results that are
Masks come back as the positional arguments of Mask._from_kernels (bits, shape, size,
keep_prob, scale, seed, stream, offset), since this module imports nothing from the
package.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport INFINITY, sqrt
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

import numpy as np

cnp.import_array()

# The variant kernels also take float16, held as its uint16_t bit patterns.
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
    void fd_times_two_f32(const float *x, float *y, size_t n, int nthreads)
    void fd_times_two_f64(const double *x, double *y, size_t n, int nthreads)
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


# -- the numbers a keep probability gives -------------------------------------------------

#: The mask stream the kernels draw (DESIGN.md §2.1): 2, bit planes (fastdrop 0.3 on).
MASK_STREAM_VERSION = 2

#: -alpha' = lambda * alpha of SELU, as PyTorch's AlphaDropout spells it (the correctly
#: rounded product is one ulp larger; this literal keeps fastdrop equal to PyTorch).
SELU_NEG_SATURATION = 1.7580993408473766
cdef double _SELU_NEG_SATURATION = SELU_NEG_SATURATION


cpdef uint64_t keep_threshold(double keep_prob) noexcept:
    """T = floor(keep_prob * 2**32) for keep_prob in [0, 1]: an element is kept iff its
    32-bit draw < T (the product is exact, a power of two)."""
    return <uint64_t>(keep_prob * 4294967296.0)


cpdef double dropout_scale(double keep_prob, bint inverted) noexcept:
    """The float64 factor of kept elements: 1/keep_prob (inverted) or 1 (classical).

    With keep_prob = 0 nothing is kept, so the factor is never used; it is 0, not a division.
    """
    if not inverted:
        return 1.0
    return 1.0 / keep_prob if keep_prob > 0.0 else 0.0


ctypedef struct alpha_op:
    double mul
    double add
    double fill
    bint affine


cdef alpha_op alpha_forward_op(double keep_prob) noexcept:
    """Alpha dropout as the masked op of the kernels: kept x*mul (+ add), dropped fill.

    With q = keep_prob, p = 1 - q and A = SELU_NEG_SATURATION, all in float64:
    a = 1/sqrt((A*A*p + 1)*q), add = (A*a)*p, fill = (A*a)*p - A*a.  q = 1 is the identity
    x * 1 and q = 0 drops everything to +0.0, so both are plain scales (mul = 1 or 0).
    """
    cdef alpha_op op
    op.add = 0.0
    op.fill = 0.0
    op.affine = False
    if keep_prob == 0.0 or keep_prob == 1.0:
        op.mul = keep_prob
        return op
    cdef double p = 1.0 - keep_prob
    cdef double a = 1.0 / sqrt((_SELU_NEG_SATURATION * _SELU_NEG_SATURATION * p + 1.0) * keep_prob)
    cdef double alpha_a = _SELU_NEG_SATURATION * a
    op.mul = a
    op.add = alpha_a * p
    op.fill = alpha_a * p - alpha_a
    op.affine = True
    return op


def alpha_constants(double keep_prob):
    """(a, add, fill) of alpha dropout in float64: kept a*x + add, dropped fill.

    q = 1 gives (1, 0, 0) and q = 0 gives (0, 0, 0); a is also the gradient's factor.
    """
    cdef alpha_op op = alpha_forward_op(keep_prob)
    return op.mul, op.add, op.fill


cpdef double alpha_scale(double keep_prob) noexcept:
    """a of alpha dropout: the factor of kept elements, and of the gradient."""
    return alpha_forward_op(keep_prob).mul


cpdef double gaussian_sigma(double keep_prob) noexcept:
    """sigma = sqrt((1 - q) / q) in float64, for keep_prob q in (0, 1]."""
    return sqrt((1.0 - keep_prob) / keep_prob)


cdef inline float to_f32(double v) noexcept nogil:
    # The float64 value rounded once to nearest.  At or past FLT_MAX plus half an ulp that
    # is inf, which a C cast leaves undefined, so it is spelled out.
    if v >= 3.4028235677973366e38:
        return INFINITY
    if v <= -3.4028235677973366e38:
        return -INFINITY
    return <float>v


cdef inline void set_op32(fd_op_f32 *op, double mul, double add, double fill, bint affine) noexcept:
    op.mul, op.add, op.fill, op.affine = to_f32(mul), to_f32(add), to_f32(fill), affine


cdef inline void set_op64(fd_op_f64 *op, double mul, double add, double fill, bint affine) noexcept:
    op.mul, op.add, op.fill, op.affine = mul, add, fill, affine


# -- threads ----------------------------------------------------------------------------

cdef int _num_threads = 0         # 0: never set; the default is fd_default_threads()


cdef inline int threads() noexcept nogil:
    return _num_threads if _num_threads > 0 else max(1, fd_default_threads())


def get_num_threads():
    """Threads the kernels use on large arrays (set_num_threads, else OMP_NUM_THREADS)."""
    return threads()


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


def have_threads():
    return bool(fd_have_threads())


def default_threads():
    return fd_default_threads()


def cpu_level():
    return fd_cpu_level()


def set_level(int level):
    if fd_set_level(level) != 0:
        raise ValueError(f"SIMD level {level} is not available on this CPU")


def get_level():
    return fd_get_level()


# -- bindings -----------------------------------------------------------------------------

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
    """Where a kernel stores its mask: NULL for none; a buffer too short is an error."""
    if bits is None:
        return NULL
    if <size_t>bits.shape[0] < mask_bytes(n):
        raise ValueError("bits is too short for the array")
    return &bits[0] if n > 0 else NULL


cdef void run_sampled_op(kernel_t *x, kernel_t *y, uint8_t *bits, size_t n, uint64_t offset,
                         const fd_stream *s, double mul, double add, double fill, bint affine,
                         int nthreads) noexcept:
    """Sample and apply in one pass: kept x*mul (+ add), dropped +0.0 (fill)."""
    cdef fd_op_f32 op32
    cdef fd_op_f64 op64
    if kernel_t is float:
        set_op32(&op32, mul, add, fill, affine)
        with nogil:
            fd_forward_op_f32(x, y, bits, n, offset, s, &op32, nthreads)
    elif kernel_t is uint16_t:
        set_op32(&op32, mul, add, fill, affine)
        with nogil:
            fd_forward_op_f16(x, y, bits, n, offset, s, &op32, nthreads)
    else:
        set_op64(&op64, mul, add, fill, affine)
        with nogil:
            fd_forward_op_f64(x, y, bits, n, offset, s, &op64, nthreads)


cdef void run_dropout(floating *x, floating *y, uint8_t *bits, size_t n, uint64_t offset,
                      const fd_stream *s, double scale, int nthreads) noexcept:
    if floating is float:
        with nogil:
            fd_forward_f32(x, y, bits, n, offset, s, to_f32(scale), nthreads)
    else:
        with nogil:
            fd_forward_f64(x, y, bits, n, offset, s, scale, nthreads)


cdef void run_apply_mask(floating *x, floating *y, const uint8_t *bits, size_t n, double scale,
                         int nthreads) noexcept:
    if floating is float:
        with nogil:
            fd_apply_f32(x, y, bits, n, to_f32(scale), nthreads)
    else:
        with nogil:
            fd_apply_f64(x, y, bits, n, scale, nthreads)


cdef void run_gaussian(kernel_t *x, kernel_t *y, size_t n, uint64_t offset, const fd_stream *s,
                       double sigma, int nthreads) noexcept:
    """y = x * eps; float32 and float16 outputs compute in float32, sigma included."""
    cdef double sigma32 = to_f32(sigma)
    if kernel_t is float:
        with nogil:
            fd_gauss_f32(x, y, n, offset, s, sigma32, nthreads)
    elif kernel_t is uint16_t:
        with nogil:
            fd_gauss_f16(x, y, n, offset, s, sigma32, nthreads)
    else:
        with nogil:
            fd_gauss_f64(x, y, n, offset, s, sigma, nthreads)


def dropout(const kernel_t[::1] x, kernel_t[::1] y, uint8_t[::1] bits, uint64_t offset,
            uint64_t key, uint64_t stream, uint64_t threshold, double scale, int nthreads):
    """y = kept ? x * scale : +0.0, sampling the mask and, if bits is not None, storing it.

    uint16_t arrays are float16 data, computed in float32 with the float32 scale."""
    cdef size_t n = x.shape[0]
    check_same_length(n, y.shape[0])
    cdef uint8_t *bits_ptr = optional_bits(bits, n)
    cdef fd_stream s = make_stream(key, stream, threshold, n, offset, nthreads)
    if n == 0:
        return
    if kernel_t is uint16_t:
        run_sampled_op(<uint16_t *>&x[0], &y[0], bits_ptr, n, offset, &s, scale, 0.0, 0.0, False,
                       nthreads)
    elif kernel_t is float:
        run_dropout(<float *>&x[0], &y[0], bits_ptr, n, offset, &s, scale, nthreads)
    else:
        run_dropout(<double *>&x[0], &y[0], bits_ptr, n, offset, &s, scale, nthreads)


def sample_mask(uint8_t[::1] bits not None, size_t n, uint64_t offset, uint64_t key,
                uint64_t stream, uint64_t threshold, int nthreads):
    """Store the keep bits of n elements."""
    if <size_t>bits.shape[0] < mask_bytes(n):
        raise ValueError("bits is too short for the array")
    cdef fd_stream s = make_stream(key, stream, threshold, n, offset, nthreads)
    if n == 0:
        return
    with nogil:
        fd_sample(&bits[0], n, offset, &s, nthreads)


def apply_mask(const floating[::1] x, floating[::1] y, const uint8_t[::1] bits not None,
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
    if floating is float:
        run_apply_mask(<float *>&x[0], &y[0], &bits[0], n, scale, nthreads)
    else:
        run_apply_mask(<double *>&x[0], &y[0], &bits[0], n, scale, nthreads)


def apply_mask_broadcast(const kernel_t[::1] x, kernel_t[::1] y, const uint8_t[::1] bits not None,
                         uint64_t nbits, size_t run, size_t period, dims, strides, double mul,
                         double add, double fill, bint affine, int nthreads):
    """y = kept ? x * mul (+ add when affine) : (+0.0 or fill), with a noise-shape mask
    broadcast over x in the merged geometry of fastdrop._general.broadcast_plan.

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
    if kernel_t is float:
        set_op32(&op32, mul, add, fill, affine)
        with nogil:
            fd_bcast_f32(&x[0], &y[0], n, &b, &op32, nthreads)
    elif kernel_t is uint16_t:
        set_op32(&op32, mul, add, fill, affine)
        with nogil:
            fd_bcast_f16(&x[0], &y[0], n, &b, &op32, nthreads)
    else:
        set_op64(&op64, mul, add, fill, affine)
        with nogil:
            fd_bcast_f64(&x[0], &y[0], n, &b, &op64, nthreads)


def alpha_dropout(const kernel_t[::1] x, kernel_t[::1] y, uint8_t[::1] bits, uint64_t offset,
                  uint64_t key, uint64_t stream, uint64_t threshold, double mul, double add,
                  double fill, bint affine, int nthreads):
    """y = kept ? x * mul (+ add when affine) : (+0.0 or fill), sampling the mask and, if
    bits is not None, storing it: alpha dropout's op (alpha_constants), or its gradient's.

    uint16_t arrays are float16 data, computed with the float32 constants."""
    cdef size_t n = x.shape[0]
    check_same_length(n, y.shape[0])
    cdef uint8_t *bits_ptr = optional_bits(bits, n)
    cdef fd_stream s = make_stream(key, stream, threshold, n, offset, nthreads)
    if n == 0:
        return
    run_sampled_op(<kernel_t *>&x[0], &y[0], bits_ptr, n, offset, &s, mul, add, fill, affine,
                   nthreads)


def gaussian_dropout(const kernel_t[::1] x, kernel_t[::1] y, uint64_t offset, uint64_t key,
                     uint64_t stream, double sigma, int nthreads):
    """y = x * eps, eps = 1 + sigma * z in x's precision, z the Box-Muller normal of each
    element's counter."""
    cdef size_t n = x.shape[0]
    check_same_length(n, y.shape[0])
    cdef fd_stream s = make_stream(key, stream, 0, n, offset, nthreads)
    if n == 0:
        return
    run_gaussian(<kernel_t *>&x[0], &y[0], n, offset, &s, sigma, nthreads)


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
    """The C Box-Muller pair of two words, in float64 or (single) float32."""
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


def times_two(const floating[::1] x, floating[::1] y, int nthreads):
    """y = 2x on the kernels' thread pool and chunking: the floor `fastdrop bench`
    measures the kernels against."""
    cdef size_t n = x.shape[0]
    check_same_length(n, y.shape[0])
    if nthreads < 1:
        raise ValueError("nthreads must be at least 1")
    if n == 0:
        return
    if floating is float:
        with nogil:
            fd_times_two_f32(&x[0], &y[0], n, nthreads)
    else:
        with nogil:
            fd_times_two_f64(&x[0], &y[0], n, nthreads)


# -- fast paths ---------------------------------------------------------------------------
#
# A 1024-element dropout costs well under a microsecond in C, so Python-level argument
# checking would dominate small calls; here every check of a plain call is a C comparison.

cdef object _ndarray = np.ndarray
cdef object _multiply = np.multiply
# Larger sample_mask sizes take the general path, which refuses masks larger than any
# buffer can be (fastdrop._validate.MAX_BUFFER_BYTES, at least 2**31 bytes) before allocating.
cdef Py_ssize_t _SIZE_LIMIT = <Py_ssize_t>1 << 34


cdef inline bint plain_float_array(object a) noexcept:
    """A native-order, aligned, C-contiguous float32/float64 ndarray."""
    if type(a) is not _ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int typenum = cnp.PyArray_TYPE(arr)
    return ((typenum == cnp.NPY_FLOAT32 or typenum == cnp.NPY_FLOAT64)
            and cnp.PyArray_ISNOTSWAPPED(arr)
            and cnp.PyArray_CHKFLAGS(arr, cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED))


cdef inline bint as_u64(object v, uint64_t *out):
    """An int in [0, 2**64) into *out; False for anything else."""
    if type(v) is not int:
        return False
    try:
        out[0] = v
    except OverflowError:  # negative, or 2**64 and above
        return False
    return True


cdef inline bint fits_after(uint64_t offset, Py_ssize_t size) noexcept:
    """offset + size <= 2**64."""
    return size == 0 or offset <= <uint64_t>0xFFFFFFFFFFFFFFFF - <uint64_t>(size - 1)


cdef inline bint plain_flag(object v) noexcept:
    return v is True or v is False


cdef inline double plain_keep_prob(object rate, object keep_prob) noexcept:
    """keep_prob from exactly one float of rate/keep_prob in [0, 1]; -1 where not plain."""
    cdef double value
    if keep_prob is None and type(rate) is float:
        value = 1.0 - <double>rate
        return value if 0.0 <= <double>rate <= 1.0 else -1.0
    if rate is None and type(keep_prob) is float:
        value = <double>keep_prob
        return value if 0.0 <= value <= 1.0 else -1.0
    return -1.0


cdef inline bint plain_position(object stream, object offset, Py_ssize_t size, fd_stream *s,
                                uint64_t *first):
    """int stream and offset in [0, 2**64), offset + size <= 2**64: into s's counter and *first."""
    cdef uint64_t stream_value
    if not (as_u64(stream, &stream_value) and as_u64(offset, first) and fits_after(first[0], size)):
        return False
    s.c2 = <uint32_t>(stream_value & 0xFFFFFFFFu)
    s.c3 = <uint32_t>(stream_value >> 32)
    return True


cdef inline bint plain_key(object seed, uint64_t threshold, fd_stream *s):
    """An int seed in [0, 2**64) into s's key, with the keep threshold."""
    cdef uint64_t key
    if not as_u64(seed, &key):
        return False
    s.k0 = <uint32_t>(key & 0xFFFFFFFFu)
    s.k1 = <uint32_t>(key >> 32)
    s.threshold = threshold
    return True


cdef object output_for(cnp.ndarray x, object out):
    """The array to write into: a new one, or `out`; None where `out` needs the general path."""
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


cdef inline cnp.ndarray new_bits(Py_ssize_t size):
    cdef cnp.npy_intp nbytes = (size + 7) // 8
    return cnp.PyArray_EMPTY(1, &nbytes, cnp.NPY_UINT8, 0)


cdef inline tuple mask_fields(cnp.ndarray bits, object shape, Py_ssize_t size, double keep_prob,
                              double scale, object seed, object stream, object offset):
    """The written bits, made read-only as a Mask holds them, with the Mask's other fields."""
    cnp.PyArray_CLEARFLAGS(bits, cnp.NPY_ARRAY_WRITEABLE)
    return (bits, shape, size, keep_prob, scale, seed, stream, offset)


cdef inline uint8_t *bits_data(object bits) noexcept:
    return NULL if bits is None else <uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>bits)


cdef inline bint same_shape(object shape, cnp.ndarray x) noexcept:
    """`shape` is a tuple equal to x.shape."""
    if type(shape) is not tuple or len(<tuple>shape) != cnp.PyArray_NDIM(x):
        return False
    cdef int d
    for d in range(cnp.PyArray_NDIM(x)):
        item = (<tuple>shape)[d]
        if type(item) is not int or item != cnp.PyArray_DIM(x, d):
            return False
    return True


cdef inline bint plain_bits(object bits, Py_ssize_t size) noexcept:
    """A C-contiguous uint8 ndarray holding at least `size` bits."""
    return (type(bits) is _ndarray and cnp.PyArray_TYPE(<cnp.ndarray>bits) == cnp.NPY_UINT8
            and cnp.PyArray_CHKFLAGS(<cnp.ndarray>bits, cnp.NPY_ARRAY_C_CONTIGUOUS)
            and cnp.PyArray_SIZE(<cnp.ndarray>bits) * 8 >= size)


cdef void sampled_op(cnp.ndarray x, cnp.ndarray y, object bits, uint64_t offset, fd_stream *s,
                     double mul, double add, double fill, bint affine) noexcept:
    cdef size_t n = <size_t>cnp.PyArray_SIZE(x)
    if n == 0:
        return
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        run_sampled_op(<float *>cnp.PyArray_DATA(x), <float *>cnp.PyArray_DATA(y), bits_data(bits),
                       n, offset, s, mul, add, fill, affine, threads())
    else:
        run_sampled_op(<double *>cnp.PyArray_DATA(x), <double *>cnp.PyArray_DATA(y),
                       bits_data(bits), n, offset, s, mul, add, fill, affine, threads())


cdef void dropout_arrays(cnp.ndarray x, cnp.ndarray y, object bits, uint64_t offset, fd_stream *s,
                         double scale) noexcept:
    cdef size_t n = <size_t>cnp.PyArray_SIZE(x)
    if n == 0:
        return
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        run_dropout(<float *>cnp.PyArray_DATA(x), <float *>cnp.PyArray_DATA(y), bits_data(bits), n,
                    offset, s, scale, threads())
    else:
        run_dropout(<double *>cnp.PyArray_DATA(x), <double *>cnp.PyArray_DATA(y), bits_data(bits),
                    n, offset, s, scale, threads())


cdef void apply_mask_arrays(cnp.ndarray x, cnp.ndarray y, cnp.ndarray bits, double scale) noexcept:
    cdef size_t n = <size_t>cnp.PyArray_SIZE(x)
    if n == 0:
        return
    cdef const uint8_t *bp = <const uint8_t *>cnp.PyArray_DATA(bits)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        run_apply_mask(<float *>cnp.PyArray_DATA(x), <float *>cnp.PyArray_DATA(y), bp, n, scale,
                       threads())
    else:
        run_apply_mask(<double *>cnp.PyArray_DATA(x), <double *>cnp.PyArray_DATA(y), bp, n, scale,
                       threads())


cdef void gaussian_arrays(cnp.ndarray x, cnp.ndarray y, uint64_t offset, fd_stream *s,
                          double sigma) noexcept:
    cdef size_t n = <size_t>cnp.PyArray_SIZE(x)
    if n == 0:
        return
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        run_gaussian(<float *>cnp.PyArray_DATA(x), <float *>cnp.PyArray_DATA(y), n, offset, s,
                     sigma, threads())
    else:
        run_gaussian(<double *>cnp.PyArray_DATA(x), <double *>cnp.PyArray_DATA(y), n, offset, s,
                     sigma, threads())


cdef object eval_identity(object x, object out, object return_extra):
    """Not training, for the variants that are the identity then (and inverted dropout):
    x itself; out= takes the general path."""
    if out is not None:
        return NotImplemented
    return (x, None) if return_extra else x


cdef object try_sampled_forward(x, rate, keep_prob, seed, stream, offset, training, inverted,
                                out, return_mask, noise_shape, mask, bint alpha):
    """dropout (alpha False) or alpha_dropout (alpha True, inverted True) of a plain call."""
    if (noise_shape is not None or mask is not None or not plain_float_array(x)
            or not (plain_flag(training) and plain_flag(inverted) and plain_flag(return_mask))):
        return NotImplemented
    cdef double kp = plain_keep_prob(rate, keep_prob)
    cdef Py_ssize_t size = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef fd_stream s
    cdef uint64_t first
    if kp < 0.0 or not plain_position(stream, offset, size, &s, &first):
        return NotImplemented
    if training is False:  # classical dropout's x * keep_prob takes the general path
        return eval_identity(x, out, return_mask) if inverted else NotImplemented
    if not plain_key(seed, keep_threshold(kp), &s):
        return NotImplemented
    y = output_for(<cnp.ndarray>x, out)
    if y is None:
        return NotImplemented
    bits = new_bits(size) if return_mask else None
    cdef alpha_op op
    if alpha:
        op = alpha_forward_op(kp)
        sampled_op(<cnp.ndarray>x, <cnp.ndarray>y, bits, first, &s, op.mul, op.add, op.fill,
                   op.affine)
    else:
        op.mul = dropout_scale(kp, inverted)
        dropout_arrays(<cnp.ndarray>x, <cnp.ndarray>y, bits, first, &s, op.mul)
    if not return_mask:
        return y
    return y, mask_fields(bits, x.shape, size, kp, op.mul, seed, stream, offset)


def try_dropout(x, rate, keep_prob, seed, stream, offset, training, inverted, out, return_mask,
                noise_shape, mask):
    """dropout of a plain call, or NotImplemented.  `rate` is the rate the call gives
    (None where only keep_prob is given)."""
    return try_sampled_forward(x, rate, keep_prob, seed, stream, offset, training, inverted, out,
                               return_mask, noise_shape, mask, False)


def try_sample_mask(shape, rate, keep_prob, seed, stream, offset, noise_shape):
    """sample_mask of a plain call (shape an int or a tuple of ints), or NotImplemented."""
    if noise_shape is not None:
        return NotImplemented
    cdef Py_ssize_t size = 1
    if type(shape) is int:
        if shape < 0 or shape >= _SIZE_LIMIT:
            return NotImplemented
        size = shape
        shape = (shape,)
    elif type(shape) is tuple:
        for d in <tuple>shape:
            if type(d) is not int or d < 0 or d >= _SIZE_LIMIT:
                return NotImplemented
            if d != 0 and size > _SIZE_LIMIT // <Py_ssize_t>d:
                return NotImplemented
            size *= <Py_ssize_t>d
    else:
        return NotImplemented
    cdef double kp = plain_keep_prob(rate, keep_prob)
    cdef fd_stream s
    cdef uint64_t first
    if (kp < 0.0 or not plain_position(stream, offset, size, &s, &first)
            or not plain_key(seed, keep_threshold(kp), &s)):
        return NotImplemented
    cdef cnp.ndarray bits = new_bits(size)
    cdef uint8_t *bits_ptr = <uint8_t *>cnp.PyArray_DATA(bits)
    cdef int nthreads = threads()
    if size > 0:
        with nogil:
            fd_sample(bits_ptr, <size_t>size, first, &s, nthreads)
    return mask_fields(bits, shape, size, kp, dropout_scale(kp, True), seed, stream, offset)


def try_apply_mask(x, bits, mask_shape, scale, inverted, out):
    """apply_mask of a plain array and the fields of a Mask of its shape, or NotImplemented."""
    if not plain_float_array(x) or not plain_flag(inverted) or type(scale) is not float:
        return NotImplemented
    if (not same_shape(mask_shape, <cnp.ndarray>x)
            or not plain_bits(bits, cnp.PyArray_SIZE(<cnp.ndarray>x))):
        return NotImplemented
    y = output_for(<cnp.ndarray>x, out)
    if y is None:
        return NotImplemented
    apply_mask_arrays(<cnp.ndarray>x, <cnp.ndarray>y, <cnp.ndarray>bits, <double>scale)
    return y


def try_alpha_dropout(x, rate, keep_prob, seed, stream, offset, noise_shape, training, out,
                      return_mask, mask):
    """alpha_dropout of a plain call, or NotImplemented.  `rate` as in try_dropout."""
    return try_sampled_forward(x, rate, keep_prob, seed, stream, offset, training, True, out,
                               return_mask, noise_shape, mask, True)


def try_alpha_dropout_backward(grad, rate, keep_prob, seed, stream, offset, noise_shape, out):
    """alpha_dropout_backward regenerating the mask of a plain call, or NotImplemented.
    (From a stored Mask it is try_apply_mask with alpha_scale(mask.keep_prob).)"""
    if noise_shape is not None or not plain_float_array(grad):
        return NotImplemented
    cdef double kp = plain_keep_prob(rate, keep_prob)
    cdef fd_stream s
    cdef uint64_t first
    if (kp < 0.0 or not plain_position(stream, offset, cnp.PyArray_SIZE(<cnp.ndarray>grad), &s,
                                       &first)
            or not plain_key(seed, keep_threshold(kp), &s)):
        return NotImplemented
    y = output_for(<cnp.ndarray>grad, out)
    if y is None:
        return NotImplemented
    sampled_op(<cnp.ndarray>grad, <cnp.ndarray>y, None, first, &s, alpha_scale(kp), 0.0, 0.0, False)
    return y


def try_gaussian_dropout(x, rate, keep_prob, seed, stream, offset, training, out, return_noise):
    """gaussian_dropout of a plain call, or NotImplemented.  `rate` as in try_dropout."""
    if not plain_float_array(x) or not (plain_flag(training) and plain_flag(return_noise)):
        return NotImplemented
    cdef double kp = plain_keep_prob(rate, keep_prob)
    cdef fd_stream s
    cdef uint64_t first
    # keep_prob 0 has no Gaussian dropout: the general path says so
    if kp <= 0.0 or not plain_position(stream, offset, cnp.PyArray_SIZE(<cnp.ndarray>x), &s, &first):
        return NotImplemented
    if training is False:
        return eval_identity(x, out, return_noise)
    if not plain_key(seed, 0, &s):
        return NotImplemented
    y = output_for(<cnp.ndarray>x, out)
    if y is None:
        return NotImplemented
    cdef double sigma = gaussian_sigma(kp)
    gaussian_arrays(<cnp.ndarray>x, <cnp.ndarray>y, first, &s, sigma)
    if not return_noise:
        return y
    noise = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(<cnp.ndarray>x), cnp.PyArray_DIMS(<cnp.ndarray>x),
                              cnp.PyArray_TYPE(<cnp.ndarray>x), 0)
    noise.fill(1.0)  # eps itself: the kernel on ones
    gaussian_arrays(<cnp.ndarray>noise, <cnp.ndarray>noise, first, &s, sigma)
    return y, noise


def try_gaussian_dropout_backward(grad, noise, rate, keep_prob, seed, stream, offset, out):
    """gaussian_dropout_backward of a plain call (the stored noise, or regenerated), or
    NotImplemented."""
    if not plain_float_array(grad):
        return NotImplemented
    if noise is not None:
        if (rate is not None or keep_prob is not None or seed is not None
                or not (type(stream) is int and stream == 0 and type(offset) is int and offset == 0)
                or not plain_float_array(noise)
                or cnp.PyArray_TYPE(<cnp.ndarray>noise) != cnp.PyArray_TYPE(<cnp.ndarray>grad)
                or not cnp.PyArray_SAMESHAPE(<cnp.ndarray>noise, <cnp.ndarray>grad)):
            return NotImplemented
        y = output_for(<cnp.ndarray>grad, out)
        if y is None:
            return NotImplemented
        _multiply(grad, noise, out=y)  # into an array, so 0-d in is 0-d out
        return y
    cdef double kp = plain_keep_prob(rate, keep_prob)
    cdef fd_stream s
    cdef uint64_t first
    if (kp <= 0.0
            or not plain_position(stream, offset, cnp.PyArray_SIZE(<cnp.ndarray>grad), &s, &first)
            or not plain_key(seed, 0, &s)):
        return NotImplemented
    y = output_for(<cnp.ndarray>grad, out)
    if y is None:
        return NotImplemented
    gaussian_arrays(<cnp.ndarray>grad, <cnp.ndarray>y, first, &s, gaussian_sigma(kp))
    return y


# -- Box kernels (DESIGN.md §8) ----------------------------------------------------------
#
# An N-d box (a chunk, tile or shard) of a larger C-order array, every element addressed by
# its index in the whole array.  The geometry is checked here in full, so every row the C
# code walks lies inside x, y (or bits) and every counter index stays below 2**64.

cdef object _U64 = 1 << 64


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

# cython: language_level=3, boundscheck=False, wraparound=False
"""Typed bindings of the C kernels in src/.

Each function checks the lengths it is given, releases the GIL and makes one C call.
The arrays are 1-D and C-contiguous; fastdrop._core prepares them and has already
checked every user-facing argument.  These checks are the last line that keeps the C
code inside its buffers."""
from cython cimport floating
from libc.stdint cimport uint8_t, uint32_t, uint64_t

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
    int fd_have_openmp()
    int fd_default_threads()
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


def forward(const floating[::1] x, floating[::1] y, uint8_t[::1] bits, uint64_t offset,
            uint64_t key, uint64_t stream, uint64_t threshold, double scale, int nthreads):
    """y = kept ? x * scale : +0.0, sampling the mask and, if bits is not None, storing it."""
    cdef size_t n = x.shape[0]
    if <size_t>y.shape[0] != n:
        raise ValueError("x and y differ in length")
    cdef uint8_t *bits_ptr = NULL
    if bits is not None:
        if <size_t>bits.shape[0] < mask_bytes(n):
            raise ValueError("bits is too short for the array")
        if n > 0:
            bits_ptr = &bits[0]
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
    if <size_t>y.shape[0] != n:
        raise ValueError("x and y differ in length")
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


def have_openmp():
    return bool(fd_have_openmp())


def default_threads():
    return fd_default_threads()

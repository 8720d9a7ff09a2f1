/* Portable C kernels: the fallback level, and the definition the SIMD levels match. */
#include "kernels_common.h"

#define FD_DEFINE_SCALAR(T, SUFFIX)                                                        \
    static void masked_scale_##SUFFIX(const T *x, T *y, uint64_t keep, size_t m, T scale)  \
    {                                                                                      \
        for (size_t t = 0; t < m; t++)                                                     \
            y[t] = ((keep >> t) & 1) ? x[t] * scale : (T)0;                                \
    }                                                                                      \
    static void forward_##SUFFIX(const T *x, T *y, uint8_t *bits, size_t n, uint64_t j0,   \
                                 const fd_stream *s, T scale)                              \
    {                                                                                      \
        for (size_t i = 0; i < n; i += FD_TILE) {                                          \
            size_t m = n - i < FD_TILE ? n - i : FD_TILE;                                  \
            uint64_t keep = fd_keep_bits_scalar(j0 + i, m, s);                             \
            masked_scale_##SUFFIX(x + i, y + i, keep, m, scale);                           \
            if (bits)                                                                      \
                fd_store_bits(bits + i / 8, keep, m);                                      \
        }                                                                                  \
    }                                                                                      \
    static void apply_##SUFFIX(const T *x, T *y, const uint8_t *bits, size_t n, T scale)   \
    {                                                                                      \
        for (size_t i = 0; i < n; i += FD_TILE) {                                          \
            size_t m = n - i < FD_TILE ? n - i : FD_TILE;                                  \
            masked_scale_##SUFFIX(x + i, y + i, fd_load_bits(bits + i / 8, m), m, scale);  \
        }                                                                                  \
    }

FD_DEFINE_SCALAR(float, f32)
FD_DEFINE_SCALAR(double, f64)

static void sample(uint8_t *bits, size_t n, uint64_t j0, const fd_stream *s)
{
    for (size_t i = 0; i < n; i += FD_TILE) {
        size_t m = n - i < FD_TILE ? n - i : FD_TILE;
        fd_store_bits(bits + i / 8, fd_keep_bits_scalar(j0 + i, m, s), m);
    }
}

static const fd_kernels table = {forward_f32, forward_f64, sample, apply_f32, apply_f64};

const fd_kernels *fd_kernels_scalar(void) { return &table; }

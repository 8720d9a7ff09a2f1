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

/* -- variants (DESIGN.md §7): the definitions the SIMD levels match ------------------- */

typedef struct {
    fd_stream s;
} gen_state;

static inline void gen_init(gen_state *g, const fd_stream *s) { g->s = *s; }

static inline uint64_t gen_group(const gen_state *g, uint64_t block)
{
    return fd_keep_bits_scalar(block << 2, FD_TILE, &g->s);
}

static inline void gen_words(const gen_state *g, uint64_t block, uint32_t w[FD_TILE])
{
    const uint32_t key[2] = {g->s.k0, g->s.k1};
    for (int b = 0; b < FD_TILE / 4; b++) {
        uint64_t bl = block + (uint64_t)b;
        const uint32_t ctr[4] = {(uint32_t)bl, (uint32_t)(bl >> 32), g->s.c2, g->s.c3};
        fd_philox4x32_10(ctr, key, w + 4 * b);
    }
}

static inline void eps_group_f64(const uint32_t w[FD_TILE], double sigma, double eps[FD_TILE])
{
    for (int k = 0; k < FD_TILE; k += 2) {
        double z0, z1;
        fd_box_muller_scalar(w[k], w[k + 1], &z0, &z1);
        eps[k] = 1.0 + sigma * z0;
        eps[k + 1] = 1.0 + sigma * z1;
    }
}

static inline void eps_group_f32(const uint32_t w[FD_TILE], float sigma, float eps[FD_TILE])
{
    for (int k = 0; k < FD_TILE; k += 2) {
        float z0, z1;
        fd_box_muller_f32_scalar(w[k], w[k + 1], &z0, &z1);
        eps[k] = 1.0f + sigma * z0;
        eps[k + 1] = 1.0f + sigma * z1;
    }
}

#define scale_tile_f32 masked_scale_f32
#define scale_tile_f64 masked_scale_f64

#define FD_DEFINE_SCALAR_VARIANT_TILES(T, SUFFIX)                                              \
    static inline void affine_tile_##SUFFIX(const T *x, T *y, uint64_t keep, size_t m, T mul,  \
                                            T add, T fill)                                     \
    {                                                                                          \
        for (size_t t = 0; t < m; t++)                                                         \
            y[t] = ((keep >> t) & 1) ? x[t] * mul + add : fill;                                \
    }                                                                                          \
    static inline void eps_tile_##SUFFIX(const T *x, T *y, const T *eps, size_t m)             \
    {                                                                                          \
        for (size_t t = 0; t < m; t++)                                                         \
            y[t] = x[t] * eps[t];                                                              \
    }

FD_DEFINE_SCALAR_VARIANT_TILES(float, f32)
FD_DEFINE_SCALAR_VARIANT_TILES(double, f64)

static inline void scale_tile_f16(const uint16_t *x, uint16_t *y, uint64_t keep, size_t m, float scale)
{
    for (size_t t = 0; t < m; t++)
        y[t] = ((keep >> t) & 1) ? fd_f32_to_f16(fd_f16_to_f32(x[t]) * scale) : 0;
}

static inline void affine_tile_f16(const uint16_t *x, uint16_t *y, uint64_t keep, size_t m,
                                   float mul, float add, float fill)
{
    for (size_t t = 0; t < m; t++)
        y[t] = fd_f32_to_f16(((keep >> t) & 1) ? fd_f16_to_f32(x[t]) * mul + add : fill);
}

static inline void eps_tile_f16(const uint16_t *x, uint16_t *y, const float *eps, size_t m)
{
    for (size_t t = 0; t < m; t++)
        y[t] = fd_f32_to_f16(fd_f16_to_f32(x[t]) * eps[t]);
}

#include "variant_loops.h"

const fd_variant_kernels *fd_variants_scalar(void) { return &variant_table; }

/* The chunk loops shared by the SIMD levels, included once inside each level's target
 * region (BLAKE3/xxHash style).  Before including it, a level defines:
 *   gen_state, gen_init(gen_state *, const fd_stream *),
 *   uint64_t gen_group(const gen_state *, uint64_t block): keep bits of the 64 words of
 *       blocks block .. block+15, in word order;
 *   scale_tile_f32 / scale_tile_f64(const T *x, T *y, uint64_t keep, size_t m, T scale):
 *       y[t] = kept ? x[t] * scale : +0.0 for t < m <= 64.
 * It defines the fd_kernels `table` of the level. */
#include "tile_walk.h"

#define FD_DEFINE_LOOPS(T, SUFFIX)                                                             \
    static void forward_##SUFFIX(const T *x, T *y, uint8_t *bits, size_t n, uint64_t j0,       \
                                 const fd_stream *st, T scale)                                 \
    {                                                                                          \
        tile_walk w;                                                                           \
        walk_init(&w, st, j0);                                                                 \
        for (size_t i = 0; i < n; i += FD_TILE) {                                              \
            size_t m = n - i < FD_TILE ? n - i : FD_TILE;                                      \
            uint64_t keep = walk_next(&w, i + FD_TILE < n);                                    \
            scale_tile_##SUFFIX(x + i, y + i, keep, m, scale);                                 \
            if (bits)                                                                          \
                store_tile_bits(bits + i / 8, keep, m);                                        \
        }                                                                                      \
    }                                                                                          \
    static void apply_##SUFFIX(const T *x, T *y, const uint8_t *bits, size_t n, T scale)       \
    {                                                                                          \
        for (size_t i = 0; i < n; i += FD_TILE) {                                              \
            size_t m = n - i < FD_TILE ? n - i : FD_TILE;                                      \
            scale_tile_##SUFFIX(x + i, y + i, load_tile_bits(bits + i / 8, m), m, scale);      \
        }                                                                                      \
    }

FD_DEFINE_LOOPS(float, f32)
FD_DEFINE_LOOPS(double, f64)

static void sample(uint8_t *bits, size_t n, uint64_t j0, const fd_stream *st)
{
    tile_walk w;
    walk_init(&w, st, j0);
    for (size_t i = 0; i < n; i += FD_TILE) {
        size_t m = n - i < FD_TILE ? n - i : FD_TILE;
        store_tile_bits(bits + i / 8, walk_next(&w, i + FD_TILE < n), m);
    }
}

static const fd_kernels table = {forward_f32, forward_f64, sample, apply_f32, apply_f64};

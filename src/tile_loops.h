/* The chunk loops shared by the SIMD levels, included once inside each level's target
 * region (BLAKE3/xxHash style).  Before including it, a level defines:
 *   gen_state, gen_init(gen_state *, const fd_stream *),
 *   uint64_t gen_group(const gen_state *, uint64_t block): keep bits of the 64 words of
 *       blocks block .. block+15, in word order;
 *   scale_tile_f32 / scale_tile_f64(const T *x, T *y, uint64_t keep, size_t m, T scale):
 *       y[t] = kept ? x[t] * scale : +0.0 for t < m <= 64.
 * It defines the fd_kernels `table` of the level. */
#include <string.h>

/* Element i of a chunk has word j0 + i, which need not be block aligned, so a tile's
 * bits are the top of one group and the bottom of the next. */
typedef struct {
    gen_state g;
    uint64_t block, current;
    unsigned shift;
} tile_walk;

static inline void walk_init(tile_walk *w, const fd_stream *s, uint64_t j0)
{
    gen_init(&w->g, s);
    w->block = j0 >> 2;
    w->shift = (unsigned)(j0 & 3);
    w->current = gen_group(&w->g, w->block);
}

/* Keep bits of the next tile; need_next says whether a tile follows this one. */
static inline uint64_t walk_next(tile_walk *w, int need_next)
{
    uint64_t next = 0;
    w->block += 16;
    if (w->shift != 0 || need_next)
        next = gen_group(&w->g, w->block);
    uint64_t keep = w->shift ? (w->current >> w->shift) | (next << (64 - w->shift)) : w->current;
    w->current = next;
    return keep;
}

static inline void store_tile_bits(uint8_t *p, uint64_t keep, size_t m)
{
    if (m == FD_TILE)
        memcpy(p, &keep, 8); /* x86 is little-endian: byte b holds elements 8b .. 8b+7 */
    else
        fd_store_bits(p, keep, m);
}

static inline uint64_t load_tile_bits(const uint8_t *p, size_t m)
{
    uint64_t keep;
    if (m != FD_TILE)
        return fd_load_bits(p, m);
    memcpy(&keep, p, 8);
    return keep;
}

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

/* The chunk loops of the variants (DESIGN.md §7), included once by every level, inside
 * its target region.  Besides what tile_loops.h needs (gen_state, gen_init, gen_group,
 * scale_tile_f32/f64), a level defines before including it:
 *   affine_tile_f32 / _f64(const T *x, T *y, uint64_t keep, size_t m, T mul, T add, T fill):
 *       y[t] = kept ? x[t] * mul + add : fill for t < m <= 64 (two roundings);
 *   gen_words(const gen_state *, uint64_t block, uint32_t w[64]): the 64 words of blocks
 *       block .. block+15 in word order;
 *   eps_group_f32 / _f64(const uint32_t w[64], T sigma, T eps[64]): eps[i] = 1 + sigma * z_i
 *       in T arithmetic, z_{2k}, z_{2k+1} the Box-Muller pair of (w[2k], w[2k+1]);
 *   eps_tile_f32 / _f64(const T *x, T *y, const T *eps, size_t m): y = x * eps;
 *   scale_tile_f16, affine_tile_f16, eps_tile_f16: the float32 tiles on uint16_t binary16
 *       data, converting each element to float32 and the result back (rounded once).
 * It defines the fd_variant_kernels `variant_table` of the level. */
#include "tile_walk.h"

/* -- broadcast masks -------------------------------------------------------------------- */

/* Where element e0 of the array sits: its segment's mask base and its place in it. */
typedef struct {
    const fd_bcast *b;
    size_t seg_len, q;
    size_t idx[FD_MAX_DIMS];
    uint64_t base;
} bcast_cursor;

static inline void bcast_start(bcast_cursor *c, const fd_bcast *b, size_t e0)
{
    c->b = b;
    c->seg_len = b->run * b->period;
    size_t seg = e0 / c->seg_len;
    c->q = e0 % c->seg_len;
    c->base = 0;
    for (int d = b->ndim - 1; d >= 0; d--) {
        c->idx[d] = seg % b->dims[d];
        seg /= b->dims[d];
        c->base += (uint64_t)c->idx[d] * b->strides[d];
    }
}

static inline void bcast_next_segment(bcast_cursor *c)
{
    const fd_bcast *b = c->b;
    c->q = 0;
    for (int d = b->ndim - 1; d >= 0; d--) {
        c->base += b->strides[d];
        if (++c->idx[d] < b->dims[d])
            return;
        c->base -= b->strides[d] * b->dims[d];
        c->idx[d] = 0;
    }
}

/* The keep bits of a segment: `period` mask bits from `base`, repeated. */
typedef struct {
    const uint8_t *bits;
    uint64_t nbits, base;
    size_t period;
    uint64_t lo, hi; /* period < 64: the first 128 bits of the repetition */
} periodic_bits;

static inline void periodic_init(periodic_bits *p, const fd_bcast *b, uint64_t base)
{
    p->bits = b->bits;
    p->nbits = b->nbits;
    p->base = base;
    p->period = b->period;
    if (p->period >= 64)
        return;
    uint64_t lo = fd_bits_at(b->bits, b->nbits, base, p->period), hi = 0;
    if (p->period == 1) {
        p->lo = p->hi = lo ? ~(uint64_t)0 : 0;
        return;
    }
    for (size_t len = p->period; len < 128; len *= 2) { /* bits [0, len) are valid */
        if (len >= 64) {
            hi |= lo << (len - 64);
        } else {
            hi |= (hi << len) | (lo >> (64 - len));
            lo |= lo << len;
        }
    }
    p->lo = lo;
    p->hi = hi;
}

/* Keep bits of segment positions with phase ph (= position % period) .. ph+m-1. */
static inline uint64_t periodic_word(const periodic_bits *p, size_t ph, size_t m)
{
    if (p->period < 64)
        return ph == 0 ? p->lo : (p->lo >> ph) | (p->hi << (64 - ph));
    if (ph + m <= p->period)
        return fd_bits_at(p->bits, p->nbits, p->base + ph, m);
    size_t first = p->period - ph; /* < m <= 64 */
    return fd_bits_at(p->bits, p->nbits, p->base + ph, first) |
           (fd_bits_at(p->bits, p->nbits, p->base, m - first) << first);
}

#define FD_DEFINE_VARIANT_LOOPS(T, SUFFIX)                                                     \
    static inline void op_tile_##SUFFIX(const T *x, T *y, uint64_t keep, size_t m,             \
                                        const fd_op_##SUFFIX *op)                              \
    {                                                                                          \
        if (op->affine)                                                                        \
            affine_tile_##SUFFIX(x, y, keep, m, op->mul, op->add, op->fill);                   \
        else                                                                                   \
            scale_tile_##SUFFIX(x, y, keep, m, op->mul);                                       \
    }                                                                                          \
    static void forward_op_##SUFFIX(const T *x, T *y, uint8_t *bits, size_t n, uint64_t j0,   \
                                    const fd_stream *st, const fd_op_##SUFFIX *op)             \
    {                                                                                          \
        tile_walk w;                                                                           \
        walk_init(&w, st, j0);                                                                 \
        for (size_t i = 0; i < n; i += FD_TILE) {                                              \
            size_t m = n - i < FD_TILE ? n - i : FD_TILE;                                      \
            uint64_t keep = walk_next(&w, i + FD_TILE < n);                                    \
            op_tile_##SUFFIX(x + i, y + i, keep, m, op);                                       \
            if (bits)                                                                          \
                store_tile_bits(bits + i / 8, keep, m);                                        \
        }                                                                                      \
    }                                                                                          \
    static void bcast_##SUFFIX(const T *x, T *y, size_t n, size_t e0, const fd_bcast *b,       \
                               const fd_op_##SUFFIX *op)                                       \
    {                                                                                          \
        bcast_cursor c;                                                                        \
        bcast_start(&c, b, e0);                                                                \
        size_t i = 0;                                                                          \
        while (i < n) {                                                                        \
            size_t count = n - i < c.seg_len - c.q ? n - i : c.seg_len - c.q;                  \
            periodic_bits p;                                                                   \
            periodic_init(&p, b, c.base);                                                      \
            size_t ph = c.q % b->period;                                                       \
            for (size_t t = 0; t < count; t += FD_TILE) {                                      \
                size_t m = count - t < FD_TILE ? count - t : FD_TILE;                          \
                op_tile_##SUFFIX(x + i + t, y + i + t, periodic_word(&p, ph, m), m, op);       \
                ph += FD_TILE;                                                                 \
                if (ph >= b->period)                                                           \
                    ph %= b->period;                                                           \
            }                                                                                  \
            i += count;                                                                        \
            bcast_next_segment(&c);                                                            \
        }                                                                                      \
    }

/* The eps of the 64 counters of blocks block .. block+15; a level may define its own
 * (FD_LEVEL_EPS_BLOCK_F32 / _F64), e.g. straight from the Philox lanes. */
#ifndef FD_LEVEL_EPS_BLOCK_F32
static inline void eps_block_f32(const gen_state *g, uint64_t block, float sigma, float eps[FD_TILE])
{
    uint32_t words[FD_TILE];
    gen_words(g, block, words);
    eps_group_f32(words, sigma, eps);
}
#endif
#ifndef FD_LEVEL_EPS_BLOCK_F64
static inline void eps_block_f64(const gen_state *g, uint64_t block, double sigma, double eps[FD_TILE])
{
    uint32_t words[FD_TILE];
    gen_words(g, block, words);
    eps_group_f64(words, sigma, eps);
}
#endif
#define eps_block_f16 eps_block_f32 /* float16 takes the float32 noise */

/* Gaussian dropout: the normals of a tile are the top of one group and the bottom of
 * the next when j0 is not block aligned, like the keep bits of tile_walk. */
#define FD_DEFINE_GAUSS(T, SUFFIX, E)                                                          \
    static void gauss_##SUFFIX(const T *x, T *y, size_t n, uint64_t j0, const fd_stream *st,   \
                               double sigma)                                                   \
    {                                                                                          \
        gen_state g;                                                                           \
        gen_init(&g, st);                                                                      \
        const E sig = (E)sigma;                                                                \
        uint64_t block = j0 >> 2;                                                              \
        size_t shift = (size_t)(j0 & 3);                                                       \
        E eps[2 * FD_TILE];                                                                    \
        eps_block_##SUFFIX(&g, block, sig, eps);                                               \
        for (size_t i = 0; i < n; i += FD_TILE) {                                              \
            size_t m = n - i < FD_TILE ? n - i : FD_TILE;                                      \
            int straddles = shift + m > FD_TILE;                                               \
            if (straddles)                                                                     \
                eps_block_##SUFFIX(&g, block + 16, sig, eps + FD_TILE);                        \
            eps_tile_##SUFFIX(x + i, y + i, eps + shift, m);                                   \
            if (i + FD_TILE < n) {                                                             \
                block += 16;                                                                   \
                if (straddles)                                                                 \
                    memcpy(eps, eps + FD_TILE, FD_TILE * sizeof(E));                           \
                else                                                                           \
                    eps_block_##SUFFIX(&g, block, sig, eps);                                   \
            }                                                                                  \
        }                                                                                      \
    }

FD_DEFINE_GAUSS(float, f32, float)
FD_DEFINE_GAUSS(double, f64, double)
FD_DEFINE_GAUSS(uint16_t, f16, float)

FD_DEFINE_VARIANT_LOOPS(float, f32)
FD_DEFINE_VARIANT_LOOPS(double, f64)
FD_DEFINE_VARIANT_LOOPS(uint16_t, f16)

static const fd_variant_kernels variant_table = {
    forward_op_f32, forward_op_f64, bcast_f32, bcast_f64, gauss_f32, gauss_f64,
    forward_op_f16, bcast_f16, gauss_f16,
};

/* The body of every SIMD level, written once on the level's width wrappers (BLAKE3
 * style): a level file (kernels_scalar.c, kernels_avx2.c, kernels_avx512.c) defines its
 * vector types and small primitives, then includes this header inside its target region
 * with FD_LEVEL_TABLE set to the name of its table function.  What a level provides:
 *
 *   u32_vec, u32_lanes       one Philox block per 32-bit lane; philox_ways vectors of
 *                            blocks in flight, 16 % (u32_lanes * philox_ways) == 0
 *   u32_set1 u32_iota u32_add u32_sub u32_and u32_or u32_shl u32_shr u32_xor3
 *   u32_andnot(a, b)         ~a & b
 *   u32_lt(a, b)             all ones where a < b (unsigned), else 0
 *   u32_mulhilo(a, m, &hi, &lo)   the 64-bit products a * m split into words
 *   store_words(c, p)        word 4b + k of p = c[k] of lane b: the 4 x lanes transpose
 *   u32h_vec and u32h_*      unsigned words with as many lanes as f64_vec
 *   f32_vec f32_mask f32_lanes (= u32_lanes), f64_vec f64_mask f64_lanes, and for each:
 *     set1 add sub mul div sqrt neg gt select(mask, a, b) zero_unless(mask, a)
 *     keep_lanes(keep, i)    mask from keep bits i .. i + lanes - 1
 *     from_u32 from_i32      unsigned / signed words to floats, rounded once
 *     split_exp(m, &e, &f)   m = f 2^e, f in [1, 2), for positive normal m
 *     loadn storen           count <= lanes elements (count < lanes only at a tile's end)
 *   f32_as_u32               the bits of a float32 vector
 *   f64_load_pairs(w, &even, &odd), f64_store_pairs(p, a, b): 2 x f64_lanes words into
 *                            even / odd lanes, and two vectors interleaved back
 *   f16_loadn f16_storen     binary16 in memory, float32 vectors (round to nearest even)
 * A new level is one such file (compiled to a NULL table where its target is absent),
 * its declaration beside the others in kernels_common.h and its line in dispatch.c. */

#define FD_PASTE2(a, b) a##_##b
#define FD_PASTE(a, b) FD_PASTE2(a, b)
#define FD_NAME(name) FD_PASTE(name, FD_SFX)       /* loop names: forward_f32 */
#define FD_ESFX_NAME(name) FD_PASTE(name, FD_ESFX) /* noise of the compute type */
#define FD_MEM(op) FD_PASTE(FD_SFX, op)            /* memory wrappers: f16_loadn */
#define FD_V(op) FD_PASTE(FD_ESFX, op)             /* arithmetic wrappers: f32_mul */
#define FD_W(op) FD_PASTE(FD_WSFX, op)             /* word wrappers: u32h_add */

/* -- keep bits from Philox: stream v2, bit planes (DESIGN.md §2) --------------------------- */

enum { GEN_PHILOX, GEN_KEEP_ALL, GEN_DROP_ALL };

typedef struct {
    uint32_t rk0[FD_PHILOX_ROUNDS], rk1[FD_PHILOX_ROUNDS]; /* the key of each round */
    uint32_t k0, k1, c2, c3;
    uint32_t top, low; /* T = top * 2^24 + low */
    int planes;        /* planes that can change a decision: 8, or fewer when low == 0 */
    int mode;
} gen_state;

static inline void gen_init(gen_state *g, const fd_stream *s)
{
    uint32_t k0 = s->k0, k1 = s->k1;
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        g->rk0[r] = k0;
        g->rk1[r] = k1;
        k0 += FD_PHILOX_W0;
        k1 += FD_PHILOX_W1;
    }
    g->k0 = s->k0;
    g->k1 = s->k1;
    g->c2 = s->c2;
    g->c3 = s->c3;
    g->mode = s->threshold > 0xFFFFFFFFu ? GEN_KEEP_ALL
              : s->threshold == 0        ? GEN_DROP_ALL
                                         : GEN_PHILOX;
    uint32_t t = (uint32_t)s->threshold;
    g->top = t >> 24;
    g->low = t & 0xFFFFFFu;
    /* With low == 0 a tie is a drop, so a plane below T's lowest set top bit only splits
     * ties further: planes 0 .. 7 - ctz(top) decide everything. */
    g->planes = 8;
    if (g->low == 0 && g->top != 0)
        for (uint32_t v = g->top; (v & 1) == 0; v >>= 1)
            g->planes--;
}

/* Philox on philox_ways * u32_lanes blocks, one per lane: lane b of way w is the block
 * at counter first + (w * u32_lanes + b) * stride, stride 1 (words in counter order) or
 * 8 (one plane of consecutive groups).  The ways' rounds are interleaved so that
 * independent multiplies hide each other's latency; word k of that block ends in c[w][k]. */
enum { BLOCKS_IN_ORDER = 0, PLANE_OF_GROUPS = 3 }; /* log2 of the stride */

/* The ten rounds on counters x (words 0, 1 set; 2, 3 are the stream), in place. */
static inline void philox_rounds(const gen_state *g, u32_vec x[philox_ways][4])
{
    const u32_vec m0 = u32_set1(FD_PHILOX_M0), m1 = u32_set1(FD_PHILOX_M1);
    for (int w = 0; w < philox_ways; w++) {
        x[w][2] = u32_set1(g->c2);
        x[w][3] = u32_set1(g->c3);
    }
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        const u32_vec k0 = u32_set1(g->rk0[r]), k1 = u32_set1(g->rk1[r]);
        for (int w = 0; w < philox_ways; w++) {
            u32_vec hi0, lo0, hi1, lo1;
            u32_mulhilo(x[w][0], m0, &hi0, &lo0);
            u32_mulhilo(x[w][2], m1, &hi1, &lo1);
            x[w][0] = u32_xor3(hi1, x[w][1], k0);
            x[w][1] = lo1;
            x[w][2] = u32_xor3(hi0, x[w][3], k1);
            x[w][3] = lo0;
        }
    }
}

static inline void philox(const gen_state *g, uint64_t first, int stride_log2,
                          u32_vec c[philox_ways][4])
{
    const u32_vec lane = stride_log2 == PLANE_OF_GROUPS ? u32_shl(u32_iota(), PLANE_OF_GROUPS)
                                                         : u32_iota();
    u32_vec x[philox_ways][4];
    for (int w = 0; w < philox_ways; w++) {
        uint64_t way_first = first + ((uint64_t)(w * u32_lanes) << stride_log2);
        const u32_vec first_lo = u32_set1((uint32_t)way_first);
        x[w][0] = u32_add(first_lo, lane);
        /* a lane whose low word wrapped carries into the high word (u32_lt is -1 there) */
        x[w][1] = u32_sub(u32_set1((uint32_t)(way_first >> 32)), u32_lt(x[w][0], first_lo));
    }
    philox_rounds(g, x);
    memcpy(c, x, sizeof x);
}

/* Philox on any philox_ways * u32_lanes counters: lane b of way w is the block at
 * counter lo[w * u32_lanes + b] + 2^32 hi[...]. */
static inline void philox_at(const gen_state *g, const uint32_t *lo, const uint32_t *hi,
                             u32_vec c[philox_ways][4])
{
    u32_vec x[philox_ways][4];
    for (int w = 0; w < philox_ways; w++) {
        memcpy(&x[w][0], lo + w * u32_lanes, sizeof(u32_vec));
        memcpy(&x[w][1], hi + w * u32_lanes, sizeof(u32_vec));
    }
    philox_rounds(g, x);
    memcpy(c, x, sizeof x);
}

#define FD_STEP (4 * u32_lanes)            /* words of one way */
#define FD_BATCH (FD_STEP * philox_ways)    /* words per Philox call; divides FD_TILE */
#define FD_GROUP 128                        /* elements per group: one block per plane */
#define FD_GEN_GROUPS (u32_lanes * philox_ways) /* groups per generator batch, one a lane */
#define FD_GEN_WORDS (4 * FD_GEN_GROUPS)    /* 32-bit keep words per generator batch */
#define FD_GEN_ELEMENTS (FD_GROUP * FD_GEN_GROUPS)

/* The words of blocks block .. block + FD_TILE / 4 - 1 in word order. */
static inline void gen_words(const gen_state *g, uint64_t block, uint32_t w[FD_TILE])
{
    for (int h = 0; h < FD_TILE / FD_BATCH; h++) {
        u32_vec c[philox_ways][4];
        philox(g, block + (uint64_t)(h * philox_ways * u32_lanes), BLOCKS_IN_ORDER, c);
        for (int v = 0; v < philox_ways; v++)
            store_words(c[v], w + FD_BATCH * h + FD_STEP * v);
    }
}

/* Tied elements (H_j == top) are decided by their low 24 bits: gathered from the words
 * `tied` (bit b of word q: element j0 + 32 q + b), their low-bits blocks are computed a
 * whole Philox call at a time. */
static inline void decide_ties(const gen_state *g, uint64_t j0, const uint32_t *where,
                               const uint32_t *lo, const uint32_t *hi, size_t count,
                               uint32_t *keep)
{
    u32_vec c[philox_ways][4];
    uint32_t out[philox_ways][4][u32_lanes];
    philox_at(g, lo, hi, c);
    memcpy(out, c, sizeof out);
    for (size_t k = 0; k < count; k++) {
        uint32_t e = where[k], word = out[k / u32_lanes][(j0 + e) & 3][k % u32_lanes];
        keep[e / 32] |= (uint32_t)((word >> 8) < g->low) << (e % 32);
    }
}

static void resolve_ties(const gen_state *g, uint64_t j0, const uint32_t *tied, size_t words,
                         uint32_t *keep)
{
    enum { CALL = u32_lanes * philox_ways };
    uint32_t where[CALL] = {0}, lo[CALL] = {0}, hi[CALL] = {0};
    size_t count = 0;
    for (size_t q = 0; q < words; q++) {
        for (uint32_t t = tied[q]; t != 0; t &= t - 1) {
            uint32_t e = (uint32_t)(32 * q + fd_lowest_bit(t));
            uint64_t block = ((uint64_t)1 << 63) | ((j0 + e) >> 2);
            where[count] = e;
            lo[count] = (uint32_t)block;
            hi[count] = (uint32_t)(block >> 32);
            if (++count < CALL)
                continue;
            decide_ties(g, j0, where, lo, hi, count, keep);
            count = 0;
        }
    }
    if (count > 0)
        decide_ties(g, j0, where, lo, hi, count, keep);
}

/* The keep words of groups first .. first + FD_GEN_GROUPS - 1 from their planes p (the
 * Philox blocks of planes 0 .. g->planes - 1): bit b of keep[q] is element 32 q + b of the
 * batch.  Each lane compares one group's 128 top bytes with T's, bit sliced, most
 * significant plane first: `below` holds the lanes already below, `equal` those still
 * equal.  Ties are resolved in the first need_words words only. */
static void gen_finish(const gen_state *g, uint64_t first, u32_vec p[8][philox_ways][4],
                       uint32_t keep[FD_GEN_WORDS], size_t need_words)
{
    if (g->mode != GEN_PHILOX) {
        memset(keep, g->mode == GEN_KEEP_ALL ? 0xFF : 0, FD_GEN_WORDS * sizeof(uint32_t));
        return;
    }
    u32_vec lt[philox_ways][4], eq[philox_ways][4];
    for (int w = 0; w < philox_ways; w++)
        for (int k = 0; k < 4; k++) {
            u32_vec below = u32_set1(0), equal = u32_set1(0xFFFFFFFFu);
            for (int i = 0; i < g->planes; i++) {
                if ((g->top >> (7 - i)) & 1) {
                    below = u32_or(below, u32_andnot(p[i][w][k], equal));
                    equal = u32_and(equal, p[i][w][k]);
                } else {
                    equal = u32_andnot(p[i][w][k], equal);
                }
            }
            lt[w][k] = below;
            eq[w][k] = equal;
        }
    for (int w = 0; w < philox_ways; w++)
        store_words(lt[w], keep + FD_STEP * w);
    if (g->low == 0)
        return;
    uint32_t tied[FD_GEN_WORDS];
    for (int w = 0; w < philox_ways; w++)
        store_words(eq[w], tied + FD_STEP * w);
    resolve_ties(g, first * FD_GROUP, tied, need_words, keep);
}

/* Plane i of groups first .. first + FD_GEN_GROUPS - 1, one group a lane. */
static inline void gen_plane(const gen_state *g, uint64_t first, int i, u32_vec p[philox_ways][4])
{
    philox(g, (first << 3) | (uint64_t)i, PLANE_OF_GROUPS, p);
}

/* Element i of a chunk is element j0 + i of the stream, anywhere in a group: the keep
 * words of whole batches are read 64 bits at a time from any bit.  While a batch is read,
 * the planes of the next one are computed a few tiles apart, so that Philox runs between
 * the memory accesses of the pass instead of in one burst. */
typedef struct {
    gen_state g;
    uint64_t group, end_group; /* the next batch's first group; one past the chunk's last */
    size_t pos, filled;        /* bit of the next tile in words; bits generated */
    int ahead, stride, tiles;  /* planes of the next batch done; tiles per plane; countdown */
    uint32_t words[FD_GEN_WORDS + 6];
    u32_vec planes[8][philox_ways][4]; /* the next batch's planes 0 .. ahead - 1 */
} tile_walk;

static inline void walk_refill(tile_walk *w)
{
    size_t first = w->pos >> 5, left = (w->filled >> 5) - first; /* left <= 3 words */
    memmove(w->words, w->words + first, left * sizeof(uint32_t));
    w->pos &= 31;
    uint64_t groups = w->end_group - w->group;
    size_t need = 4 * (size_t)(groups < FD_GEN_GROUPS ? groups : FD_GEN_GROUPS);
    if (w->g.mode == GEN_PHILOX)
        for (; w->ahead < w->g.planes; w->ahead++)
            gen_plane(&w->g, w->group, w->ahead, w->planes[w->ahead]);
    gen_finish(&w->g, w->group, w->planes, w->words + left, need);
    w->group += FD_GEN_GROUPS;
    w->filled = 32 * (left + need);
    w->ahead = 0;
    w->tiles = w->stride;
}

/* n >= 1 elements from stream element j0 (j0 + n <= 2^64). */
static inline void walk_init(tile_walk *w, const fd_stream *s, uint64_t j0, size_t n)
{
    gen_init(&w->g, s);
    memset(w->words, 0, sizeof w->words);
    w->group = j0 / FD_GROUP;
    w->end_group = (j0 + (n - 1)) / FD_GROUP + 1;
    w->pos = 0;
    w->filled = 0;
    w->ahead = 0;
    w->stride = FD_GEN_ELEMENTS / FD_TILE / w->g.planes;
    if (w->stride < 1)
        w->stride = 1;
    walk_refill(w);
    w->pos = (size_t)(j0 % FD_GROUP);
}

/* Keep bits of the next m <= 64 elements (bits above m are not defined). */
static inline uint64_t walk_next(tile_walk *w, size_t m)
{
    if (w->filled - w->pos < m)
        walk_refill(w);
    size_t q = w->pos >> 5;
    unsigned s = (unsigned)(w->pos & 31);
    uint64_t v = (uint64_t)w->words[q] | (uint64_t)w->words[q + 1] << 32;
    if (s != 0)
        v = (v >> s) | (uint64_t)w->words[q + 2] << (64 - s);
    w->pos += m;
    if (--w->tiles == 0) {
        w->tiles = w->stride;
        if (w->g.mode == GEN_PHILOX && w->ahead < w->g.planes && w->group < w->end_group) {
            gen_plane(&w->g, w->group, w->ahead, w->planes[w->ahead]);
            w->ahead++;
        }
    }
    return v;
}

static inline void store_tile_bits(uint8_t *p, uint64_t keep, size_t m)
{
    if (m == FD_TILE) {
        uint64_t bytes = fd_little_endian64(keep); /* byte b holds elements 8b .. 8b+7 */
        memcpy(p, &bytes, 8);
    } else {
        fd_store_bits(p, keep, m);
    }
}

static inline uint64_t load_tile_bits(const uint8_t *p, size_t m)
{
    uint64_t keep;
    if (m != FD_TILE)
        return fd_load_bits(p, m);
    memcpy(&keep, p, 8);
    return fd_little_endian64(keep);
}

static void sample(uint8_t *bits, size_t n, uint64_t j0, const fd_stream *st)
{
    if (n == 0)
        return;
    tile_walk w;
    walk_init(&w, st, j0, n);
    for (size_t i = 0; i < n; i += FD_TILE) {
        size_t m = n - i < FD_TILE ? n - i : FD_TILE;
        store_tile_bits(bits + i / 8, walk_next(&w, m), m);
    }
}

/* -- Gaussian noise ------------------------------------------------------------------------ */

#define FD_T float
#define FD_SFX f32
#define FD_ESFX f32
#define FD_WSFX u32
#include "box_muller_template.h"

#define FD_T double
#define FD_SFX f64
#define FD_ESFX f64
#define FD_WSFX u32h
#include "box_muller_template.h"

/* eps of the 64 counters of blocks block .. block+15 in counter order.  Words 0, 1 of a
 * block are one pair and words 2, 3 the other, so the float32 normals come straight from
 * the Philox lanes and only the results are transposed into counter order. */
static inline void eps_block_f32(const gen_state *g, uint64_t block, float sigma, float eps[FD_TILE])
{
    const f32_vec s = f32_set1(sigma);
    for (int h = 0; h < FD_TILE / FD_BATCH; h++) {
        u32_vec c[philox_ways][4];
        philox(g, block + (uint64_t)(h * philox_ways * u32_lanes), BLOCKS_IN_ORDER, c);
        for (int v = 0; v < philox_ways; v++) {
            u32_vec e[4];
            f32_vec z[4];
            box_muller_f32(c[v][0], c[v][1], &z[0], &z[1]);
            box_muller_f32(c[v][2], c[v][3], &z[2], &z[3]);
            for (int k = 0; k < 4; k++)
                e[k] = f32_as_u32(eps_of_f32(s, z[k]));
            store_words(e, eps + FD_BATCH * h + FD_STEP * v);
        }
    }
}

/* float64 has half the lanes: the pairs are taken from the words in counter order. */
static inline void eps_block_f64(const gen_state *g, uint64_t block, double sigma, double eps[FD_TILE])
{
    const f64_vec s = f64_set1(sigma);
    uint32_t w[FD_TILE];
    gen_words(g, block, w);
    for (int k = 0; k < FD_TILE; k += 2 * f64_lanes) {
        u32h_vec w0, w1;
        f64_vec z0, z1;
        f64_load_pairs(w + k, &w0, &w1);
        box_muller_f64(w0, w1, &z0, &z1);
        f64_store_pairs(eps + k, eps_of_f64(s, z0), eps_of_f64(s, z1));
    }
}

/* -- broadcast masks (DESIGN.md §7.1) ----------------------------------------------------- */

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

/* -- the loops of each element type -------------------------------------------------------- */

#define FD_T float
#define FD_SFX f32
#define FD_E float
#define FD_ESFX f32
#include "loops_template.h"

#define FD_T double
#define FD_SFX f64
#define FD_E double
#define FD_ESFX f64
#include "loops_template.h"

#define FD_T uint16_t
#define FD_SFX f16
#define FD_E float
#define FD_ESFX f32
#include "loops_template.h"

static const fd_kernels table = {
    .forward_f32 = forward_f32,
    .forward_f64 = forward_f64,
    .sample = sample,
    .apply_f32 = apply_f32,
    .apply_f64 = apply_f64,
    .forward_op_f32 = forward_op_f32,
    .forward_op_f64 = forward_op_f64,
    .forward_op_f16 = forward_op_f16,
    .bcast_f32 = bcast_f32,
    .bcast_f64 = bcast_f64,
    .bcast_f16 = bcast_f16,
    .gauss_f32 = gauss_f32,
    .gauss_f64 = gauss_f64,
    .gauss_f16 = gauss_f16,
};

const fd_kernels *FD_LEVEL_TABLE(void) { return &table; }

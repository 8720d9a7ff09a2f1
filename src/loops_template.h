/* The chunk loops of one element type, written once for every level on its width
 * wrappers.  kernels_body.h includes it once per type with
 *   FD_T     the element type in memory (float / double / uint16_t),
 *   FD_SFX   its name suffix (f32 / f64 / f16): the loops, the memory wrappers, fd_op_*,
 *   FD_E     the compute type (float / double; float16 computes in float32),
 *   FD_ESFX  its suffix (f32 / f64): the arithmetic wrappers and the noise;
 * all four are undefined at the end.
 * Vectors of V = FD_V(lanes) elements; the last, short piece of a tile goes through the
 * same code with a partial load and store. */

#define V FD_V(vec)
#define LANES FD_V(lanes)
#define OP FD_PASTE(fd_op, FD_SFX)

/* y = kept ? x * mul : +0.0 for the m <= 64 elements of a tile (keep bit t for element t) */
static inline void FD_NAME(scale_lanes)(const FD_T *x, FD_T *y, uint64_t keep, size_t m, FD_E mul)
{
    const V a = FD_V(set1)(mul);
    for (size_t v = 0; v < FD_TILE / LANES && v * LANES < m; v++) {
        size_t i = v * LANES, count = m - i < LANES ? m - i : LANES;
        V r = FD_V(mul)(FD_MEM(loadn)(x + i, count), a);
        FD_MEM(storen)(y + i, FD_V(zero_unless)(FD_V(keep_lanes)(keep, i), r), count);
    }
}

/* y = kept ? x * mul + add : fill (two roundings, never fused) */
static inline void FD_NAME(affine_lanes)(const FD_T *x, FD_T *y, uint64_t keep, size_t m,
                                         FD_E mul, FD_E add, FD_E fill)
{
    const V a = FD_V(set1)(mul), b = FD_V(set1)(add), f = FD_V(set1)(fill);
    for (size_t v = 0; v < FD_TILE / LANES && v * LANES < m; v++) {
        size_t i = v * LANES, count = m - i < LANES ? m - i : LANES;
        V r = FD_V(add)(FD_V(mul)(FD_MEM(loadn)(x + i, count), a), b);
        FD_MEM(storen)(y + i, FD_V(select)(FD_V(keep_lanes)(keep, i), r, f), count);
    }
}

/* y = x * eps */
static inline void FD_NAME(eps_lanes)(const FD_T *x, FD_T *y, const FD_E *eps, size_t m)
{
    for (size_t v = 0; v < FD_TILE / LANES && v * LANES < m; v++) {
        size_t i = v * LANES, count = m - i < LANES ? m - i : LANES;
        V r = FD_V(mul)(FD_MEM(loadn)(x + i, count), FD_V(loadn)(eps + i, count));
        FD_MEM(storen)(y + i, r, count);
    }
}

/* The tiles: a full one (the constant m makes every vector whole at compile time) or the
 * short last one of a chunk. */
static inline void FD_NAME(scale_tile)(const FD_T *x, FD_T *y, uint64_t keep, size_t m, FD_E mul)
{
    if (m == FD_TILE)
        FD_NAME(scale_lanes)(x, y, keep, FD_TILE, mul);
    else
        FD_NAME(scale_lanes)(x, y, keep, m, mul);
}

static inline void FD_NAME(affine_tile)(const FD_T *x, FD_T *y, uint64_t keep, size_t m,
                                        FD_E mul, FD_E add, FD_E fill)
{
    if (m == FD_TILE)
        FD_NAME(affine_lanes)(x, y, keep, FD_TILE, mul, add, fill);
    else
        FD_NAME(affine_lanes)(x, y, keep, m, mul, add, fill);
}

static inline void FD_NAME(eps_tile)(const FD_T *x, FD_T *y, const FD_E *eps, size_t m)
{
    if (m == FD_TILE)
        FD_NAME(eps_lanes)(x, y, eps, FD_TILE);
    else
        FD_NAME(eps_lanes)(x, y, eps, m);
}

static inline void FD_NAME(op_tile)(const FD_T *x, FD_T *y, uint64_t keep, size_t m, const OP *op)
{
    if (op->affine)
        FD_NAME(affine_tile)(x, y, keep, m, op->mul, op->add, op->fill);
    else
        FD_NAME(scale_tile)(x, y, keep, m, op->mul);
}

/* The fused pass: sample the keep bits tile by tile, write y and (if asked) the mask. */
static inline void FD_NAME(masked_pass)(const FD_T *x, FD_T *y, uint8_t *bits, size_t n,
                                        uint64_t j0, const fd_stream *st, const OP *op)
{
    if (n == 0)
        return;
    tile_walk w;
    walk_init(&w, st, j0, n);
    for (size_t i = 0; i < n; i += FD_TILE) {
        size_t m = n - i < FD_TILE ? n - i : FD_TILE;
        uint64_t keep = walk_next(&w, m);
        FD_NAME(op_tile)(x + i, y + i, keep, m, op);
        if (bits)
            store_tile_bits(bits + i / 8, keep, m);
    }
}

static void FD_NAME(forward_op)(const FD_T *x, FD_T *y, uint8_t *bits, size_t n, uint64_t j0,
                                const fd_stream *st, const OP *op)
{
    FD_NAME(masked_pass)(x, y, bits, n, j0, st, op);
}

/* Dropout: forward_op with affine = 0, the constant folded in at compile time. */
static void FD_NAME(forward)(const FD_T *x, FD_T *y, uint8_t *bits, size_t n, uint64_t j0,
                             const fd_stream *st, FD_E scale)
{
    const OP op = {.mul = scale, .affine = 0};
    FD_NAME(masked_pass)(x, y, bits, n, j0, st, &op);
}

static void FD_NAME(apply)(const FD_T *x, FD_T *y, const uint8_t *bits, size_t n, FD_E scale)
{
    for (size_t i = 0; i < n; i += FD_TILE) {
        size_t m = n - i < FD_TILE ? n - i : FD_TILE;
        FD_NAME(scale_tile)(x + i, y + i, load_tile_bits(bits + i / 8, m), m, scale);
    }
}

/* A mask over a noise shape broadcast against the array: segment by segment, each one
 * `period` mask bits repeated. */
static void FD_NAME(bcast)(const FD_T *x, FD_T *y, size_t n, size_t e0, const fd_bcast *b,
                           const OP *op)
{
    bcast_cursor c;
    bcast_start(&c, b, e0);
    size_t i = 0;
    while (i < n) {
        size_t count = n - i < c.seg_len - c.q ? n - i : c.seg_len - c.q;
        periodic_bits p;
        periodic_init(&p, b, c.base);
        size_t ph = c.q % b->period;
        for (size_t t = 0; t < count; t += FD_TILE) {
            size_t m = count - t < FD_TILE ? count - t : FD_TILE;
            FD_NAME(op_tile)(x + i + t, y + i + t, periodic_word(&p, ph, m), m, op);
            ph += FD_TILE;
            if (ph >= b->period)
                ph %= b->period;
        }
        i += count;
        bcast_next_segment(&c);
    }
}

/* Gaussian dropout: the normals of a tile are the top of one group and the bottom of the
 * next when j0 is not block aligned, like the keep bits of tile_walk. */
static void FD_NAME(gauss)(const FD_T *x, FD_T *y, size_t n, uint64_t j0, const fd_stream *st,
                           double sigma)
{
    gen_state g;
    gen_init(&g, st);
    const FD_E sig = (FD_E)sigma;
    uint64_t block = j0 >> 2;
    size_t shift = (size_t)(j0 & 3);
    FD_E eps[2 * FD_TILE];
    FD_ESFX_NAME(eps_block)(&g, block, sig, eps);
    for (size_t i = 0; i < n; i += FD_TILE) {
        size_t m = n - i < FD_TILE ? n - i : FD_TILE;
        int straddles = shift + m > FD_TILE;
        if (straddles)
            FD_ESFX_NAME(eps_block)(&g, block + 16, sig, eps + FD_TILE);
        FD_NAME(eps_tile)(x + i, y + i, eps + shift, m);
        if (i + FD_TILE < n) {
            block += 16;
            if (straddles)
                memcpy(eps, eps + FD_TILE, FD_TILE * sizeof(FD_E));
            else
                FD_ESFX_NAME(eps_block)(&g, block, sig, eps);
        }
    }
}

#undef V
#undef LANES
#undef OP
#undef FD_T
#undef FD_SFX
#undef FD_E
#undef FD_ESFX

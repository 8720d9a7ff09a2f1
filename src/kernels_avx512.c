/* AVX-512 kernels (F/BW/DQ/VL + BMI2).  Compiled inside a target region so one set of
 * build flags serves every CPU; dispatch.c only calls them where the CPU has them.
 *
 * Philox runs on 16 blocks at once, one block per 32-bit lane, so a group of 16 blocks
 * yields the 64 words of a 64-element tile.  The 32x32 -> 64-bit products use
 * vpmuludq on even and odd lanes, recombined with masked shuffles; the three-way XORs
 * are one vpternlogd.  The 4 x 16 compare masks are interleaved into element order with
 * pdep, and that 64-bit word is both the stored mask and the k-masks of the
 * zero-masking multiplies, so a dropped element is +0.0 whatever x holds. */
#include "kernels_common.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,bmi,bmi2")
#endif

#include <immintrin.h>

enum { GEN_PHILOX, GEN_KEEP_ALL, GEN_DROP_ALL };

typedef struct {
    uint32_t rk0[FD_PHILOX_ROUNDS], rk1[FD_PHILOX_ROUNDS]; /* the key of each round */
    __m512i c2, c3, threshold, iota;
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
    g->c2 = _mm512_set1_epi32((int)s->c2);
    g->c3 = _mm512_set1_epi32((int)s->c3);
    g->threshold = _mm512_set1_epi32((int)(uint32_t)s->threshold);
    g->iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    g->mode = s->threshold > 0xFFFFFFFFu ? GEN_KEEP_ALL
              : s->threshold == 0        ? GEN_DROP_ALL
                                         : GEN_PHILOX;
}

/* Keep bits of the 64 words of blocks block .. block+15, in word order. */
static inline uint64_t gen_group(const gen_state *g, uint64_t block)
{
    if (g->mode != GEN_PHILOX)
        return g->mode == GEN_KEEP_ALL ? ~(uint64_t)0 : 0;
    const __m512i m0 = _mm512_set1_epi32((int)FD_PHILOX_M0);
    const __m512i m1 = _mm512_set1_epi32((int)FD_PHILOX_M1);
    const __m512i block_lo = _mm512_set1_epi32((int)(uint32_t)block);
    const __m512i block_hi = _mm512_set1_epi32((int)(uint32_t)(block >> 32));
    __m512i c0 = _mm512_add_epi32(block_lo, g->iota);
    /* a lane whose low word wrapped carries into the high counter word */
    __mmask16 carry = _mm512_cmplt_epu32_mask(c0, block_lo);
    __m512i c1 = _mm512_mask_add_epi32(block_hi, carry, block_hi, _mm512_set1_epi32(1));
    __m512i c2 = g->c2, c3 = g->c3;
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        __m512i even0 = _mm512_mul_epu32(c0, m0);
        __m512i odd0 = _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0);
        __m512i even1 = _mm512_mul_epu32(c2, m1);
        __m512i odd1 = _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1);
        __m512i lo0 = _mm512_mask_shuffle_epi32(even0, 0xAAAA, odd0, _MM_PERM_CDAB);
        __m512i hi0 = _mm512_mask_shuffle_epi32(odd0, 0x5555, even0, _MM_PERM_CDAB);
        __m512i lo1 = _mm512_mask_shuffle_epi32(even1, 0xAAAA, odd1, _MM_PERM_CDAB);
        __m512i hi1 = _mm512_mask_shuffle_epi32(odd1, 0x5555, even1, _MM_PERM_CDAB);
        c0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32((int)g->rk0[r]), 0x96);
        c1 = lo1;
        c2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32((int)g->rk1[r]), 0x96);
        c3 = lo0;
    }
    uint64_t keep0 = _mm512_cmplt_epu32_mask(c0, g->threshold);
    uint64_t keep1 = _mm512_cmplt_epu32_mask(c1, g->threshold);
    uint64_t keep2 = _mm512_cmplt_epu32_mask(c2, g->threshold);
    uint64_t keep3 = _mm512_cmplt_epu32_mask(c3, g->threshold);
    return _pdep_u64(keep0, 0x1111111111111111ull) | _pdep_u64(keep1, 0x2222222222222222ull) |
           _pdep_u64(keep2, 0x4444444444444444ull) | _pdep_u64(keep3, 0x8888888888888888ull);
}

/* y[0:m] = kept ? x * s : +0.0 for one tile; masked loads and stores for a short tile. */
#define FD_DEFINE_SCALE_TILE(T, SUFFIX, VEC, LANES, KMASK, SET1, LOADU, STOREU, MASKZ_LOADU,  \
                             MASK_STOREU, MASKZ_MUL)                                            \
    static inline void scale_tile_##SUFFIX(const T *x, T *y, uint64_t keep, size_t m, T scale) \
    {                                                                                           \
        const VEC s = SET1(scale);                                                              \
        if (m == FD_TILE) {                                                                     \
            for (int v = 0; v < FD_TILE / LANES; v++) {                                         \
                KMASK k = (KMASK)(keep >> (LANES * v));                                         \
                STOREU(y + LANES * v, MASKZ_MUL(k, LOADU(x + LANES * v), s));                   \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        for (size_t v = 0; v * LANES < m; v++) {                                                \
            size_t count = m - LANES * v < LANES ? m - LANES * v : LANES;                      \
            KMASK valid = (KMASK)fd_low_bits(count);                                            \
            KMASK k = (KMASK)(keep >> (LANES * v)) & valid;                                     \
            VEC xv = MASKZ_LOADU(valid, x + LANES * v);                                         \
            MASK_STOREU(y + LANES * v, valid, MASKZ_MUL(k, xv, s));                             \
        }                                                                                       \
    }

FD_DEFINE_SCALE_TILE(float, f32, __m512, 16, __mmask16, _mm512_set1_ps, _mm512_loadu_ps,
                     _mm512_storeu_ps, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps,
                     _mm512_maskz_mul_ps)
FD_DEFINE_SCALE_TILE(double, f64, __m512d, 8, __mmask8, _mm512_set1_pd, _mm512_loadu_pd,
                     _mm512_storeu_pd, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd,
                     _mm512_maskz_mul_pd)

#include "tile_loops.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const fd_kernels *fd_kernels_avx512(void) { return &table; }

#else

const fd_kernels *fd_kernels_avx512(void) { return NULL; }

#endif

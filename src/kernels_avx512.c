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

/* Philox on blocks block .. block+15, one block per lane: word k of each block in c[k]. */
static inline void philox16(const gen_state *g, uint64_t block, __m512i c[4])
{
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
    c[0] = c0;
    c[1] = c1;
    c[2] = c2;
    c[3] = c3;
}

/* Keep bits of the 64 words of blocks block .. block+15, in word order. */
static inline uint64_t gen_group(const gen_state *g, uint64_t block)
{
    if (g->mode != GEN_PHILOX)
        return g->mode == GEN_KEEP_ALL ? ~(uint64_t)0 : 0;
    __m512i c[4];
    philox16(g, block, c);
    uint64_t keep0 = _mm512_cmplt_epu32_mask(c[0], g->threshold);
    uint64_t keep1 = _mm512_cmplt_epu32_mask(c[1], g->threshold);
    uint64_t keep2 = _mm512_cmplt_epu32_mask(c[2], g->threshold);
    uint64_t keep3 = _mm512_cmplt_epu32_mask(c[3], g->threshold);
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

/* -- variants (DESIGN.md §7) --------------------------------------------------------------- */

/* The 64 words of blocks block .. block+15 in word order: a 4 x 16 transpose of the lanes. */
static inline void gen_words(const gen_state *g, uint64_t block, uint32_t w[FD_TILE])
{
    __m512i c[4];
    philox16(g, block, c);
    __m512i t0 = _mm512_unpacklo_epi32(c[0], c[1]), t1 = _mm512_unpackhi_epi32(c[0], c[1]);
    __m512i t2 = _mm512_unpacklo_epi32(c[2], c[3]), t3 = _mm512_unpackhi_epi32(c[2], c[3]);
    /* u_k holds blocks k, k+4, k+8, k+12, one per 128-bit lane */
    __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
    __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
    __m512i v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
    __m512i v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
    _mm512_storeu_si512((void *)(w + 0), _mm512_shuffle_i32x4(v0, v1, 0x88));
    _mm512_storeu_si512((void *)(w + 16), _mm512_shuffle_i32x4(v0, v1, 0xDD));
    _mm512_storeu_si512((void *)(w + 32), _mm512_shuffle_i32x4(v2, v3, 0x88));
    _mm512_storeu_si512((void *)(w + 48), _mm512_shuffle_i32x4(v2, v3, 0xDD));
}

static inline __m512d poly_pd(__m512d x, const double *coef, int n)
{
    __m512d q = _mm512_set1_pd(coef[0]);
    for (int i = 1; i < n; i++)
        q = _mm512_add_pd(_mm512_set1_pd(coef[i]), _mm512_mul_pd(x, q));
    return q;
}

static const double ln_coef[9] = {FD_L9, FD_L8, FD_L7, FD_L6, FD_L5, FD_L4, FD_L3, FD_L2, FD_L1};
static const double sin_coef[7] = {FD_S7, FD_S6, FD_S5, FD_S4, FD_S3, FD_S2, FD_S1};
static const double cos_coef[8] = {FD_C8, FD_C7, FD_C6, FD_C5, FD_C4, FD_C3, FD_C2, FD_C1};

/* eps = 1 + sigma z for the 8 pairs of 16 words: fd_box_muller_scalar, 8 lanes at a time. */
static inline void eps_pairs8(const uint32_t *w, __m512d sigma, double *eps)
{
    const __m512i deinterleave = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m512i words = _mm512_permutexvar_epi32(deinterleave, _mm512_loadu_si512((const void *)w));
    __m256i w0 = _mm512_castsi512_si256(words), w1 = _mm512_extracti64x4_epi64(words, 1);
    const __m512d one = _mm512_set1_pd(1.0);
    __m512d m = _mm512_add_pd(_mm512_cvtepu32_pd(w0), one);
    __m512d e = _mm512_getexp_pd(m);
    __m512d f = _mm512_getmant_pd(m, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __mmask8 big = _mm512_cmp_pd_mask(f, _mm512_set1_pd(FD_SQRT2), _CMP_GT_OQ);
    f = _mm512_mask_mul_pd(f, big, f, _mm512_set1_pd(0.5));
    e = _mm512_mask_add_pd(e, big, e, one);
    __m512d k = _mm512_sub_pd(e, _mm512_set1_pd(32.0));
    __m512d s = _mm512_div_pd(_mm512_sub_pd(f, one), _mm512_add_pd(f, one));
    __m512d s2 = _mm512_mul_pd(s, s);
    __m512d ln_f = _mm512_add_pd(_mm512_mul_pd(_mm512_set1_pd(2.0), s),
                                 _mm512_mul_pd(_mm512_mul_pd(s, s2), poly_pd(s2, ln_coef, 9)));
    __m512d ln_u = _mm512_add_pd(_mm512_mul_pd(k, _mm512_set1_pd(FD_LN2_HI)),
                                 _mm512_add_pd(_mm512_mul_pd(k, _mm512_set1_pd(FD_LN2_LO)), ln_f));
    __m512d r = _mm512_sqrt_pd(_mm512_mul_pd(_mm512_set1_pd(-2.0), ln_u));

    __m256i quadrant = _mm256_srli_epi32(_mm256_add_epi32(w1, _mm256_set1_epi32(0x20000000)), 30);
    __m256i rest = _mm256_sub_epi32(w1, _mm256_slli_epi32(quadrant, 30));
    __m512d p = _mm512_mul_pd(_mm512_cvtepi32_pd(rest), _mm512_set1_pd(FD_TWO_PI_2M32));
    __m512d p2 = _mm512_mul_pd(p, p);
    __m512d sin_p = _mm512_add_pd(p, _mm512_mul_pd(_mm512_mul_pd(p, p2), poly_pd(p2, sin_coef, 7)));
    __m512d cos_p = _mm512_add_pd(one, _mm512_mul_pd(p2, poly_pd(p2, cos_coef, 8)));
    __m512i q = _mm512_cvtepu32_epi64(quadrant);
    __mmask8 swap = _mm512_test_epi64_mask(q, _mm512_set1_epi64(1));
    __m512d c = _mm512_mask_blend_pd(swap, cos_p, sin_p);
    __m512d sn = _mm512_mask_blend_pd(swap, sin_p, cos_p);
    __m512i cos_sign = _mm512_slli_epi64(_mm512_srli_epi64(_mm512_add_epi64(q, _mm512_set1_epi64(1)), 1), 63);
    __m512i sin_sign = _mm512_slli_epi64(_mm512_srli_epi64(q, 1), 63);
    c = _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(c), cos_sign));
    sn = _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(sn), sin_sign));
    __m512d e0 = _mm512_add_pd(one, _mm512_mul_pd(sigma, _mm512_mul_pd(r, c)));
    __m512d e1 = _mm512_add_pd(one, _mm512_mul_pd(sigma, _mm512_mul_pd(r, sn)));
    const __m512i lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
    const __m512i hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
    _mm512_storeu_pd(eps, _mm512_permutex2var_pd(e0, lo, e1));
    _mm512_storeu_pd(eps + 8, _mm512_permutex2var_pd(e0, hi, e1));
}

static inline void eps_group_f64(const uint32_t w[FD_TILE], double sigma, double eps[FD_TILE])
{
    const __m512d s = _mm512_set1_pd(sigma);
    for (int k = 0; k < FD_TILE; k += 16)
        eps_pairs8(w + k, s, eps + k);
}

static inline __m512 poly_ps(__m512 x, const float *coef, int n)
{
    __m512 q = _mm512_set1_ps(coef[0]);
    for (int i = 1; i < n; i++)
        q = _mm512_add_ps(_mm512_set1_ps(coef[i]), _mm512_mul_ps(x, q));
    return q;
}

static const float ln_coef_f[4] = {FD_L4F, FD_L3F, FD_L2F, FD_L1F};
static const float sin_coef_f[4] = {FD_S4F, FD_S3F, FD_S2F, FD_S1F};
static const float cos_coef_f[5] = {FD_C5F, FD_C4F, FD_C3F, FD_C2F, FD_C1F};

/* eps0, eps1 = 1 + sigma z of the 16 word pairs (w0, w1): fd_box_muller_f32_scalar, 16 lanes. */
static inline void box_muller16(__m512i w0, __m512i w1, __m512 sigma, __m512 *eps0, __m512 *eps1)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 m = _mm512_add_ps(_mm512_cvtepu32_ps(w0), one);
    __m512 e = _mm512_getexp_ps(m);
    __m512 f = _mm512_getmant_ps(m, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __mmask16 big = _mm512_cmp_ps_mask(f, _mm512_set1_ps(FD_SQRT2_F), _CMP_GT_OQ);
    f = _mm512_mask_mul_ps(f, big, f, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_ps(e, big, e, one);
    __m512 k = _mm512_sub_ps(e, _mm512_set1_ps(32.0f));
    __m512 s = _mm512_div_ps(_mm512_sub_ps(f, one), _mm512_add_ps(f, one));
    __m512 s2 = _mm512_mul_ps(s, s);
    __m512 ln_f = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(2.0f), s),
                                _mm512_mul_ps(_mm512_mul_ps(s, s2), poly_ps(s2, ln_coef_f, 4)));
    __m512 ln_u = _mm512_add_ps(_mm512_mul_ps(k, _mm512_set1_ps(FD_LN2_HI_F)),
                                _mm512_add_ps(_mm512_mul_ps(k, _mm512_set1_ps(FD_LN2_LO_F)), ln_f));
    __m512 r = _mm512_sqrt_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), ln_u));

    __m512i quadrant = _mm512_srli_epi32(_mm512_add_epi32(w1, _mm512_set1_epi32(0x20000000)), 30);
    __m512i rest = _mm512_sub_epi32(w1, _mm512_slli_epi32(quadrant, 30));
    __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(rest), _mm512_set1_ps(FD_TWO_PI_2M32_F));
    __m512 p2 = _mm512_mul_ps(p, p);
    __m512 sin_p = _mm512_add_ps(p, _mm512_mul_ps(_mm512_mul_ps(p, p2), poly_ps(p2, sin_coef_f, 4)));
    __m512 cos_p = _mm512_add_ps(one, _mm512_mul_ps(p2, poly_ps(p2, cos_coef_f, 5)));
    __mmask16 swap = _mm512_test_epi32_mask(quadrant, _mm512_set1_epi32(1));
    __m512 c = _mm512_mask_blend_ps(swap, cos_p, sin_p);
    __m512 sn = _mm512_mask_blend_ps(swap, sin_p, cos_p);
    __m512i cos_sign = _mm512_slli_epi32(_mm512_srli_epi32(_mm512_add_epi32(quadrant, _mm512_set1_epi32(1)), 1), 31);
    __m512i sin_sign = _mm512_slli_epi32(_mm512_srli_epi32(quadrant, 1), 31);
    c = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(c), cos_sign));
    sn = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sn), sin_sign));
    *eps0 = _mm512_add_ps(one, _mm512_mul_ps(sigma, _mm512_mul_ps(r, c)));
    *eps1 = _mm512_add_ps(one, _mm512_mul_ps(sigma, _mm512_mul_ps(r, sn)));
}

/* eps = 1 + sigma z for the 16 pairs of 32 words (word order). */
static inline void eps_pairs16(const uint32_t *w, __m512 sigma, float *eps)
{
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512i a = _mm512_loadu_si512((const void *)w), b = _mm512_loadu_si512((const void *)(w + 16));
    __m512 e0, e1;
    box_muller16(_mm512_permutex2var_epi32(a, evens, b), _mm512_permutex2var_epi32(a, odds, b), sigma,
                 &e0, &e1);
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    _mm512_storeu_ps(eps, _mm512_permutex2var_ps(e0, lo, e1));
    _mm512_storeu_ps(eps + 16, _mm512_permutex2var_ps(e0, hi, e1));
}

static inline void eps_group_f32(const uint32_t w[FD_TILE], float sigma, float eps[FD_TILE])
{
    const __m512 s = _mm512_set1_ps(sigma);
    eps_pairs16(w, s, eps);
    eps_pairs16(w + 32, s, eps + 32);
}

/* Straight from the Philox lanes: words 0,1 of each block are one pair, words 2,3 the
 * other, so no word transpose is needed, only one of the results into counter order. */
#define FD_LEVEL_EPS_BLOCK_F32
static inline void eps_block_f32(const gen_state *g, uint64_t block, float sigma, float eps[FD_TILE])
{
    __m512i c[4];
    philox16(g, block, c);
    const __m512 s = _mm512_set1_ps(sigma);
    __m512 e[4];
    box_muller16(c[0], c[1], s, &e[0], &e[1]);
    box_muller16(c[2], c[3], s, &e[2], &e[3]);
    __m512i q[4];
    for (int k = 0; k < 4; k++)
        q[k] = _mm512_castps_si512(e[k]);
    __m512i t0 = _mm512_unpacklo_epi32(q[0], q[1]), t1 = _mm512_unpackhi_epi32(q[0], q[1]);
    __m512i t2 = _mm512_unpacklo_epi32(q[2], q[3]), t3 = _mm512_unpackhi_epi32(q[2], q[3]);
    __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
    __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
    __m512i v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
    __m512i v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
    _mm512_storeu_si512((void *)(eps + 0), _mm512_shuffle_i32x4(v0, v1, 0x88));
    _mm512_storeu_si512((void *)(eps + 16), _mm512_shuffle_i32x4(v0, v1, 0xDD));
    _mm512_storeu_si512((void *)(eps + 32), _mm512_shuffle_i32x4(v2, v3, 0x88));
    _mm512_storeu_si512((void *)(eps + 48), _mm512_shuffle_i32x4(v2, v3, 0xDD));
}

static inline void eps_tile_f32(const float *x, float *y, const float *eps, size_t m)
{
    for (size_t v = 0; v * 16 < m; v++) {
        size_t count = m - 16 * v < 16 ? m - 16 * v : 16;
        __mmask16 valid = (__mmask16)fd_low_bits(count);
        __m512 xv = _mm512_maskz_loadu_ps(valid, x + 16 * v);
        _mm512_mask_storeu_ps(y + 16 * v, valid, _mm512_mul_ps(xv, _mm512_loadu_ps(eps + 16 * v)));
    }
}

static inline void eps_tile_f64(const double *x, double *y, const double *eps, size_t m)
{
    for (size_t v = 0; v * 8 < m; v++) {
        size_t count = m - 8 * v < 8 ? m - 8 * v : 8;
        __mmask8 valid = (__mmask8)fd_low_bits(count);
        __m512d xv = _mm512_maskz_loadu_pd(valid, x + 8 * v);
        _mm512_mask_storeu_pd(y + 8 * v, valid, _mm512_mul_pd(xv, _mm512_loadu_pd(eps + 8 * v)));
    }
}

/* kept ? x * mul + add : fill; masked loads and stores for a short tile. */
#define FD_DEFINE_AFFINE_TILE(T, SUFFIX, VEC, LANES, KMASK, SET1, MASKZ_LOADU, MASK_STOREU,    \
                              MUL, ADD, BLEND)                                                  \
    static inline void affine_tile_##SUFFIX(const T *x, T *y, uint64_t keep, size_t m, T mul,  \
                                            T add, T fill)                                      \
    {                                                                                           \
        const VEC a = SET1(mul), b = SET1(add), f = SET1(fill);                                 \
        for (size_t v = 0; v * LANES < m; v++) {                                                \
            size_t count = m - LANES * v < LANES ? m - LANES * v : LANES;                      \
            KMASK valid = (KMASK)fd_low_bits(count);                                            \
            KMASK k = (KMASK)(keep >> (LANES * v));                                             \
            VEC xv = MASKZ_LOADU(valid, x + LANES * v);                                         \
            MASK_STOREU(y + LANES * v, valid, BLEND(k, f, ADD(MUL(xv, a), b)));                \
        }                                                                                       \
    }

FD_DEFINE_AFFINE_TILE(float, f32, __m512, 16, __mmask16, _mm512_set1_ps, _mm512_maskz_loadu_ps,
                      _mm512_mask_storeu_ps, _mm512_mul_ps, _mm512_add_ps, _mm512_mask_blend_ps)
FD_DEFINE_AFFINE_TILE(double, f64, __m512d, 8, __mmask8, _mm512_set1_pd, _mm512_maskz_loadu_pd,
                      _mm512_mask_storeu_pd, _mm512_mul_pd, _mm512_add_pd, _mm512_mask_blend_pd)

/* float16: 16 elements per vector, widened to float32 and narrowed back rounding to
 * nearest even (vcvtps2ph imm 0, the same as fd_f32_to_f16). */
#define FD_F16_ROUND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

static inline void scale_tile_f16(const uint16_t *x, uint16_t *y, uint64_t keep, size_t m, float scale)
{
    const __m512 s = _mm512_set1_ps(scale);
    for (size_t v = 0; v * 16 < m; v++) {
        size_t count = m - 16 * v < 16 ? m - 16 * v : 16;
        __mmask16 valid = (__mmask16)fd_low_bits(count), k = (__mmask16)(keep >> (16 * v)) & valid;
        __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(valid, x + 16 * v));
        _mm256_mask_storeu_epi16(y + 16 * v, valid, _mm512_cvtps_ph(_mm512_maskz_mul_ps(k, xv, s), FD_F16_ROUND));
    }
}

static inline void affine_tile_f16(const uint16_t *x, uint16_t *y, uint64_t keep, size_t m,
                                   float mul, float add, float fill)
{
    const __m512 a = _mm512_set1_ps(mul), b = _mm512_set1_ps(add), f = _mm512_set1_ps(fill);
    for (size_t v = 0; v * 16 < m; v++) {
        size_t count = m - 16 * v < 16 ? m - 16 * v : 16;
        __mmask16 valid = (__mmask16)fd_low_bits(count), k = (__mmask16)(keep >> (16 * v));
        __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(valid, x + 16 * v));
        __m512 r = _mm512_mask_blend_ps(k, f, _mm512_add_ps(_mm512_mul_ps(xv, a), b));
        _mm256_mask_storeu_epi16(y + 16 * v, valid, _mm512_cvtps_ph(r, FD_F16_ROUND));
    }
}

static inline void eps_tile_f16(const uint16_t *x, uint16_t *y, const float *eps, size_t m)
{
    for (size_t v = 0; v * 16 < m; v++) {
        size_t count = m - 16 * v < 16 ? m - 16 * v : 16;
        __mmask16 valid = (__mmask16)fd_low_bits(count);
        __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(valid, x + 16 * v));
        __m512 r = _mm512_mul_ps(xv, _mm512_loadu_ps(eps + 16 * v));
        _mm256_mask_storeu_epi16(y + 16 * v, valid, _mm512_cvtps_ph(r, FD_F16_ROUND));
    }
}

#include "variant_loops.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const fd_kernels *fd_kernels_avx512(void) { return &table; }
const fd_variant_kernels *fd_variants_avx512(void) { return &variant_table; }

#else

const fd_kernels *fd_kernels_avx512(void) { return NULL; }
const fd_variant_kernels *fd_variants_avx512(void) { return NULL; }

#endif

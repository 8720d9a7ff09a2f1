/* AVX2 kernels (+ BMI2, F16C).  Compiled inside a target region; dispatch.c calls them only
 * on CPUs that have AVX2, BMI2 and F16C.
 *
 * Philox runs on 8 blocks per ymm register; a 64-word group is two such halves.  AVX2
 * has no unsigned compare, so words and threshold are compared with their sign bits
 * flipped.  Keep bits become lane masks by testing one bit per lane. */
#include "kernels_common.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,bmi,bmi2,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,bmi,bmi2,f16c")
#endif

#include <immintrin.h>

enum { GEN_PHILOX, GEN_KEEP_ALL, GEN_DROP_ALL };

typedef struct {
    uint32_t rk0[FD_PHILOX_ROUNDS], rk1[FD_PHILOX_ROUNDS];
    uint32_t c2, c3, threshold;
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
    g->c2 = s->c2;
    g->c3 = s->c3;
    g->threshold = (uint32_t)s->threshold;
    g->mode = s->threshold > 0xFFFFFFFFu ? GEN_KEEP_ALL
              : s->threshold == 0        ? GEN_DROP_ALL
                                         : GEN_PHILOX;
}

/* Philox on blocks block .. block+7, one block per lane: word k of each block in c[k]. */
static inline void philox8(const gen_state *g, uint64_t block, __m256i c[4])
{
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    const __m256i m0 = _mm256_set1_epi32((int)FD_PHILOX_M0);
    const __m256i m1 = _mm256_set1_epi32((int)FD_PHILOX_M1);
    const __m256i block_lo = _mm256_set1_epi32((int)(uint32_t)block);
    __m256i c0 = _mm256_add_epi32(block_lo, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    /* carry = -1 in lanes whose low word wrapped (c0 < block_lo, unsigned) */
    __m256i carry = _mm256_cmpgt_epi32(_mm256_xor_si256(block_lo, sign), _mm256_xor_si256(c0, sign));
    __m256i c1 = _mm256_sub_epi32(_mm256_set1_epi32((int)(uint32_t)(block >> 32)), carry);
    __m256i c2 = _mm256_set1_epi32((int)g->c2), c3 = _mm256_set1_epi32((int)g->c3);
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        __m256i even0 = _mm256_mul_epu32(c0, m0);
        __m256i odd0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
        __m256i even1 = _mm256_mul_epu32(c2, m1);
        __m256i odd1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
        __m256i lo0 = _mm256_blend_epi32(even0, _mm256_shuffle_epi32(odd0, 0xB1), 0xAA);
        __m256i hi0 = _mm256_blend_epi32(_mm256_shuffle_epi32(even0, 0xB1), odd0, 0xAA);
        __m256i lo1 = _mm256_blend_epi32(even1, _mm256_shuffle_epi32(odd1, 0xB1), 0xAA);
        __m256i hi1 = _mm256_blend_epi32(_mm256_shuffle_epi32(even1, 0xB1), odd1, 0xAA);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)g->rk0[r]));
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)g->rk1[r]));
        c3 = lo0;
    }
    c[0] = c0;
    c[1] = c1;
    c[2] = c2;
    c[3] = c3;
}

/* Keep bits of the 32 words of blocks block .. block+7, in word order. */
static inline uint32_t gen_half(const gen_state *g, uint64_t block)
{
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    __m256i c[4];
    philox8(g, block, c);
    __m256i c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    const __m256i t = _mm256_xor_si256(_mm256_set1_epi32((int)g->threshold), sign);
#define KEEP8(w) ((uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps( \
        _mm256_cmpgt_epi32(t, _mm256_xor_si256((w), sign)))))
    uint32_t keep = _pdep_u32(KEEP8(c0), 0x11111111u) | _pdep_u32(KEEP8(c1), 0x22222222u) |
                    _pdep_u32(KEEP8(c2), 0x44444444u) | _pdep_u32(KEEP8(c3), 0x88888888u);
#undef KEEP8
    return keep;
}

static inline uint64_t gen_group(const gen_state *g, uint64_t block)
{
    if (g->mode != GEN_PHILOX)
        return g->mode == GEN_KEEP_ALL ? ~(uint64_t)0 : 0;
    return (uint64_t)gen_half(g, block) | ((uint64_t)gen_half(g, block + 8) << 32);
}

/* All-ones lanes where the matching bit of `keep` is set. */
static inline __m256 lanes_f32(uint64_t keep, int v)
{
    const __m256i select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i byte = _mm256_set1_epi32((int)((keep >> (8 * v)) & 0xFF));
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(byte, select), select));
}

static inline __m256d lanes_f64(uint64_t keep, int v)
{
    const __m256i select = _mm256_setr_epi64x(1, 2, 4, 8);
    __m256i nibble = _mm256_set1_epi64x((long long)((keep >> (4 * v)) & 0xF));
    return _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(nibble, select), select));
}

/* A short tile falls back to the scalar definition, which it must equal anyway. */
#define FD_DEFINE_SCALE_TILE(T, SUFFIX, VEC, LANES, SET1, LOADU, STOREU, MUL, AND)             \
    static inline void scale_tile_##SUFFIX(const T *x, T *y, uint64_t keep, size_t m, T scale) \
    {                                                                                           \
        if (m == FD_TILE) {                                                                     \
            const VEC s = SET1(scale);                                                          \
            for (int v = 0; v < FD_TILE / LANES; v++)                                           \
                STOREU(y + LANES * v, AND(MUL(LOADU(x + LANES * v), s), lanes_##SUFFIX(keep, v))); \
            return;                                                                             \
        }                                                                                       \
        for (size_t t = 0; t < m; t++)                                                          \
            y[t] = ((keep >> t) & 1) ? x[t] * scale : (T)0;                                     \
    }

FD_DEFINE_SCALE_TILE(float, f32, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
                     _mm256_mul_ps, _mm256_and_ps)
FD_DEFINE_SCALE_TILE(double, f64, __m256d, 4, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
                     _mm256_mul_pd, _mm256_and_pd)

#include "tile_loops.h"

/* -- variants (DESIGN.md §7) --------------------------------------------------------------- */

/* The 32 words of blocks block .. block+7 in word order: a 4 x 8 transpose of the lanes. */
static inline void gen_words_half(const gen_state *g, uint64_t block, uint32_t *w)
{
    __m256i c[4];
    philox8(g, block, c);
    __m256i t0 = _mm256_unpacklo_epi32(c[0], c[1]), t1 = _mm256_unpackhi_epi32(c[0], c[1]);
    __m256i t2 = _mm256_unpacklo_epi32(c[2], c[3]), t3 = _mm256_unpackhi_epi32(c[2], c[3]);
    /* u_k holds blocks k and k+4, one per 128-bit lane */
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    _mm256_storeu_si256((__m256i *)(w + 0), _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256((__m256i *)(w + 8), _mm256_permute2x128_si256(u2, u3, 0x20));
    _mm256_storeu_si256((__m256i *)(w + 16), _mm256_permute2x128_si256(u0, u1, 0x31));
    _mm256_storeu_si256((__m256i *)(w + 24), _mm256_permute2x128_si256(u2, u3, 0x31));
}

static inline void gen_words(const gen_state *g, uint64_t block, uint32_t w[FD_TILE])
{
    gen_words_half(g, block, w);
    gen_words_half(g, block + 8, w + 32);
}

static inline __m256d poly_pd(__m256d x, const double *coef, int n)
{
    __m256d q = _mm256_set1_pd(coef[0]);
    for (int i = 1; i < n; i++)
        q = _mm256_add_pd(_mm256_set1_pd(coef[i]), _mm256_mul_pd(x, q));
    return q;
}

static const double ln_coef[9] = {FD_L9, FD_L8, FD_L7, FD_L6, FD_L5, FD_L4, FD_L3, FD_L2, FD_L1};
static const double sin_coef[7] = {FD_S7, FD_S6, FD_S5, FD_S4, FD_S3, FD_S2, FD_S1};
static const double cos_coef[8] = {FD_C8, FD_C7, FD_C6, FD_C5, FD_C4, FD_C3, FD_C2, FD_C1};

/* Unsigned 32-bit lanes to double, exactly. */
static inline __m256d u32_to_pd(__m128i w)
{
    __m128i flipped = _mm_xor_si128(w, _mm_set1_epi32((int)0x80000000u));
    return _mm256_add_pd(_mm256_cvtepi32_pd(flipped), _mm256_set1_pd(2147483648.0));
}

/* eps = 1 + sigma z for the 4 pairs of 8 words: fd_box_muller_scalar, 4 lanes at a time. */
static inline void eps_pairs4(const uint32_t *w, __m256d sigma, double *eps)
{
    __m256i words = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)w),
                                                _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    __m128i w0 = _mm256_castsi256_si128(words), w1 = _mm256_extracti128_si256(words, 1);
    const __m256d one = _mm256_set1_pd(1.0);
    __m256d m = _mm256_add_pd(u32_to_pd(w0), one);
    /* m = f 2^e: the exponent field as a double (2^52 trick), the mantissa with exponent 0 */
    __m256i mb = _mm256_castpd_si256(m);
    __m256i biased = _mm256_srli_epi64(mb, 52);
    const __m256d two52 = _mm256_set1_pd(4503599627370496.0);
    __m256d e = _mm256_sub_pd(_mm256_sub_pd(
        _mm256_castsi256_pd(_mm256_or_si256(biased, _mm256_castpd_si256(two52))), two52),
        _mm256_set1_pd(1023.0));
    __m256d f = _mm256_castsi256_pd(_mm256_or_si256(
        _mm256_and_si256(mb, _mm256_set1_epi64x(0x000FFFFFFFFFFFFFll)),
        _mm256_set1_epi64x(0x3FF0000000000000ll)));
    __m256d big = _mm256_cmp_pd(f, _mm256_set1_pd(FD_SQRT2), _CMP_GT_OQ);
    f = _mm256_blendv_pd(f, _mm256_mul_pd(f, _mm256_set1_pd(0.5)), big);
    e = _mm256_blendv_pd(e, _mm256_add_pd(e, one), big);
    __m256d k = _mm256_sub_pd(e, _mm256_set1_pd(32.0));
    __m256d s = _mm256_div_pd(_mm256_sub_pd(f, one), _mm256_add_pd(f, one));
    __m256d s2 = _mm256_mul_pd(s, s);
    __m256d ln_f = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(2.0), s),
                                 _mm256_mul_pd(_mm256_mul_pd(s, s2), poly_pd(s2, ln_coef, 9)));
    __m256d ln_u = _mm256_add_pd(_mm256_mul_pd(k, _mm256_set1_pd(FD_LN2_HI)),
                                 _mm256_add_pd(_mm256_mul_pd(k, _mm256_set1_pd(FD_LN2_LO)), ln_f));
    __m256d r = _mm256_sqrt_pd(_mm256_mul_pd(_mm256_set1_pd(-2.0), ln_u));

    __m128i quadrant = _mm_srli_epi32(_mm_add_epi32(w1, _mm_set1_epi32(0x20000000)), 30);
    __m128i rest = _mm_sub_epi32(w1, _mm_slli_epi32(quadrant, 30));
    __m256d p = _mm256_mul_pd(_mm256_cvtepi32_pd(rest), _mm256_set1_pd(FD_TWO_PI_2M32));
    __m256d p2 = _mm256_mul_pd(p, p);
    __m256d sin_p = _mm256_add_pd(p, _mm256_mul_pd(_mm256_mul_pd(p, p2), poly_pd(p2, sin_coef, 7)));
    __m256d cos_p = _mm256_add_pd(one, _mm256_mul_pd(p2, poly_pd(p2, cos_coef, 8)));
    __m256i q = _mm256_cvtepu32_epi64(quadrant);
    __m256d swap = _mm256_castsi256_pd(_mm256_slli_epi64(q, 63)); /* sign bit = quadrant & 1 */
    __m256d c = _mm256_blendv_pd(cos_p, sin_p, swap);
    __m256d sn = _mm256_blendv_pd(sin_p, cos_p, swap);
    __m256i cos_sign = _mm256_slli_epi64(_mm256_srli_epi64(_mm256_add_epi64(q, _mm256_set1_epi64x(1)), 1), 63);
    __m256i sin_sign = _mm256_slli_epi64(_mm256_srli_epi64(q, 1), 63);
    c = _mm256_castsi256_pd(_mm256_xor_si256(_mm256_castpd_si256(c), cos_sign));
    sn = _mm256_castsi256_pd(_mm256_xor_si256(_mm256_castpd_si256(sn), sin_sign));
    __m256d e0 = _mm256_add_pd(one, _mm256_mul_pd(sigma, _mm256_mul_pd(r, c)));
    __m256d e1 = _mm256_add_pd(one, _mm256_mul_pd(sigma, _mm256_mul_pd(r, sn)));
    __m256d lo = _mm256_unpacklo_pd(e0, e1), hi = _mm256_unpackhi_pd(e0, e1);
    _mm256_storeu_pd(eps, _mm256_permute2f128_pd(lo, hi, 0x20));
    _mm256_storeu_pd(eps + 4, _mm256_permute2f128_pd(lo, hi, 0x31));
}

static inline void eps_group_f64(const uint32_t w[FD_TILE], double sigma, double eps[FD_TILE])
{
    const __m256d s = _mm256_set1_pd(sigma);
    for (int k = 0; k < FD_TILE; k += 8)
        eps_pairs4(w + k, s, eps + k);
}

static inline __m256 poly_ps(__m256 x, const float *coef, int n)
{
    __m256 q = _mm256_set1_ps(coef[0]);
    for (int i = 1; i < n; i++)
        q = _mm256_add_ps(_mm256_set1_ps(coef[i]), _mm256_mul_ps(x, q));
    return q;
}

static const float ln_coef_f[4] = {FD_L4F, FD_L3F, FD_L2F, FD_L1F};
static const float sin_coef_f[4] = {FD_S4F, FD_S3F, FD_S2F, FD_S1F};
static const float cos_coef_f[5] = {FD_C5F, FD_C4F, FD_C3F, FD_C2F, FD_C1F};

/* Unsigned 32-bit lanes to float32 rounded once: both 16-bit halves convert exactly and
 * their sum is the one rounding. */
static inline __m256 u32_to_ps(__m256i w)
{
    __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(w, 16));
    __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(w, _mm256_set1_epi32(0xFFFF)));
    return _mm256_add_ps(_mm256_mul_ps(hi, _mm256_set1_ps(65536.0f)), lo);
}

/* eps = 1 + sigma z for the 8 pairs of 16 words: fd_box_muller_f32_scalar, 8 lanes. */
static inline void eps_pairs8_f32(const uint32_t *w, __m256 sigma, float *eps)
{
    const __m256i deinterleave = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i a = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)w), deinterleave);
    __m256i b = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(w + 8)), deinterleave);
    __m256i w0 = _mm256_permute2x128_si256(a, b, 0x20), w1 = _mm256_permute2x128_si256(a, b, 0x31);
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 m = _mm256_add_ps(u32_to_ps(w0), one);
    __m256i mb = _mm256_castps_si256(m);
    __m256 e = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(mb, 23)), _mm256_set1_ps(127.0f));
    __m256 f = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(mb, _mm256_set1_epi32(0x007FFFFF)),
                                                   _mm256_set1_epi32(0x3F800000)));
    __m256 big = _mm256_cmp_ps(f, _mm256_set1_ps(FD_SQRT2_F), _CMP_GT_OQ);
    f = _mm256_blendv_ps(f, _mm256_mul_ps(f, _mm256_set1_ps(0.5f)), big);
    e = _mm256_blendv_ps(e, _mm256_add_ps(e, one), big);
    __m256 k = _mm256_sub_ps(e, _mm256_set1_ps(32.0f));
    __m256 s = _mm256_div_ps(_mm256_sub_ps(f, one), _mm256_add_ps(f, one));
    __m256 s2 = _mm256_mul_ps(s, s);
    __m256 ln_f = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), s),
                                _mm256_mul_ps(_mm256_mul_ps(s, s2), poly_ps(s2, ln_coef_f, 4)));
    __m256 ln_u = _mm256_add_ps(_mm256_mul_ps(k, _mm256_set1_ps(FD_LN2_HI_F)),
                                _mm256_add_ps(_mm256_mul_ps(k, _mm256_set1_ps(FD_LN2_LO_F)), ln_f));
    __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), ln_u));

    __m256i quadrant = _mm256_srli_epi32(_mm256_add_epi32(w1, _mm256_set1_epi32(0x20000000)), 30);
    __m256i rest = _mm256_sub_epi32(w1, _mm256_slli_epi32(quadrant, 30));
    __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(rest), _mm256_set1_ps(FD_TWO_PI_2M32_F));
    __m256 p2 = _mm256_mul_ps(p, p);
    __m256 sin_p = _mm256_add_ps(p, _mm256_mul_ps(_mm256_mul_ps(p, p2), poly_ps(p2, sin_coef_f, 4)));
    __m256 cos_p = _mm256_add_ps(one, _mm256_mul_ps(p2, poly_ps(p2, cos_coef_f, 5)));
    __m256 swap = _mm256_castsi256_ps(_mm256_slli_epi32(quadrant, 31));
    __m256 c = _mm256_blendv_ps(cos_p, sin_p, swap);
    __m256 sn = _mm256_blendv_ps(sin_p, cos_p, swap);
    __m256i cos_sign = _mm256_slli_epi32(_mm256_srli_epi32(_mm256_add_epi32(quadrant, _mm256_set1_epi32(1)), 1), 31);
    __m256i sin_sign = _mm256_slli_epi32(_mm256_srli_epi32(quadrant, 1), 31);
    c = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(c), cos_sign));
    sn = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(sn), sin_sign));
    __m256 e0 = _mm256_add_ps(one, _mm256_mul_ps(sigma, _mm256_mul_ps(r, c)));
    __m256 e1 = _mm256_add_ps(one, _mm256_mul_ps(sigma, _mm256_mul_ps(r, sn)));
    __m256 lo = _mm256_unpacklo_ps(e0, e1), hi = _mm256_unpackhi_ps(e0, e1);
    _mm256_storeu_ps(eps, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(eps + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

static inline void eps_group_f32(const uint32_t w[FD_TILE], float sigma, float eps[FD_TILE])
{
    const __m256 s = _mm256_set1_ps(sigma);
    for (int k = 0; k < FD_TILE; k += 16)
        eps_pairs8_f32(w + k, s, eps + k);
}

static inline void eps_tile_f32(const float *x, float *y, const float *eps, size_t m)
{
    if (m == FD_TILE) {
        for (int v = 0; v < FD_TILE / 8; v++)
            _mm256_storeu_ps(y + 8 * v, _mm256_mul_ps(_mm256_loadu_ps(x + 8 * v), _mm256_loadu_ps(eps + 8 * v)));
        return;
    }
    for (size_t t = 0; t < m; t++)
        y[t] = x[t] * eps[t];
}

static inline void eps_tile_f64(const double *x, double *y, const double *eps, size_t m)
{
    if (m == FD_TILE) {
        for (int v = 0; v < FD_TILE / 4; v++)
            _mm256_storeu_pd(y + 4 * v, _mm256_mul_pd(_mm256_loadu_pd(x + 4 * v), _mm256_loadu_pd(eps + 4 * v)));
        return;
    }
    for (size_t t = 0; t < m; t++)
        y[t] = x[t] * eps[t];
}

/* kept ? x * mul + add : fill; a short tile falls back to the scalar definition. */
#define FD_DEFINE_AFFINE_TILE(T, SUFFIX, VEC, LANES, SET1, LOADU, STOREU, MUL, ADD, BLENDV)      \
    static inline void affine_tile_##SUFFIX(const T *x, T *y, uint64_t keep, size_t m, T mul,   \
                                            T add, T fill)                                      \
    {                                                                                           \
        if (m == FD_TILE) {                                                                     \
            const VEC a = SET1(mul), b = SET1(add), f = SET1(fill);                             \
            for (int v = 0; v < FD_TILE / LANES; v++) {                                         \
                VEC t = ADD(MUL(LOADU(x + LANES * v), a), b);                                   \
                STOREU(y + LANES * v, BLENDV(f, t, lanes_##SUFFIX(keep, v)));                   \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        for (size_t t = 0; t < m; t++)                                                          \
            y[t] = ((keep >> t) & 1) ? x[t] * mul + add : fill;                                 \
    }

FD_DEFINE_AFFINE_TILE(float, f32, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
                      _mm256_mul_ps, _mm256_add_ps, _mm256_blendv_ps)
FD_DEFINE_AFFINE_TILE(double, f64, __m256d, 4, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
                      _mm256_mul_pd, _mm256_add_pd, _mm256_blendv_pd)

/* float16 through F16C: 8 elements per vector, widened to float32 and narrowed back
 * rounding to nearest even (imm 0, the same as fd_f32_to_f16); short tiles are scalar. */
static inline void scale_tile_f16(const uint16_t *x, uint16_t *y, uint64_t keep, size_t m, float scale)
{
    if (m == FD_TILE) {
        const __m256 s = _mm256_set1_ps(scale);
        for (int v = 0; v < FD_TILE / 8; v++) {
            __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 8 * v)));
            __m256 r = _mm256_and_ps(_mm256_mul_ps(xv, s), lanes_f32(keep, v));
            _mm_storeu_si128((__m128i *)(y + 8 * v), _mm256_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT));
        }
        return;
    }
    for (size_t t = 0; t < m; t++)
        y[t] = ((keep >> t) & 1) ? fd_f32_to_f16(fd_f16_to_f32(x[t]) * scale) : 0;
}

static inline void affine_tile_f16(const uint16_t *x, uint16_t *y, uint64_t keep, size_t m,
                                   float mul, float add, float fill)
{
    if (m == FD_TILE) {
        const __m256 a = _mm256_set1_ps(mul), b = _mm256_set1_ps(add), f = _mm256_set1_ps(fill);
        for (int v = 0; v < FD_TILE / 8; v++) {
            __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 8 * v)));
            __m256 r = _mm256_blendv_ps(f, _mm256_add_ps(_mm256_mul_ps(xv, a), b), lanes_f32(keep, v));
            _mm_storeu_si128((__m128i *)(y + 8 * v), _mm256_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT));
        }
        return;
    }
    for (size_t t = 0; t < m; t++)
        y[t] = fd_f32_to_f16(((keep >> t) & 1) ? fd_f16_to_f32(x[t]) * mul + add : fill);
}

static inline void eps_tile_f16(const uint16_t *x, uint16_t *y, const float *eps, size_t m)
{
    if (m == FD_TILE) {
        for (int v = 0; v < FD_TILE / 8; v++) {
            __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 8 * v)));
            __m256 r = _mm256_mul_ps(xv, _mm256_loadu_ps(eps + 8 * v));
            _mm_storeu_si128((__m128i *)(y + 8 * v), _mm256_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT));
        }
        return;
    }
    for (size_t t = 0; t < m; t++)
        y[t] = fd_f32_to_f16(fd_f16_to_f32(x[t]) * eps[t]);
}

#include "variant_loops.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const fd_kernels *fd_kernels_avx2(void) { return &table; }
const fd_variant_kernels *fd_variants_avx2(void) { return &variant_table; }

#else

const fd_kernels *fd_kernels_avx2(void) { return NULL; }
const fd_variant_kernels *fd_variants_avx2(void) { return NULL; }

#endif

/* AVX-512 level (F/BW/DQ/VL + BMI2): 16 Philox blocks per zmm register, the width
 * wrappers of kernels_body.h.  Compiled inside a target region; dispatch.c calls it only
 * on CPUs that have these extensions and let the OS save zmm and opmask state.
 *
 * Audit for AVX-512 CPUs (Intel Skylake-SP..Sapphire Rapids, AMD Zen 4/5), hot loops:
 * - PDEP interleaves the four 16-bit compare masks: 3 cycles on every CPU of this level
 *   (it is microcoded only on Zen 1..2, which have no AVX-512);
 * - no vpcompress/vpexpand at all (memory-destination vpcompress is microcoded on Zen 4),
 *   no gathers or scatters;
 * - masked loads and stores only on a tile's short end (count < lanes), full vectors
 *   otherwise; the zero-masking multiply is one instruction;
 * - vdivps/vdivpd and vsqrtps/vsqrtpd only in the Gaussian noise, where they are the
 *   definition; vgetexp/vgetmant split the exponent exactly.
 * Dropped elements come from zero-masking or blending, so they are +0.0 (or the fill)
 * whatever x holds. */
#include "kernels_common.h"

#if (defined(__x86_64__) || defined(_M_X64)) && \
    (defined(__GNUC__) || defined(__clang__) || defined(FD_MSVC))

#if defined(FD_EMULATED_SIMD)
/* tools/cross_check builds this level on intrinsics emulated in portable C: no target region */
#elif defined(FD_MSVC)
/* MSVC compiles the intrinsics of every level without target flags, and emits nothing
 * above SSE2 of its own (no /arch flag), so this level's instructions stay in its own
 * functions and the build machine's CPU does not matter. */
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,bmi,bmi2")
#endif

#include <immintrin.h>

typedef __m512i u32_vec;
typedef __m256i u32h_vec;
typedef __m512 f32_vec;
typedef __mmask16 f32_mask;
typedef __m512d f64_vec;
typedef __mmask8 f64_mask;
enum { u32_lanes = 16, f32_lanes = 16, f64_lanes = 8, philox_ways = 1 };

/* -- 32-bit words ------------------------------------------------------------------------ */
static inline u32_vec u32_set1(uint32_t a) { return _mm512_set1_epi32((int)a); }
static inline u32_vec u32_iota(void)
{
    return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
static inline u32_vec u32_add(u32_vec a, u32_vec b) { return _mm512_add_epi32(a, b); }
static inline u32_vec u32_sub(u32_vec a, u32_vec b) { return _mm512_sub_epi32(a, b); }
static inline u32_vec u32_and(u32_vec a, u32_vec b) { return _mm512_and_si512(a, b); }
static inline u32_vec u32_or(u32_vec a, u32_vec b) { return _mm512_or_si512(a, b); }
static inline u32_vec u32_andnot(u32_vec a, u32_vec b) { return _mm512_andnot_si512(a, b); }
static inline u32_vec u32_shl(u32_vec a, int n) { return _mm512_slli_epi32(a, (unsigned)n); }
static inline u32_vec u32_shr(u32_vec a, int n) { return _mm512_srli_epi32(a, (unsigned)n); }
static inline u32_vec u32_xor3(u32_vec a, u32_vec b, u32_vec c)
{
    return _mm512_ternarylogic_epi32(a, b, c, 0x96);
}

static inline u32_vec u32_lt(u32_vec a, u32_vec b)
{
    return _mm512_movm_epi32(_mm512_cmplt_epu32_mask(a, b));
}

/* vpmuludq multiplies the even words; masked in-lane shuffles recombine the halves. */
static inline void u32_mulhilo(u32_vec a, u32_vec m, u32_vec *hi, u32_vec *lo)
{
    u32_vec even = _mm512_mul_epu32(a, m);
    u32_vec odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *lo = _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, _MM_PERM_CDAB);
    *hi = _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_CDAB);
}

/* 4 x 16 transpose: u_k holds blocks k, k+4, k+8, k+12, one per 128-bit lane. */
static inline void store_words(const u32_vec c[4], void *p)
{
    u32_vec t0 = _mm512_unpacklo_epi32(c[0], c[1]), t1 = _mm512_unpackhi_epi32(c[0], c[1]);
    u32_vec t2 = _mm512_unpacklo_epi32(c[2], c[3]), t3 = _mm512_unpackhi_epi32(c[2], c[3]);
    u32_vec u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
    u32_vec u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
    u32_vec v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
    u32_vec v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
    u32_vec *w = (u32_vec *)p;
    _mm512_storeu_si512(w + 0, _mm512_shuffle_i32x4(v0, v1, 0x88));
    _mm512_storeu_si512(w + 1, _mm512_shuffle_i32x4(v0, v1, 0xDD));
    _mm512_storeu_si512(w + 2, _mm512_shuffle_i32x4(v2, v3, 0x88));
    _mm512_storeu_si512(w + 3, _mm512_shuffle_i32x4(v2, v3, 0xDD));
}

static inline u32h_vec u32h_set1(uint32_t a) { return _mm256_set1_epi32((int)a); }
static inline u32h_vec u32h_add(u32h_vec a, u32h_vec b) { return _mm256_add_epi32(a, b); }
static inline u32h_vec u32h_sub(u32h_vec a, u32h_vec b) { return _mm256_sub_epi32(a, b); }
static inline u32h_vec u32h_and(u32h_vec a, u32h_vec b) { return _mm256_and_si256(a, b); }
static inline u32h_vec u32h_shl(u32h_vec a, int n) { return _mm256_slli_epi32(a, n); }
static inline u32h_vec u32h_shr(u32h_vec a, int n) { return _mm256_srli_epi32(a, n); }

/* -- float32 ----------------------------------------------------------------------------- */
static inline f32_vec f32_set1(float a) { return _mm512_set1_ps(a); }
static inline f32_vec f32_add(f32_vec a, f32_vec b) { return _mm512_add_ps(a, b); }
static inline f32_vec f32_sub(f32_vec a, f32_vec b) { return _mm512_sub_ps(a, b); }
static inline f32_vec f32_mul(f32_vec a, f32_vec b) { return _mm512_mul_ps(a, b); }
static inline f32_vec f32_div(f32_vec a, f32_vec b) { return _mm512_div_ps(a, b); }
static inline f32_vec f32_sqrt(f32_vec a) { return _mm512_sqrt_ps(a); }
static inline f32_vec f32_neg(f32_vec a) { return _mm512_xor_ps(a, _mm512_set1_ps(-0.0f)); }
static inline f32_mask f32_gt(f32_vec a, f32_vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline f32_vec f32_select(f32_mask m, f32_vec a, f32_vec b) { return _mm512_mask_blend_ps(m, b, a); }
static inline f32_vec f32_zero_unless(f32_mask m, f32_vec a) { return _mm512_maskz_mov_ps(m, a); }
static inline u32_vec f32_as_u32(f32_vec a) { return _mm512_castps_si512(a); }
static inline f32_mask f32_keep_lanes(uint64_t keep, size_t i) { return (f32_mask)(keep >> i); }
static inline f32_vec f32_from_u32(u32_vec w) { return _mm512_cvtepu32_ps(w); }
static inline f32_vec f32_from_i32(u32_vec w) { return _mm512_cvtepi32_ps(w); }

static inline void f32_split_exp(f32_vec m, f32_vec *e, f32_vec *f)
{
    *e = _mm512_getexp_ps(m);
    *f = _mm512_getmant_ps(m, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
}

static inline f32_vec f32_loadn(const float *p, size_t count)
{
    if (count == f32_lanes)
        return _mm512_loadu_ps(p);
    return _mm512_maskz_loadu_ps((f32_mask)fd_low_bits(count), p);
}

static inline void f32_storen(float *p, f32_vec v, size_t count)
{
    if (count == f32_lanes)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, (f32_mask)fd_low_bits(count), v);
}

/* -- float64 ----------------------------------------------------------------------------- */
static inline f64_vec f64_set1(double a) { return _mm512_set1_pd(a); }
static inline f64_vec f64_add(f64_vec a, f64_vec b) { return _mm512_add_pd(a, b); }
static inline f64_vec f64_sub(f64_vec a, f64_vec b) { return _mm512_sub_pd(a, b); }
static inline f64_vec f64_mul(f64_vec a, f64_vec b) { return _mm512_mul_pd(a, b); }
static inline f64_vec f64_div(f64_vec a, f64_vec b) { return _mm512_div_pd(a, b); }
static inline f64_vec f64_sqrt(f64_vec a) { return _mm512_sqrt_pd(a); }
static inline f64_vec f64_neg(f64_vec a) { return _mm512_xor_pd(a, _mm512_set1_pd(-0.0)); }
static inline f64_mask f64_gt(f64_vec a, f64_vec b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
static inline f64_vec f64_select(f64_mask m, f64_vec a, f64_vec b) { return _mm512_mask_blend_pd(m, b, a); }
static inline f64_vec f64_zero_unless(f64_mask m, f64_vec a) { return _mm512_maskz_mov_pd(m, a); }
static inline f64_mask f64_keep_lanes(uint64_t keep, size_t i) { return (f64_mask)(keep >> i); }
static inline f64_vec f64_from_u32(u32h_vec w) { return _mm512_cvtepu32_pd(w); }
static inline f64_vec f64_from_i32(u32h_vec w) { return _mm512_cvtepi32_pd(w); }

static inline void f64_split_exp(f64_vec m, f64_vec *e, f64_vec *f)
{
    *e = _mm512_getexp_pd(m);
    *f = _mm512_getmant_pd(m, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
}

static inline void f64_load_pairs(const uint32_t *w, u32h_vec *even, u32h_vec *odd)
{
    const u32_vec deinterleave = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    u32_vec words = _mm512_permutexvar_epi32(deinterleave, _mm512_loadu_si512((const void *)w));
    *even = _mm512_castsi512_si256(words);
    *odd = _mm512_extracti64x4_epi64(words, 1);
}

static inline void f64_store_pairs(double *p, f64_vec a, f64_vec b)
{
    const u32_vec lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
    const u32_vec hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
    _mm512_storeu_pd(p, _mm512_permutex2var_pd(a, lo, b));
    _mm512_storeu_pd(p + 8, _mm512_permutex2var_pd(a, hi, b));
}

static inline f64_vec f64_loadn(const double *p, size_t count)
{
    if (count == f64_lanes)
        return _mm512_loadu_pd(p);
    return _mm512_maskz_loadu_pd((f64_mask)fd_low_bits(count), p);
}

static inline void f64_storen(double *p, f64_vec v, size_t count)
{
    if (count == f64_lanes)
        _mm512_storeu_pd(p, v);
    else
        _mm512_mask_storeu_pd(p, (f64_mask)fd_low_bits(count), v);
}

/* -- float16 in memory: narrowed rounding to nearest even like fd_f32_to_f16 ------------- */
#define FD_F16_ROUND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

static inline f32_vec f16_loadn(const uint16_t *p, size_t count)
{
    if (count == f32_lanes)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((f32_mask)fd_low_bits(count), p));
}

static inline void f16_storen(uint16_t *p, f32_vec v, size_t count)
{
    __m256i h = _mm512_cvtps_ph(v, FD_F16_ROUND);
    if (count == f32_lanes)
        _mm256_storeu_si256((__m256i *)p, h);
    else
        _mm256_mask_storeu_epi16(p, (f32_mask)fd_low_bits(count), h);
}

#define FD_LEVEL_TABLE fd_kernels_avx512
#include "kernels_body.h"

#if defined(FD_EMULATED_SIMD) || defined(FD_MSVC)
#elif defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else

const fd_kernels *fd_kernels_avx512(void) { return NULL; }

#endif

/* AVX2 level (+ F16C): 8 Philox blocks per ymm register, the width wrappers of
 * kernels_body.h.  Compiled inside a target region; dispatch.c calls it only on CPUs that
 * have AVX2 and F16C.
 *
 * Audit for AVX2 CPUs (Intel Haswell..Sapphire Rapids, AMD Zen 1..4), hot loops:
 * - no PDEP/PEXT (microcoded on Zen 1, Zen+, Zen 2: 18 to ~300 cycles): the compare masks
 *   reach element order through packs + pshufb, one pmovmskb per 32 keep bits;
 * - no gathers (slow on every AMD and on Intel before Skylake), no vpmaskmov stores (slow
 *   on AMD): a tile's short end goes through a stack buffer;
 * - no cross-lane shuffles in the Philox rounds, no 256-bit vpermd/vpermps except one per
 *   8 float64 Gaussian pairs; vdivps/vdivpd and vsqrtps/vsqrtpd only in the Gaussian noise,
 *   where they are the definition;
 * - vcvtps2ph/vcvtph2ps (F16C) are 1-2 uops on all of these.
 * Words are compared unsigned by flipping their sign bits (AVX2 has no unsigned compare). */
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
#pragma clang attribute push(__attribute__((target("avx2,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,f16c")
#endif

#include <immintrin.h>

typedef __m256i u32_vec;
typedef __m128i u32h_vec;
typedef __m256 f32_vec;
typedef __m256 f32_mask; /* selects, blends and zero_unless read the sign bit of a lane */
typedef __m256d f64_vec;
typedef __m256d f64_mask;
enum { u32_lanes = 8, f32_lanes = 8, f64_lanes = 4, philox_ways = 2 };

/* -- 32-bit words ------------------------------------------------------------------------ */
static inline u32_vec u32_set1(uint32_t a) { return _mm256_set1_epi32((int)a); }
static inline u32_vec u32_iota(void) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
static inline u32_vec u32_add(u32_vec a, u32_vec b) { return _mm256_add_epi32(a, b); }
static inline u32_vec u32_sub(u32_vec a, u32_vec b) { return _mm256_sub_epi32(a, b); }
static inline u32_vec u32_and(u32_vec a, u32_vec b) { return _mm256_and_si256(a, b); }
static inline u32_vec u32_or(u32_vec a, u32_vec b) { return _mm256_or_si256(a, b); }
static inline u32_vec u32_andnot(u32_vec a, u32_vec b) { return _mm256_andnot_si256(a, b); }
static inline u32_vec u32_shl(u32_vec a, int n) { return _mm256_slli_epi32(a, n); }
static inline u32_vec u32_shr(u32_vec a, int n) { return _mm256_srli_epi32(a, n); }
static inline u32_vec u32_xor3(u32_vec a, u32_vec b, u32_vec c)
{
    return _mm256_xor_si256(_mm256_xor_si256(a, b), c);
}

static inline u32_vec u32_lt(u32_vec a, u32_vec b)
{
    const u32_vec sign = _mm256_set1_epi32((int)0x80000000u);
    return _mm256_cmpgt_epi32(_mm256_xor_si256(b, sign), _mm256_xor_si256(a, sign));
}

/* vpmuludq multiplies the even words; the odd ones are shifted down into place first. */
static inline void u32_mulhilo(u32_vec a, u32_vec m, u32_vec *hi, u32_vec *lo)
{
    u32_vec even = _mm256_mul_epu32(a, m);
    u32_vec odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *lo = _mm256_blend_epi32(even, _mm256_shuffle_epi32(odd, 0xB1), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_shuffle_epi32(even, 0xB1), odd, 0xAA);
}

/* 4 x 8 transpose: u_k holds blocks k and k + 4, one per 128-bit half. */
static inline void store_words(const u32_vec c[4], void *p)
{
    u32_vec t0 = _mm256_unpacklo_epi32(c[0], c[1]), t1 = _mm256_unpackhi_epi32(c[0], c[1]);
    u32_vec t2 = _mm256_unpacklo_epi32(c[2], c[3]), t3 = _mm256_unpackhi_epi32(c[2], c[3]);
    u32_vec u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    u32_vec u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    u32_vec *w = (u32_vec *)p;
    _mm256_storeu_si256(w + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256(w + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
    _mm256_storeu_si256(w + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
    _mm256_storeu_si256(w + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
}

static inline u32h_vec u32h_set1(uint32_t a) { return _mm_set1_epi32((int)a); }
static inline u32h_vec u32h_add(u32h_vec a, u32h_vec b) { return _mm_add_epi32(a, b); }
static inline u32h_vec u32h_sub(u32h_vec a, u32h_vec b) { return _mm_sub_epi32(a, b); }
static inline u32h_vec u32h_and(u32h_vec a, u32h_vec b) { return _mm_and_si128(a, b); }
static inline u32h_vec u32h_shl(u32h_vec a, int n) { return _mm_slli_epi32(a, n); }
static inline u32h_vec u32h_shr(u32h_vec a, int n) { return _mm_srli_epi32(a, n); }

/* -- float32 ----------------------------------------------------------------------------- */
static inline f32_vec f32_set1(float a) { return _mm256_set1_ps(a); }
static inline f32_vec f32_add(f32_vec a, f32_vec b) { return _mm256_add_ps(a, b); }
static inline f32_vec f32_sub(f32_vec a, f32_vec b) { return _mm256_sub_ps(a, b); }
static inline f32_vec f32_mul(f32_vec a, f32_vec b) { return _mm256_mul_ps(a, b); }
static inline f32_vec f32_div(f32_vec a, f32_vec b) { return _mm256_div_ps(a, b); }
static inline f32_vec f32_sqrt(f32_vec a) { return _mm256_sqrt_ps(a); }
static inline f32_vec f32_neg(f32_vec a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
static inline f32_mask f32_gt(f32_vec a, f32_vec b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline f32_vec f32_select(f32_mask m, f32_vec a, f32_vec b) { return _mm256_blendv_ps(b, a, m); }
static inline f32_vec f32_zero_unless(f32_mask m, f32_vec a)
{
    return _mm256_blendv_ps(_mm256_setzero_ps(), a, m);
}
static inline u32_vec f32_as_u32(f32_vec a) { return _mm256_castps_si256(a); }

/* Lanes whose sign bit is bit i + lane of `keep` (selects and blends read only the sign):
 * one variable shift per 8 lanes, the 32-bit half of `keep` broadcast once for 4 vectors. */
static inline f32_mask f32_keep_lanes(uint64_t keep, size_t i)
{
    const int s = (int)(i & 31);
    u32_vec half = _mm256_set1_epi32((int)(uint32_t)(keep >> (i & 32)));
    u32_vec shift = _mm256_setr_epi32(31 - s, 30 - s, 29 - s, 28 - s, 27 - s, 26 - s, 25 - s, 24 - s);
    return _mm256_castsi256_ps(_mm256_sllv_epi32(half, shift));
}

/* Both 16-bit halves convert exactly; their sum is the one rounding. */
static inline f32_vec f32_from_u32(u32_vec w)
{
    f32_vec hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(w, 16));
    f32_vec lo = _mm256_cvtepi32_ps(_mm256_and_si256(w, _mm256_set1_epi32(0xFFFF)));
    return _mm256_add_ps(_mm256_mul_ps(hi, _mm256_set1_ps(65536.0f)), lo);
}

static inline f32_vec f32_from_i32(u32_vec w) { return _mm256_cvtepi32_ps(w); }

static inline void f32_split_exp(f32_vec m, f32_vec *e, f32_vec *f)
{
    u32_vec mb = _mm256_castps_si256(m);
    *e = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(mb, 23)), _mm256_set1_ps(127.0f));
    *f = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(mb, _mm256_set1_epi32(0x007FFFFF)),
                                             _mm256_set1_epi32(0x3F800000)));
}

static inline f32_vec f32_loadn(const float *p, size_t count)
{
    if (count == f32_lanes)
        return _mm256_loadu_ps(p);
    float buf[f32_lanes] = {0};
    memcpy(buf, p, count * sizeof(float));
    return _mm256_loadu_ps(buf);
}

static inline void f32_storen(float *p, f32_vec v, size_t count)
{
    if (count == f32_lanes) {
        _mm256_storeu_ps(p, v);
        return;
    }
    float buf[f32_lanes];
    _mm256_storeu_ps(buf, v);
    memcpy(p, buf, count * sizeof(float));
}

/* -- float64 ----------------------------------------------------------------------------- */
static inline f64_vec f64_set1(double a) { return _mm256_set1_pd(a); }
static inline f64_vec f64_add(f64_vec a, f64_vec b) { return _mm256_add_pd(a, b); }
static inline f64_vec f64_sub(f64_vec a, f64_vec b) { return _mm256_sub_pd(a, b); }
static inline f64_vec f64_mul(f64_vec a, f64_vec b) { return _mm256_mul_pd(a, b); }
static inline f64_vec f64_div(f64_vec a, f64_vec b) { return _mm256_div_pd(a, b); }
static inline f64_vec f64_sqrt(f64_vec a) { return _mm256_sqrt_pd(a); }
static inline f64_vec f64_neg(f64_vec a) { return _mm256_xor_pd(a, _mm256_set1_pd(-0.0)); }
static inline f64_mask f64_gt(f64_vec a, f64_vec b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
static inline f64_vec f64_select(f64_mask m, f64_vec a, f64_vec b) { return _mm256_blendv_pd(b, a, m); }
static inline f64_vec f64_zero_unless(f64_mask m, f64_vec a)
{
    return _mm256_blendv_pd(_mm256_setzero_pd(), a, m);
}

static inline f64_mask f64_keep_lanes(uint64_t keep, size_t i)
{
    const long long s = (long long)i;
    u32_vec shift = _mm256_setr_epi64x(63 - s, 62 - s, 61 - s, 60 - s);
    return _mm256_castsi256_pd(_mm256_sllv_epi64(_mm256_set1_epi64x((long long)keep), shift));
}

static inline f64_vec f64_from_u32(u32h_vec w)
{
    u32h_vec flipped = _mm_xor_si128(w, _mm_set1_epi32((int)0x80000000u));
    return _mm256_add_pd(_mm256_cvtepi32_pd(flipped), _mm256_set1_pd(2147483648.0));
}

static inline f64_vec f64_from_i32(u32h_vec w) { return _mm256_cvtepi32_pd(w); }

/* The exponent field becomes a double through the 2^52 trick. */
static inline void f64_split_exp(f64_vec m, f64_vec *e, f64_vec *f)
{
    const f64_vec two52 = _mm256_set1_pd(4503599627370496.0);
    u32_vec mb = _mm256_castpd_si256(m);
    u32_vec biased = _mm256_or_si256(_mm256_srli_epi64(mb, 52), _mm256_castpd_si256(two52));
    *e = _mm256_sub_pd(_mm256_sub_pd(_mm256_castsi256_pd(biased), two52), _mm256_set1_pd(1023.0));
    *f = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(mb, _mm256_set1_epi64x(0x000FFFFFFFFFFFFFll)),
                                             _mm256_set1_epi64x(0x3FF0000000000000ll)));
}

static inline void f64_load_pairs(const uint32_t *w, u32h_vec *even, u32h_vec *odd)
{
    u32_vec words = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const u32_vec *)w),
                                                _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    *even = _mm256_castsi256_si128(words);
    *odd = _mm256_extracti128_si256(words, 1);
}

static inline void f64_store_pairs(double *p, f64_vec a, f64_vec b)
{
    f64_vec lo = _mm256_unpacklo_pd(a, b), hi = _mm256_unpackhi_pd(a, b);
    _mm256_storeu_pd(p, _mm256_permute2f128_pd(lo, hi, 0x20));
    _mm256_storeu_pd(p + 4, _mm256_permute2f128_pd(lo, hi, 0x31));
}

static inline f64_vec f64_loadn(const double *p, size_t count)
{
    if (count == f64_lanes)
        return _mm256_loadu_pd(p);
    double buf[f64_lanes] = {0};
    memcpy(buf, p, count * sizeof(double));
    return _mm256_loadu_pd(buf);
}

static inline void f64_storen(double *p, f64_vec v, size_t count)
{
    if (count == f64_lanes) {
        _mm256_storeu_pd(p, v);
        return;
    }
    double buf[f64_lanes];
    _mm256_storeu_pd(buf, v);
    memcpy(p, buf, count * sizeof(double));
}

/* -- float16 in memory: F16C, narrowed rounding to nearest even like fd_f32_to_f16 ------- */
static inline f32_vec f16_loadn(const uint16_t *p, size_t count)
{
    if (count == f32_lanes)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    uint16_t buf[f32_lanes] = {0};
    memcpy(buf, p, count * sizeof(uint16_t));
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)buf));
}

static inline void f16_storen(uint16_t *p, f32_vec v, size_t count)
{
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    if (count == f32_lanes) {
        _mm_storeu_si128((__m128i *)p, h);
        return;
    }
    uint16_t buf[f32_lanes];
    _mm_storeu_si128((__m128i *)buf, h);
    memcpy(p, buf, count * sizeof(uint16_t));
}

#define FD_LEVEL_TABLE fd_kernels_avx2
#include "kernels_body.h"

#if defined(FD_EMULATED_SIMD) || defined(FD_MSVC)
#elif defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else

const fd_kernels *fd_kernels_avx2(void) { return NULL; }

#endif

/* A stand-in for <immintrin.h> that runs the AVX2 and AVX-512 kernels on any CPU: SIMDe's
 * portable implementations of the intrinsics, plus the few this SIMDe release lacks,
 * written lane by lane from Intel's definitions.  tools/check_emulated_simd builds the C
 * core against it, so the AVX-512 level is checked bit for bit on machines without
 * AVX-512 (the kernels' own target pragmas are switched off with FD_EMULATED_SIMD). */
#ifndef FASTDROP_EMULATED_IMMINTRIN_H
#define FASTDROP_EMULATED_IMMINTRIN_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/avx2.h>
#include <simde/x86/f16c.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef simde__mmask8 __mmask8;
typedef simde__mmask16 __mmask16;
typedef simde__mmask32 __mmask32;
typedef simde__mmask64 __mmask64;

#define _MM_PERM_CDAB 0xB1
#define _MM_MANT_NORM_1_2 0
#define _MM_MANT_SIGN_zero 1

#define FD_LANES(type, name, vec) type name[sizeof(vec) / sizeof(type)]; memcpy(name, &(vec), sizeof(vec))
#define FD_VEC(vectype, lanes) ({ vectype v_; memcpy(&v_, (lanes), sizeof v_); v_; })

static inline uint64_t _pdep_u64(uint64_t src, uint64_t mask)
{
    uint64_t r = 0;
    for (uint64_t bit = 1; mask; bit += bit) {
        if (src & bit)
            r |= mask & -mask;
        mask &= mask - 1;
    }
    return r;
}
static inline uint32_t _pdep_u32(uint32_t src, uint32_t mask) { return (uint32_t)_pdep_u64(src, mask); }
static inline uint64_t _pext_u64(uint64_t src, uint64_t mask)
{
    uint64_t r = 0;
    for (uint64_t bit = 1; mask; bit += bit) {
        if (src & mask & -mask)
            r |= bit;
        mask &= mask - 1;
    }
    return r;
}

static inline __mmask16 _mm512_cmplt_epu32_mask(__m512i a, __m512i b)
{
    FD_LANES(uint32_t, x, a);
    FD_LANES(uint32_t, y, b);
    __mmask16 k = 0;
    for (int i = 0; i < 16; i++)
        k |= (__mmask16)((x[i] < y[i]) << i);
    return k;
}

static inline __m512i _mm512_mask_shuffle_epi32(__m512i src, __mmask16 k, __m512i a, int imm)
{
    FD_LANES(uint32_t, s, src);
    FD_LANES(uint32_t, x, a);
    uint32_t r[16];
    for (int i = 0; i < 16; i++)
        r[i] = (k >> i) & 1 ? x[(i & ~3) + ((imm >> (2 * (i & 3))) & 3)] : s[i];
    return FD_VEC(__m512i, r);
}

#define FD_MASKED_MEMORY(T, N, VEC, LOADNAME, STORENAME, KT)                                   \
    static inline VEC LOADNAME(KT k, const void *p)                                             \
    {                                                                                           \
        T r[N];                                                                                 \
        for (int i = 0; i < N; i++)                                                             \
            if ((k >> i) & 1)                                                                   \
                memcpy(&r[i], (const char *)p + i * sizeof(T), sizeof(T));                      \
            else                                                                                \
                memset(&r[i], 0, sizeof(T));                                                    \
        return FD_VEC(VEC, r);                                                                  \
    }                                                                                           \
    static inline void STORENAME(void *p, KT k, VEC a)                                          \
    {                                                                                           \
        FD_LANES(T, x, a);                                                                      \
        for (int i = 0; i < N; i++)                                                             \
            if ((k >> i) & 1)                                                                   \
                memcpy((char *)p + i * sizeof(T), &x[i], sizeof(T));                            \
    }
FD_MASKED_MEMORY(float, 16, __m512, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps, __mmask16)
FD_MASKED_MEMORY(double, 8, __m512d, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd, __mmask8)
FD_MASKED_MEMORY(uint16_t, 16, __m256i, _mm256_maskz_loadu_epi16, _mm256_mask_storeu_epi16, __mmask16)
FD_MASKED_MEMORY(uint32_t, 16, __m512i, _mm512_maskz_loadu_epi32, _mm512_mask_storeu_epi32, __mmask16)

#define FD_CONVERT(NAME, TIN, NIN, VIN, TOUT, NOUT, VOUT, EXPR)                               \
    static inline VOUT NAME(VIN a)                                                              \
    {                                                                                           \
        FD_LANES(TIN, x, a);                                                                    \
        TOUT r[NOUT];                                                                           \
        for (int i = 0; i < NOUT; i++)                                                          \
            r[i] = EXPR;                                                                        \
        return FD_VEC(VOUT, r);                                                                 \
    }
FD_CONVERT(_mm512_cvtepi32_pd, int32_t, 8, __m256i, double, 8, __m512d, (double)x[i])
FD_CONVERT(_mm512_cvtepu32_pd, uint32_t, 8, __m256i, double, 8, __m512d, (double)x[i])
FD_CONVERT(_mm512_cvtepi32_ps, int32_t, 16, __m512i, float, 16, __m512, (float)x[i])
FD_CONVERT(_mm512_cvtepu32_ps, uint32_t, 16, __m512i, float, 16, __m512, (float)x[i])
FD_CONVERT(_mm512_cvtepu32_epi64, uint32_t, 8, __m256i, uint64_t, 8, __m512i, (uint64_t)x[i])
/* getexp/getmant for the finite non-zero inputs the kernels give them */
FD_CONVERT(_mm512_getexp_pd, double, 8, __m512d, double, 8, __m512d, (double)ilogb(x[i]))
FD_CONVERT(_mm512_getexp_ps, float, 16, __m512, float, 16, __m512, (float)ilogbf(x[i]))
FD_CONVERT(fd_mant_pd, double, 8, __m512d, double, 8, __m512d, scalbn(fabs(x[i]), -ilogb(x[i])))
FD_CONVERT(fd_mant_ps, float, 16, __m512, float, 16, __m512, scalbnf(fabsf(x[i]), -ilogbf(x[i])))
#define _mm512_getmant_pd(a, norm, sign) fd_mant_pd(a)
#define _mm512_getmant_ps(a, norm, sign) fd_mant_ps(a)

/* IEEE binary16 <-> binary32, round to nearest even, NaNs kept quiet (F16C's behaviour). */
static inline float fd_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0x1F)
        bits = sign | 0x7F800000 | (mant << 13) | (mant ? 0x400000 : 0);
    else if (exp != 0)
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0)
        bits = sign;
    else {
        float f = (float)mant * 0x1p-24f;
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t fd_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7FFFFFFF;
    if (a > 0x7F800000) /* NaN: quiet, top payload bits */
        return (uint16_t)(sign | 0x7E00 | ((a >> 13) & 0x3FF));
    if (a >= 0x477FF000) /* rounds to or past 65520: inf */
        return (uint16_t)(sign | 0x7C00);
    if (a < 0x38800000) { /* below the smallest normal half: a multiple of 2^-24 */
        float m = fabsf(f) * 0x1p24f; /* exact scaling */
        return (uint16_t)(sign | (uint16_t)nearbyintf(m));
    }
    uint32_t rounded = a + 0xFFF + ((a >> 13) & 1);
    return (uint16_t)(sign | ((rounded - 0x38000000) >> 13));
}

static inline __m512 _mm512_cvtph_ps(__m256i a)
{
    FD_LANES(uint16_t, x, a);
    float r[16];
    for (int i = 0; i < 16; i++)
        r[i] = fd_half_to_float(x[i]);
    return FD_VEC(__m512, r);
}

static inline __m256i fd_cvtps_ph(__m512 a)
{
    FD_LANES(float, x, a);
    uint16_t r[16];
    for (int i = 0; i < 16; i++)
        r[i] = fd_float_to_half(x[i]);
    return FD_VEC(__m256i, r);
}
#define _mm512_cvtps_ph(a, rounding) fd_cvtps_ph(a)

/* SIMDe's F16C narrows every NaN to 0x7E00; F16C keeps the top of the payload. */
FD_CONVERT(fd_cvtph_ps_256, uint16_t, 8, __m128i, float, 8, __m256, fd_half_to_float(x[i]))
FD_CONVERT(fd_cvtps_ph_256, float, 8, __m256, uint16_t, 8, __m128i, fd_float_to_half(x[i]))
#undef _mm256_cvtph_ps
#undef _mm256_cvtps_ph
#define _mm256_cvtph_ps(a) fd_cvtph_ps_256(a)
#define _mm256_cvtps_ph(a, rounding) fd_cvtps_ph_256(a)

#endif

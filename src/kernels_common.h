/* What every SIMD level shares: the kernel table, mask-byte packing, the Box-Muller
 * constants and the scalar float16 conversions. */
#ifndef FASTDROP_KERNELS_COMMON_H
#define FASTDROP_KERNELS_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastdrop.h"
#include "philox.h"

/* MSVC proper, whose C has no target regions, inline assembly or __builtin_* (clang-cl
 * takes the GCC/Clang paths).  tools/cross_check defines it for clang in MSVC mode, to
 * check this path where no MSVC is at hand. */
#if !defined(FD_MSVC) && defined(_MSC_VER) && !defined(__clang__)
#define FD_MSVC 1
#endif
#if defined(FD_MSVC)
#include <intrin.h> /* _BitScanForward */
#endif

#define FD_TILE 64 /* elements per tile: one uint64_t of mask bits */

/* The kernels of one SIMD level, over a chunk of n elements whose element 0 has global
 * counter index j0.  `bits` points at the byte holding element 0's bit, which is bit 0
 * (chunks start on multiples of 8 elements), and ceil(n/8) bytes are written with padding
 * bits 0; a NULL `bits` in forward stores no mask.  x and y may be the same array.
 * bcast_* process elements e0 .. e0+n-1 of the array (x and y point at element e0).
 * gauss_* write y = x * eps, eps = 1 + sigma * z in the compute type (sigma already
 * rounded to it), z the Box-Muller normal of counter j0 + i.  The f16 kernels hold IEEE
 * binary16 as uint16_t and compute in float32 (DESIGN.md §7.5). */
typedef struct {
    void (*forward_f32)(const float *x, float *y, uint8_t *bits, size_t n, uint64_t j0,
                        const fd_stream *s, float scale);
    void (*forward_f64)(const double *x, double *y, uint8_t *bits, size_t n, uint64_t j0,
                        const fd_stream *s, double scale);
    void (*sample)(uint8_t *bits, size_t n, uint64_t j0, const fd_stream *s);
    void (*apply_f32)(const float *x, float *y, const uint8_t *bits, size_t n, float scale);
    void (*apply_f64)(const double *x, double *y, const uint8_t *bits, size_t n, double scale);
    void (*forward_op_f32)(const float *x, float *y, uint8_t *bits, size_t n, uint64_t j0,
                           const fd_stream *s, const fd_op_f32 *op);
    void (*forward_op_f64)(const double *x, double *y, uint8_t *bits, size_t n, uint64_t j0,
                           const fd_stream *s, const fd_op_f64 *op);
    void (*forward_op_f16)(const uint16_t *x, uint16_t *y, uint8_t *bits, size_t n, uint64_t j0,
                           const fd_stream *s, const fd_op_f16 *op);
    void (*bcast_f32)(const float *x, float *y, size_t n, size_t e0, const fd_bcast *b,
                      const fd_op_f32 *op);
    void (*bcast_f64)(const double *x, double *y, size_t n, size_t e0, const fd_bcast *b,
                      const fd_op_f64 *op);
    void (*bcast_f16)(const uint16_t *x, uint16_t *y, size_t n, size_t e0, const fd_bcast *b,
                      const fd_op_f16 *op);
    void (*gauss_f32)(const float *x, float *y, size_t n, uint64_t j0, const fd_stream *s,
                      double sigma);
    void (*gauss_f64)(const double *x, double *y, size_t n, uint64_t j0, const fd_stream *s,
                      double sigma);
    void (*gauss_f16)(const uint16_t *x, uint16_t *y, size_t n, uint64_t j0, const fd_stream *s,
                      double sigma);
} fd_kernels;

/* The table of each level; NULL where the level is not compiled in (other targets). */
const fd_kernels *fd_kernels_scalar(void);
const fd_kernels *fd_kernels_avx2(void);
const fd_kernels *fd_kernels_avx512(void);
const fd_kernels *fd_kernels_neon(void);

/* Mask bytes are little-endian on every machine (DESIGN.md, mask format): a 64-bit word of
 * keep bits is stored and loaded through this on big-endian targets (GCC and Clang define
 * __BYTE_ORDER__; every MSVC target is little-endian). */
static inline uint64_t fd_little_endian64(uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap64(v);
#else
    return v;
#endif
}

/* Index of the lowest set bit of v != 0. */
static inline unsigned fd_lowest_bit(uint32_t v)
{
#if defined(FD_MSVC)
    unsigned long index;
    _BitScanForward(&index, v);
    return (unsigned)index;
#elif defined(__GNUC__) || defined(__clang__)
    return (unsigned)__builtin_ctz(v);
#else
    unsigned b = 0;
    while (!((v >> b) & 1))
        b++;
    return b;
#endif
}

static inline uint64_t fd_low_bits(size_t m)
{
    return m >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << m) - 1);
}

/* Store the low m bits of v as ceil(m/8) little-endian bytes (padding bits 0). */
static inline void fd_store_bits(uint8_t *p, uint64_t v, size_t m)
{
    v &= fd_low_bits(m);
    size_t nbytes = (m + 7) / 8;
    for (size_t b = 0; b < nbytes; b++)
        p[b] = (uint8_t)(v >> (8 * b));
}

/* Read the bits of m elements from ceil(m/8) bytes; bits past m are cleared. */
static inline uint64_t fd_load_bits(const uint8_t *p, size_t m)
{
    uint64_t v = 0;
    size_t nbytes = (m + 7) / 8;
    for (size_t b = 0; b < nbytes; b++)
        v |= (uint64_t)p[b] << (8 * b);
    return v & fd_low_bits(m);
}

/* m <= 64 mask bits starting at bit `pos` of a mask of nbits elements (pos + m <= nbits);
 * the bits above m are 0.  Never reads past the mask's ceil(nbits / 8) bytes. */
static inline uint64_t fd_bits_at(const uint8_t *bits, uint64_t nbits, uint64_t pos, size_t m)
{
    if (m == 0)
        return 0;
    uint64_t byte = pos >> 3, nbytes = (nbits + 7) >> 3;
    unsigned sh = (unsigned)(pos & 7);
    uint64_t v = 0;
    size_t avail = nbytes - byte < 8 ? (size_t)(nbytes - byte) : 8;
    for (size_t b = 0; b < avail; b++)
        v |= (uint64_t)bits[byte + b] << (8 * b);
    v >>= sh;
    if (sh != 0 && byte + 8 < nbytes)
        v |= (uint64_t)bits[byte + 8] << (64 - sh);
    return v & fd_low_bits(m);
}

/* -- Gaussian dropout: Box-Muller on a pair of Philox words (DESIGN.md §7.2) ------------
 * box_muller_template.h evaluates these constants in the same operations and order on
 * every level (no FMA: the build uses -ffp-contract=off), and so does fastdrop.reference
 * in NumPy, so the normals agree bit for bit everywhere.  float32 and float16 outputs
 * take the float32 twin: the same steps in float32 with shorter polynomials. */
#define FD_SQRT2_f64 0x1.6a09e667f3bcdp+0        /* sqrt(2) rounded to double */
#define FD_LN2_HI_f64 0x1.62e42fee00000p-1       /* ln 2 = LN2_HI + LN2_LO (fdlibm split) */
#define FD_LN2_LO_f64 0x1.a39ef35793c76p-33
#define FD_TWO_PI_2M32_f64 0x1.921fb54442d18p-30 /* double(2 pi) * 2^-32 */
#define FD_SQRT2_f32 0x1.6a09e6p+0f
#define FD_LN2_HI_f32 0x1.62e4p-1f /* 17 bits: k * LN2_HI is exact for |k| <= 64 */
#define FD_LN2_LO_f32 0x1.7f7d1cp-20f
#define FD_TWO_PI_2M32_f32 0x1.921fb6p-30f

/* Horner coefficients, highest power first.
 * ln f = 2s + s^3 (L1 + s^2 (L2 + ...)), L_k = 2 / (2k + 1) */
static const double fd_ln_coef_f64[9] = {
    0x1.af286bca1af28p-4, 0x1.e1e1e1e1e1e1ep-4, 0x1.1111111111111p-3, 0x1.3b13b13b13b14p-3,
    0x1.745d1745d1746p-3, 0x1.c71c71c71c71cp-3, 0x1.2492492492492p-2, 0x1.999999999999ap-2,
    0x1.5555555555555p-1};
static const float fd_ln_coef_f32[4] = {0x1.c71c72p-3f, 0x1.24924ap-2f, 0x1.99999ap-2f,
                                        0x1.555556p-1f};
/* sin p = p + p^3 (S1 + p^2 (S2 + ...)), S_k = (-1)^k / (2k + 1)! */
static const double fd_sin_coef_f64[7] = {
    -0x1.ae7f3e733b81fp-41, 0x1.6124613a86d09p-33, -0x1.ae64567f544e4p-26, 0x1.71de3a556c734p-19,
    -0x1.a01a01a01a01ap-13, 0x1.1111111111111p-7, -0x1.5555555555555p-3};
static const float fd_sin_coef_f32[4] = {0x1.71de3ap-19f, -0x1.a01a02p-13f, 0x1.111112p-7f,
                                         -0x1.555556p-3f};
/* cos p = 1 + p^2 (C1 + p^2 (C2 + ...)), C_k = (-1)^k / (2k)! */
static const double fd_cos_coef_f64[8] = {
    0x1.ae7f3e733b81fp-45, -0x1.93974a8c07c9dp-37, 0x1.1eed8eff8d898p-29, -0x1.27e4fb7789f5cp-22,
    0x1.a01a01a01a01ap-16, -0x1.6c16c16c16c17p-10, 0x1.5555555555555p-5, -0x1.0000000000000p-1};
static const float fd_cos_coef_f32[5] = {-0x1.27e4fcp-22f, 0x1.a01a02p-16f, -0x1.6c16c2p-10f,
                                         0x1.555556p-5f, -0x1p-1f};

static inline double fd_from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static inline uint64_t fd_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    return b;
}

static inline float fd_from_bits_f(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static inline uint32_t fd_to_bits_f(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* -- float16 (DESIGN.md §7.5): IEEE binary16 held in uint16_t, computed in float32 ------- */

static inline float fd_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
    if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24, exact in float32 */
        float v = (float)mantissa * 0x1p-24f;
        return fd_from_bits_f(fd_to_bits_f(v) | sign);
    }
    if (exponent == 31)
        return fd_from_bits_f(sign | 0x7F800000u | (mantissa << 13));
    return fd_from_bits_f(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

/* float32 -> float16, round to nearest even (what F16C's vcvtps2ph does with imm 0). */
static inline uint16_t fd_f32_to_f16(float f)
{
    uint32_t x = fd_to_bits_f(f);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) /* inf, or NaN made quiet with the top of its payload */
        return (uint16_t)(sign | 0x7C00u | (ax > 0x7F800000u ? 0x200u | ((ax >> 13) & 0x3FFu) : 0));
    if (ax >= 0x477FF000u) /* >= 65520 = 65504 + half an ulp: rounds to inf */
        return (uint16_t)(sign | 0x7C00u);
    if (ax < 0x38800000u) { /* below 2^-14: a float16 subnormal (or zero) */
        uint32_t e = ax >> 23;
        if (e < 102) /* below 2^-25: rounds to zero */
            return (uint16_t)sign;
        uint32_t m = (ax & 0x7FFFFFu) | 0x800000u, shift = 126 - e; /* 14 .. 24 */
        uint32_t res = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (res & 1)))
            res++;
        return (uint16_t)(sign | res);
    }
    uint32_t res = (ax >> 13) - (112u << 10), rem = ax & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (res & 1)))
        res++;
    return (uint16_t)(sign | res);
}

#endif

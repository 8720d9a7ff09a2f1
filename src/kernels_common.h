/* Pieces every SIMD level shares: packing keep decisions into mask bytes, and the scalar
 * keep decisions that define what each level must compute. */
#ifndef FASTDROP_KERNELS_COMMON_H
#define FASTDROP_KERNELS_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastdrop.h"
#include "philox.h"

#define FD_TILE 64 /* elements per tile: one uint64_t of mask bits */

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

/* Keep decisions of elements j, j+1, ..., j+m-1 (m <= 64) as bits 0..m-1. */
static inline uint64_t fd_keep_bits_scalar(uint64_t j, size_t m, const fd_stream *s)
{
    const uint32_t key[2] = {s->k0, s->k1};
    uint64_t keep = 0;
    size_t t = 0;
    while (t < m) {
        uint64_t jj = j + t;
        uint64_t block = jj >> 2;
        const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), s->c2, s->c3};
        uint32_t w[4];
        fd_philox4x32_10(ctr, key, w);
        for (unsigned q = (unsigned)(jj & 3); q < 4 && t < m; q++, t++)
            keep |= (uint64_t)((uint64_t)w[q] < s->threshold) << t;
    }
    return keep;
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
 * Every level evaluates exactly these float64 operations in this order (no FMA: the
 * build uses -ffp-contract=off), and so does fastdrop.reference in NumPy, so the
 * normals agree bit for bit everywhere. */
#define FD_SQRT2 0x1.6a09e667f3bcdp+0        /* sqrt(2) rounded to double */
#define FD_LN2_HI 0x1.62e42fee00000p-1       /* ln 2 = LN2_HI + LN2_LO (fdlibm split) */
#define FD_LN2_LO 0x1.a39ef35793c76p-33
#define FD_TWO_PI_2M32 0x1.921fb54442d18p-30 /* double(2 pi) * 2^-32 */
/* ln f = 2s + s^3 (L1 + s^2 (L2 + ... + s^2 L9)), L_k = 2 / (2k + 1) */
#define FD_L1 0x1.5555555555555p-1
#define FD_L2 0x1.999999999999ap-2
#define FD_L3 0x1.2492492492492p-2
#define FD_L4 0x1.c71c71c71c71cp-3
#define FD_L5 0x1.745d1745d1746p-3
#define FD_L6 0x1.3b13b13b13b14p-3
#define FD_L7 0x1.1111111111111p-3
#define FD_L8 0x1.e1e1e1e1e1e1ep-4
#define FD_L9 0x1.af286bca1af28p-4
/* sin p = p + p^3 (S1 + p^2 (S2 + ... + p^2 S7)), S_k = (-1)^k / (2k + 1)! */
#define FD_S1 -0x1.5555555555555p-3
#define FD_S2 0x1.1111111111111p-7
#define FD_S3 -0x1.a01a01a01a01ap-13
#define FD_S4 0x1.71de3a556c734p-19
#define FD_S5 -0x1.ae64567f544e4p-26
#define FD_S6 0x1.6124613a86d09p-33
#define FD_S7 -0x1.ae7f3e733b81fp-41
/* cos p = 1 + p^2 (C1 + p^2 (C2 + ... + p^2 C8)), C_k = (-1)^k / (2k)! */
#define FD_C1 -0x1.0000000000000p-1
#define FD_C2 0x1.5555555555555p-5
#define FD_C3 -0x1.6c16c16c16c17p-10
#define FD_C4 0x1.a01a01a01a01ap-16
#define FD_C5 -0x1.27e4fb7789f5cp-22
#define FD_C6 0x1.1eed8eff8d898p-29
#define FD_C7 -0x1.93974a8c07c9dp-37
#define FD_C8 0x1.ae7f3e733b81fp-45

static inline double fd_ln_poly(double s2)
{
    double q = FD_L9;
    q = FD_L8 + s2 * q;
    q = FD_L7 + s2 * q;
    q = FD_L6 + s2 * q;
    q = FD_L5 + s2 * q;
    q = FD_L4 + s2 * q;
    q = FD_L3 + s2 * q;
    q = FD_L2 + s2 * q;
    return FD_L1 + s2 * q;
}

static inline double fd_sin_poly(double p2)
{
    double q = FD_S7;
    q = FD_S6 + p2 * q;
    q = FD_S5 + p2 * q;
    q = FD_S4 + p2 * q;
    q = FD_S3 + p2 * q;
    q = FD_S2 + p2 * q;
    return FD_S1 + p2 * q;
}

static inline double fd_cos_poly(double p2)
{
    double q = FD_C8;
    q = FD_C7 + p2 * q;
    q = FD_C6 + p2 * q;
    q = FD_C5 + p2 * q;
    q = FD_C4 + p2 * q;
    q = FD_C3 + p2 * q;
    q = FD_C2 + p2 * q;
    return FD_C1 + p2 * q;
}

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

/* The two standard normals of the word pair (w0, w1), DESIGN.md §7.2. */
static inline void fd_box_muller_scalar(uint32_t w0, uint32_t w1, double *z0, double *z1)
{
    /* radius: u = (w0 + 1) 2^-32 in (0, 1]; m = w0 + 1 = f 2^e, f in [1, 2) */
    double m = (double)w0 + 1.0;
    uint64_t mb = fd_to_bits(m);
    double e = (double)(int)((mb >> 52) & 0x7FF) - 1023.0;
    double f = fd_from_bits((mb & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
    if (f > FD_SQRT2) {
        f = f * 0.5;
        e = e + 1.0;
    }
    double k = e - 32.0;
    double s = (f - 1.0) / (f + 1.0);
    double s2 = s * s;
    double ln_f = 2.0 * s + (s * s2) * fd_ln_poly(s2);
    double ln_u = k * FD_LN2_HI + (k * FD_LN2_LO + ln_f);
    double r = sqrt(-2.0 * ln_u);
    /* angle 2 pi w1 2^-32 = quadrant * pi/2 + p, |p| <= pi/4 */
    uint32_t quadrant = (uint32_t)(w1 + 0x20000000u) >> 30;
    int32_t rest = (int32_t)(w1 - (quadrant << 30));
    double p = (double)rest * FD_TWO_PI_2M32;
    double p2 = p * p;
    double sin_p = p + (p * p2) * fd_sin_poly(p2);
    double cos_p = 1.0 + p2 * fd_cos_poly(p2);
    double c = (quadrant & 1) ? sin_p : cos_p;
    double sn = (quadrant & 1) ? cos_p : sin_p;
    if (((quadrant + 1) >> 1) & 1)
        c = -c;
    if ((quadrant >> 1) & 1)
        sn = -sn;
    *z0 = r * c;
    *z1 = r * sn;
}

/* The float32 twin for float32 and float16 outputs (DESIGN.md §7.2): the same steps in
 * float32 arithmetic, with shorter polynomials (float32 accuracy) and float32 constants. */
#define FD_SQRT2_F 0x1.6a09e6p+0f
#define FD_LN2_HI_F 0x1.62e4p-1f /* 17 bits: k * LN2_HI_F is exact for |k| <= 64 */
#define FD_LN2_LO_F 0x1.7f7d1cp-20f
#define FD_TWO_PI_2M32_F 0x1.921fb6p-30f
#define FD_L1F 0x1.555556p-1f
#define FD_L2F 0x1.99999ap-2f
#define FD_L3F 0x1.24924ap-2f
#define FD_L4F 0x1.c71c72p-3f
#define FD_S1F -0x1.555556p-3f
#define FD_S2F 0x1.111112p-7f
#define FD_S3F -0x1.a01a02p-13f
#define FD_S4F 0x1.71de3ap-19f
#define FD_C1F -0x1p-1f
#define FD_C2F 0x1.555556p-5f
#define FD_C3F -0x1.6c16c2p-10f
#define FD_C4F 0x1.a01a02p-16f
#define FD_C5F -0x1.27e4fcp-22f

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

static inline void fd_box_muller_f32_scalar(uint32_t w0, uint32_t w1, float *z0, float *z1)
{
    float m = (float)w0 + 1.0f; /* float32(w0) rounded to nearest, then + 1 rounded */
    uint32_t mb = fd_to_bits_f(m);
    float e = (float)(int)((mb >> 23) & 0xFF) - 127.0f;
    float f = fd_from_bits_f((mb & 0x007FFFFFu) | 0x3F800000u);
    if (f > FD_SQRT2_F) {
        f = f * 0.5f;
        e = e + 1.0f;
    }
    float k = e - 32.0f;
    float s = (f - 1.0f) / (f + 1.0f);
    float s2 = s * s;
    float q = FD_L4F;
    q = FD_L3F + s2 * q;
    q = FD_L2F + s2 * q;
    q = FD_L1F + s2 * q;
    float ln_f = 2.0f * s + (s * s2) * q;
    float ln_u = k * FD_LN2_HI_F + (k * FD_LN2_LO_F + ln_f);
    float r = sqrtf(-2.0f * ln_u);
    uint32_t quadrant = (uint32_t)(w1 + 0x20000000u) >> 30;
    int32_t rest = (int32_t)(w1 - (quadrant << 30));
    float p = (float)rest * FD_TWO_PI_2M32_F; /* float32(rest) rounded to nearest */
    float p2 = p * p;
    float sq = FD_S4F;
    sq = FD_S3F + p2 * sq;
    sq = FD_S2F + p2 * sq;
    sq = FD_S1F + p2 * sq;
    float sin_p = p + (p * p2) * sq;
    float cq = FD_C5F;
    cq = FD_C4F + p2 * cq;
    cq = FD_C3F + p2 * cq;
    cq = FD_C2F + p2 * cq;
    cq = FD_C1F + p2 * cq;
    float cos_p = 1.0f + p2 * cq;
    float c = (quadrant & 1) ? sin_p : cos_p;
    float sn = (quadrant & 1) ? cos_p : sin_p;
    if (((quadrant + 1) >> 1) & 1)
        c = -c;
    if ((quadrant >> 1) & 1)
        sn = -sn;
    *z0 = r * c;
    *z1 = r * sn;
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

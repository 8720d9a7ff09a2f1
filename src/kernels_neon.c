/* NEON level (AArch64 Advanced SIMD): 4 Philox blocks per 128-bit register, the width
 * wrappers of kernels_body.h.  Advanced SIMD is part of the AArch64 base architecture, so
 * the file needs no target region and dispatch.c no run-time check; on every other target
 * (and on big-endian AArch64, whose lane numbering the wrappers do not handle) the table
 * is NULL.
 *
 * Audit for AArch64 cores (Arm Neoverse N1/V1/N2/V2, Cortex-A7x, Apple M-series), hot loops:
 * - only ARMv8.0 Advanced SIMD: no SHA3 EOR3, no SVE, no FP16 arithmetic, so every
 *   AArch64 CPU runs it (the three-way xor is two EORs);
 * - Philox multiplies with UMULL/UMULL2 (32x32->64, 2 lanes each) and takes the high and
 *   low words back apart with UZP2/UZP1; 4 ways of 4 blocks are in flight, enough to cover
 *   the multiply-shuffle-xor chain of a round (about 8 cycles) on cores with 2 to 4
 *   vector pipes;
 * - keep bits without a movemask: three shift-right-inserts stack the four compare masks
 *   into the top nibble of each lane, USHL spreads the nibbles, one ADDV adds them;
 * - lanes from keep bits by a table load (16 nibble masks, 256 bytes), not a GPR-to-vector
 *   DUP and a compare per vector: the table is L1-resident and the load pipes are idle;
 * - no FMLA/FMADD: every float operation is a separate FMUL/FADD/FSUB (the build uses
 *   -ffp-contract=off), so products are rounded exactly as the reference rounds them;
 * - FCVTL/FCVTN convert float16 (base ARMv8.0), rounding to nearest even with the default
 *   FPCR and quieting NaNs with the top of their payload, as fd_f32_to_f16 does;
 * - FDIV and FSQRT only in the Gaussian noise, where they are the definition;
 * - a tile's short end goes through a stack buffer (no masked loads or stores in NEON). */
#include "kernels_common.h"

#if defined(__aarch64__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

#include <arm_neon.h>

typedef uint32x4_t u32_vec;
typedef uint32x2_t u32h_vec;
typedef float32x4_t f32_vec;
typedef uint32x4_t f32_mask;
typedef float64x2_t f64_vec;
typedef uint64x2_t f64_mask;
enum { u32_lanes = 4, f32_lanes = 4, f64_lanes = 2, philox_ways = 4 };

/* -- 32-bit words ------------------------------------------------------------------------ */
static inline u32_vec u32_set1(uint32_t a) { return vdupq_n_u32(a); }
static inline u32_vec u32_iota(void) { return (u32_vec){0, 1, 2, 3}; }
static inline u32_vec u32_add(u32_vec a, u32_vec b) { return vaddq_u32(a, b); }
static inline u32_vec u32_sub(u32_vec a, u32_vec b) { return vsubq_u32(a, b); }
static inline u32_vec u32_and(u32_vec a, u32_vec b) { return vandq_u32(a, b); }
static inline u32_vec u32_or(u32_vec a, u32_vec b) { return vorrq_u32(a, b); }
static inline u32_vec u32_andnot(u32_vec a, u32_vec b) { return vbicq_u32(b, a); }
/* shift counts are immediates in NEON: macros keep them constant expressions at any -O */
#define u32_shl(a, n) vshlq_n_u32((a), (n))
#define u32_shr(a, n) vshrq_n_u32((a), (n))
/* a is the product word of the round's chain; b ^ c does not wait for it */
static inline u32_vec u32_xor3(u32_vec a, u32_vec b, u32_vec c) { return veorq_u32(a, veorq_u32(b, c)); }
static inline u32_vec u32_lt(u32_vec a, u32_vec b) { return vcltq_u32(a, b); }

/* UMULL multiplies lanes 0-1, UMULL2 lanes 2-3; each 64-bit product is (low, high) words.
 * The by-element forms read the multiplier from one lane, so each multiplier needs one
 * register, not a Q and a D copy (4 ways of state leave few of the 32 free). */
static inline void u32_mulhilo(u32_vec a, u32_vec m, u32_vec *hi, u32_vec *lo)
{
    u32_vec p01 = vreinterpretq_u32_u64(vmull_laneq_u32(vget_low_u32(a), m, 0));
    u32_vec p23 = vreinterpretq_u32_u64(vmull_high_laneq_u32(a, m, 0));
    *lo = vuzp1q_u32(p01, p23);
    *hi = vuzp2q_u32(p01, p23);
}

/* ST4 interleaves the four registers: word 4b + k of p = c[k] of lane b. */
static inline void store_words(const u32_vec c[4], void *p)
{
    const uint32x4x4_t words = {{c[0], c[1], c[2], c[3]}};
    vst4q_u32((uint32_t *)p, words);
}

static inline u32h_vec u32h_set1(uint32_t a) { return vdup_n_u32(a); }
static inline u32h_vec u32h_add(u32h_vec a, u32h_vec b) { return vadd_u32(a, b); }
static inline u32h_vec u32h_sub(u32h_vec a, u32h_vec b) { return vsub_u32(a, b); }
static inline u32h_vec u32h_and(u32h_vec a, u32h_vec b) { return vand_u32(a, b); }
#define u32h_shl(a, n) vshl_n_u32((a), (n))
#define u32h_shr(a, n) vshr_n_u32((a), (n))

/* -- lanes from keep bits ----------------------------------------------------------------- */
#define FD_LANE(v, b) (((v) >> (b) & 1) ? 0xFFFFFFFFu : 0u)
#define FD_NIBBLE(v) {FD_LANE(v, 0), FD_LANE(v, 1), FD_LANE(v, 2), FD_LANE(v, 3)}
static const uint32_t nibble_lanes[16][4] = {
    FD_NIBBLE(0), FD_NIBBLE(1), FD_NIBBLE(2),  FD_NIBBLE(3),  FD_NIBBLE(4),  FD_NIBBLE(5),
    FD_NIBBLE(6), FD_NIBBLE(7), FD_NIBBLE(8),  FD_NIBBLE(9),  FD_NIBBLE(10), FD_NIBBLE(11),
    FD_NIBBLE(12), FD_NIBBLE(13), FD_NIBBLE(14), FD_NIBBLE(15)};
#undef FD_NIBBLE
#undef FD_LANE

/* -- float32 ----------------------------------------------------------------------------- */
static inline f32_vec f32_set1(float a) { return vdupq_n_f32(a); }
static inline f32_vec f32_add(f32_vec a, f32_vec b) { return vaddq_f32(a, b); }
static inline f32_vec f32_sub(f32_vec a, f32_vec b) { return vsubq_f32(a, b); }
static inline f32_vec f32_mul(f32_vec a, f32_vec b) { return vmulq_f32(a, b); }
static inline f32_vec f32_div(f32_vec a, f32_vec b) { return vdivq_f32(a, b); }
static inline f32_vec f32_sqrt(f32_vec a) { return vsqrtq_f32(a); }
static inline f32_vec f32_neg(f32_vec a) { return vnegq_f32(a); }
static inline f32_mask f32_gt(f32_vec a, f32_vec b) { return vcgtq_f32(a, b); }
static inline f32_vec f32_select(f32_mask m, f32_vec a, f32_vec b) { return vbslq_f32(m, a, b); }
static inline f32_vec f32_zero_unless(f32_mask m, f32_vec a)
{
    return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(a)));
}
static inline u32_vec f32_as_u32(f32_vec a) { return vreinterpretq_u32_f32(a); }
static inline f32_mask f32_keep_lanes(uint64_t keep, size_t i) { return vld1q_u32(nibble_lanes[(keep >> i) & 15]); }
static inline f32_vec f32_from_u32(u32_vec w) { return vcvtq_f32_u32(w); }
static inline f32_vec f32_from_i32(u32_vec w) { return vcvtq_f32_s32(vreinterpretq_s32_u32(w)); }

static inline void f32_split_exp(f32_vec m, f32_vec *e, f32_vec *f)
{
    u32_vec mb = vreinterpretq_u32_f32(m);
    *e = vsubq_f32(vcvtq_f32_u32(vshrq_n_u32(mb, 23)), vdupq_n_f32(127.0f));
    *f = vreinterpretq_f32_u32(vorrq_u32(vandq_u32(mb, vdupq_n_u32(0x007FFFFFu)), vdupq_n_u32(0x3F800000u)));
}

static inline f32_vec f32_loadn(const float *p, size_t count)
{
    if (count == f32_lanes)
        return vld1q_f32(p);
    float buf[f32_lanes] = {0};
    memcpy(buf, p, count * sizeof(float));
    return vld1q_f32(buf);
}

static inline void f32_storen(float *p, f32_vec v, size_t count)
{
    if (count == f32_lanes) {
        vst1q_f32(p, v);
        return;
    }
    float buf[f32_lanes];
    vst1q_f32(buf, v);
    memcpy(p, buf, count * sizeof(float));
}

/* -- float64 ----------------------------------------------------------------------------- */
static inline f64_vec f64_set1(double a) { return vdupq_n_f64(a); }
static inline f64_vec f64_add(f64_vec a, f64_vec b) { return vaddq_f64(a, b); }
static inline f64_vec f64_sub(f64_vec a, f64_vec b) { return vsubq_f64(a, b); }
static inline f64_vec f64_mul(f64_vec a, f64_vec b) { return vmulq_f64(a, b); }
static inline f64_vec f64_div(f64_vec a, f64_vec b) { return vdivq_f64(a, b); }
static inline f64_vec f64_sqrt(f64_vec a) { return vsqrtq_f64(a); }
static inline f64_vec f64_neg(f64_vec a) { return vnegq_f64(a); }
static inline f64_mask f64_gt(f64_vec a, f64_vec b) { return vcgtq_f64(a, b); }
static inline f64_vec f64_select(f64_mask m, f64_vec a, f64_vec b) { return vbslq_f64(m, a, b); }
static inline f64_vec f64_zero_unless(f64_mask m, f64_vec a)
{
    return vreinterpretq_f64_u64(vandq_u64(m, vreinterpretq_u64_f64(a)));
}

/* The low two lanes of a nibble mask, widened: the lanes of bit pairs. */
static inline f64_mask f64_keep_lanes(uint64_t keep, size_t i)
{
    return vreinterpretq_u64_s64(vmovl_s32(vreinterpret_s32_u32(vld1_u32(nibble_lanes[(keep >> i) & 3]))));
}

/* Words to 64 bits, then exactly to double (every 32-bit integer is a double). */
static inline f64_vec f64_from_u32(u32h_vec w) { return vcvtq_f64_u64(vmovl_u32(w)); }
static inline f64_vec f64_from_i32(u32h_vec w) { return vcvtq_f64_s64(vmovl_s32(vreinterpret_s32_u32(w))); }

static inline void f64_split_exp(f64_vec m, f64_vec *e, f64_vec *f)
{
    uint64x2_t mb = vreinterpretq_u64_f64(m);
    *e = vsubq_f64(vcvtq_f64_u64(vshrq_n_u64(mb, 52)), vdupq_n_f64(1023.0));
    *f = vreinterpretq_f64_u64(vorrq_u64(vandq_u64(mb, vdupq_n_u64(0x000FFFFFFFFFFFFFull)),
                                         vdupq_n_u64(0x3FF0000000000000ull)));
}

/* LD2 / ST2 split words 0..3 into (0, 2), (1, 3) and interleave two vectors back. */
static inline void f64_load_pairs(const uint32_t *w, u32h_vec *even, u32h_vec *odd)
{
    uint32x2x2_t pairs = vld2_u32(w);
    *even = pairs.val[0];
    *odd = pairs.val[1];
}

static inline void f64_store_pairs(double *p, f64_vec a, f64_vec b)
{
    const float64x2x2_t pairs = {{a, b}};
    vst2q_f64(p, pairs);
}

static inline f64_vec f64_loadn(const double *p, size_t count)
{
    if (count == f64_lanes)
        return vld1q_f64(p);
    double buf[f64_lanes] = {0};
    memcpy(buf, p, count * sizeof(double));
    return vld1q_f64(buf);
}

static inline void f64_storen(double *p, f64_vec v, size_t count)
{
    if (count == f64_lanes) {
        vst1q_f64(p, v);
        return;
    }
    double buf[f64_lanes];
    vst1q_f64(buf, v);
    memcpy(p, buf, count * sizeof(double));
}

/* -- float16 in memory: FCVTL widens exactly, FCVTN narrows to nearest even -------------- */
static inline f32_vec f16_loadn(const uint16_t *p, size_t count)
{
    if (count == f32_lanes)
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
    uint16_t buf[f32_lanes] = {0};
    memcpy(buf, p, count * sizeof(uint16_t));
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(buf)));
}

static inline void f16_storen(uint16_t *p, f32_vec v, size_t count)
{
    uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(v));
    if (count == f32_lanes) {
        vst1_u16(p, h);
        return;
    }
    uint16_t buf[f32_lanes];
    vst1_u16(buf, h);
    memcpy(p, buf, count * sizeof(uint16_t));
}

#define FD_LEVEL_TABLE fd_kernels_neon
#include "kernels_body.h"

#else

const fd_kernels *fd_kernels_neon(void) { return NULL; }

#endif

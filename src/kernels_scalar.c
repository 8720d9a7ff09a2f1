/* Portable C level: one lane per "vector", so kernels_body.h here is the plain scalar
 * definition every SIMD level must match, and the fallback on any CPU.
 *
 * Audit (hot loops): only 32x32->64-bit multiplies, shifts, compares and float
 * arithmetic; no division, gather or bit-deposit/extract outside the Gaussian noise
 * (whose division and square root are the definition itself). */
#include "kernels_common.h"

typedef uint32_t u32_vec;
typedef uint32_t u32h_vec;
typedef float f32_vec;
typedef uint32_t f32_mask; /* all ones or 0: selects are bitwise, never branches */
typedef double f64_vec;
typedef uint64_t f64_mask;
enum { u32_lanes = 1, f32_lanes = 1, f64_lanes = 1, philox_ways = 1 };

/* -- 32-bit words ------------------------------------------------------------------------ */
static inline u32_vec u32_set1(uint32_t a) { return a; }
static inline u32_vec u32_iota(void) { return 0; }
static inline u32_vec u32_add(u32_vec a, u32_vec b) { return a + b; }
static inline u32_vec u32_sub(u32_vec a, u32_vec b) { return a - b; }
static inline u32_vec u32_and(u32_vec a, u32_vec b) { return a & b; }
static inline u32_vec u32_or(u32_vec a, u32_vec b) { return a | b; }
static inline u32_vec u32_andnot(u32_vec a, u32_vec b) { return ~a & b; }
static inline u32_vec u32_shl(u32_vec a, int n) { return a << n; }
static inline u32_vec u32_shr(u32_vec a, int n) { return a >> n; }
static inline u32_vec u32_xor3(u32_vec a, u32_vec b, u32_vec c) { return a ^ b ^ c; }
static inline u32_vec u32_lt(u32_vec a, u32_vec b) { return a < b ? ~0u : 0u; }

static inline void u32_mulhilo(u32_vec a, u32_vec m, u32_vec *hi, u32_vec *lo)
{
    uint64_t p = (uint64_t)a * m;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

static inline void store_words(const u32_vec c[4], void *p) { memcpy(p, c, 4 * sizeof(u32_vec)); }

/* float64 lanes pair with words one to one, as the float32 ones do */
#define u32h_set1 u32_set1
#define u32h_add u32_add
#define u32h_sub u32_sub
#define u32h_and u32_and
#define u32h_shl u32_shl
#define u32h_shr u32_shr

/* -- float32 ----------------------------------------------------------------------------- */
static inline f32_vec f32_set1(float a) { return a; }
static inline f32_vec f32_add(f32_vec a, f32_vec b) { return a + b; }
static inline f32_vec f32_sub(f32_vec a, f32_vec b) { return a - b; }
static inline f32_vec f32_mul(f32_vec a, f32_vec b) { return a * b; }
static inline f32_vec f32_div(f32_vec a, f32_vec b) { return a / b; }
static inline f32_vec f32_sqrt(f32_vec a) { return sqrtf(a); }
static inline f32_vec f32_neg(f32_vec a) { return -a; }
static inline f32_mask f32_gt(f32_vec a, f32_vec b) { return 0u - (uint32_t)(a > b); }
static inline f32_vec f32_select(f32_mask m, f32_vec a, f32_vec b)
{
    return fd_from_bits_f((fd_to_bits_f(a) & m) | (fd_to_bits_f(b) & ~m));
}
static inline f32_vec f32_zero_unless(f32_mask m, f32_vec a) { return fd_from_bits_f(fd_to_bits_f(a) & m); }
static inline f32_mask f32_keep_lanes(uint64_t keep, size_t i) { return 0u - (uint32_t)((keep >> i) & 1); }
static inline f32_vec f32_from_u32(u32_vec w) { return (float)w; }
static inline f32_vec f32_from_i32(u32_vec w) { return (float)(int32_t)w; }
static inline u32_vec f32_as_u32(f32_vec a) { return fd_to_bits_f(a); }

static inline void f32_split_exp(f32_vec m, f32_vec *e, f32_vec *f)
{
    uint32_t mb = fd_to_bits_f(m);
    *e = (float)(int)((mb >> 23) & 0xFF) - 127.0f;
    *f = fd_from_bits_f((mb & 0x007FFFFFu) | 0x3F800000u);
}

static inline f32_vec f32_loadn(const float *p, size_t count) { (void)count; return *p; }
static inline void f32_storen(float *p, f32_vec v, size_t count) { (void)count; *p = v; }

/* -- float64 ----------------------------------------------------------------------------- */
static inline f64_vec f64_set1(double a) { return a; }
static inline f64_vec f64_add(f64_vec a, f64_vec b) { return a + b; }
static inline f64_vec f64_sub(f64_vec a, f64_vec b) { return a - b; }
static inline f64_vec f64_mul(f64_vec a, f64_vec b) { return a * b; }
static inline f64_vec f64_div(f64_vec a, f64_vec b) { return a / b; }
static inline f64_vec f64_sqrt(f64_vec a) { return sqrt(a); }
static inline f64_vec f64_neg(f64_vec a) { return -a; }
static inline f64_mask f64_gt(f64_vec a, f64_vec b) { return 0u - (uint64_t)(a > b); }
static inline f64_vec f64_select(f64_mask m, f64_vec a, f64_vec b)
{
    return fd_from_bits((fd_to_bits(a) & m) | (fd_to_bits(b) & ~m));
}
static inline f64_vec f64_zero_unless(f64_mask m, f64_vec a) { return fd_from_bits(fd_to_bits(a) & m); }
static inline f64_mask f64_keep_lanes(uint64_t keep, size_t i) { return 0u - ((keep >> i) & 1); }
static inline f64_vec f64_from_u32(u32h_vec w) { return (double)w; }
static inline f64_vec f64_from_i32(u32h_vec w) { return (double)(int32_t)w; }

static inline void f64_split_exp(f64_vec m, f64_vec *e, f64_vec *f)
{
    uint64_t mb = fd_to_bits(m);
    *e = (double)(int)((mb >> 52) & 0x7FF) - 1023.0;
    *f = fd_from_bits((mb & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
}

static inline void f64_load_pairs(const uint32_t *w, u32h_vec *even, u32h_vec *odd)
{
    *even = w[0];
    *odd = w[1];
}

static inline void f64_store_pairs(double *p, f64_vec a, f64_vec b)
{
    p[0] = a;
    p[1] = b;
}

static inline f64_vec f64_loadn(const double *p, size_t count) { (void)count; return *p; }
static inline void f64_storen(double *p, f64_vec v, size_t count) { (void)count; *p = v; }

/* -- float16 in memory ------------------------------------------------------------------- */
static inline f32_vec f16_loadn(const uint16_t *p, size_t count) { (void)count; return fd_f16_to_f32(*p); }
static inline void f16_storen(uint16_t *p, f32_vec v, size_t count) { (void)count; *p = fd_f32_to_f16(v); }

#define FD_LEVEL_TABLE fd_kernels_scalar
#include "kernels_body.h"

/* The scalar normals, for harnesses checking the Box-Muller step on its own. */
void fd_box_muller_pair(uint32_t w0, uint32_t w1, double z[2])
{
    box_muller_f64(w0, w1, &z[0], &z[1]);
}

void fd_box_muller_pair_f32(uint32_t w0, uint32_t w1, float z[2])
{
    box_muller_f32(w0, w1, &z[0], &z[1]);
}

/* Runtime dispatch, and the C entry points the Cython layer calls.  The CPU is checked
 * once; a level can be forced lower (FASTDROP_SIMD, tests).  Large arrays are split into
 * chunks for the thread pool (threads.h); each chunk reproduces its slice of the one
 * random stream exactly, so results do not depend on how the work was split. */
#include "fastdrop.h"
#include "kernels_common.h"
#include "philox.h"

#include "threads.h"

/* cpuid(leaf, subleaf) into eax, ebx, ecx, edx, and the XCR0 register, in each
 * compiler's spelling; what they mean is decided once, in detect(). */
#if defined(FD_MSVC) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#include <immintrin.h>
#define FD_X86 1
static void cpuid(unsigned leaf, unsigned subleaf, unsigned r[4])
{
    int regs[4];
    __cpuidex(regs, (int)leaf, (int)subleaf);
    for (int i = 0; i < 4; i++)
        r[i] = (unsigned)regs[i];
}
static uint64_t xcr0(void) { return (uint64_t)_xgetbv(0); }
#elif (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define FD_X86 1
static void cpuid(unsigned leaf, unsigned subleaf, unsigned r[4])
{
    __cpuid_count(leaf, subleaf, r[0], r[1], r[2], r[3]);
}
static uint64_t xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}
#endif


static int detected_level = -1;
static const fd_kernels *active = NULL;
static int active_level = FD_SCALAR;

#if defined(FD_EMULATED_SIMD)
/* tools/cross_check: every x86 level runs on emulated intrinsics, whatever this CPU has */
static int detect(void) { return FD_AVX512; }
#elif defined(FD_X86)
static int detect(void)
{
    unsigned r[4];
    cpuid(0, 0, r);
    unsigned max_leaf = r[0];
    if (max_leaf < 1)
        return FD_SCALAR;
    cpuid(1, 0, r);
    unsigned c = r[2];
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return FD_SCALAR;
    uint64_t xcr0_bits = xcr0();
    if ((xcr0_bits & 0x6) != 0x6) /* the OS saves XMM and YMM state */
        return FD_SCALAR;
    if (max_leaf < 7)
        return FD_SCALAR;
    cpuid(7, 0, r);
    unsigned b = r[1];
    int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if (!(avx2 && f16c)) /* every AVX2 CPU has F16C; the float16 kernels use it */
        return FD_SCALAR;
    /* + opmask and ZMM state; BMI2 for the keep-bit interleave (PDEP) of that level */
    if (avx512f && avx512dq && avx512bw && avx512vl && bmi2 && (xcr0_bits & 0xE6) == 0xE6)
        return FD_AVX512;
    return FD_AVX2;
}
#elif defined(__aarch64__)
static int detect(void) { return FD_NEON; } /* Advanced SIMD is part of AArch64 */
#else
static int detect(void) { return FD_SCALAR; }
#endif

/* The table of a level; NULL where it is not compiled in (or no such level). */
static const fd_kernels *table_for(int level)
{
    if (level == FD_NEON)
        return fd_kernels_neon();
    if (level == FD_AVX512)
        return fd_kernels_avx512();
    if (level == FD_AVX2)
        return fd_kernels_avx2();
    if (level == FD_SCALAR)
        return fd_kernels_scalar();
    return NULL;
}

int fd_cpu_level(void)
{
    if (detected_level < 0) {
        int level = detect();
        while (level > FD_SCALAR && table_for(level) == NULL)
            level--;
        detected_level = level;
    }
    return detected_level;
}

int fd_set_level(int level)
{
    const fd_kernels *table = table_for(level);
    if (table == NULL || level > fd_cpu_level())
        return -1;
    active = table;
    active_level = level;
    return 0;
}

int fd_get_level(void) { return active_level; }

static const fd_kernels *kernels(void)
{
    if (active == NULL)
        fd_set_level(fd_cpu_level());
    return active;
}

void fd_philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    fd_philox4x32_10(ctr, key, out);
}

/* Each entry point packs its arguments into fd_args and hands a chunk function to the
 * thread pool; chunk functions offset every pointer and counter by the chunk's start. */
typedef struct {
    const void *x;
    void *y;
    uint8_t *bits;
    const uint8_t *cbits;
    uint64_t offset;
    const fd_stream *s;
    double scale; /* a float scale round-trips through double exactly */
    double sigma;
    const void *op;
    const fd_bcast *b;
} fd_args;

#define BITS_AT(a, start) ((a)->bits ? (a)->bits + (start) / 8 : NULL)

static void chunk_forward_f32(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->forward_f32((const float *)a->x + start, (float *)a->y + start, BITS_AT(a, start),
                           len, a->offset + start, a->s, (float)a->scale);
}

static void chunk_forward_f64(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->forward_f64((const double *)a->x + start, (double *)a->y + start,
                           BITS_AT(a, start), len, a->offset + start, a->s, a->scale);
}

static void chunk_sample(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->sample(a->bits + start / 8, len, a->offset + start, a->s);
}

static void chunk_apply_f32(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->apply_f32((const float *)a->x + start, (float *)a->y + start,
                         a->cbits + start / 8, len, (float)a->scale);
}

static void chunk_apply_f64(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->apply_f64((const double *)a->x + start, (double *)a->y + start,
                         a->cbits + start / 8, len, a->scale);
}

static void chunk_forward_op_f32(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->forward_op_f32((const float *)a->x + start, (float *)a->y + start,
                              BITS_AT(a, start), len, a->offset + start, a->s, a->op);
}

static void chunk_forward_op_f64(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->forward_op_f64((const double *)a->x + start, (double *)a->y + start,
                              BITS_AT(a, start), len, a->offset + start, a->s, a->op);
}

static void chunk_forward_op_f16(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->forward_op_f16((const uint16_t *)a->x + start, (uint16_t *)a->y + start,
                              BITS_AT(a, start), len, a->offset + start, a->s, a->op);
}

static void chunk_bcast_f32(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->bcast_f32((const float *)a->x + start, (float *)a->y + start, len, start, a->b,
                         a->op);
}

static void chunk_bcast_f64(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->bcast_f64((const double *)a->x + start, (double *)a->y + start, len, start, a->b,
                         a->op);
}

static void chunk_bcast_f16(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->bcast_f16((const uint16_t *)a->x + start, (uint16_t *)a->y + start, len, start,
                         a->b, a->op);
}

static void chunk_gauss_f32(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->gauss_f32((const float *)a->x + start, (float *)a->y + start, len,
                         a->offset + start, a->s, a->sigma);
}

static void chunk_gauss_f64(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->gauss_f64((const double *)a->x + start, (double *)a->y + start, len,
                         a->offset + start, a->s, a->sigma);
}

static void chunk_gauss_f16(const void *ctx, size_t start, size_t len)
{
    const fd_args *a = (const fd_args *)ctx;
    kernels()->gauss_f16((const uint16_t *)a->x + start, (uint16_t *)a->y + start, len,
                         a->offset + start, a->s, a->sigma);
}

/* Resolve the table once, on the calling thread, before any worker needs it. */
#define RUN(NAME, n, nthreads, ...)                                   \
    do {                                                              \
        const fd_args args = {__VA_ARGS__};                           \
        (void)kernels();                                              \
        fd_parallel_for((n), (nthreads), chunk_##NAME, &args);        \
    } while (0)

void fd_forward_f32(const float *x, float *y, uint8_t *bits, size_t n, uint64_t offset,
                    const fd_stream *s, float scale, int nthreads)
{
    RUN(forward_f32, n, nthreads, .x = x, .y = y, .bits = bits, .offset = offset, .s = s, .scale = scale);
}

void fd_forward_f64(const double *x, double *y, uint8_t *bits, size_t n, uint64_t offset,
                    const fd_stream *s, double scale, int nthreads)
{
    RUN(forward_f64, n, nthreads, .x = x, .y = y, .bits = bits, .offset = offset, .s = s, .scale = scale);
}

void fd_sample(uint8_t *bits, size_t n, uint64_t offset, const fd_stream *s, int nthreads)
{
    RUN(sample, n, nthreads, .bits = bits, .offset = offset, .s = s);
}

void fd_apply_f32(const float *x, float *y, const uint8_t *bits, size_t n, float scale, int nthreads)
{
    RUN(apply_f32, n, nthreads, .x = x, .y = y, .cbits = bits, .scale = scale);
}

void fd_apply_f64(const double *x, double *y, const uint8_t *bits, size_t n, double scale,
                  int nthreads)
{
    RUN(apply_f64, n, nthreads, .x = x, .y = y, .cbits = bits, .scale = scale);
}

/* -- variants (DESIGN.md §7) --------------------------------------------------------------- */

void fd_forward_op_f32(const float *x, float *y, uint8_t *bits, size_t n, uint64_t offset,
                       const fd_stream *s, const fd_op_f32 *op, int nthreads)
{
    RUN(forward_op_f32, n, nthreads, .x = x, .y = y, .bits = bits, .offset = offset, .s = s, .op = op);
}

void fd_forward_op_f64(const double *x, double *y, uint8_t *bits, size_t n, uint64_t offset,
                       const fd_stream *s, const fd_op_f64 *op, int nthreads)
{
    RUN(forward_op_f64, n, nthreads, .x = x, .y = y, .bits = bits, .offset = offset, .s = s, .op = op);
}

void fd_bcast_f32(const float *x, float *y, size_t n, const fd_bcast *b, const fd_op_f32 *op,
                  int nthreads)
{
    RUN(bcast_f32, n, nthreads, .x = x, .y = y, .b = b, .op = op);
}

void fd_bcast_f64(const double *x, double *y, size_t n, const fd_bcast *b, const fd_op_f64 *op,
                  int nthreads)
{
    RUN(bcast_f64, n, nthreads, .x = x, .y = y, .b = b, .op = op);
}

void fd_gauss_f32(const float *x, float *y, size_t n, uint64_t offset, const fd_stream *s,
                  double sigma, int nthreads)
{
    RUN(gauss_f32, n, nthreads, .x = x, .y = y, .offset = offset, .s = s, .sigma = sigma);
}

void fd_gauss_f64(const double *x, double *y, size_t n, uint64_t offset, const fd_stream *s,
                  double sigma, int nthreads)
{
    RUN(gauss_f64, n, nthreads, .x = x, .y = y, .offset = offset, .s = s, .sigma = sigma);
}

void fd_forward_op_f16(const uint16_t *x, uint16_t *y, uint8_t *bits, size_t n, uint64_t offset,
                       const fd_stream *s, const fd_op_f16 *op, int nthreads)
{
    RUN(forward_op_f16, n, nthreads, .x = x, .y = y, .bits = bits, .offset = offset, .s = s, .op = op);
}

void fd_bcast_f16(const uint16_t *x, uint16_t *y, size_t n, const fd_bcast *b,
                  const fd_op_f16 *op, int nthreads)
{
    RUN(bcast_f16, n, nthreads, .x = x, .y = y, .b = b, .op = op);
}

void fd_gauss_f16(const uint16_t *x, uint16_t *y, size_t n, uint64_t offset, const fd_stream *s,
                  double sigma, int nthreads)
{
    RUN(gauss_f16, n, nthreads, .x = x, .y = y, .offset = offset, .s = s, .sigma = sigma);
}

/* -- the floor ------------------------------------------------------------------------------ */

/* The same plain loop compiled twice: for AVX2 (as wide as the kernels' loads and stores on
 * that level, so the in-cache floor is not an SSE2 one) and portably.  The floor is the
 * machine's, so the CPU's level picks it, not the level the kernels are capped at. */
#define TIMES_TWO(T, NAME, ATTR)                                           \
    ATTR static void NAME(const void *ctx, size_t start, size_t len)        \
    {                                                                      \
        const fd_args *a = (const fd_args *)ctx;                           \
        const T *restrict x = (const T *)a->x + start;                     \
        T *restrict y = (T *)a->y + start;                                 \
        for (size_t i = 0; i < len; i++)                                   \
            y[i] = x[i] * (T)2;                                            \
    }

TIMES_TWO(float, chunk_times_two_f32, )
TIMES_TWO(double, chunk_times_two_f64, )
#if defined(FD_X86) && !defined(FD_EMULATED_SIMD) && !defined(FD_MSVC)
TIMES_TWO(float, chunk_times_two_f32_avx2, __attribute__((target("avx2"))))
TIMES_TWO(double, chunk_times_two_f64_avx2, __attribute__((target("avx2"))))
#define WIDEST(NAME) (fd_cpu_level() >= FD_AVX2 ? NAME##_avx2 : NAME)
#elif defined(FD_X86) && defined(FD_MSVC) && defined(_M_X64)
/* MSVC vectorises for SSE2 only: the AVX2 floor is written in intrinsics. */
#define TIMES_TWO_AVX2(T, NAME, VEC, LANES, SET1, LOAD, MUL, STORE)        \
    static void NAME(const void *ctx, size_t start, size_t len)            \
    {                                                                      \
        const fd_args *a = (const fd_args *)ctx;                           \
        const T *x = (const T *)a->x + start;                              \
        T *y = (T *)a->y + start;                                          \
        const VEC two = SET1((T)2);                                        \
        size_t i = 0;                                                      \
        for (; i + LANES <= len; i += LANES)                               \
            STORE(y + i, MUL(LOAD(x + i), two));                           \
        for (; i < len; i++)                                               \
            y[i] = x[i] * (T)2;                                            \
    }
TIMES_TWO_AVX2(float, chunk_times_two_f32_avx2, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps,
               _mm256_mul_ps, _mm256_storeu_ps)
TIMES_TWO_AVX2(double, chunk_times_two_f64_avx2, __m256d, 4, _mm256_set1_pd, _mm256_loadu_pd,
               _mm256_mul_pd, _mm256_storeu_pd)
#define WIDEST(NAME) (fd_cpu_level() >= FD_AVX2 ? NAME##_avx2 : NAME)
#else
#define WIDEST(NAME) NAME
#endif

void fd_times_two_f32(const float *x, float *y, size_t n, int nthreads)
{
    const fd_args args = {.x = x, .y = y};
    fd_parallel_for(n, nthreads, WIDEST(chunk_times_two_f32), &args);
}

void fd_times_two_f64(const double *x, double *y, size_t n, int nthreads)
{
    const fd_args args = {.x = x, .y = y};
    fd_parallel_for(n, nthreads, WIDEST(chunk_times_two_f64), &args);
}

void fd_f32_to_f16_array(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = fd_f32_to_f16(x[i]);
}

void fd_f16_to_f32_array(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = fd_f16_to_f32(x[i]);
}

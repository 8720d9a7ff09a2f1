/* Runtime dispatch and threading.  The CPU is checked once; a level can be forced lower
 * (FASTDROP_SIMD, tests).  Threads split an array into chunks that start on multiples of
 * FD_CHUNK_ALIGN elements, so no two threads ever write the same mask byte (or cache line
 * of it), and each chunk reproduces its slice of the one random stream exactly. */
#include "fastdrop.h"
#include "kernels_common.h"
#include "philox.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define FD_X86 1
#endif

/* Below this many elements a call runs on the calling thread: starting threads costs
 * more than the work. */
#define FD_PARALLEL_MIN ((size_t)1 << 16)
#define FD_CHUNK_ALIGN ((size_t)512)

static int detected_level = -1;
static const fd_kernels *active = NULL;
static const fd_variant_kernels *active_variants = NULL;
static int active_level = FD_SCALAR;

#ifdef FD_X86
static int detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return FD_SCALAR;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return FD_SCALAR;
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0x6) != 0x6) /* the OS saves XMM and YMM state */
        return FD_SCALAR;
    if (__get_cpuid_max(0, 0) < 7)
        return FD_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, bmi1 = (b >> 3) & 1, bmi2 = (b >> 8) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if (!(avx2 && bmi1 && bmi2 && f16c)) /* every AVX2 CPU has F16C; the float16 kernels use it */
        return FD_SCALAR;
    if (avx512f && avx512dq && avx512bw && avx512vl && (xcr0_lo & 0xE6) == 0xE6) /* + opmask, ZMM */
        return FD_AVX512;
    return FD_AVX2;
}
#else
static int detect(void) { return FD_SCALAR; }
#endif

static const fd_kernels *table_for(int level)
{
    switch (level) {
    case FD_AVX512: return fd_kernels_avx512();
    case FD_AVX2: return fd_kernels_avx2();
    default: return fd_kernels_scalar();
    }
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

static const fd_variant_kernels *variants_for(int level)
{
    switch (level) {
    case FD_AVX512: return fd_variants_avx512();
    case FD_AVX2: return fd_variants_avx2();
    default: return fd_variants_scalar();
    }
}

int fd_set_level(int level)
{
    if (level < FD_SCALAR || level > fd_cpu_level())
        return -1;
    active = table_for(level);
    active_variants = variants_for(level);
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

static const fd_variant_kernels *variants(void)
{
    if (active_variants == NULL)
        fd_set_level(fd_cpu_level());
    return active_variants;
}

int fd_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fd_default_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void fd_philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    fd_philox4x32_10(ctr, key, out);
}

/* Run BODY(start, len) over the chunks of n elements on up to nthreads threads. */
#ifdef _OPENMP
#define FD_PARALLEL(n, nthreads, BODY)                                                   \
    do {                                                                                 \
        if ((nthreads) <= 1 || (n) < FD_PARALLEL_MIN) {                                  \
            size_t start = 0, len = (n);                                                 \
            BODY;                                                                        \
            break;                                                                       \
        }                                                                                \
        _Pragma("omp parallel num_threads(nthreads)")                                    \
        {                                                                                \
            size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num(); \
            size_t per = ((n) + nt - 1) / nt;                                            \
            per = (per + FD_CHUNK_ALIGN - 1) / FD_CHUNK_ALIGN * FD_CHUNK_ALIGN;          \
            size_t start = t * per < (n) ? t * per : (n);                                \
            size_t len = (n) - start < per ? (n) - start : per;                          \
            if (len > 0)                                                                 \
                BODY;                                                                    \
        }                                                                                \
    } while (0)
#else
#define FD_PARALLEL(n, nthreads, BODY) \
    do {                               \
        size_t start = 0, len = (n);   \
        (void)(nthreads);              \
        BODY;                          \
    } while (0)
#endif

void fd_forward_f32(const float *x, float *y, uint8_t *bits, size_t n, uint64_t offset,
                    const fd_stream *s, float scale, int nthreads)
{
    const fd_kernels *k = kernels();
    FD_PARALLEL(n, nthreads, k->forward_f32(x + start, y + start, bits ? bits + start / 8 : NULL,
                                            len, offset + start, s, scale));
}

void fd_forward_f64(const double *x, double *y, uint8_t *bits, size_t n, uint64_t offset,
                    const fd_stream *s, double scale, int nthreads)
{
    const fd_kernels *k = kernels();
    FD_PARALLEL(n, nthreads, k->forward_f64(x + start, y + start, bits ? bits + start / 8 : NULL,
                                            len, offset + start, s, scale));
}

void fd_sample(uint8_t *bits, size_t n, uint64_t offset, const fd_stream *s, int nthreads)
{
    const fd_kernels *k = kernels();
    FD_PARALLEL(n, nthreads, k->sample(bits + start / 8, len, offset + start, s));
}

void fd_apply_f32(const float *x, float *y, const uint8_t *bits, size_t n, float scale, int nthreads)
{
    const fd_kernels *k = kernels();
    FD_PARALLEL(n, nthreads, k->apply_f32(x + start, y + start, bits + start / 8, len, scale));
}

void fd_apply_f64(const double *x, double *y, const uint8_t *bits, size_t n, double scale,
                  int nthreads)
{
    const fd_kernels *k = kernels();
    FD_PARALLEL(n, nthreads, k->apply_f64(x + start, y + start, bits + start / 8, len, scale));
}

/* -- variants (DESIGN.md §7) --------------------------------------------------------------- */

void fd_forward_op_f32(const float *x, float *y, uint8_t *bits, size_t n, uint64_t offset,
                       const fd_stream *s, const fd_op_f32 *op, int nthreads)
{
    const fd_variant_kernels *k = variants();
    FD_PARALLEL(n, nthreads, k->forward_op_f32(x + start, y + start, bits ? bits + start / 8 : NULL,
                                               len, offset + start, s, op));
}

void fd_forward_op_f64(const double *x, double *y, uint8_t *bits, size_t n, uint64_t offset,
                       const fd_stream *s, const fd_op_f64 *op, int nthreads)
{
    const fd_variant_kernels *k = variants();
    FD_PARALLEL(n, nthreads, k->forward_op_f64(x + start, y + start, bits ? bits + start / 8 : NULL,
                                               len, offset + start, s, op));
}

void fd_bcast_f32(const float *x, float *y, size_t n, const fd_bcast *b, const fd_op_f32 *op,
                  int nthreads)
{
    const fd_variant_kernels *k = variants();
    FD_PARALLEL(n, nthreads, k->bcast_f32(x + start, y + start, len, start, b, op));
}

void fd_bcast_f64(const double *x, double *y, size_t n, const fd_bcast *b, const fd_op_f64 *op,
                  int nthreads)
{
    const fd_variant_kernels *k = variants();
    FD_PARALLEL(n, nthreads, k->bcast_f64(x + start, y + start, len, start, b, op));
}

void fd_gauss_f32(const float *x, float *y, size_t n, uint64_t offset, const fd_stream *s,
                  double sigma, int nthreads)
{
    const fd_variant_kernels *k = variants();
    FD_PARALLEL(n, nthreads, k->gauss_f32(x + start, y + start, len, offset + start, s, sigma));
}

void fd_gauss_f64(const double *x, double *y, size_t n, uint64_t offset, const fd_stream *s,
                  double sigma, int nthreads)
{
    const fd_variant_kernels *k = variants();
    FD_PARALLEL(n, nthreads, k->gauss_f64(x + start, y + start, len, offset + start, s, sigma));
}

void fd_forward_op_f16(const uint16_t *x, uint16_t *y, uint8_t *bits, size_t n, uint64_t offset,
                       const fd_stream *s, const fd_op_f16 *op, int nthreads)
{
    const fd_variant_kernels *k = variants();
    FD_PARALLEL(n, nthreads, k->forward_op_f16(x + start, y + start, bits ? bits + start / 8 : NULL,
                                               len, offset + start, s, op));
}

void fd_bcast_f16(const uint16_t *x, uint16_t *y, size_t n, const fd_bcast *b,
                  const fd_op_f16 *op, int nthreads)
{
    const fd_variant_kernels *k = variants();
    FD_PARALLEL(n, nthreads, k->bcast_f16(x + start, y + start, len, start, b, op));
}

void fd_gauss_f16(const uint16_t *x, uint16_t *y, size_t n, uint64_t offset, const fd_stream *s,
                  double sigma, int nthreads)
{
    const fd_variant_kernels *k = variants();
    FD_PARALLEL(n, nthreads, k->gauss_f16(x + start, y + start, len, offset + start, s, sigma));
}

void fd_box_muller_pair(uint32_t w0, uint32_t w1, double z[2])
{
    fd_box_muller_scalar(w0, w1, &z[0], &z[1]);
}

void fd_box_muller_pair_f32(uint32_t w0, uint32_t w1, float z[2])
{
    fd_box_muller_f32_scalar(w0, w1, &z[0], &z[1]);
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

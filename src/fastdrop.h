/* fastdrop kernels: the C interface the Cython layer and outside harnesses call.  Arrays
 * are contiguous; the caller has validated lengths. */
#ifndef FASTDROP_H
#define FASTDROP_H

#include <stddef.h>
#include <stdint.h>

/* Where the random words come from (DESIGN.md §2) and what is kept. */
typedef struct {
    uint32_t k0, k1;    /* key = seed */
    uint32_t c2, c3;    /* counter words 2 and 3 = stream */
    uint64_t threshold; /* keep iff word < threshold; >= 2^32 keeps every element */
} fd_stream;

/* What a masked pass writes for kept and dropped elements (DESIGN.md §3, §7.3):
 * affine = 0: kept x * mul, dropped +0.0 (dropout); affine = 1: kept x * mul + add
 * (two roundings, never fused), dropped `fill` whatever x is (alpha dropout).  The
 * constants are already rounded to the kernel's dtype. */
typedef struct {
    float mul, add, fill;
    int affine;
} fd_op_f32;
typedef struct {
    double mul, add, fill;
    int affine;
} fd_op_f64;
typedef fd_op_f32 fd_op_f16; /* float16 computes in float32 (DESIGN.md §7.5) */

/* A mask over a noise shape broadcast against the array (DESIGN.md §7.1), with the axes
 * merged (see fastdrop/_core.py): the array is `outer` segments of run * period elements;
 * in a segment, element q uses mask bit base + q % period, where base = sum over the
 * outer axes of index * stride (stride 0 along broadcast axes). */
#define FD_MAX_DIMS 64
typedef struct {
    const uint8_t *bits; /* the noise-shape mask (DESIGN.md §4 layout) */
    uint64_t nbits;      /* its size in elements */
    size_t run, period;  /* segment = run repetitions of `period` consecutive mask bits */
    int ndim;            /* outer axes, slowest first */
    size_t dims[FD_MAX_DIMS];
    uint64_t strides[FD_MAX_DIMS];
} fd_bcast;

/* SIMD levels.  The numbers name levels, they do not order them across architectures:
 * x86-64 has scalar < AVX2 < AVX-512, AArch64 has scalar < NEON. */
enum { FD_SCALAR = 0, FD_AVX2 = 1, FD_AVX512 = 2, FD_NEON = 3 };

/* Dispatch (dispatch.c). */
int fd_cpu_level(void);          /* the best level this CPU and build support */
int fd_set_level(int level);     /* 0 on success; -1 if this target does not have the level
                                    or it is above fd_cpu_level() */
int fd_get_level(void);

void fd_forward_f32(const float *x, float *y, uint8_t *bits, size_t n, uint64_t offset,
                    const fd_stream *s, float scale, int nthreads);
void fd_forward_f64(const double *x, double *y, uint8_t *bits, size_t n, uint64_t offset,
                    const fd_stream *s, double scale, int nthreads);
void fd_sample(uint8_t *bits, size_t n, uint64_t offset, const fd_stream *s, int nthreads);
void fd_apply_f32(const float *x, float *y, const uint8_t *bits, size_t n, float scale,
                  int nthreads);
void fd_apply_f64(const double *x, double *y, const uint8_t *bits, size_t n, double scale,
                  int nthreads);
/* Variants (DESIGN.md §7). */
void fd_forward_op_f32(const float *x, float *y, uint8_t *bits, size_t n, uint64_t offset,
                       const fd_stream *s, const fd_op_f32 *op, int nthreads);
void fd_forward_op_f64(const double *x, double *y, uint8_t *bits, size_t n, uint64_t offset,
                       const fd_stream *s, const fd_op_f64 *op, int nthreads);
void fd_bcast_f32(const float *x, float *y, size_t n, const fd_bcast *b, const fd_op_f32 *op,
                  int nthreads);
void fd_bcast_f64(const double *x, double *y, size_t n, const fd_bcast *b, const fd_op_f64 *op,
                  int nthreads);
void fd_gauss_f32(const float *x, float *y, size_t n, uint64_t offset, const fd_stream *s,
                  double sigma, int nthreads);
void fd_gauss_f64(const double *x, double *y, size_t n, uint64_t offset, const fd_stream *s,
                  double sigma, int nthreads);
void fd_forward_op_f16(const uint16_t *x, uint16_t *y, uint8_t *bits, size_t n, uint64_t offset,
                       const fd_stream *s, const fd_op_f16 *op, int nthreads);
void fd_bcast_f16(const uint16_t *x, uint16_t *y, size_t n, const fd_bcast *b,
                  const fd_op_f16 *op, int nthreads);
void fd_gauss_f16(const uint16_t *x, uint16_t *y, size_t n, uint64_t offset, const fd_stream *s,
                  double sigma, int nthreads);
void fd_box_muller_pair(uint32_t w0, uint32_t w1, double z[2]);
void fd_f32_to_f16_array(const float *x, uint16_t *y, size_t n); /* the scalar conversions */
void fd_f16_to_f32_array(const uint16_t *x, float *y, size_t n);
void fd_box_muller_pair_f32(uint32_t w0, uint32_t w1, float z[2]);

/* y = 2x streamed on the same thread pool and chunking as the kernels: the memory floor
 * `fastdrop bench` measures every kernel against (no random words, no mask). */
void fd_times_two_f32(const float *x, float *y, size_t n, int nthreads);
void fd_times_two_f64(const double *x, double *y, size_t n, int nthreads);

void fd_philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#endif

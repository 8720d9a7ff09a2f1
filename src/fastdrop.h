/* fastdrop kernels: the C interface the Cython layer calls, and the per-SIMD-level
 * function table behind it.  Arrays are contiguous; the caller has validated lengths. */
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

/* One SIMD level's chunk kernels.  A chunk of n elements has global counter index j0 for
 * its element 0; `bits` points at the byte holding element 0's bit, which is bit 0 (chunks
 * start on multiples of 8 elements), and ceil(n/8) bytes are written with padding bits 0.
 * x and y may be the same array (in place); a NULL `bits` in forward stores no mask. */
typedef struct {
    void (*forward_f32)(const float *x, float *y, uint8_t *bits, size_t n, uint64_t j0,
                        const fd_stream *s, float scale);
    void (*forward_f64)(const double *x, double *y, uint8_t *bits, size_t n, uint64_t j0,
                        const fd_stream *s, double scale);
    void (*sample)(uint8_t *bits, size_t n, uint64_t j0, const fd_stream *s);
    void (*apply_f32)(const float *x, float *y, const uint8_t *bits, size_t n, float scale);
    void (*apply_f64)(const double *x, double *y, const uint8_t *bits, size_t n, double scale);
} fd_kernels;

enum { FD_SCALAR = 0, FD_AVX2 = 1, FD_AVX512 = 2 };

/* Each returns NULL where the level is not compiled in (non-x86 targets). */
const fd_kernels *fd_kernels_scalar(void);
const fd_kernels *fd_kernels_avx2(void);
const fd_kernels *fd_kernels_avx512(void);

/* Dispatch (dispatch.c). */
int fd_cpu_level(void);          /* highest level this CPU and build support */
int fd_set_level(int level);     /* 0 on success, -1 if level > fd_cpu_level() */
int fd_get_level(void);
int fd_have_openmp(void);
int fd_default_threads(void);    /* omp_get_max_threads(): honours OMP_NUM_THREADS */

void fd_forward_f32(const float *x, float *y, uint8_t *bits, size_t n, uint64_t offset,
                    const fd_stream *s, float scale, int nthreads);
void fd_forward_f64(const double *x, double *y, uint8_t *bits, size_t n, uint64_t offset,
                    const fd_stream *s, double scale, int nthreads);
void fd_sample(uint8_t *bits, size_t n, uint64_t offset, const fd_stream *s, int nthreads);
void fd_apply_f32(const float *x, float *y, const uint8_t *bits, size_t n, float scale,
                  int nthreads);
void fd_apply_f64(const double *x, double *y, const uint8_t *bits, size_t n, double scale,
                  int nthreads);
void fd_philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#endif

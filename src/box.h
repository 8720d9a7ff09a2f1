/* Kernels over an N-d box of a larger C-order array (a chunk, tile or shard), each element
 * addressed by its global counter index (DESIGN.md §8).  Every innermost row of the box is
 * a contiguous run of global indices, so each row is one call of the public per-level
 * entry points in fastdrop.h with offset = the row's first global index: the box gives
 * exactly the bits the whole array would, at every SIMD level and thread count. */
#ifndef FASTDROP_BOX_H
#define FASTDROP_BOX_H

#include <stddef.h>
#include <stdint.h>

#include "fastdrop.h"

/* The box: `shape[k]` elements along axis k (slowest first).  Moving one step along axis
 * k moves `counter_pitch[k]` in the global counter index and `x_pitch[k]` / `y_pitch[k]`
 * elements in x and y; the innermost pitches are 1 (rows are contiguous).  `j0` is the
 * global counter index of the box's first element.  The caller has checked that every
 * index the box can form stays inside its buffers and below 2^64. */
typedef struct {
    int ndim;
    size_t shape[FD_MAX_DIMS];
    uint64_t counter_pitch[FD_MAX_DIMS];
    size_t x_pitch[FD_MAX_DIMS];
    size_t y_pitch[FD_MAX_DIMS];
    uint64_t j0;
} fd_box;

/* y = kept ? x * mul (+ add) : (+0.0 or fill) over the box (fd_forward_op_* per row). */
void fd_box_forward_op_f32(const float *x, float *y, const fd_box *b, const fd_stream *s,
                           const fd_op_f32 *op, int nthreads);
void fd_box_forward_op_f64(const double *x, double *y, const fd_box *b, const fd_stream *s,
                           const fd_op_f64 *op, int nthreads);
void fd_box_forward_op_f16(const uint16_t *x, uint16_t *y, const fd_box *b, const fd_stream *s,
                           const fd_op_f16 *op, int nthreads);
/* y = x * eps, the Gaussian noise of DESIGN.md §7.2 (fd_gauss_* per row). */
void fd_box_gauss_f32(const float *x, float *y, const fd_box *b, const fd_stream *s,
                      double sigma, int nthreads);
void fd_box_gauss_f64(const double *x, double *y, const fd_box *b, const fd_stream *s,
                      double sigma, int nthreads);
void fd_box_gauss_f16(const uint16_t *x, uint16_t *y, const fd_box *b, const fd_stream *s,
                      double sigma, int nthreads);
/* The keep bits of the box, packed in the box's own C order (DESIGN.md §4 layout,
 * ceil(size/8) bytes, padding bits 0); x_pitch and y_pitch are not used.
 * Returns 0, or -1 if scratch memory could not be allocated. */
int fd_box_sample(uint8_t *bits, const fd_box *b, const fd_stream *s, int nthreads);

#endif

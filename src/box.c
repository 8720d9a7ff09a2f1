/* Box kernels (box.h): an odometer over the outer axes of the box, one public
 * per-level-dispatching call per innermost row.  Axes are merged first where the box is
 * contiguous across them in the counter, x and y alike (a chunk spanning whole rows of the
 * global array becomes one long run), so long runs are shared out across threads by the
 * entry point itself. */
#include "box.h"

#include <stdlib.h>
#include <string.h>

/* Drop outer axes of extent 1, then merge each pair of neighbouring axes that is one
 * contiguous run in the counter, x and y alike (stepping the outer axis equals walking the
 * whole inner one).  The merged box has the same C order and the same rows, only fewer
 * and longer. */
static void merge_axes(const fd_box *in, fd_box *out)
{
    int n = 0;
    for (int k = 0; k < in->ndim; k++) {
        if (in->shape[k] == 1 && k != in->ndim - 1)
            continue;
        out->shape[n] = in->shape[k];
        out->counter_pitch[n] = in->counter_pitch[k];
        out->x_pitch[n] = in->x_pitch[k];
        out->y_pitch[n] = in->y_pitch[k];
        n++;
    }
    out->j0 = in->j0;
    /* From the innermost outwards: fold axis k into the axis just inside it. */
    int m = n;
    for (int k = n - 2; k >= 0; k--) {
        int i = k + 1; /* axes k+1 .. m-1 are already final; k+1 is k's inner neighbour */
        size_t inner = out->shape[i];
        if (out->counter_pitch[k] == (uint64_t)inner * out->counter_pitch[i]
            && out->x_pitch[k] == inner * out->x_pitch[i]
            && out->y_pitch[k] == inner * out->y_pitch[i]) {
            /* one axis of shape[k] * inner elements with the inner axis's pitches */
            out->shape[k] = out->shape[k] * inner;
            out->counter_pitch[k] = out->counter_pitch[i];
            out->x_pitch[k] = out->x_pitch[i];
            out->y_pitch[k] = out->y_pitch[i];
            for (int q = i; q < m - 1; q++) {
                out->shape[q] = out->shape[q + 1];
                out->counter_pitch[q] = out->counter_pitch[q + 1];
                out->x_pitch[q] = out->x_pitch[q + 1];
                out->y_pitch[q] = out->y_pitch[q + 1];
            }
            m--;
        }
    }
    out->ndim = m;
}

static size_t box_size(const fd_box *b)
{
    size_t n = 1;
    for (int k = 0; k < b->ndim; k++)
        n *= b->shape[k];
    return n;
}

/* Walk the rows of a merged box: calls row(ctx, counter, xoff, yoff, row index) for each. */
typedef void (*row_fn)(void *ctx, uint64_t j, size_t xo, size_t yo, size_t r);

static void walk_rows(const fd_box *b, row_fn row, void *ctx)
{
    if (b->ndim == 0 || box_size(b) == 0)
        return;
    int outer = b->ndim - 1;
    size_t idx[FD_MAX_DIMS] = {0};
    uint64_t j = b->j0;
    size_t xo = 0, yo = 0, r = 0;
    for (;;) {
        row(ctx, j, xo, yo, r++);
        int k = outer - 1;
        while (k >= 0) {
            idx[k]++;
            j += b->counter_pitch[k];
            xo += b->x_pitch[k];
            yo += b->y_pitch[k];
            if (idx[k] < b->shape[k])
                break;
            j -= b->counter_pitch[k] * b->shape[k];
            xo -= b->x_pitch[k] * b->shape[k];
            yo -= b->y_pitch[k] * b->shape[k];
            idx[k] = 0;
            k--;
        }
        if (k < 0)
            return;
    }
}

#define FD_BOX_ELEMENTWISE(NAME, T, CALL, EXTRA_DECL)                                       \
    typedef struct {                                                                         \
        const T *x;                                                                          \
        T *y;                                                                                \
        size_t n;                                                                            \
        const fd_stream *s;                                                                  \
        int nthreads;                                                                        \
        EXTRA_DECL;                                                                          \
    } NAME##_ctx;                                                                            \
    static void NAME##_row(void *p, uint64_t j, size_t xo, size_t yo, size_t r)              \
    {                                                                                        \
        NAME##_ctx *c = (NAME##_ctx *)p;                                                     \
        (void)r;                                                                             \
        CALL;                                                                                \
    }

FD_BOX_ELEMENTWISE(forward_op_f32, float,
                   fd_forward_op_f32(c->x + xo, c->y + yo, NULL, c->n, j, c->s, c->op, c->nthreads),
                   const fd_op_f32 *op)
FD_BOX_ELEMENTWISE(forward_op_f64, double,
                   fd_forward_op_f64(c->x + xo, c->y + yo, NULL, c->n, j, c->s, c->op, c->nthreads),
                   const fd_op_f64 *op)
FD_BOX_ELEMENTWISE(forward_op_f16, uint16_t,
                   fd_forward_op_f16(c->x + xo, c->y + yo, NULL, c->n, j, c->s, c->op, c->nthreads),
                   const fd_op_f16 *op)
FD_BOX_ELEMENTWISE(gauss_f32, float,
                   fd_gauss_f32(c->x + xo, c->y + yo, c->n, j, c->s, c->sigma, c->nthreads),
                   double sigma)
FD_BOX_ELEMENTWISE(gauss_f64, double,
                   fd_gauss_f64(c->x + xo, c->y + yo, c->n, j, c->s, c->sigma, c->nthreads),
                   double sigma)
FD_BOX_ELEMENTWISE(gauss_f16, uint16_t,
                   fd_gauss_f16(c->x + xo, c->y + yo, c->n, j, c->s, c->sigma, c->nthreads),
                   double sigma)

#define FD_BOX_ENTRY(NAME, T, ARG_T, ARG)                                                    \
    void fd_box_##NAME(const T *x, T *y, const fd_box *b, const fd_stream *s, ARG_T ARG,     \
                       int nthreads)                                                         \
    {                                                                                        \
        fd_box m;                                                                            \
        merge_axes(b, &m);                                                                \
        if (m.ndim == 0)                                                                     \
            return;                                                                          \
        NAME##_ctx c = {x, y, m.shape[m.ndim - 1], s, nthreads, ARG};                        \
        walk_rows(&m, NAME##_row, &c);                                                       \
    }

FD_BOX_ENTRY(forward_op_f32, float, const fd_op_f32 *, op)
FD_BOX_ENTRY(forward_op_f64, double, const fd_op_f64 *, op)
FD_BOX_ENTRY(forward_op_f16, uint16_t, const fd_op_f16 *, op)
FD_BOX_ENTRY(gauss_f32, float, double, sigma)
FD_BOX_ENTRY(gauss_f64, double, double, sigma)
FD_BOX_ENTRY(gauss_f16, uint16_t, double, sigma)

typedef struct {
    uint8_t *bits, *scratch;
    size_t n, nbytes;
    const fd_stream *s;
    int nthreads;
} sample_ctx;

/* Row r covers bits [r*n, (r+1)*n) of the packed output, which starts zeroed.  A row that
 * starts on a byte boundary is sampled in place (the bytes from there on are its own); any
 * other is sampled into scratch and ORed in at its bit position. */
static void sample_row(void *p, uint64_t j, size_t xo, size_t yo, size_t r)
{
    sample_ctx *c = (sample_ctx *)p;
    (void)xo;
    (void)yo;
    size_t bit = r * c->n, byte = bit / 8;
    unsigned shift = (unsigned)(bit % 8);
    if (shift == 0) {
        fd_sample(c->bits + byte, c->n, j, c->s, c->nthreads);
        return;
    }
    size_t row_bytes = (c->n + 7) / 8;
    fd_sample(c->scratch, c->n, j, c->s, c->nthreads);
    for (size_t i = 0; i < row_bytes; i++) {
        c->bits[byte + i] |= (uint8_t)(c->scratch[i] << shift);
        if (byte + i + 1 < c->nbytes)
            c->bits[byte + i + 1] |= (uint8_t)(c->scratch[i] >> (8 - shift));
    }
}

int fd_box_sample(uint8_t *bits, const fd_box *b, const fd_stream *s, int nthreads)
{
    fd_box m;
    merge_axes(b, &m);
    size_t size = m.ndim == 0 ? 0 : box_size(&m);
    if (size == 0)
        return 0;
    size_t n = m.shape[m.ndim - 1];
    sample_ctx c = {bits, NULL, n, (size + 7) / 8, s, nthreads};
    memset(bits, 0, c.nbytes);
    if (n % 8 != 0 && size > n) { /* some row starts inside a byte */
        c.scratch = (uint8_t *)malloc((n + 7) / 8);
        if (c.scratch == NULL)
            return -1;
    }
    walk_rows(&m, sample_row, &c);
    free(c.scratch);
    return 0;
}

/* Pieces every SIMD level shares: packing keep decisions into mask bytes, and the scalar
 * keep decisions that define what each level must compute. */
#ifndef FASTDROP_KERNELS_COMMON_H
#define FASTDROP_KERNELS_COMMON_H

#include <stddef.h>
#include <stdint.h>

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

#endif

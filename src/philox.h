/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11 / Random123), the one random source
 * of fastdrop.  DESIGN.md §2 fixes how (seed, stream, offset, element index) map onto
 * its counter and key; this header holds the scalar algorithm that every SIMD level
 * must reproduce word for word. */
#ifndef FASTDROP_PHILOX_H
#define FASTDROP_PHILOX_H

#include <stdint.h>

#define FD_PHILOX_M0 0xD2511F53u
#define FD_PHILOX_M1 0xCD9E8D57u
#define FD_PHILOX_W0 0x9E3779B9u
#define FD_PHILOX_W1 0xBB67AE85u
#define FD_PHILOX_ROUNDS 10

static inline void fd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        if (r > 0) {
            k0 += FD_PHILOX_W0;
            k1 += FD_PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)FD_PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)FD_PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

#endif

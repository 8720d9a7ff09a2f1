/* AVX2 kernels (+ BMI2).  Compiled inside a target region; dispatch.c calls them only on
 * CPUs that have AVX2 and BMI2.
 *
 * Philox runs on 8 blocks per ymm register; a 64-word group is two such halves.  AVX2
 * has no unsigned compare, so words and threshold are compared with their sign bits
 * flipped.  Keep bits become lane masks by testing one bit per lane. */
#include "kernels_common.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,bmi,bmi2")
#endif

#include <immintrin.h>

enum { GEN_PHILOX, GEN_KEEP_ALL, GEN_DROP_ALL };

typedef struct {
    uint32_t rk0[FD_PHILOX_ROUNDS], rk1[FD_PHILOX_ROUNDS];
    uint32_t c2, c3, threshold;
    int mode;
} gen_state;

static inline void gen_init(gen_state *g, const fd_stream *s)
{
    uint32_t k0 = s->k0, k1 = s->k1;
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        g->rk0[r] = k0;
        g->rk1[r] = k1;
        k0 += FD_PHILOX_W0;
        k1 += FD_PHILOX_W1;
    }
    g->c2 = s->c2;
    g->c3 = s->c3;
    g->threshold = (uint32_t)s->threshold;
    g->mode = s->threshold > 0xFFFFFFFFu ? GEN_KEEP_ALL
              : s->threshold == 0        ? GEN_DROP_ALL
                                         : GEN_PHILOX;
}

/* Keep bits of the 32 words of blocks block .. block+7, in word order. */
static inline uint32_t gen_half(const gen_state *g, uint64_t block)
{
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    const __m256i m0 = _mm256_set1_epi32((int)FD_PHILOX_M0);
    const __m256i m1 = _mm256_set1_epi32((int)FD_PHILOX_M1);
    const __m256i block_lo = _mm256_set1_epi32((int)(uint32_t)block);
    __m256i c0 = _mm256_add_epi32(block_lo, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    /* carry = -1 in lanes whose low word wrapped (c0 < block_lo, unsigned) */
    __m256i carry = _mm256_cmpgt_epi32(_mm256_xor_si256(block_lo, sign), _mm256_xor_si256(c0, sign));
    __m256i c1 = _mm256_sub_epi32(_mm256_set1_epi32((int)(uint32_t)(block >> 32)), carry);
    __m256i c2 = _mm256_set1_epi32((int)g->c2), c3 = _mm256_set1_epi32((int)g->c3);
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        __m256i even0 = _mm256_mul_epu32(c0, m0);
        __m256i odd0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
        __m256i even1 = _mm256_mul_epu32(c2, m1);
        __m256i odd1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
        __m256i lo0 = _mm256_blend_epi32(even0, _mm256_shuffle_epi32(odd0, 0xB1), 0xAA);
        __m256i hi0 = _mm256_blend_epi32(_mm256_shuffle_epi32(even0, 0xB1), odd0, 0xAA);
        __m256i lo1 = _mm256_blend_epi32(even1, _mm256_shuffle_epi32(odd1, 0xB1), 0xAA);
        __m256i hi1 = _mm256_blend_epi32(_mm256_shuffle_epi32(even1, 0xB1), odd1, 0xAA);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)g->rk0[r]));
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)g->rk1[r]));
        c3 = lo0;
    }
    const __m256i t = _mm256_xor_si256(_mm256_set1_epi32((int)g->threshold), sign);
#define KEEP8(w) ((uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps( \
        _mm256_cmpgt_epi32(t, _mm256_xor_si256((w), sign)))))
    uint32_t keep = _pdep_u32(KEEP8(c0), 0x11111111u) | _pdep_u32(KEEP8(c1), 0x22222222u) |
                    _pdep_u32(KEEP8(c2), 0x44444444u) | _pdep_u32(KEEP8(c3), 0x88888888u);
#undef KEEP8
    return keep;
}

static inline uint64_t gen_group(const gen_state *g, uint64_t block)
{
    if (g->mode != GEN_PHILOX)
        return g->mode == GEN_KEEP_ALL ? ~(uint64_t)0 : 0;
    return (uint64_t)gen_half(g, block) | ((uint64_t)gen_half(g, block + 8) << 32);
}

/* All-ones lanes where the matching bit of `keep` is set. */
static inline __m256 lanes_f32(uint64_t keep, int v)
{
    const __m256i select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i byte = _mm256_set1_epi32((int)((keep >> (8 * v)) & 0xFF));
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(byte, select), select));
}

static inline __m256d lanes_f64(uint64_t keep, int v)
{
    const __m256i select = _mm256_setr_epi64x(1, 2, 4, 8);
    __m256i nibble = _mm256_set1_epi64x((long long)((keep >> (4 * v)) & 0xF));
    return _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(nibble, select), select));
}

/* A short tile falls back to the scalar definition, which it must equal anyway. */
#define FD_DEFINE_SCALE_TILE(T, SUFFIX, VEC, LANES, SET1, LOADU, STOREU, MUL, AND)             \
    static inline void scale_tile_##SUFFIX(const T *x, T *y, uint64_t keep, size_t m, T scale) \
    {                                                                                           \
        if (m == FD_TILE) {                                                                     \
            const VEC s = SET1(scale);                                                          \
            for (int v = 0; v < FD_TILE / LANES; v++)                                           \
                STOREU(y + LANES * v, AND(MUL(LOADU(x + LANES * v), s), lanes_##SUFFIX(keep, v))); \
            return;                                                                             \
        }                                                                                       \
        for (size_t t = 0; t < m; t++)                                                          \
            y[t] = ((keep >> t) & 1) ? x[t] * scale : (T)0;                                     \
    }

FD_DEFINE_SCALE_TILE(float, f32, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
                     _mm256_mul_ps, _mm256_and_ps)
FD_DEFINE_SCALE_TILE(double, f64, __m256d, 4, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
                     _mm256_mul_pd, _mm256_and_pd)

#include "tile_loops.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const fd_kernels *fd_kernels_avx2(void) { return &table; }

#else

const fd_kernels *fd_kernels_avx2(void) { return NULL; }

#endif

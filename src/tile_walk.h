/* The tile walk over a chunk's keep bits, shared by tile_loops.h and variant_loops.h.
 * Included inside a level's target region after it has defined gen_state, gen_init and
 * gen_group (see tile_loops.h). */
#ifndef FASTDROP_TILE_WALK_H
#define FASTDROP_TILE_WALK_H

#include <string.h>

/* Element i of a chunk has word j0 + i, which need not be block aligned, so a tile's
 * bits are the top of one group and the bottom of the next. */
typedef struct {
    gen_state g;
    uint64_t block, current;
    unsigned shift;
} tile_walk;

static inline void walk_init(tile_walk *w, const fd_stream *s, uint64_t j0)
{
    gen_init(&w->g, s);
    w->block = j0 >> 2;
    w->shift = (unsigned)(j0 & 3);
    w->current = gen_group(&w->g, w->block);
}

/* Keep bits of the next tile; need_next says whether a tile follows this one. */
static inline uint64_t walk_next(tile_walk *w, int need_next)
{
    uint64_t next = 0;
    w->block += 16;
    if (w->shift != 0 || need_next)
        next = gen_group(&w->g, w->block);
    uint64_t keep = w->shift ? (w->current >> w->shift) | (next << (64 - w->shift)) : w->current;
    w->current = next;
    return keep;
}

static inline void store_tile_bits(uint8_t *p, uint64_t keep, size_t m)
{
    if (m == FD_TILE)
        memcpy(p, &keep, 8); /* x86 is little-endian: byte b holds elements 8b .. 8b+7 */
    else
        fd_store_bits(p, keep, m);
}

static inline uint64_t load_tile_bits(const uint8_t *p, size_t m)
{
    uint64_t keep;
    if (m != FD_TILE)
        return fd_load_bits(p, m);
    memcpy(&keep, p, 8);
    return keep;
}

#endif

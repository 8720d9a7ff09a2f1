/* Replays the golden cases of tools/cross_check_golden.py through every public C entry
 * point of src/fastdrop.h, at every SIMD level the target has and at 1 and 3 threads,
 * and compares outputs and mask bits bit for bit; then checks the thread pool itself.
 * Built for another architecture or system and run under qemu-user or wine by
 * tools/cross_check; it only needs a C11 compiler and libm.  Prints "N passed, N failed"
 * and exits non-zero on any difference. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fastdrop.h"
#include "threads.h"

enum { PHILOX = 1, FORWARD, SAMPLE, APPLY, FORWARD_OP, GAUSS, BCAST, F32_TO_F16, F16_TO_F32,
       BOX_MULLER };
enum { DT_F32 = 0, DT_F64 = 1, DT_F16 = 2 };
#define MAX_ARRAYS 4
#define GUARD 64 /* bytes after each output that must stay untouched */
#define SENTINEL 0xA5

typedef struct {
    uint32_t kind, dtype;
    uint64_t n, offset, seed, stream, threshold, nbits;
    double params[4];
    uint32_t affine;
    uint64_t run, period;
    uint32_t ndim;
    uint64_t dims[FD_MAX_DIMS], strides[FD_MAX_DIMS];
    uint32_t narrays;
    size_t itemsize[MAX_ARRAYS], count[MAX_ARRAYS];
    unsigned char *array[MAX_ARRAYS];
} record;

static FILE *in;
static long passed, failed;
static int current_level;     /* the level run_case is checking */
#define MAX_LEVEL 8           /* level numbers probed: FD_SCALAR .. FD_NEON and spares */
static long level_checks[MAX_LEVEL];

static int host_is_little(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static void die(const char *what)
{
    fprintf(stderr, "cross_check_driver: %s\n", what);
    exit(2);
}

static void read_exact(void *p, size_t nbytes)
{
    if (nbytes && fread(p, 1, nbytes, in) != nbytes)
        die("golden file is truncated");
}

/* The file is little-endian; items are swapped in place on a big-endian host. */
static void to_host(unsigned char *p, size_t itemsize, size_t count)
{
    if (host_is_little() || itemsize == 1)
        return;
    for (size_t i = 0; i < count; i++, p += itemsize)
        for (size_t a = 0, b = itemsize - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

static uint64_t u64(void)
{
    unsigned char b[8];
    read_exact(b, 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static uint32_t u32(void)
{
    unsigned char b[4];
    read_exact(b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static double f64(void)
{
    uint64_t bits = u64();
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

static int read_record(record *r)
{
    unsigned char first[4];
    if (fread(first, 1, 4, in) != 4)
        return 0;
    r->kind = (uint32_t)first[0] | (uint32_t)first[1] << 8 | (uint32_t)first[2] << 16 |
              (uint32_t)first[3] << 24;
    r->dtype = u32();
    r->n = u64();
    r->offset = u64();
    r->seed = u64();
    r->stream = u64();
    r->threshold = u64();
    r->nbits = u64();
    for (int i = 0; i < 4; i++)
        r->params[i] = f64();
    r->affine = u32();
    r->run = u64();
    r->period = u64();
    r->ndim = u32();
    if (r->ndim > FD_MAX_DIMS)
        die("too many dimensions");
    for (uint32_t d = 0; d < r->ndim; d++) {
        r->dims[d] = u64();
        r->strides[d] = u64();
    }
    r->narrays = u32();
    if (r->narrays > MAX_ARRAYS)
        die("too many arrays");
    for (uint32_t a = 0; a < r->narrays; a++) {
        r->itemsize[a] = u32();
        r->count[a] = u64();
        size_t nbytes = r->itemsize[a] * r->count[a];
        r->array[a] = malloc(nbytes + 1);
        if (!r->array[a])
            die("out of memory");
        read_exact(r->array[a], nbytes);
        to_host(r->array[a], r->itemsize[a], r->count[a]);
    }
    return 1;
}

static void free_record(record *r)
{
    for (uint32_t a = 0; a < r->narrays; a++)
        free(r->array[a]);
}

/* An output buffer filled with a sentinel, with a guard zone behind it. */
static unsigned char *output(size_t nbytes)
{
    unsigned char *p = malloc(nbytes + GUARD);
    if (!p)
        die("out of memory");
    memset(p, SENTINEL, nbytes + GUARD);
    return p;
}

static void check(const record *r, const char *what, int level, int threads,
                  const unsigned char *got, size_t got_bytes, int expected_array)
{
    const unsigned char *want = r->array[expected_array];
    size_t want_bytes = r->itemsize[expected_array] * r->count[expected_array];
    int ok = got_bytes == want_bytes && memcmp(got, want, want_bytes) == 0;
    for (size_t g = 0; ok && g < GUARD; g++)
        ok = got[got_bytes + g] == SENTINEL;
    level_checks[current_level]++;
    if (ok) {
        passed++;
        return;
    }
    failed++;
    if (failed <= 20) {
        size_t first = 0;
        while (first < want_bytes && first < got_bytes && got[first] == want[first])
            first++;
        fprintf(stderr, "FAIL %s kind=%u dtype=%u n=%llu offset=%llu level=%d threads=%d: "
                        "first differing byte %zu of %zu\n", what, r->kind, r->dtype,
                (unsigned long long)r->n, (unsigned long long)r->offset, level, threads, first,
                want_bytes);
    }
}

static fd_stream stream_of(const record *r)
{
    fd_stream s;
    s.k0 = (uint32_t)r->seed;
    s.k1 = (uint32_t)(r->seed >> 32);
    s.c2 = (uint32_t)r->stream;
    s.c3 = (uint32_t)(r->stream >> 32);
    s.threshold = r->threshold;
    return s;
}

static size_t elem(uint32_t dtype) { return dtype == DT_F64 ? 8 : dtype == DT_F32 ? 4 : 2; }

static void run_case(const record *r, int level, int threads)
{
    size_t n = (size_t)r->n, es = elem(r->dtype), mbytes = (n + 7) / 8;
    fd_stream s = stream_of(r);
    const void *x = r->array[0];
    unsigned char *y = output(n * es), *bits = output(mbytes);
    switch (r->kind) {
    case FORWARD:
        if (n == 0)
            break; /* the bindings return before calling C on empty arrays */
        if (r->dtype == DT_F32) {
            fd_forward_f32(x, (float *)y, bits, n, r->offset, &s, (float)r->params[0], threads);
            check(r, "forward_f32", level, threads, y, n * es, 1);
            memset(y, SENTINEL, n * es);
            fd_forward_f32(x, (float *)y, NULL, n, r->offset, &s, (float)r->params[0], threads);
        } else {
            fd_forward_f64(x, (double *)y, bits, n, r->offset, &s, r->params[0], threads);
            check(r, "forward_f64", level, threads, y, n * es, 1);
            memset(y, SENTINEL, n * es);
            fd_forward_f64(x, (double *)y, NULL, n, r->offset, &s, r->params[0], threads);
        }
        check(r, "forward without bits", level, threads, y, n * es, 1);
        check(r, "forward bits", level, threads, bits, mbytes, 2);
        break;
    case APPLY:
        if (n == 0)
            break;
        if (r->dtype == DT_F32)
            fd_apply_f32(x, (float *)y, r->array[1], n, (float)r->params[0], threads);
        else
            fd_apply_f64(x, (double *)y, r->array[1], n, r->params[0], threads);
        check(r, "apply", level, threads, y, n * es, 2);
        break;
    case SAMPLE:
        if (n == 0)
            break;
        fd_sample(bits, n, r->offset, &s, threads);
        check(r, "sample", level, threads, bits, mbytes, 0);
        break;
    case FORWARD_OP: {
        if (n == 0)
            break;
        fd_op_f32 op32 = {(float)r->params[0], (float)r->params[1], (float)r->params[2],
                          (int)r->affine};
        fd_op_f64 op64 = {r->params[0], r->params[1], r->params[2], (int)r->affine};
        if (r->dtype == DT_F32)
            fd_forward_op_f32(x, (float *)y, bits, n, r->offset, &s, &op32, threads);
        else if (r->dtype == DT_F64)
            fd_forward_op_f64(x, (double *)y, bits, n, r->offset, &s, &op64, threads);
        else
            fd_forward_op_f16(x, (uint16_t *)y, bits, n, r->offset, &s, &op32, threads);
        check(r, "forward_op", level, threads, y, n * es, 1);
        check(r, "forward_op bits", level, threads, bits, mbytes, 2);
        break;
    }
    case GAUSS: {
        if (n == 0)
            break;
        double sigma32 = (double)(float)r->params[3]; /* float32/float16 compute in float32 */
        if (r->dtype == DT_F32)
            fd_gauss_f32(x, (float *)y, n, r->offset, &s, sigma32, threads);
        else if (r->dtype == DT_F64)
            fd_gauss_f64(x, (double *)y, n, r->offset, &s, r->params[3], threads);
        else
            fd_gauss_f16(x, (uint16_t *)y, n, r->offset, &s, sigma32, threads);
        check(r, "gauss", level, threads, y, n * es, 1);
        break;
    }
    case BCAST: {
        fd_bcast b;
        memset(&b, 0, sizeof b);
        b.bits = r->array[1];
        b.nbits = r->nbits;
        b.run = (size_t)r->run;
        b.period = (size_t)r->period;
        b.ndim = (int)r->ndim;
        for (uint32_t d = 0; d < r->ndim; d++) {
            b.dims[d] = (size_t)r->dims[d];
            b.strides[d] = r->strides[d];
        }
        fd_op_f32 op32 = {(float)r->params[0], 0.0f, 0.0f, 0};
        fd_op_f64 op64 = {r->params[0], 0.0, 0.0, 0};
        if (r->dtype == DT_F32)
            fd_bcast_f32(x, (float *)y, n, &b, &op32, threads);
        else if (r->dtype == DT_F64)
            fd_bcast_f64(x, (double *)y, n, &b, &op64, threads);
        else
            fd_bcast_f16(x, (uint16_t *)y, n, &b, &op32, threads);
        check(r, "bcast", level, threads, y, n * es, 2);
        break;
    }
    case F32_TO_F16:
        fd_f32_to_f16_array(x, (uint16_t *)y, n);
        check(r, "f32_to_f16", level, threads, y, n * 2, 1);
        break;
    case F16_TO_F32:
        free(y);
        y = output(n * 4);
        fd_f16_to_f32_array(x, (float *)y, n);
        check(r, "f16_to_f32", level, threads, y, n * 4, 1);
        break;
    case BOX_MULLER: {
        const uint32_t *w0 = (const uint32_t *)r->array[0], *w1 = (const uint32_t *)r->array[1];
        size_t zs = r->dtype == DT_F64 ? 8 : 4;
        free(y);
        y = output(2 * n * zs);
        for (size_t i = 0; i < n; i++) {
            if (r->dtype == DT_F64)
                fd_box_muller_pair(w0[i], w1[i], (double *)y + 2 * i);
            else
                fd_box_muller_pair_f32(w0[i], w1[i], (float *)y + 2 * i);
        }
        check(r, "box_muller", level, threads, y, 2 * n * zs, 2);
        break;
    }
    case PHILOX: {
        uint32_t out[4 + GUARD / 4];
        memset(out, SENTINEL, sizeof out);
        fd_philox_block((const uint32_t *)r->array[0], (const uint32_t *)r->array[1], out);
        check(r, "philox", level, threads, (const unsigned char *)out, 16, 2);
        break;
    }
    default:
        die("unknown case kind");
    }
    free(y);
    free(bits);
}

/* -- the pool: every chunk of a job runs once, and the threads asked for take part -------- */

enum { POOL_CHUNKS = 40, POOL_MAX_SEEN = 16 };
static _Atomic int chunk_runs[POOL_CHUNKS];
static _Atomic size_t chunk_len_sum;
static _Atomic uintptr_t threads_seen[POOL_MAX_SEEN];
static _Atomic int nthreads_seen;
static _Thread_local char thread_marker; /* its address names the thread */

static void note_thread(void)
{
    uintptr_t me = (uintptr_t)&thread_marker;
    for (int i = 0; i < POOL_MAX_SEEN; i++) {
        uintptr_t expected = 0;
        if (atomic_compare_exchange_strong(&threads_seen[i], &expected, me)) {
            atomic_fetch_add(&nthreads_seen, 1);
            return;
        }
        if (expected == me)
            return;
    }
}

/* The chunks wait (10 s at most) for every thread asked for to turn up, so a pool whose
 * workers never run a chunk fails here instead of passing on the calling thread alone. */
static void pool_chunk(const void *ctx, size_t start, size_t len)
{
    int wanted = *(const int *)ctx;
    note_thread();
    for (size_t c = start / FD_CHUNK; c * FD_CHUNK < start + len && c < POOL_CHUNKS; c++)
        atomic_fetch_add(&chunk_runs[c], 1);
    atomic_fetch_add(&chunk_len_sum, len);
    time_t started = time(NULL);
    while (atomic_load(&nthreads_seen) < wanted && time(NULL) - started < 10)
        ;
}

static void check_pool(int threads)
{
    const size_t n = POOL_CHUNKS * FD_CHUNK - 5; /* the last chunk is short */
    for (int i = 0; i < POOL_CHUNKS; i++)
        atomic_store(&chunk_runs[i], 0);
    for (int i = 0; i < POOL_MAX_SEEN; i++)
        atomic_store(&threads_seen[i], 0);
    atomic_store(&nthreads_seen, 0);
    atomic_store(&chunk_len_sum, 0);
    fd_parallel_for(n, threads, pool_chunk, &threads);
    int once = atomic_load(&chunk_len_sum) == n;
    for (int i = 0; i < POOL_CHUNKS; i++)
        once = once && atomic_load(&chunk_runs[i]) == 1;
    int took_part = atomic_load(&nthreads_seen);
    int ok = once && took_part == threads;
    printf("pool: %d thread%s asked, %d took part, %d chunks of work %s\n", threads,
           threads == 1 ? "" : "s", took_part, POOL_CHUNKS, once ? "each done once" : "NOT each done once");
    if (ok)
        passed++;
    else {
        failed++;
        fprintf(stderr, "FAIL pool with %d threads\n", threads);
    }
}

static const char *level_name(int level)
{
    static const char *const names[] = {"scalar", "avx2", "avx512", "neon"}; /* fastdrop.h */
    return level >= 0 && level < (int)(sizeof names / sizeof *names) ? names[level] : "unknown";
}

int main(int argc, char **argv)
{
    int levels[MAX_LEVEL], nlevels = 0;
    if (argc == 2 && strcmp(argv[1], "--default-threads") == 0) {
        printf("%d\n", fd_default_threads()); /* OMP_NUM_THREADS, else the CPUs */
        return 0;
    }
    if (argc != 2)
        die("usage: cross_check_driver GOLDEN_FILE | --default-threads");
    in = fopen(argv[1], "rb");
    if (!in)
        die("cannot open the golden file");
    char magic[8];
    read_exact(magic, 8);
    if (memcmp(magic, "FDXC0001", 8) != 0)
        die("not a golden file of this version");
    /* The levels this target runs: level numbers are not ordered across architectures,
     * so every number is offered and fd_set_level refuses the ones it does not have. */
    for (int level = 0; level < MAX_LEVEL; level++)
        if (fd_set_level(level) == 0)
            levels[nlevels++] = level;
    printf("cross_check_driver: %s-endian, best level %s, runs", host_is_little() ? "little" : "big",
           level_name(fd_cpu_level()));
    for (int i = 0; i < nlevels; i++)
        printf(" %s", level_name(levels[i]));
    printf("\n");
    record r;
    while (read_record(&r)) {
        for (int i = 0; i < nlevels; i++) {
            current_level = levels[i];
            if (fd_set_level(current_level) != 0)
                die("a level accepted before is refused now");
            run_case(&r, current_level, 1);
            if (r.n > 100000)
                run_case(&r, current_level, 3);
        }
        free_record(&r);
    }
    fclose(in);
    if (fd_have_threads()) {
        for (int round = 0; round < 2; round++) /* the second job reuses the pool's workers */
            check_pool(3);
        check_pool(1);
    } else
        printf("pool: none in this build\n");
    for (int i = 0; i < nlevels; i++)
        printf("level %s: %ld checks\n", level_name(levels[i]), level_checks[levels[i]]);
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed ? 1 : 0;
}

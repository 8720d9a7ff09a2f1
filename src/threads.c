/* The help-first thread pool (see threads.h for why it is not an OpenMP region). */
#define _GNU_SOURCE
#include "threads.h"

#include <stdint.h>
#include <stdlib.h>

#if defined(_WIN32) || defined(FASTDROP_NO_THREADS)

void fd_parallel_for(size_t n, int nthreads, fd_chunk_fn fn, const void *ctx)
{
    (void)nthreads;
    if (n > 0)
        fn(ctx, 0, n);
}

int fd_have_threads(void) { return 0; }
int fd_default_threads(void) { return 1; }

#else

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define FD_MAX_WORKERS 255
#define FD_SPIN_NS 30000 /* a worker polls this long for the next job before sleeping */

static pthread_mutex_t submit_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;   /* guards `job`, workers */
static pthread_cond_t work_posted = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work_finished = PTHREAD_COND_INITIALIZER;

static struct {
    fd_chunk_fn fn;
    const void *ctx;
    size_t n, nchunks;
    uint32_t generation; /* bumped for every job */
    int wanted;          /* workers with id < wanted take part */
} job;

/* (generation << 32) | index of the next unclaimed chunk: claiming a chunk of an old
 * job fails, so a worker that wakes late can never touch a newer job. */
static _Atomic uint64_t next_ticket;
static _Atomic size_t chunks_done;
static _Atomic uint32_t posted_generation;
static int nworkers;
static int atfork_registered;

static void run_chunks(uint32_t generation, fd_chunk_fn fn, const void *ctx, size_t n,
                       size_t nchunks)
{
    for (;;) {
        uint64_t ticket = atomic_load_explicit(&next_ticket, memory_order_acquire);
        do {
            if ((uint32_t)(ticket >> 32) != generation || (ticket & 0xFFFFFFFFu) >= nchunks)
                return;
        } while (!atomic_compare_exchange_weak_explicit(&next_ticket, &ticket, ticket + 1,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire));
        size_t start = (size_t)(ticket & 0xFFFFFFFFu) * FD_CHUNK;
        fn(ctx, start, n - start < FD_CHUNK ? n - start : FD_CHUNK);
        if (atomic_fetch_add_explicit(&chunks_done, 1, memory_order_acq_rel) + 1 == nchunks) {
            pthread_mutex_lock(&pool_lock);
            pthread_cond_signal(&work_finished);
            pthread_mutex_unlock(&pool_lock);
        }
    }
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint32_t seen = atomic_load(&posted_generation);
    for (;;) {
        /* Back-to-back calls find the worker awake; an idle pool costs nothing. */
        uint64_t give_up = now_ns() + FD_SPIN_NS;
        while (atomic_load_explicit(&posted_generation, memory_order_acquire) == seen &&
               now_ns() < give_up)
            sched_yield();
        pthread_mutex_lock(&pool_lock);
        while (job.generation == seen)
            pthread_cond_wait(&work_posted, &pool_lock);
        seen = job.generation;
        int take_part = id < job.wanted;
        fd_chunk_fn fn = job.fn;
        const void *ctx = job.ctx;
        size_t n = job.n, nchunks = job.nchunks;
        pthread_mutex_unlock(&pool_lock);
        if (take_part)
            run_chunks(seen, fn, ctx, n, nchunks);
    }
    return NULL;
}

/* In a forked child the workers are gone and the locks may be held by threads that are
 * gone too: start over with an empty pool. */
static void reset_after_fork(void)
{
    pthread_mutex_init(&submit_lock, NULL);
    pthread_mutex_init(&pool_lock, NULL);
    pthread_cond_init(&work_posted, NULL);
    pthread_cond_init(&work_finished, NULL);
    nworkers = 0;
}

/* Called with pool_lock held. */
static void grow_pool(int wanted)
{
    if (!atfork_registered) {
        pthread_atfork(NULL, NULL, reset_after_fork);
        atfork_registered = 1;
    }
    while (nworkers < wanted && nworkers < FD_MAX_WORKERS) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker_main, (void *)(intptr_t)nworkers);
        pthread_attr_destroy(&attr);
        if (failed)
            break; /* fewer helpers; the caller still does all the work that is left */
        nworkers++;
    }
}

void fd_parallel_for(size_t n, int nthreads, fd_chunk_fn fn, const void *ctx)
{
    size_t nchunks = (n + FD_CHUNK - 1) / FD_CHUNK;
    if (nthreads <= 1 || n < FD_PARALLEL_MIN || nchunks > 0xFFFFFFFFu ||
        pthread_mutex_trylock(&submit_lock) != 0) {
        if (n > 0)
            fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&pool_lock);
    grow_pool(nthreads - 1);
    uint32_t generation = job.generation + 1;
    job.fn = fn;
    job.ctx = ctx;
    job.n = n;
    job.nchunks = nchunks;
    job.wanted = nthreads - 1;
    job.generation = generation;
    atomic_store(&chunks_done, 0);
    atomic_store(&next_ticket, (uint64_t)generation << 32);
    atomic_store_explicit(&posted_generation, generation, memory_order_release);
    pthread_cond_broadcast(&work_posted);
    pthread_mutex_unlock(&pool_lock);

    run_chunks(generation, fn, ctx, n, nchunks);

    /* Only chunks that workers are in the middle of can be left. */
    if (atomic_load_explicit(&chunks_done, memory_order_acquire) < nchunks) {
        pthread_mutex_lock(&pool_lock);
        while (atomic_load_explicit(&chunks_done, memory_order_acquire) < nchunks)
            pthread_cond_wait(&work_finished, &pool_lock);
        pthread_mutex_unlock(&pool_lock);
    }
    pthread_mutex_unlock(&submit_lock);
}

int fd_have_threads(void) { return 1; }

static int cpus_available(void)
{
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int count = CPU_COUNT(&set);
        if (count > 0)
            return count;
    }
#endif
    long count = sysconf(_SC_NPROCESSORS_ONLN);
    return count > 0 ? (int)count : 1;
}

int fd_default_threads(void)
{
    static int cached = 0;
    if (cached == 0) {
        /* OMP_NUM_THREADS, as OpenMP programs read it: the first number of the list. */
        const char *env = getenv("OMP_NUM_THREADS");
        long requested = env ? strtol(env, NULL, 10) : 0;
        int threads = requested > 0 ? (int)(requested < 1024 ? requested : 1024) : cpus_available();
        cached = threads;
    }
    return cached;
}

#endif

/* The help-first thread pool (see threads.h for why it is not an OpenMP region).  One
 * algorithm over two thin layers of primitives: POSIX threads with C11 atomics, and Win32
 * threads with SRW locks, condition variables and Interlocked operations (the same source
 * for MSVC and mingw-w64, so what runs under wine is what a Windows wheel runs). */
#define _GNU_SOURCE
#include "threads.h"

#include <stdint.h>
#include <stdlib.h>

#if defined(FASTDROP_NO_THREADS)

void fd_parallel_for(size_t n, int nthreads, fd_chunk_fn fn, const void *ctx)
{
    (void)nthreads;
    if (n > 0)
        fn(ctx, 0, n);
}

int fd_have_threads(void) { return 0; }
int fd_default_threads(void) { return 1; }

#else

#define FD_MAX_WORKERS 255
#define FD_SPIN_NS 30000 /* a worker polls this long for the next job before sleeping */

#if defined(_WIN32)

#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601 /* GetActiveProcessorCount: Windows 7 */
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

typedef SRWLOCK fd_mutex;
typedef CONDITION_VARIABLE fd_cond;
#define FD_MUTEX_INIT SRWLOCK_INIT
#define FD_COND_INIT CONDITION_VARIABLE_INIT

static void mutex_lock(fd_mutex *m) { AcquireSRWLockExclusive(m); }
static int mutex_trylock(fd_mutex *m) { return TryAcquireSRWLockExclusive(m) ? 0 : -1; }
static void mutex_unlock(fd_mutex *m) { ReleaseSRWLockExclusive(m); }
static void cond_wait(fd_cond *c, fd_mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static void cond_signal(fd_cond *c) { WakeConditionVariable(c); }
static void cond_broadcast(fd_cond *c) { WakeAllConditionVariable(c); }
static void yield_cpu(void) { SwitchToThread(); }

/* Every operation is InterlockedCompareExchange64, a full barrier (at least as strong as
 * the orders the POSIX layer asks for) that every Windows compiler and target has, 32-bit
 * x86 included.  A load is a compare-exchange that never changes the value. */
typedef LONG64 volatile fd_atomic64;
static uint64_t atomic_get(fd_atomic64 *a) { return (uint64_t)InterlockedCompareExchange64(a, 0, 0); }
static int atomic_cas(fd_atomic64 *a, uint64_t *expected, uint64_t desired)
{
    uint64_t seen = (uint64_t)InterlockedCompareExchange64(a, (LONG64)desired, (LONG64)*expected);
    if (seen == *expected)
        return 1;
    *expected = seen;
    return 0;
}
static void atomic_put(fd_atomic64 *a, uint64_t v)
{
    uint64_t old = atomic_get(a);
    while (!atomic_cas(a, &old, v))
        ;
}
static uint64_t atomic_add(fd_atomic64 *a, uint64_t v) /* returns the new value */
{
    uint64_t old = atomic_get(a);
    while (!atomic_cas(a, &old, old + v))
        ;
    return old + v;
}

static uint64_t now_ns(void)
{
    static fd_atomic64 frequency; /* counts per second, fixed at boot */
    uint64_t hz = atomic_get(&frequency);
    if (hz == 0) {
        LARGE_INTEGER f;
        QueryPerformanceFrequency(&f);
        hz = (uint64_t)f.QuadPart;
        atomic_put(&frequency, hz);
    }
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    uint64_t ticks = (uint64_t)t.QuadPart;
    return ticks / hz * 1000000000u + ticks % hz * 1000000000u / hz;
}

static void worker_main(int id);

static DWORD WINAPI worker_entry(LPVOID arg)
{
    worker_main((int)(intptr_t)arg);
    return 0;
}

static int start_worker(int id)
{
    HANDLE thread = CreateThread(NULL, 0, worker_entry, (LPVOID)(intptr_t)id, 0, NULL);
    if (thread == NULL)
        return -1;
    CloseHandle(thread); /* detached: the worker lives as long as the process */
    return 0;
}

static void before_first_worker(void) {}

/* The processors of the process's affinity mask.  A process whose threads span several
 * processor groups (Windows 11 and Server 2022 by default, on machines with more than 64
 * logical processors) has no single mask: there it may use every active processor. */
static int cpus_available(void)
{
    DWORD_PTR process_mask = 0, system_mask = 0;
    if (GetProcessAffinityMask(GetCurrentProcess(), &process_mask, &system_mask)) {
        int count = 0;
        for (; process_mask; process_mask &= process_mask - 1)
            count++;
        if (count > 0)
            return count;
    }
    DWORD active = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    return active > 0 ? (int)active : 1;
}

#else /* POSIX */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

typedef pthread_mutex_t fd_mutex;
typedef pthread_cond_t fd_cond;
#define FD_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define FD_COND_INIT PTHREAD_COND_INITIALIZER

static void mutex_lock(fd_mutex *m) { pthread_mutex_lock(m); }
static int mutex_trylock(fd_mutex *m) { return pthread_mutex_trylock(m); }
static void mutex_unlock(fd_mutex *m) { pthread_mutex_unlock(m); }
static void cond_wait(fd_cond *c, fd_mutex *m) { pthread_cond_wait(c, m); }
static void cond_signal(fd_cond *c) { pthread_cond_signal(c); }
static void cond_broadcast(fd_cond *c) { pthread_cond_broadcast(c); }
static void yield_cpu(void) { sched_yield(); }

typedef _Atomic uint64_t fd_atomic64;
static uint64_t atomic_get(fd_atomic64 *a) { return atomic_load_explicit(a, memory_order_acquire); }
static void atomic_put(fd_atomic64 *a, uint64_t v) { atomic_store(a, v); }
static uint64_t atomic_add(fd_atomic64 *a, uint64_t v)
{
    return atomic_fetch_add_explicit(a, v, memory_order_acq_rel) + v;
}
static int atomic_cas(fd_atomic64 *a, uint64_t *expected, uint64_t desired)
{
    return atomic_compare_exchange_weak_explicit(a, expected, desired, memory_order_acq_rel,
                                                 memory_order_acquire);
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void worker_main(int id);

static void *worker_entry(void *arg)
{
    worker_main((int)(intptr_t)arg);
    return NULL;
}

static int start_worker(int id)
{
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&thread, &attr, worker_entry, (void *)(intptr_t)id);
    pthread_attr_destroy(&attr);
    return failed ? -1 : 0;
}

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

#endif

static fd_mutex submit_lock = FD_MUTEX_INIT; /* one job at a time */
static fd_mutex pool_lock = FD_MUTEX_INIT;   /* guards `job`, workers */
static fd_cond work_posted = FD_COND_INIT;
static fd_cond work_finished = FD_COND_INIT;

static struct {
    fd_chunk_fn fn;
    const void *ctx;
    size_t n, nchunks;
    uint32_t generation; /* bumped for every job */
    int wanted;          /* workers with id < wanted take part */
} job;

/* (generation << 32) | index of the next unclaimed chunk: claiming a chunk of an old
 * job fails, so a worker that wakes late can never touch a newer job. */
static fd_atomic64 next_ticket;
static fd_atomic64 chunks_done;
static fd_atomic64 posted_generation;
static int nworkers;

static void run_chunks(uint32_t generation, fd_chunk_fn fn, const void *ctx, size_t n,
                       size_t nchunks)
{
    for (;;) {
        uint64_t ticket = atomic_get(&next_ticket);
        do {
            if ((uint32_t)(ticket >> 32) != generation || (ticket & 0xFFFFFFFFu) >= nchunks)
                return;
        } while (!atomic_cas(&next_ticket, &ticket, ticket + 1));
        size_t start = (size_t)(ticket & 0xFFFFFFFFu) * FD_CHUNK;
        fn(ctx, start, n - start < FD_CHUNK ? n - start : FD_CHUNK);
        if (atomic_add(&chunks_done, 1) == nchunks) {
            mutex_lock(&pool_lock);
            cond_signal(&work_finished);
            mutex_unlock(&pool_lock);
        }
    }
}

static void worker_main(int id)
{
    uint32_t seen = (uint32_t)atomic_get(&posted_generation);
    for (;;) {
        /* Back-to-back calls find the worker awake; an idle pool costs nothing. */
        uint64_t give_up = now_ns() + FD_SPIN_NS;
        while ((uint32_t)atomic_get(&posted_generation) == seen && now_ns() < give_up)
            yield_cpu();
        mutex_lock(&pool_lock);
        while (job.generation == seen)
            cond_wait(&work_posted, &pool_lock);
        seen = job.generation;
        int take_part = id < job.wanted;
        fd_chunk_fn fn = job.fn;
        const void *ctx = job.ctx;
        size_t n = job.n, nchunks = job.nchunks;
        mutex_unlock(&pool_lock);
        if (take_part)
            run_chunks(seen, fn, ctx, n, nchunks);
    }
}

#if !defined(_WIN32)
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

static void before_first_worker(void)
{
    static int atfork_registered;
    if (!atfork_registered) {
        pthread_atfork(NULL, NULL, reset_after_fork);
        atfork_registered = 1;
    }
}
#endif

/* Called with pool_lock held. */
static void grow_pool(int wanted)
{
    before_first_worker();
    while (nworkers < wanted && nworkers < FD_MAX_WORKERS) {
        if (start_worker(nworkers) != 0)
            break; /* fewer helpers; the caller still does all the work that is left */
        nworkers++;
    }
}

void fd_parallel_for(size_t n, int nthreads, fd_chunk_fn fn, const void *ctx)
{
    size_t nchunks = (n + FD_CHUNK - 1) / FD_CHUNK;
    if (nthreads <= 1 || n < FD_PARALLEL_MIN || nchunks > 0xFFFFFFFFu ||
        mutex_trylock(&submit_lock) != 0) {
        if (n > 0)
            fn(ctx, 0, n);
        return;
    }
    mutex_lock(&pool_lock);
    grow_pool(nthreads - 1);
    uint32_t generation = job.generation + 1;
    job.fn = fn;
    job.ctx = ctx;
    job.n = n;
    job.nchunks = nchunks;
    job.wanted = nthreads - 1;
    job.generation = generation;
    atomic_put(&chunks_done, 0);
    atomic_put(&next_ticket, (uint64_t)generation << 32);
    atomic_put(&posted_generation, generation);
    cond_broadcast(&work_posted);
    mutex_unlock(&pool_lock);

    run_chunks(generation, fn, ctx, n, nchunks);

    /* Only chunks that workers are in the middle of can be left. */
    if (atomic_get(&chunks_done) < nchunks) {
        mutex_lock(&pool_lock);
        while (atomic_get(&chunks_done) < nchunks)
            cond_wait(&work_finished, &pool_lock);
        mutex_unlock(&pool_lock);
    }
    mutex_unlock(&submit_lock);
}

int fd_have_threads(void) { return 1; }

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

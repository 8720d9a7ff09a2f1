/* A small "help-first" thread pool for the kernels.
 *
 * Why not an OpenMP parallel region: its closing barrier waits for every thread to turn
 * up, so on a machine whose cores are busy (shared CI boxes, a trainer whose BLAS threads
 * spin between GEMMs) each call waited milliseconds for the OS to schedule the second
 * thread - measured 6 ms for a 2^16-element call that takes 30 us on one thread.  Here
 * the calling thread takes chunks itself and returns as soon as every chunk is done:
 * workers that wake late find nothing left and go back to sleep.  A call made while the
 * pool serves another thread runs on the caller alone.  Chunks are multiples of
 * FD_CHUNK_ALIGN elements, so no two threads ever write the same mask byte, and each
 * chunk reproduces its slice of the one random stream exactly. */
#ifndef FASTDROP_THREADS_H
#define FASTDROP_THREADS_H

#include <stddef.h>

#define FD_CHUNK_ALIGN ((size_t)512)
#define FD_CHUNK ((size_t)1 << 16)           /* elements per chunk handed to a thread */
#define FD_PARALLEL_MIN ((size_t)1 << 18)    /* below this, the caller's thread only */

typedef void (*fd_chunk_fn)(const void *ctx, size_t start, size_t len);

/* fn(ctx, start, len) over [0, n) in chunks, on up to nthreads threads (the caller's
 * included); returns when all of [0, n) is done. */
void fd_parallel_for(size_t n, int nthreads, fd_chunk_fn fn, const void *ctx);

int fd_have_threads(void);   /* 1 if this build has the thread pool (POSIX or Win32 threads) */
int fd_default_threads(void); /* OMP_NUM_THREADS if set, else the CPUs this process may use */

#endif

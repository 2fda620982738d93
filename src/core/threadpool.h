/* threadpool.h - the fixed-size thread pool every module shares.
 *
 * A pool of N workers runs row-band loops: ls_pool_parallel_for(pool, rows,
 * fn, ctx) splits [0, rows) into min(N, rows) contiguous bands of rows/bands
 * rows each, the last band taking the remainder, and calls fn once per band.
 * The partition depends only on (rows, N), never on timing, so a kernel that
 * writes each row from its own band gives identical bytes for any schedule.
 *
 * The calling thread works on its own loop while it waits, so a pool of N
 * has N-1 background threads, nested loops cannot deadlock, and several
 * threads (sessions) may run loops on one pool at the same time.
 *
 * ls_pool_start / ls_pool_wait run a loop asynchronously: the pipeline uses
 * them to overlap stages (compositing batch k-1 while the UNet runs batch k).
 */
#ifndef LS_CORE_THREADPOOL_H
#define LS_CORE_THREADPOOL_H

#include "core/error.h"

typedef struct ls_pool ls_pool;

/* fn processes rows [begin, end); band is its index in 0..n_bands-1. */
typedef void (*ls_band_fn)(void *ctx, int begin, int end, int band);

/* A loop in flight; storage is the caller's (no allocation per loop). */
typedef struct ls_pool_job {
    ls_band_fn fn;
    void *ctx;
    int rows, n_bands;
    int next_band;   /* next band to claim; guarded by the pool lock */
    int done_bands;  /* bands finished; guarded by the pool lock */
    struct ls_pool_job *next_job;
} ls_pool_job;

/* n_threads in 1..1024 total workers (the caller counts as one); *out is NULL on failure. */
int ls_pool_create(int n_threads, ls_pool **out, ls_error *err);
void ls_pool_destroy(ls_pool *pool);
int ls_pool_threads(const ls_pool *pool);

/* Bands for a loop of `rows` rows on `workers` workers: min(workers, rows). */
int ls_band_count(int rows, int workers);
/* Row range [*begin, *end) of band `band` out of n_bands over `rows`. */
void ls_band_range(int rows, int n_bands, int band, int *begin, int *end);

/* Runs fn over [0, rows) in bands and returns when all are done.
 * rows <= 0 does nothing. A NULL pool runs everything on the caller. */
void ls_pool_parallel_for(ls_pool *pool, int rows, ls_band_fn fn, void *ctx);

/* Same with an explicit band count (1..rows), for loops whose bands must not
 * depend on the pool size. */
void ls_pool_parallel_for_bands(ls_pool *pool, int rows, int n_bands, ls_band_fn fn,
                                void *ctx);

/* Starts a loop without waiting; job must stay valid until ls_pool_wait. */
void ls_pool_start(ls_pool *pool, ls_pool_job *job, int rows, int n_bands, ls_band_fn fn,
                   void *ctx);
/* Helps run job's bands, then blocks until every band has finished. */
void ls_pool_wait(ls_pool *pool, ls_pool_job *job);

#endif

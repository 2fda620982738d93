#include "core/threadpool.h"

#include <pthread.h>
#include <stdlib.h>

struct ls_pool {
    int n_threads;
    pthread_t *threads;
    int n_started;
    pthread_mutex_t lock;
    pthread_cond_t work_cv;  /* a job with unclaimed bands was queued */
    pthread_cond_t done_cv;  /* some band finished */
    ls_pool_job *head, *tail; /* jobs with unclaimed bands, FIFO */
    int stopping;
};

int ls_band_count(int rows, int workers)
{
    if (rows <= 0) return 0;
    if (workers < 1) workers = 1;
    return workers < rows ? workers : rows;
}

void ls_band_range(int rows, int n_bands, int band, int *begin, int *end)
{
    int per = rows / n_bands;
    *begin = band * per;
    *end = band == n_bands - 1 ? rows : *begin + per;
}

/* Claims the next band of the first queued job; pool lock held.
 * Returns the job (or NULL) and the band in *band. */
static ls_pool_job *claim_band(ls_pool *pool, int *band)
{
    ls_pool_job *job = pool->head;
    if (!job) return NULL;
    *band = job->next_band++;
    if (job->next_band == job->n_bands) { /* fully claimed: dequeue */
        pool->head = job->next_job;
        if (!pool->head) pool->tail = NULL;
    }
    return job;
}

static void run_band(ls_pool *pool, ls_pool_job *job, int band)
{
    int begin, end;
    ls_band_range(job->rows, job->n_bands, band, &begin, &end);
    job->fn(job->ctx, begin, end, band);
    pthread_mutex_lock(&pool->lock);
    if (++job->done_bands == job->n_bands) pthread_cond_broadcast(&pool->done_cv);
    pthread_mutex_unlock(&pool->lock);
}

static void *worker_main(void *arg)
{
    ls_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        int band;
        ls_pool_job *job;
        while (!(job = claim_band(pool, &band)) && !pool->stopping)
            pthread_cond_wait(&pool->work_cv, &pool->lock);
        if (!job) break;
        pthread_mutex_unlock(&pool->lock);
        run_band(pool, job, band);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

int ls_pool_create(int n_threads, ls_pool **out, ls_error *err)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return ls_error_set(err, LS_ERR_RANGE, "thread count %d outside 1..1024", n_threads);
    ls_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate thread pool");
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_cv, NULL);
    pthread_cond_init(&pool->done_cv, NULL);
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads - 1, sizeof *pool->threads);
        if (!pool->threads) {
            ls_pool_destroy(pool);
            return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate thread pool");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0) {
                ls_pool_destroy(pool);
                return ls_error_set(err, LS_ERR_INTERNAL, "cannot start worker thread %d", i);
            }
            pool->n_started++;
        }
    }
    *out = pool;
    return LS_OK;
}

void ls_pool_destroy(ls_pool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->n_started; i++) pthread_join(pool->threads[i], NULL);
    free(pool->threads);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->work_cv);
    pthread_cond_destroy(&pool->done_cv);
    free(pool);
}

int ls_pool_threads(const ls_pool *pool)
{
    return pool ? pool->n_threads : 1;
}

void ls_pool_start(ls_pool *pool, ls_pool_job *job, int rows, int n_bands, ls_band_fn fn,
                   void *ctx)
{
    job->fn = fn;
    job->ctx = ctx;
    job->rows = rows;
    job->n_bands = rows <= 0 ? 0 : (n_bands < 1 ? 1 : (n_bands > rows ? rows : n_bands));
    job->next_band = 0;
    job->done_bands = 0;
    job->next_job = NULL;
    if (job->n_bands == 0 || !pool || pool->n_threads == 1) return; /* run in wait */
    pthread_mutex_lock(&pool->lock);
    if (pool->tail) pool->tail->next_job = job;
    else pool->head = job;
    pool->tail = job;
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->lock);
}

void ls_pool_wait(ls_pool *pool, ls_pool_job *job)
{
    if (job->n_bands == 0) return;
    if (!pool || pool->n_threads == 1) { /* never queued: run inline */
        for (int b = 0; b < job->n_bands; b++) {
            int begin, end;
            ls_band_range(job->rows, job->n_bands, b, &begin, &end);
            job->fn(job->ctx, begin, end, b);
        }
        job->next_band = job->done_bands = job->n_bands;
        return;
    }
    pthread_mutex_lock(&pool->lock);
    /* Help with our own job's unclaimed bands; it is in the queue until fully
     * claimed, so unlink it ourselves when we take its last band. */
    while (job->next_band < job->n_bands) {
        int band = job->next_band++;
        if (job->next_band == job->n_bands) {
            ls_pool_job **pp = &pool->head, *prev = NULL;
            while (*pp && *pp != job) { prev = *pp; pp = &(*pp)->next_job; }
            if (*pp) {
                *pp = job->next_job;
                if (pool->tail == job) pool->tail = prev;
            }
        }
        pthread_mutex_unlock(&pool->lock);
        run_band(pool, job, band);
        pthread_mutex_lock(&pool->lock);
    }
    while (job->done_bands < job->n_bands) pthread_cond_wait(&pool->done_cv, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

void ls_pool_parallel_for_bands(ls_pool *pool, int rows, int n_bands, ls_band_fn fn,
                                void *ctx)
{
    ls_pool_job job;
    ls_pool_start(pool, &job, rows, n_bands, fn, ctx);
    ls_pool_wait(pool, &job);
}

void ls_pool_parallel_for(ls_pool *pool, int rows, ls_band_fn fn, void *ctx)
{
    ls_pool_parallel_for_bands(pool, rows, ls_band_count(rows, ls_pool_threads(pool)), fn,
                               ctx);
}

#include "server/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct task {
    ls_task_fn fn;
    void *arg;
} task;

/* A growable ring of tasks. */
typedef struct task_ring {
    task *items;
    int cap, head, count;
} task_ring;

struct ls_workq {
    pthread_mutex_t lock;
    pthread_cond_t work;
    pthread_cond_t streams_idle; /* no stream task queued or running */
    task_ring queue[LS_TASK_CLASSES];
    int running[LS_TASK_CLASSES];
    int max_running_jobs;
    int stopping;
    pthread_t *threads;
    int n_threads;
};

/* The next task a free worker may run (lock held): a stream's first, then
 * a job's while fewer than max_running_jobs run; 0 when none may run now. */
static int take(ls_workq *q, task *t, ls_task_class *cls)
{
    for (int c = 0; c < LS_TASK_CLASSES; c++) {
        task_ring *r = &q->queue[c];
        if (!r->count) continue;
        if (c == LS_TASK_JOB && q->running[c] >= q->max_running_jobs) continue;
        *t = r->items[r->head];
        r->head = (r->head + 1) % r->cap;
        r->count--;
        q->running[c]++;
        *cls = (ls_task_class)c;
        return 1;
    }
    return 0;
}

static int streams_busy(const ls_workq *q)
{
    return q->queue[LS_TASK_STREAM].count > 0 || q->running[LS_TASK_STREAM] > 0;
}

static void *worker_main(void *arg)
{
    ls_workq *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        task t;
        ls_task_class cls;
        if (!take(q, &t, &cls)) {
            /* Stopping, and nothing queued: done. Jobs still queued behind
             * the limit are taken by the workers whose job ends. */
            if (q->stopping && !q->queue[LS_TASK_STREAM].count && !q->queue[LS_TASK_JOB].count)
                break;
            pthread_cond_wait(&q->work, &q->lock);
            continue;
        }
        pthread_mutex_unlock(&q->lock);
        t.fn(t.arg);
        pthread_mutex_lock(&q->lock);
        q->running[cls]--;
        if (cls == LS_TASK_STREAM && !streams_busy(q)) pthread_cond_broadcast(&q->streams_idle);
    }
    /* Others may wait for the queue to empty. */
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int ls_workq_create(int n_workers, int max_running_jobs, ls_workq **out, ls_error *err)
{
    *out = NULL;
    if (n_workers < 1) return ls_error_set(err, LS_ERR_INVALID_ARG, "workq: need >= 1 worker");
    if (max_running_jobs < 1 || max_running_jobs > n_workers)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "workq: running jobs %d outside 1..%d",
                            max_running_jobs, n_workers);
    ls_workq *q = calloc(1, sizeof *q);
    if (!q) return ls_error_set(err, LS_ERR_NOMEM, "workq: out of memory");
    q->max_running_jobs = max_running_jobs;
    int ok = 1;
    for (int c = 0; c < LS_TASK_CLASSES; c++) {
        q->queue[c].cap = 64;
        q->queue[c].items = calloc((size_t)q->queue[c].cap, sizeof(task));
        ok &= q->queue[c].items != NULL;
    }
    q->threads = calloc((size_t)n_workers, sizeof *q->threads);
    if (!ok || !q->threads) {
        for (int c = 0; c < LS_TASK_CLASSES; c++) free(q->queue[c].items);
        free(q->threads);
        free(q);
        return ls_error_set(err, LS_ERR_NOMEM, "workq: out of memory");
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->streams_idle, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < n_workers; i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0) {
            ls_workq_destroy(q);
            return ls_error_set(err, LS_ERR_INTERNAL, "workq: cannot start worker %d", i);
        }
        q->n_threads++;
    }
    *out = q;
    return LS_OK;
}

void ls_workq_destroy(ls_workq *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->lock);
    q->stopping = 1;
    pthread_cond_broadcast(&q->work);
    pthread_cond_broadcast(&q->streams_idle);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->n_threads; i++) pthread_join(q->threads[i], NULL);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->streams_idle);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    for (int c = 0; c < LS_TASK_CLASSES; c++) free(q->queue[c].items);
    free(q);
}

int ls_workq_submit(ls_workq *q, ls_task_class cls, ls_task_fn fn, void *arg)
{
    if (cls < 0 || cls >= LS_TASK_CLASSES) return LS_ERR_INVALID_ARG;
    pthread_mutex_lock(&q->lock);
    task_ring *r = &q->queue[cls];
    if (r->count == r->cap) {
        int cap = r->cap * 2;
        task *items = malloc((size_t)cap * sizeof *items);
        if (!items) {
            pthread_mutex_unlock(&q->lock);
            return LS_ERR_NOMEM;
        }
        for (int i = 0; i < r->count; i++) items[i] = r->items[(r->head + i) % r->cap];
        free(r->items);
        r->items = items;
        r->cap = cap;
        r->head = 0;
    }
    r->items[(r->head + r->count) % r->cap] = (task){fn, arg};
    r->count++;
    /* Every idle worker: one woken for a job it may not run yet (at the
     * limit) goes back to sleep, and a signal spent on it would leave a
     * stream task queued beside idle workers. */
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
    return LS_OK;
}

int ls_workq_yield_to_streams(ls_workq *q, double max_wait_s)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    double whole = (double)(long)max_wait_s;
    until.tv_sec += (time_t)whole;
    until.tv_nsec += (long)((max_wait_s - whole) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int waited = 0;
    pthread_mutex_lock(&q->lock);
    /* Waiting only helps while some worker not held by a job can run the
     * streams' tasks. */
    while (max_wait_s > 0 && !q->stopping && streams_busy(q) &&
           q->running[LS_TASK_JOB] < q->n_threads) {
        waited = 1;
        if (pthread_cond_timedwait(&q->streams_idle, &q->lock, &until) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&q->lock);
    return waited;
}

void ls_workq_get_stats(ls_workq *q, ls_workq_stats *out)
{
    pthread_mutex_lock(&q->lock);
    for (int c = 0; c < LS_TASK_CLASSES; c++) {
        out->queued[c] = q->queue[c].count;
        out->running[c] = q->running[c];
    }
    pthread_mutex_unlock(&q->lock);
}

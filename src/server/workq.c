#include "server/workq.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct task {
    ls_task_fn fn;
    void *arg;
} task;

struct ls_workq {
    pthread_mutex_t lock;
    pthread_cond_t work;
    task *ring;
    int cap, head, count, running;
    int stopping;
    pthread_t *threads;
    int n_threads;
};

static void *worker_main(void *arg)
{
    ls_workq *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->count && !q->stopping) pthread_cond_wait(&q->work, &q->lock);
        if (!q->count) break;
        task t = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        q->running++;
        pthread_mutex_unlock(&q->lock);
        t.fn(t.arg);
        pthread_mutex_lock(&q->lock);
        q->running--;
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int ls_workq_create(int n_workers, ls_workq **out, ls_error *err)
{
    *out = NULL;
    if (n_workers < 1) return ls_error_set(err, LS_ERR_INVALID_ARG, "workq: need >= 1 worker");
    ls_workq *q = calloc(1, sizeof *q);
    if (!q) return ls_error_set(err, LS_ERR_NOMEM, "workq: out of memory");
    q->cap = 64;
    q->ring = calloc((size_t)q->cap, sizeof *q->ring);
    q->threads = calloc((size_t)n_workers, sizeof *q->threads);
    if (!q->ring || !q->threads) {
        free(q->ring);
        free(q->threads);
        free(q);
        return ls_error_set(err, LS_ERR_NOMEM, "workq: out of memory");
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work, NULL);
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
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->n_threads; i++) pthread_join(q->threads[i], NULL);
    pthread_cond_destroy(&q->work);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    free(q->ring);
    free(q);
}

int ls_workq_submit(ls_workq *q, ls_task_fn fn, void *arg)
{
    pthread_mutex_lock(&q->lock);
    if (q->count == q->cap) {
        int cap = q->cap * 2;
        task *ring = malloc((size_t)cap * sizeof *ring);
        if (!ring) {
            pthread_mutex_unlock(&q->lock);
            return LS_ERR_NOMEM;
        }
        for (int i = 0; i < q->count; i++) ring[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->count) % q->cap] = (task){fn, arg};
    q->count++;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->lock);
    return LS_OK;
}

void ls_workq_depth(ls_workq *q, int *queued, int *running)
{
    pthread_mutex_lock(&q->lock);
    *queued = q->count;
    *running = q->running;
    pthread_mutex_unlock(&q->lock);
}

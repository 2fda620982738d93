#include "core/bufpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct ls_buffer_pool {
    size_t cap;
    int max_buffers;
    pthread_mutex_t lock;
    ls_buffer *free_list;  /* guarded by lock */
    ls_buffer **all;       /* every buffer ever made, for destroy; guarded by lock */
    int n_all, all_cap;
};

int ls_buffer_pool_create(size_t cap, int max_buffers, ls_buffer_pool **out, ls_error *err)
{
    *out = NULL;
    if (cap < 1 || max_buffers < 0)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "buffer pool needs cap >= 1 and max >= 0");
    ls_buffer_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate a buffer pool");
    pool->cap = cap;
    pool->max_buffers = max_buffers;
    pthread_mutex_init(&pool->lock, NULL);
    *out = pool;
    return LS_OK;
}

void ls_buffer_pool_destroy(ls_buffer_pool *pool)
{
    if (!pool) return;
    for (int i = 0; i < pool->n_all; i++) {
        free(pool->all[i]->data);
        free(pool->all[i]);
    }
    free(pool->all);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

size_t ls_buffer_pool_capacity(const ls_buffer_pool *pool)
{
    return pool->cap;
}

int ls_buffer_pool_count(const ls_buffer_pool *pool)
{
    pthread_mutex_lock((pthread_mutex_t *)&pool->lock);
    int n = pool->n_all;
    pthread_mutex_unlock((pthread_mutex_t *)&pool->lock);
    return n;
}

/* Makes one new buffer and records it; pool lock held. */
static int new_buffer(ls_buffer_pool *pool, ls_buffer **out, ls_error *err)
{
    *out = NULL;
    if (pool->max_buffers && pool->n_all >= pool->max_buffers)
        return ls_error_set(err, LS_ERR_BUSY, "all %d pooled buffers of %zu bytes are in use",
                            pool->max_buffers, pool->cap);
    if (pool->n_all == pool->all_cap) {
        int ncap = pool->all_cap ? pool->all_cap * 2 : 8;
        ls_buffer **all = realloc(pool->all, (size_t)ncap * sizeof *all);
        if (!all) goto nomem;
        pool->all = all;
        pool->all_cap = ncap;
    }
    ls_buffer *b = calloc(1, sizeof *b);
    if (!b) goto nomem;
    size_t rounded = (pool->cap + 63) / 64 * 64;
    b->data = aligned_alloc(64, rounded);
    if (!b->data) {
        free(b);
        goto nomem;
    }
    b->cap = pool->cap;
    b->owner = pool;
    pool->all[pool->n_all++] = b;
    *out = b;
    return LS_OK;
nomem:
    return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate a pooled buffer of %zu bytes",
                        pool->cap);
}

int ls_buffer_pool_reserve(ls_buffer_pool *pool, int n, ls_error *err)
{
    int rc = LS_OK;
    pthread_mutex_lock(&pool->lock);
    while (pool->n_all < n) {
        ls_buffer *b;
        rc = new_buffer(pool, &b, err);
        if (rc != LS_OK) break;
        b->next = pool->free_list;
        pool->free_list = b;
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int ls_buffer_get(ls_buffer_pool *pool, ls_buffer **out, ls_error *err)
{
    *out = NULL;
    if (!pool) return ls_error_set(err, LS_ERR_INVALID_ARG, "no buffer pool");
    pthread_mutex_lock(&pool->lock);
    ls_buffer *b = pool->free_list;
    int rc = LS_OK;
    if (b) pool->free_list = b->next;
    else rc = new_buffer(pool, &b, err);
    pthread_mutex_unlock(&pool->lock);
    if (rc != LS_OK) return rc;
    b->next = NULL;
    b->len = 0;
    b->width = b->height = b->channels = 0;
    *out = b;
    return LS_OK;
}

void ls_buffer_put(ls_buffer *buf)
{
    if (!buf) return;
    ls_buffer_pool *pool = buf->owner;
    pthread_mutex_lock(&pool->lock);
    buf->next = pool->free_list;
    pool->free_list = buf;
    pthread_mutex_unlock(&pool->lock);
}

/* bufpool.h - a thread-safe pool of equally sized byte buffers.
 *
 * Hot paths (JPEG output, composited frames, tensors) take a buffer, fill it and hand it on;
 * whoever consumes it puts it back. A pool allocates only when no free buffer is left, so after
 * warm-up (or ls_buffer_pool_reserve) taking and returning buffers allocates nothing. Buffers
 * are 64-byte aligned. A pool may cap how many buffers exist: past the cap ls_buffer_get
 * returns LS_ERR_BUSY rather than growing without bound. Every buffer must be returned before
 * ls_buffer_pool_destroy, which frees them all.
 */
#ifndef LS_CORE_BUFPOOL_H
#define LS_CORE_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ls_buffer_pool ls_buffer_pool;

typedef struct ls_buffer {
    uint8_t *data;
    size_t cap;  /* bytes available at data */
    size_t len;  /* bytes in use, set by the producer */
    int width, height, channels; /* what the bytes hold, when they hold pixels (else 0) */
    ls_buffer_pool *owner;
    struct ls_buffer *next; /* free-list link, owned by the pool */
} ls_buffer;

/* cap: bytes per buffer (>= 1). max_buffers: cap on live buffers, 0 for no cap. *out is NULL
 * on failure. */
int ls_buffer_pool_create(size_t cap, int max_buffers, ls_buffer_pool **out, ls_error *err);
void ls_buffer_pool_destroy(ls_buffer_pool *pool);

size_t ls_buffer_pool_capacity(const ls_buffer_pool *pool);
/* Buffers allocated so far (in use or free). */
int ls_buffer_pool_count(const ls_buffer_pool *pool);

/* Allocates buffers until at least n exist. */
int ls_buffer_pool_reserve(ls_buffer_pool *pool, int n, ls_error *err);

/* Takes a free buffer (len reset to 0), allocating one if none is free. */
int ls_buffer_get(ls_buffer_pool *pool, ls_buffer **out, ls_error *err);
/* Returns a buffer to the pool it came from; NULL is ignored. */
void ls_buffer_put(ls_buffer *buf);

#endif

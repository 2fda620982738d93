/* plan.h - the storage planner: buffers with lifetimes -> offsets in one arena.
 *
 * Like ggml's allocator (ggml-alloc), it knows nothing of what the buffers
 * hold: each is a size and the span of steps that use it, [first, last].
 * Two buffers live at a common step never share a unit of the arena; two
 * whose spans are disjoint may (that is the reuse). Sizes and offsets are in
 * any one unit (the engine plans in float elements). Placement is greedy,
 * largest buffer first (equal sizes in index order), each at the lowest
 * offset clear of the buffers already placed that live with it, every size
 * rounded up to the alignment first; the result depends only on the input.
 * In-place work (a concat's inputs inside its buffer, a residual summed in
 * place) is the caller's: it plans one buffer for a class of tensors that
 * share storage, spanning all their lifetimes.
 */
#ifndef LS_NN_PLAN_H
#define LS_NN_PLAN_H

#include <stdint.h>

#include "core/error.h"

typedef struct ls_plan_buf {
    int64_t size;    /* >= 0 */
    int first, last; /* the first and last step that uses it (0 <= first <= last),
                        or both -1: unused, not placed (offset 0) */
} ls_plan_buf;

/* Places n buffers: offsets[i] receives buffer i's offset, a multiple of
 * align (>= 1), and *arena_size the arena's size (the end of the highest
 * buffer, rounded to align; 0 when no buffer is used). LS_ERR_INVALID_ARG
 * naming the buffer for bad input (n < 0, NULL arrays, align < 1, a negative
 * size or one too large to align, a bad span); LS_ERR_NOMEM. */
int ls_plan_arena(const ls_plan_buf *bufs, int n, int64_t align, int64_t *offsets,
                  int64_t *arena_size, ls_error *err);

#endif

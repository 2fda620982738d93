/* plan.c - greedy arena placement by lifetimes (plan.h). */
#include "nn/plan.h"

#include <stdlib.h>

typedef struct span {
    int64_t off, size;
} span;

typedef struct order_key {
    int64_t size;
    int index;
} order_key;

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Largest first; equal sizes in index order. */
static int cmp_order(const void *a, const void *b)
{
    const order_key *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int check(const ls_plan_buf *bufs, int n, int64_t align, const int64_t *offsets,
                 const int64_t *arena_size, ls_error *err)
{
    if (n < 0 || (n > 0 && (!bufs || !offsets)) || !arena_size)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "plan: bad buffer count or NULL array");
    if (align < 1) return ls_error_set(err, LS_ERR_INVALID_ARG, "plan: alignment %lld < 1",
                                       (long long)align);
    for (int i = 0; i < n; i++) {
        const ls_plan_buf *b = &bufs[i];
        if (b->size < 0 || b->size > INT64_MAX - align)
            return ls_error_set(err, LS_ERR_INVALID_ARG, "plan: buffer %d has size %lld", i,
                                (long long)b->size);
        if (!(b->first == -1 && b->last == -1) && (b->first < 0 || b->last < b->first))
            return ls_error_set(err, LS_ERR_INVALID_ARG, "plan: buffer %d has span [%d, %d]", i,
                                b->first, b->last);
    }
    return LS_OK;
}

int ls_plan_arena(const ls_plan_buf *bufs, int n, int64_t align, int64_t *offsets,
                  int64_t *arena_size, ls_error *err)
{
    int rc = check(bufs, n, align, offsets, arena_size, err);
    if (rc) return rc;
    *arena_size = 0;
    order_key *order = malloc(((size_t)n + 1) * sizeof *order);
    span *spans = malloc(((size_t)n + 1) * sizeof *spans);
    if (!order || !spans) {
        free(order);
        free(spans);
        return ls_error_set(err, LS_ERR_NOMEM, "plan: out of memory");
    }
    int n_used = 0;
    for (int i = 0; i < n; i++) {
        offsets[i] = 0;
        if (bufs[i].first >= 0) order[n_used++] = (order_key){bufs[i].size, i};
    }
    qsort(order, (size_t)n_used, sizeof *order, cmp_order);
    int64_t end = 0;
    for (int i = 0; i < n_used; i++) {
        const ls_plan_buf *v = &bufs[order[i].index];
        int64_t size = round_up(v->size, align);
        /* The placed buffers that live with this one, by offset; the first
         * gap of `size` between them. */
        int ns = 0;
        for (int j = 0; j < i; j++) {
            int uj = order[j].index;
            const ls_plan_buf *u = &bufs[uj];
            if (u->first <= v->last && v->first <= u->last)
                spans[ns++] = (span){offsets[uj], round_up(u->size, align)};
        }
        qsort(spans, (size_t)ns, sizeof *spans, cmp_span);
        int64_t at = 0;
        for (int j = 0; j < ns; j++) {
            if (spans[j].off >= at + size) break;
            if (spans[j].off + spans[j].size > at) at = spans[j].off + spans[j].size;
        }
        offsets[order[i].index] = at;
        if (at + size > end) end = at + size;
    }
    *arena_size = end;
    free(order);
    free(spans);
    return LS_OK;
}

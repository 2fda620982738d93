/* conn.c - connection references and the loop's inbox (conn.h). */
#include "server/conn.h"

#include <pthread.h>
#include <stdlib.h>

struct ls_hub {
    ls_workq *workq;
    pthread_mutex_t lock;
    struct lws_context *ctx; /* [lock] NULL while no loop listens */
    ls_conn *head;           /* [lock] conns with news, each with a reference */
};

int ls_hub_create(ls_workq *workq, ls_hub **out, ls_error *err)
{
    ls_hub *h = calloc(1, sizeof *h);
    if (!h) return ls_error_set(err, LS_ERR_NOMEM, "server: out of memory");
    h->workq = workq;
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return LS_OK;
}

void ls_hub_attach(ls_hub *hub, struct lws_context *ctx)
{
    pthread_mutex_lock(&hub->lock);
    hub->ctx = ctx;
    pthread_mutex_unlock(&hub->lock);
}

void ls_hub_detach(ls_hub *hub)
{
    if (!hub) return;
    pthread_mutex_lock(&hub->lock);
    hub->ctx = NULL;
    pthread_mutex_unlock(&hub->lock);
}

/* Takes the whole list; the caller owns its references. A conn stays
 * marked on_list until its link has been read (under the lock): a worker
 * may post it again at once, and that rewrites next. */
static ls_conn *take_list(ls_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    ls_conn *c = hub->head;
    hub->head = NULL;
    pthread_mutex_unlock(&hub->lock);
    return c;
}

void ls_hub_run(ls_hub *hub)
{
    for (ls_conn *c = take_list(hub); c;) {
        pthread_mutex_lock(&hub->lock);
        ls_conn *next = c->next;
        int done = c->work_done, woken = c->woken;
        c->on_list = c->work_done = c->woken = 0;
        pthread_mutex_unlock(&hub->lock);
        if (done) {
            /* after may queue the next work item, which sets these again. */
            ls_conn_fn after = c->after;
            c->work = c->after = NULL;
            if (after) after(c);
        }
        if (woken && c->wsi && c->ops->wake) c->ops->wake(c);
        ls_conn_unref(c);
        c = next;
    }
}

void ls_hub_destroy(ls_hub *hub)
{
    if (!hub) return;
    for (ls_conn *c = take_list(hub); c;) {
        ls_conn *next = c->next;
        ls_conn_unref(c);
        c = next;
    }
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}

void ls_conn_init(ls_conn *c, const ls_conn_ops *ops, ls_hub *hub, struct lws *wsi)
{
    c->ops = ops;
    c->hub = hub;
    atomic_init(&c->refs, 1); /* the loop's */
    atomic_init(&c->closed, 0);
    c->wsi = wsi;
}

void ls_conn_ref(ls_conn *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void ls_conn_unref(ls_conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1) c->ops->free(c);
}

void ls_conn_close(ls_conn *c)
{
    c->wsi = NULL;
    atomic_store(&c->closed, 1);
    ls_conn_unref(c);
}

int ls_conn_is_closed(ls_conn *c)
{
    return atomic_load(&c->closed);
}

/* Puts c on the hub's list with what it has for the loop, and wakes the loop. */
static void post(ls_conn *c, int done)
{
    ls_hub *hub = c->hub;
    pthread_mutex_lock(&hub->lock);
    if (done)
        c->work_done = 1;
    else
        c->woken = 1;
    if (!c->on_list) {
        c->on_list = 1;
        ls_conn_ref(c);
        c->next = hub->head;
        hub->head = c;
    }
    /* Under the lock, so the context cannot go (ls_hub_detach) meanwhile. */
    if (hub->ctx) lws_cancel_service(hub->ctx);
    pthread_mutex_unlock(&hub->lock);
}

static void run_work(void *arg)
{
    ls_conn *c = arg;
    c->work(c);
    post(c, 1);
    ls_conn_unref(c); /* the work's; the list holds c for its completion */
}

int ls_conn_queue_work(ls_conn *c, ls_task_class cls, ls_conn_fn work, ls_conn_fn after)
{
    c->work = work;
    c->after = after;
    ls_conn_ref(c);
    int rc = ls_workq_submit(c->hub->workq, cls, run_work, c);
    if (rc != LS_OK) {
        c->work = c->after = NULL;
        atomic_fetch_sub(&c->refs, 1); /* the loop's reference remains */
    }
    return rc;
}

void ls_conn_wake(ls_conn *c)
{
    post(c, 0);
}

/* conn.h - a connection's lifetime between the event loop and the workers,
 * and the hand-off between them, in the style of libuv's uv_queue_work.
 *
 * An ls_conn sits first in the object of the protocol that owns the socket
 * (an HTTP request, a stream). The loop holds one reference while the
 * socket is open (ls_conn_close drops it); each work item holds one until
 * its completion has run; the last ls_conn_unref calls ops->free, on
 * whichever thread that is.
 *
 * Hand-off: ls_conn_queue_work(c, cls, work, after) runs work(c) on a worker
 * (workq.h, class cls), then after(c) on the loop thread. What work needs is
 * handed to it before the call and what it produces is handed back with its
 * completion: the protocol's fields are owned by the loop, then by the work,
 * then by the loop again, and the hub's lock between the two sides is the
 * barrier. At most one work item per conn is in flight. A conn still open
 * can be given results while its work runs: ls_conn_wake (from the work)
 * asks the loop to call ops->wake, where the loop writes what a lock of the
 * protocol's own shares (a stream's outbox). Completions and wakes are
 * dropped, not run, once the loop is gone (ls_hub_detach): the last
 * references still free the conns.
 *
 * Threads: [loop] fields and functions belong to the lws service thread;
 * refs and closed are atomic; the hub's list is under its lock.
 */
#ifndef LS_SERVER_CONN_H
#define LS_SERVER_CONN_H

#include <libwebsockets.h>
#include <stdatomic.h>

#include "core/error.h"
#include "server/workq.h"

typedef struct ls_conn ls_conn;
typedef struct ls_hub ls_hub;
typedef void (*ls_conn_fn)(ls_conn *c);

typedef struct ls_conn_ops {
    void (*wake)(ls_conn *c); /* [loop] a worker has news (ls_conn_wake) */
    void (*free)(ls_conn *c); /* the last reference is gone */
} ls_conn_ops;

struct ls_conn {
    const ls_conn_ops *ops;
    ls_hub *hub;
    atomic_int refs;
    atomic_int closed;   /* the socket closed: work may stop early */
    struct lws *wsi;     /* [loop] NULL once closed */
    /* The work in flight: set by the loop before it is queued. */
    ls_conn_fn work, after;
    /* [hub lock] news for the loop */
    int on_list, work_done, woken;
    ls_conn *next;
};

/* What lws keeps per socket (the protocol's per-session data): the conn on
 * it, and the state of a raw socket lws fell back to (http.h). */
typedef struct ls_socket {
    ls_conn *conn;
    int raw;
} ls_socket;

/* The loop's inbox of conns with news; one per server. */
int ls_hub_create(ls_workq *workq, ls_hub **out, ls_error *err);
/* [loop] The context whose service to cancel (wake) when news arrive. */
void ls_hub_attach(ls_hub *hub, struct lws_context *ctx);
/* Stops waking the loop; later news is dropped by ls_hub_destroy. Call
 * before the lws context goes. */
void ls_hub_detach(ls_hub *hub);
/* [loop] Runs the completions and wakes that arrived (on
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED). */
void ls_hub_run(ls_hub *hub);
/* After the workers are gone: drops what is left, then frees the hub. */
void ls_hub_destroy(ls_hub *hub);

/* A new conn with the loop's reference, on socket wsi. */
void ls_conn_init(ls_conn *c, const ls_conn_ops *ops, ls_hub *hub, struct lws *wsi);
void ls_conn_ref(ls_conn *c);
void ls_conn_unref(ls_conn *c);
/* [loop] The socket closed: marks c closed and drops the loop's reference. */
void ls_conn_close(ls_conn *c);
int ls_conn_is_closed(ls_conn *c);

/* [loop] work(c) on a worker, then after(c) on the loop; LS_OK, or the
 * queue's error with nothing queued. */
int ls_conn_queue_work(ls_conn *c, ls_task_class cls, ls_conn_fn work, ls_conn_fn after);
/* [work] Asks the loop to call c->ops->wake soon (if c is still open). */
void ls_conn_wake(ls_conn *c);

#endif

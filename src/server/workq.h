/* workq.h - a fixed set of worker threads running queued tasks in order.
 *
 * The server's event loop never computes: it queues a task (a stream's
 * pending input, a render job) and returns to its sockets; a worker runs the
 * task and hands results back (see server.c). Tasks run first-in first-out;
 * a task that wants more turns re-queues itself, so long streams share the
 * workers fairly. Submitting never blocks and allocates only when the queue
 * outgrows its ring.
 */
#ifndef LS_SERVER_WORKQ_H
#define LS_SERVER_WORKQ_H

#include "core/error.h"

typedef struct ls_workq ls_workq;
typedef void (*ls_task_fn)(void *arg);

int ls_workq_create(int n_workers, ls_workq **out, ls_error *err);
/* Runs every queued task, then joins the workers. */
void ls_workq_destroy(ls_workq *q);

int ls_workq_submit(ls_workq *q, ls_task_fn fn, void *arg);

/* Tasks queued and not yet started, and tasks running now. */
void ls_workq_depth(ls_workq *q, int *queued, int *running);

#endif

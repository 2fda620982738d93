/* workq.h - a fixed set of worker threads running queued tasks, streams
 * ahead of jobs.
 *
 * The server's event loop never computes: it queues a task (a stream's
 * pending input, a render job) and returns to its sockets; a worker runs the
 * task and hands results back (see server.c). Submitting never blocks and
 * allocates only when a queue outgrows its ring.
 *
 * Two classes of task, each first-in first-out:
 * - LS_TASK_STREAM: short turns of real-time work (a stream's pending
 *   audio); a task that wants more turns re-queues itself, so long streams
 *   share the workers fairly. A free worker always takes a stream task
 *   before any job.
 * - LS_TASK_JOB: work that may run for long on one worker (a render, a
 *   batch call, a model load). At most max_running_jobs run at once; the
 *   others wait in their queue. With max_running_jobs < n_workers, jobs can
 *   never hold every worker, so a stream task waits for other streams'
 *   turns at most, never for a job to end. And a running job gives way
 *   between its batches while streams work (ls_workq_yield_to_streams).
 */
#ifndef LS_SERVER_WORKQ_H
#define LS_SERVER_WORKQ_H

#include "core/error.h"

typedef struct ls_workq ls_workq;
typedef void (*ls_task_fn)(void *arg);

typedef enum ls_task_class { LS_TASK_STREAM, LS_TASK_JOB, LS_TASK_CLASSES } ls_task_class;

/* n_workers >= 1 threads; max_running_jobs in 1..n_workers. */
int ls_workq_create(int n_workers, int max_running_jobs, ls_workq **out, ls_error *err);
/* Runs every queued task, then joins the workers. */
void ls_workq_destroy(ls_workq *q);

int ls_workq_submit(ls_workq *q, ls_task_class cls, ls_task_fn fn, void *arg);

/* For a running job, between its batches: waits while stream tasks are
 * queued or running, at most max_wait_s, so real-time work gets the cores
 * the job would otherwise share with it (priority at batch granularity).
 * Returns at once where no worker is free of jobs to run the streams, or
 * the queue is stopping. Returns 1 when it waited, else 0. */
int ls_workq_yield_to_streams(ls_workq *q, double max_wait_s);

/* Tasks of each class queued and not yet started, and running now. */
typedef struct ls_workq_stats {
    int queued[LS_TASK_CLASSES];
    int running[LS_TASK_CLASSES];
} ls_workq_stats;
void ls_workq_get_stats(ls_workq *q, ls_workq_stats *out);

#endif

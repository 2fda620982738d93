/* test_server_alloc.c - the server's per-frame bookkeeping allocates
 * nothing after warm-up: metrics updates, worker hand-offs, and byte
 * buffers reused within their capacity. */
#include <pthread.h>
#include <string.h>

#include "server/metrics.h"
#include "server/outputs.h"
#include "server/workq.h"
#include "support/alloc_count.h"
#include "support/test_util.h"

typedef struct done_counter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
} done_counter;

static void task(void *arg)
{
    done_counter *d = arg;
    pthread_mutex_lock(&d->lock);
    d->done++;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static void run_round(ls_workq *q, ls_metrics *m, ls_buf *b, done_counter *d, int n)
{
    uint8_t frame[2048];
    memset(frame, 7, sizeof frame);
    pthread_mutex_lock(&d->lock);
    d->done = 0;
    pthread_mutex_unlock(&d->lock);
    for (int i = 0; i < n; i++) {
        assert_int_equal(ls_workq_submit(q, i % 2 ? LS_TASK_JOB : LS_TASK_STREAM, task, d), LS_OK);
        ls_metrics_add(m, LS_M_FRAMES_SENT, 1);
        ls_metrics_observe_stage(m, (ls_stage)(i % LS_STAGE_COUNT), 0.001 * i);
        ls_metrics_observe_frame_latency(m, 0.04);
        ls_metrics_add_engine(m, 1, 0.02);
        b->len = 0;
        assert_int_equal(ls_buf_append(b, frame, sizeof frame), LS_OK);
    }
    pthread_mutex_lock(&d->lock);
    while (d->done < n) pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

static void test_no_allocations_after_warmup(void **state)
{
    (void)state;
    ls_workq *q;
    assert_int_equal(ls_workq_create(2, 1, &q, NULL), LS_OK);
    ls_metrics *m;
    assert_int_equal(ls_metrics_create(&m, NULL), LS_OK);
    ls_buf b = {0};
    done_counter d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    run_round(q, m, &b, &d, 50); /* warm-up: the ring and the buffer reach their size */
    long before = alloc_count();
    for (int r = 0; r < 20; r++) run_round(q, m, &b, &d, 50);
    assert_int_equal(alloc_count(), before);
    assert_true(ls_metrics_counter(m, LS_M_FRAMES_SENT) == 21 * 50);
    ls_buf_free(&b);
    ls_metrics_destroy(m);
    ls_workq_destroy(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_allocations_after_warmup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

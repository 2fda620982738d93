/* test_outputs.c - zip / mjpeg / multipart / base64 builders and the
 * Prometheus rendering of the metrics: pure byte work. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "core/clock.h"
#include "server/metrics.h"
#include "server/outputs.h"
#include "server/workq.h"
#include "support/test_util.h"

static void fill(ls_jpeg_list *l, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t data[300];
        size_t size = 100 + (size_t)i * 50;
        for (size_t k = 0; k < size; k++) data[k] = (uint8_t)(k * 7 + (size_t)i);
        assert_int_equal(ls_jpeg_list_add(l, i + 10, i, (i + 10) / 25.0, data, size), LS_OK);
    }
}

static void test_zip_roundtrip(void **state)
{
    (void)state;
    ls_jpeg_list l = {0};
    fill(&l, 4);
    ls_buf out = {0};
    ls_error err = {0};
    assert_int_equal(ls_frames_to_zip(&l, "{\"frames\":4}", &out, &err), LS_OK);
    zip_error_t ze;
    zip_source_t *src = zip_source_buffer_create(out.data, out.len, 0, &ze);
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY, &ze);
    assert_non_null(za);
    assert_int_equal(zip_get_num_entries(za, 0), 5);
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "frame_%06d.jpg", i + 10);
        zip_stat_t st;
        assert_int_equal(zip_stat(za, name, 0, &st), 0);
        assert_int_equal(st.size, l.frames[i].size);
        assert_int_equal(st.comp_method, ZIP_CM_STORE);
        uint8_t buf[300];
        zip_file_t *f = zip_fopen(za, name, 0);
        assert_int_equal(zip_fread(f, buf, st.size), (zip_int64_t)st.size);
        zip_fclose(f);
        assert_memory_equal(buf, l.frames[i].data, st.size);
    }
    zip_stat_t st;
    assert_int_equal(zip_stat(za, "manifest.json", 0, &st), 0);
    zip_close(za);
    ls_buf_free(&out);

    ls_jpeg_list empty = {0};
    assert_int_equal(ls_frames_to_zip(&empty, "{}", &out, &err), LS_OK);
    assert_non_null(memmem(out.data, out.len, "manifest.json", 13));
    ls_buf_free(&out);
    ls_jpeg_list_free(&l);
}

static void test_mjpeg_multipart_base64(void **state)
{
    (void)state;
    ls_jpeg_list l = {0};
    fill(&l, 3);
    ls_buf out = {0};
    ls_error err = {0};
    assert_int_equal(ls_frames_to_mjpeg(&l, &out, &err), LS_OK);
    assert_int_equal(out.len, 100 + 150 + 200);
    assert_memory_equal(out.data + 100, l.frames[1].data, 150);
    ls_buf_free(&out);

    assert_int_equal(ls_frames_to_multipart(&l, "{\"a\":1}", "BOUND", &out, &err), LS_OK);
    const char *want[] = {"--BOUND\r\nContent-Type: application/json", "X-Frame-Index: 12\r\n",
                          "X-Frame-Timestamp: 0.480\r\n"};
    for (int i = 0; i < 3; i++) /* memmem: the parts hold binary bytes */
        assert_non_null(memmem(out.data, out.len, want[i], strlen(want[i])));
    assert_memory_equal(out.data + out.len - 11, "--BOUND--\r\n", 11);
    ls_buf_free(&out);
    ls_jpeg_list_free(&l);

    const char *cases[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="}, {"\xff\xd8\xff", "/9j/"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *b = ls_base64((const uint8_t *)cases[i][0], strlen(cases[i][0]));
        assert_string_equal(b, cases[i][1]);
        free(b);
    }
}

static void test_metrics_text(void **state)
{
    (void)state;
    ls_metrics *m;
    assert_int_equal(ls_metrics_create(&m, NULL), LS_OK);
    ls_metrics_add(m, LS_M_FRAMES_SENT, 3);
    ls_metrics_observe_stage(m, LS_STAGE_UNET, 0.03);
    ls_metrics_observe_stage(m, LS_STAGE_UNET, 0.5);
    ls_metrics_observe_frame_latency(m, 20.0); /* above every bucket */
    ls_metrics_add_engine(m, 50, 2.0);
    ls_metrics_gauges g = {0};
    g.sessions_active = 2;
    g.queue_depth = 5;
    char *t = ls_metrics_render(m, &g);
    assert_non_null(t);
    assert_non_null(strstr(t, "# TYPE lipsync_frames_sent_total counter\n"
                              "lipsync_frames_sent_total 3\n"));
    assert_non_null(strstr(t, "lipsync_sessions_active 2\n"));
    assert_non_null(strstr(t, "lipsync_queue_depth 5\n"));
    assert_non_null(strstr(t, "lipsync_engine_fps 25\n"));
    assert_non_null(strstr(t, "lipsync_stage_seconds_bucket{stage=\"unet\",le=\"0.02\"} 0\n"));
    assert_non_null(strstr(t, "lipsync_stage_seconds_bucket{stage=\"unet\",le=\"0.04\"} 1\n"));
    assert_non_null(strstr(t, "lipsync_stage_seconds_bucket{stage=\"unet\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(t, "lipsync_stage_seconds_count{stage=\"unet\"} 2\n"));
    assert_non_null(strstr(t, "lipsync_frame_latency_seconds_bucket{le=\"10\"} 0\n"));
    assert_non_null(strstr(t, "lipsync_frame_latency_seconds_count 1\n"));
    free(t);
    ls_metrics_destroy(m);
}

typedef struct counter_task {
    pthread_mutex_t lock;
    int done;
} counter_task;

static void bump(void *arg)
{
    counter_task *c = arg;
    pthread_mutex_lock(&c->lock);
    c->done++;
    pthread_mutex_unlock(&c->lock);
}

static void test_workq_runs_everything(void **state)
{
    (void)state;
    ls_workq *q;
    assert_int_equal(ls_workq_create(3, 1, &q, NULL), LS_OK);
    counter_task c = {PTHREAD_MUTEX_INITIALIZER, 0};
    for (int i = 0; i < 500; i++)
        assert_int_equal(ls_workq_submit(q, i % 3 ? LS_TASK_STREAM : LS_TASK_JOB, bump, &c), LS_OK);
    ls_workq_destroy(q); /* drains both queues first, jobs one at a time */
    assert_int_equal(c.done, 500);
    assert_int_equal(ls_workq_create(0, 1, &q, NULL), LS_ERR_INVALID_ARG);
    assert_int_equal(ls_workq_create(2, 0, &q, NULL), LS_ERR_INVALID_ARG);
    assert_int_equal(ls_workq_create(2, 3, &q, NULL), LS_ERR_INVALID_ARG);
}

/* Tasks that log their names in the order they start; a blocking one
 * waits for the gate to open. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;
    char order[16];
    int n;
} gate;

typedef struct step {
    gate *g;
    char name;
    int block;
} step;

static void run_step(void *arg)
{
    step *s = arg;
    gate *g = s->g;
    pthread_mutex_lock(&g->lock);
    g->order[g->n++] = s->name;
    pthread_cond_broadcast(&g->cond);
    while (s->block && !g->open) pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void wait_started(gate *g, int n)
{
    pthread_mutex_lock(&g->lock);
    while (g->n < n) pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void open_gate(gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* A running job never holds the worker kept for streams: with one job
 * allowed of two workers, a second job waits while a stream task queued
 * after it runs. And a free worker takes streams before jobs. */
static void test_workq_streams_ahead_of_jobs(void **state)
{
    (void)state;
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, 0};
    step job1 = {&g, 'J', 1}, job2 = {&g, 'K', 0}, strm = {&g, 's', 0};
    ls_workq *q;
    assert_int_equal(ls_workq_create(2, 1, &q, NULL), LS_OK);
    assert_int_equal(ls_workq_submit(q, LS_TASK_JOB, run_step, &job1), LS_OK);
    wait_started(&g, 1);
    assert_int_equal(ls_workq_submit(q, LS_TASK_JOB, run_step, &job2), LS_OK);
    assert_int_equal(ls_workq_submit(q, LS_TASK_STREAM, run_step, &strm), LS_OK);
    wait_started(&g, 2); /* the stream, on the worker job2 may not take */
    ls_workq_stats st;
    ls_workq_get_stats(q, &st);
    pthread_mutex_lock(&g.lock);
    assert_memory_equal(g.order, "Js", 2);
    pthread_mutex_unlock(&g.lock);
    assert_int_equal(st.running[LS_TASK_JOB], 1);
    assert_int_equal(st.queued[LS_TASK_JOB], 1);
    open_gate(&g);
    ls_workq_destroy(q);
    assert_int_equal(g.n, 3);
    assert_memory_equal(g.order, "JsK", 3);

    /* One worker: busy with a stream while a job, then a stream, queue;
     * the stream goes first. */
    gate h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, 0};
    step first = {&h, 'a', 1}, job = {&h, 'J', 0}, next = {&h, 'b', 0};
    assert_int_equal(ls_workq_create(1, 1, &q, NULL), LS_OK);
    assert_int_equal(ls_workq_submit(q, LS_TASK_STREAM, run_step, &first), LS_OK);
    wait_started(&h, 1);
    assert_int_equal(ls_workq_submit(q, LS_TASK_JOB, run_step, &job), LS_OK);
    assert_int_equal(ls_workq_submit(q, LS_TASK_STREAM, run_step, &next), LS_OK);
    open_gate(&h);
    ls_workq_destroy(q);
    assert_int_equal(h.n, 3);
    assert_memory_equal(h.order, "abJ", 3);
}

/* A job that gives way to streams: logs 'j', yields, logs 'J'. */
typedef struct yielding_job {
    gate *g;
    ls_workq *q;
    double max_wait_s;
    int waited;
    double wait_s;
    step *submit; /* a stream task to queue first, or NULL */
} yielding_job;

static void run_yielding_job(void *arg)
{
    yielding_job *y = arg;
    pthread_mutex_lock(&y->g->lock);
    y->g->order[y->g->n++] = 'j';
    pthread_cond_broadcast(&y->g->cond);
    pthread_mutex_unlock(&y->g->lock);
    if (y->submit) ls_workq_submit(y->q, LS_TASK_STREAM, run_step, y->submit);
    double t0 = ls_now();
    y->waited = ls_workq_yield_to_streams(y->q, y->max_wait_s);
    y->wait_s = ls_now() - t0;
    pthread_mutex_lock(&y->g->lock);
    y->g->order[y->g->n++] = 'J';
    pthread_cond_broadcast(&y->g->cond);
    pthread_mutex_unlock(&y->g->lock);
}

/* A job's yield waits while a stream works (up to its bound), returns when
 * the streams are idle, and does not wait where no worker could run them. */
static void test_workq_job_yields_to_streams(void **state)
{
    (void)state;
    ls_workq *q;
    /* A stream holds a worker; the job's yield runs into its bound. */
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, 0};
    step strm = {&g, 's', 1};
    assert_int_equal(ls_workq_create(2, 1, &q, NULL), LS_OK);
    yielding_job y = {&g, q, 0.2, -1, 0, NULL};
    assert_int_equal(ls_workq_submit(q, LS_TASK_STREAM, run_step, &strm), LS_OK);
    wait_started(&g, 1);
    assert_int_equal(ls_workq_submit(q, LS_TASK_JOB, run_yielding_job, &y), LS_OK);
    wait_started(&g, 3);
    assert_int_equal(y.waited, 1);
    assert_true(y.wait_s >= 0.19);
    open_gate(&g);
    ls_workq_destroy(q);

    /* The stream ends while the job waits: the yield returns long before
     * its bound. */
    gate h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, 0};
    step strm2 = {&h, 's', 1};
    assert_int_equal(ls_workq_create(2, 1, &q, NULL), LS_OK);
    yielding_job y2 = {&h, q, 60.0, -1, 0, NULL};
    assert_int_equal(ls_workq_submit(q, LS_TASK_STREAM, run_step, &strm2), LS_OK);
    wait_started(&h, 1);
    assert_int_equal(ls_workq_submit(q, LS_TASK_JOB, run_yielding_job, &y2), LS_OK);
    wait_started(&h, 2);
    open_gate(&h);
    wait_started(&h, 3);
    assert_true(y2.wait_s < 30.0);
    ls_workq_destroy(q);
    assert_memory_equal(h.order, "sjJ", 3);

    /* One worker, held by the job: the stream it queues cannot run before
     * the job ends, so the yield does not wait. */
    gate k = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, 0};
    step strm3 = {&k, 's', 0};
    assert_int_equal(ls_workq_create(1, 1, &q, NULL), LS_OK);
    yielding_job y3 = {&k, q, 60.0, -1, 0, &strm3};
    assert_int_equal(ls_workq_submit(q, LS_TASK_JOB, run_yielding_job, &y3), LS_OK);
    ls_workq_destroy(q);
    assert_int_equal(y3.waited, 0);
    assert_memory_equal(k.order, "jJs", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zip_roundtrip),
        cmocka_unit_test(test_mjpeg_multipart_base64),
        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_workq_runs_everything),
        cmocka_unit_test(test_workq_streams_ahead_of_jobs),
        cmocka_unit_test(test_workq_job_yields_to_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

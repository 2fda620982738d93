/* The end-to-end pipeline on the demo model: determinism, chunking, thread
 * counts, parallel sessions, frame counts, interrupts, MP4 output, bad input. */
#include "support/test_util.h"

#include <libavformat/avformat.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/mel.h"
#include "audio/windows.h"
#include "avatar/avatar.h"
#include "pipeline/model.h"
#include "pipeline/session.h"
#include "pipeline/session_util.h"

#define BATCH 4

static ls_model *model;
static ls_pool *pool2;
static float *speech;
static size_t speech_n = 9600; /* 0.6 s: 14 frames */

static int setup(void **state)
{
    (void)state;
    if (load_demo_model(BATCH, &pool2, &model)) return -1;
    speech = make_speech(speech_n, 5);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ls_model_release(model);
    ls_pool_destroy(pool2);
    free(speech);
    return 0;
}

static size_t expected_frames(size_t n)
{
    return ls_mel_window_count(ls_mel_rows(n)) + 2;
}

static void test_frame_count_and_order(void **state)
{
    (void)state;
    const size_t lengths[] = {3000, 3200, 6400, 9600};
    ls_session_options o = {.start_frame = 3};
    ls_model_info info;
    ls_model_get_info(model, &info);
    for (size_t i = 0; i < 4; i++) {
        frame_list f;
        ls_error err;
        assert_int_equal(run_session(model, pool2, &o, speech, lengths[i], 0, 0, &f, &err), LS_OK);
        assert_int_equal(f.n, (int)expected_frames(lengths[i]));
        for (int k = 0; k < f.n; k++) {
            assert_int_equal(f.index[k], k);
            /* The avatar order is avatar/'s ping-pong (tested there against the reference). */
            assert_int_equal(f.avatar[k], ls_avatar_pingpong(info.n_frames, 3, k));
            assert_true(f.size[k] > 1000 && f.bytes[k][0] == 0xFF && f.bytes[k][1] == 0xD8);
        }
        frames_free(&f);
    }
}

static void test_deterministic_and_chunking_invariant(void **state)
{
    (void)state;
    ls_session_options o = {0};
    frame_list whole, again, small, random;
    ls_error err;
    assert_int_equal(run_session(model, pool2, &o, speech, speech_n, 0, 0, &whole, &err), LS_OK);
    assert_int_equal(run_session(model, pool2, &o, speech, speech_n, 0, 0, &again, &err), LS_OK);
    assert_same_frames(&whole, &again, "same audio twice");
    assert_int_equal(run_session(model, pool2, &o, speech, speech_n, 160, 0, &small, &err), LS_OK);
    assert_same_frames(&whole, &small, "10 ms chunks");
    assert_int_equal(run_session(model, pool2, &o, speech, speech_n, -3000, 77, &random, &err), LS_OK);
    assert_same_frames(&whole, &random, "random chunks");
    frames_free(&whole); frames_free(&again); frames_free(&small); frames_free(&random);
}

/* Flushing partial batches mid-stream changes batching, not frames. */
static void test_flush_and_batch_size_invariant(void **state)
{
    (void)state;
    ls_session_options o = {0};
    frame_list ref, flushed, b1;
    ls_error err;
    assert_int_equal(run_session(model, pool2, &o, speech, speech_n, 0, 0, &ref, &err), LS_OK);
    ls_session *s;
    assert_int_equal(ls_session_create(model, pool2, &o, &s, &err), LS_OK);
    memset(&flushed, 0, sizeof flushed);
    for (size_t off = 0; off < speech_n; off += 1600) {
        assert_int_equal(ls_session_push_audio(s, speech + off, 1600, &err), LS_OK);
        assert_int_equal(ls_session_flush(s, &err), LS_OK);
        frames_take(s, &flushed);
    }
    assert_int_equal(ls_session_finish(s, &err), LS_OK);
    frames_take(s, &flushed);
    ls_session_destroy(s);
    assert_same_frames(&ref, &flushed, "flush after every 100 ms");
    o.batch = 1;
    assert_int_equal(run_session(model, pool2, &o, speech, speech_n, 0, 0, &b1, &err), LS_OK);
    assert_same_frames(&ref, &b1, "batch 1 vs batch 4");
    frames_free(&ref); frames_free(&flushed); frames_free(&b1);
}

/* The pipeline's own parallel stages (mel, model inputs, compositing, JPEG)
 * give the same bytes on 1 and 2 pool threads. The engine's thread count is
 * the model's (oneDNN fixes each kernel's work split, and with it the
 * rounding, for the thread count it is compiled for). */
static void test_thread_count_invariant(void **state)
{
    (void)state;
    ls_error err;
    ls_pool *pool1;
    assert_int_equal(ls_pool_create(1, &pool1, &err), LS_OK);
    ls_session_options o = {0};
    frame_list one, two;
    assert_int_equal(run_session(model, pool1, &o, speech, speech_n, 0, 0, &one, &err), LS_OK);
    assert_int_equal(run_session(model, pool2, &o, speech, speech_n, 0, 0, &two, &err), LS_OK);
    assert_same_frames(&one, &two, "1 vs 2 threads");
    frames_free(&one); frames_free(&two);
    ls_pool_destroy(pool1);
}

typedef struct parallel_job {
    float *audio;
    size_t n;
    int64_t start;
    frame_list frames;
    int rc;
} parallel_job;

static void *parallel_main(void *arg)
{
    parallel_job *j = arg;
    ls_session_options o = {.start_frame = j->start};
    ls_error err;
    j->rc = run_session(model, pool2, &o, j->audio, j->n, 1234, 0, &j->frames, &err);
    return NULL;
}

static void test_parallel_sessions(void **state)
{
    (void)state;
    enum { N = 4 };
    parallel_job jobs[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (parallel_job){.n = 4800 + 1600 * (size_t)i, .start = 7 * i};
        jobs[i].audio = make_speech(jobs[i].n, 100 + (uint64_t)i);
        assert_int_equal(pthread_create(&t[i], NULL, parallel_main, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].rc, LS_OK);
        parallel_job seq = jobs[i];
        parallel_main(&seq);
        assert_int_equal(seq.rc, LS_OK);
        assert_int_equal(jobs[i].frames.n, (int)expected_frames(jobs[i].n));
        assert_same_frames(&jobs[i].frames, &seq.frames, "parallel vs sequential");
        frames_free(&seq.frames);
        frames_free(&jobs[i].frames);
        free(jobs[i].audio);
    }
}

/* Interrupt drops queued frames; the session goes on at the next index
 * with fresh audio context, producing what a new stream would. */
static void test_interrupt(void **state)
{
    (void)state;
    ls_error err;
    ls_session_options o = {0};
    ls_session *s;
    assert_int_equal(ls_session_create(model, pool2, &o, &s, &err), LS_OK);
    /* 1.2 s: windows 0..23 encoded, so 18 frames final and 16 run. */
    float *longer = make_speech(19200, 9);
    assert_int_equal(ls_session_push_audio(s, longer, 19200, &err), LS_OK);
    free(longer);
    int pending = ls_session_pending_frames(s);
    assert_true(pending > 0);
    ls_session_interrupt(s);
    ls_frame f;
    assert_int_equal(ls_session_pull_frame(s, &f), 0);
    assert_int_equal(ls_session_push_audio(s, speech, 6400, &err), LS_OK);
    assert_int_equal(ls_session_finish(s, &err), LS_OK);
    frame_list after = {0};
    frames_take(s, &after);
    ls_session_destroy(s);
    assert_int_equal(after.n, (int)expected_frames(6400));
    /* Output indices continue after the frames that were produced or staged. */
    assert_true(after.index[0] >= pending);
    for (int k = 1; k < after.n; k++) assert_int_equal(after.index[k], after.index[0] + k);
    frames_free(&after);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    ls_error err;
    ls_session *s;
    ls_session_options o = {.start_frame = 1000};
    assert_int_equal(ls_session_create(model, pool2, &o, &s, &err), LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "start frame"));
    o = (ls_session_options){.jpeg_quality = 101};
    assert_int_equal(ls_session_create(model, pool2, &o, &s, &err), LS_ERR_RANGE);
    o = (ls_session_options){.batch = 65};
    assert_int_equal(ls_session_create(model, pool2, &o, &s, &err), LS_ERR_RANGE);
    assert_int_equal(ls_session_create(NULL, pool2, NULL, &s, &err), LS_ERR_INVALID_ARG);
    /* Too short to give a single frame; pushes after finish. */
    assert_int_equal(ls_session_create(model, pool2, NULL, &s, &err), LS_OK);
    assert_int_equal(ls_session_push_audio(s, speech, 1000, &err), LS_OK);
    assert_int_equal(ls_session_finish(s, &err), LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "too short"));
    assert_int_equal(ls_session_push_audio(s, speech, 10, &err), LS_ERR_STATE);
    assert_int_equal(ls_session_finish(s, &err), LS_ERR_STATE);
    assert_int_equal(ls_session_push_audio(s, NULL, 10, &err), LS_ERR_STATE);
    ls_session_destroy(s);
    assert_int_equal(ls_session_create(model, pool2, NULL, &s, &err), LS_OK);
    assert_int_equal(ls_session_push_audio(s, NULL, 10, &err), LS_ERR_INVALID_ARG);
    /* Destroyed with frames queued and audio half-way: nothing leaks (ASan). */
    assert_int_equal(ls_session_push_audio(s, speech, speech_n, &err), LS_OK);
    ls_session_destroy(s);
}

/* Broken model directories, each with its own message. */
static void test_bad_model_dirs(void **state)
{
    (void)state;
    const char *demo = getenv("LS_DEMO_MODEL");
    const char *tmp = test_tmp_dir();
    char dir[512], cmd[4096], path[600];
    ls_model *m;
    ls_error err;
    assert_int_equal(ls_model_load("/nonexistent/model", NULL, NULL, &m, &err), LS_ERR_IO);
    struct { const char *name, *json; int code; const char *needle; } cases[] = {
        {"badjson", "{not json", LS_ERR_FORMAT, "JSON"},
        {"fps30", "{\"fps\": 30}", LS_ERR_UNSUPPORTED, "fps"},
        {"batch0", "{\"batch\": 0}", LS_ERR_RANGE, "batch"},
        {"nounet", "{\"unet\": \"missing.onnx\"}", LS_ERR_IO, "missing.onnx"},
        {"swapped", "{\"unet\": \"audio_encoder.onnx\", \"encoder\": \"unet.onnx\"}", 0, "inputs"},
        {"noavatar", "{\"avatar\": \"nothing-here\"}", 0, "nothing-here"},
        {"badname", "{\"unet_inputs\": {\"visual\": \"nope\"}}", 0, "nope"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(dir, sizeof dir, "%s/model-%s", tmp, cases[i].name);
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && ln -s '%s/unet.onnx' '%s/' && "
                 "ln -s '%s/audio_encoder.onnx' '%s/' && ln -s '%s/avatar' '%s/'",
                 dir, dir, demo, dir, demo, dir, demo, dir);
        assert_int_equal(system(cmd), 0);
        snprintf(path, sizeof path, "%s/model.json", dir);
        FILE *f = fopen(path, "w");
        fputs(cases[i].json, f);
        fclose(f);
        int rc = ls_model_load(dir, NULL, NULL, &m, &err);
        if (rc == LS_OK) fail_msg("%s loaded", cases[i].name);
        if (cases[i].code) assert_int_equal(rc, cases[i].code);
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].name, err.msg, cases[i].needle);
        print_message("%-9s -> %s\n", cases[i].name, err.msg);
    }
    /* A truncated UNet file. */
    snprintf(dir, sizeof dir, "%s/model-truncated", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && head -c 100000 '%s/unet.onnx' > '%s/unet.onnx' && "
             "ln -s '%s/audio_encoder.onnx' '%s/' && ln -s '%s/avatar' '%s/' && echo '{}' > '%s/model.json'",
             dir, dir, demo, dir, demo, dir, demo, dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_true(ls_model_load(dir, NULL, NULL, &m, &err) < 0);
    print_message("truncated -> %s\n", err.msg);
}

/* lipsync render: an MP4 FFmpeg reads back with N+2 frames and an audio track. */
static void test_render_cli(void **state)
{
    (void)state;
    const char *bin = getenv("LS_BIN"), *demo = getenv("LS_DEMO_MODEL");
    assert_non_null(bin);
    /* The speech as a 44.1 kHz stereo-free WAV would need a writer: use raw f32le. */
    const char *raw = test_write_tmp("speech.f32", speech, speech_n * sizeof(float));
    char rawpath[512], mp4[512], cmd[2048];
    snprintf(rawpath, sizeof rawpath, "%s", raw);
    snprintf(mp4, sizeof mp4, "%s/render.mp4", test_tmp_dir());
    snprintf(cmd, sizeof cmd, "'%s' render '%s' '%s' --raw f32le:16000:1 -o '%s' --batch 4 --quiet > /dev/null",
             bin, demo, rawpath, mp4);
    assert_int_equal(system(cmd), 0);
    AVFormatContext *fmt = NULL;
    assert_int_equal(avformat_open_input(&fmt, mp4, NULL, NULL), 0);
    assert_true(avformat_find_stream_info(fmt, NULL) >= 0);
    int video = -1, audio = -1;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) video = (int)i;
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) audio = (int)i;
    }
    assert_true(video >= 0 && audio >= 0);
    int64_t packets = 0;
    AVPacket *pkt = av_packet_alloc();
    while (av_read_frame(fmt, pkt) >= 0) {
        if (pkt->stream_index == video) packets++;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    AVStream *vs = fmt->streams[video];
    double vsec = vs->duration * av_q2d(vs->time_base), asec = (double)speech_n / 16000.0;
    avformat_close_input(&fmt);
    assert_int_equal(packets, (int64_t)expected_frames(speech_n));
    print_message("render: %lld frames, video %.3f s for %.3f s of audio\n", (long long)packets, vsec, asec);
    assert_true(vsec > asec - 0.04 && vsec < asec + 0.04);
    /* Bad arguments and inputs fail with a message, never a crash. */
    const char *bad[] = {"render", "render '%s'", "render '%s' /nonexistent.wav -o /tmp/x.mp4",
                         "render /nonexistent '%s' -o /tmp/x.mp4", "render '%s' '%s' -o /tmp/x.mp4 --batch 0",
                         "model check /nonexistent", "model"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[1024];
        snprintf(args, sizeof args, bad[i], demo, rawpath);
        snprintf(cmd, sizeof cmd, "'%s' %s > /dev/null 2>&1", bin, args);
        int rc = system(cmd);
        if (!WIFEXITED(rc) || WEXITSTATUS(rc) == 0 || WEXITSTATUS(rc) > 2)
            fail_msg("`lipsync %s` exited with %d", args, rc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_count_and_order),
        cmocka_unit_test(test_deterministic_and_chunking_invariant),
        cmocka_unit_test(test_flush_and_batch_size_invariant),
        cmocka_unit_test(test_thread_count_invariant),
        cmocka_unit_test(test_parallel_sessions),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_bad_model_dirs),
        cmocka_unit_test(test_render_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* bench_serve.c - `lipsync bench serve`: N concurrent streaming clients on
 * loopback against an in-process server (N = 1, 2, 4 by default).
 *
 * Each client opens /v1/stream, waits for "ready" (the model is loaded
 * before timing starts), sends 16 kHz f32le audio in 40 ms chunks and
 * "end", and records when every frame arrives. Two modes:
 *   live: chunks paced in real time, the session in live mode (flush per
 *         chunk, frames paced at 25 fps): latency is what a caller feels;
 *   fast: all audio sent at once: throughput per session.
 * Reported per N: frames per second per session (frames / time from the
 * first audio byte to the last frame), first-frame latency (first audio
 * byte -> first frame), and p50/p99 frame latency (frame i: from sending
 * the chunk that completes its 40 ms of audio to its arrival; so it
 * includes the model's lookahead of future audio).
 */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "audio/decode.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "server/server.h"
#include "server/ws_client.h"

#define CHUNK 640 /* 40 ms at 16 kHz: one frame of audio */

typedef struct client {
    int port;
    const char *model;
    const float *audio;
    size_t n;
    int live;
    /* results */
    double t_first_audio, t_first_frame, t_last_frame;
    double *latency;
    int64_t frames;
    char error[LS_ERROR_MSG_MAX];
} client;

static void sleep_until(double t)
{
    double d = t - ls_now();
    if (d <= 0) return;
    struct timespec ts = {(time_t)d, (long)((d - floor(d)) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Takes what has arrived; returns -1 when the stream closed. */
static int drain(client *c, ls_ws_client *ws, const double *t_sent, size_t n_chunks,
                 double timeout, int *done)
{
    ls_ws_message m;
    int rc;
    while ((rc = ls_ws_client_recv(ws, &m, timeout)) == 1) {
        timeout = 0;
        if (m.binary && m.len > 24) {
            int64_t index;
            memcpy(&index, m.data + 8, 8);
            if (!c->frames) c->t_first_frame = m.t_recv;
            c->t_last_frame = m.t_recv;
            size_t k = index < (int64_t)n_chunks ? (size_t)index : n_chunks - 1;
            if (c->frames < (int64_t)(n_chunks + 8)) c->latency[c->frames] = m.t_recv - t_sent[k];
            c->frames++;
        } else if (!m.binary) {
            if (strstr((const char *)m.data, "\"error\""))
                snprintf(c->error, sizeof c->error, "%s", (const char *)m.data);
            if (strstr((const char *)m.data, "\"done\"")) *done = 1;
        }
        ls_ws_message_free(&m);
    }
    return rc < 0 ? -1 : 0;
}

static void *client_main(void *arg)
{
    client *c = arg;
    char path[256];
    snprintf(path, sizeof path, "/v1/stream?model=%s", c->model);
    ls_ws_client *ws;
    ls_error err = {0};
    if (ls_ws_client_connect("127.0.0.1", c->port, path, 60, &ws, &err)) {
        snprintf(c->error, sizeof c->error, "%s", err.msg);
        return NULL;
    }
    char start[128];
    snprintf(start, sizeof start, "{\"type\":\"start\",\"format\":\"f32le\",\"rate\":16000,\"live\":%s}",
             c->live ? "true" : "false");
    ls_ws_client_send(ws, 0, start, strlen(start), NULL);
    ls_ws_message m;
    double t0 = ls_now();
    int ready = 0;
    while (!ready && ls_now() - t0 < 300) {
        int rc = ls_ws_client_recv(ws, &m, 1.0);
        if (rc < 0) break;
        if (rc == 1) {
            ready = !m.binary && strstr((const char *)m.data, "\"ready\"");
            if (!ready && strstr((const char *)m.data, "\"error\""))
                snprintf(c->error, sizeof c->error, "%s", (const char *)m.data);
            ls_ws_message_free(&m);
        }
    }
    size_t n_chunks = (c->n + CHUNK - 1) / CHUNK;
    double *t_sent = calloc(n_chunks, sizeof *t_sent);
    c->latency = calloc(n_chunks + 8, sizeof *c->latency);
    int done = 0;
    if (ready) {
        c->t_first_audio = ls_now();
        for (size_t k = 0; k < n_chunks; k++) {
            if (c->live) sleep_until(c->t_first_audio + (double)k * CHUNK / 16000.0);
            size_t len = k + 1 < n_chunks ? CHUNK : c->n - k * CHUNK;
            t_sent[k] = ls_now();
            ls_ws_client_send(ws, 1, c->audio + k * CHUNK, len * sizeof(float), NULL);
            drain(c, ws, t_sent, n_chunks, 0, &done);
        }
        ls_ws_client_send(ws, 0, "{\"type\":\"end\"}", 14, NULL);
        t0 = ls_now();
        while (!done && ls_now() - t0 < 600)
            if (drain(c, ws, t_sent, n_chunks, 1.0, &done) < 0) break;
    } else if (!c->error[0]) {
        snprintf(c->error, sizeof c->error, "no ready event");
    }
    free(t_sent);
    ls_ws_client_destroy(ws);
    return NULL;
}

static float *synth_speech(double seconds, size_t *n)
{
    *n = (size_t)(16000 * seconds);
    float *x = malloc(*n * sizeof *x);
    uint32_t r = 12345;
    for (size_t i = 0; i < *n; i++) {
        double t = i / 16000.0, env = 0.5 + 0.5 * sin(2 * M_PI * 3.5 * t);
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(env * (0.3 * sin(2 * M_PI * 150 * t) + 0.1 * sin(2 * M_PI * 450 * t)) +
                       0.01 * ((double)(r >> 8) / 16777216.0 - 0.5));
    }
    return x;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lipsync bench serve --models-root DIR --model ID [--clients 1,2,4]\n"
            "                           [--mode live|fast|both] [--seconds S] [--audio FILE]\n"
            "                           [--threads T] [--batch B]\n"
            "Runs an in-process server and N concurrent streaming clients on loopback;\n"
            "prints fps per session, first-frame latency and p50/p99 frame latency.\n");
}

static int run_round(int port, const char *model, const float *audio, size_t n, int n_clients,
                     int live)
{
    client *cl = calloc((size_t)n_clients, sizeof *cl);
    pthread_t *t = calloc((size_t)n_clients, sizeof *t);
    for (int i = 0; i < n_clients; i++) {
        cl[i] = (client){.port = port, .model = model, .audio = audio, .n = n, .live = live};
        pthread_create(&t[i], NULL, client_main, &cl[i]);
    }
    for (int i = 0; i < n_clients; i++) pthread_join(t[i], NULL);
    size_t total = 0;
    for (int i = 0; i < n_clients; i++) total += (size_t)cl[i].frames;
    double *all = malloc((total + 1) * sizeof *all), *fps = malloc((size_t)n_clients * sizeof *fps),
           *first = malloc((size_t)n_clients * sizeof *first);
    size_t k = 0;
    int failed = 0;
    for (int i = 0; i < n_clients; i++) {
        client *c = &cl[i];
        if (c->error[0] || !c->frames) {
            fprintf(stderr, "lipsync: bench serve: client %d: %s\n", i,
                    c->error[0] ? c->error : "no frames");
            failed = 1;
        }
        int64_t kept = c->frames < (int64_t)((n + CHUNK - 1) / CHUNK + 8)
                           ? c->frames
                           : (int64_t)((n + CHUNK - 1) / CHUNK + 8);
        for (int64_t f = 0; f < kept; f++) all[k++] = c->latency[f];
        double span = c->t_last_frame - c->t_first_audio;
        fps[i] = span > 0 ? (double)c->frames / span : 0;
        first[i] = c->t_first_frame - c->t_first_audio;
        free(c->latency);
    }
    if (!failed)
        printf("%-5s %3d  %8.2f  %8.1f  %8.1f  %8.1f  %7zu\n", live ? "live" : "fast", n_clients,
               ls_median(fps, (size_t)n_clients), ls_median(first, (size_t)n_clients) * 1e3,
               ls_percentile(all, k, 50) * 1e3, ls_percentile(all, k, 99) * 1e3, total);
    free(all);
    free(fps);
    free(first);
    free(cl);
    free(t);
    return failed;
}

typedef struct serve_thread {
    ls_server *srv;
} serve_thread;

static void *serve_main(void *arg)
{
    ls_server_run(((serve_thread *)arg)->srv);
    return NULL;
}

int bench_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"models-root", required_argument, 0, 'r'},
                                         {"model", required_argument, 0, 'm'},
                                         {"clients", required_argument, 0, 'c'},
                                         {"mode", required_argument, 0, 'M'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"audio", required_argument, 0, 'a'},
                                         {"threads", required_argument, 0, 't'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *root = NULL, *model = NULL, *clients = "1,2,4", *mode = "both", *audio_path = NULL;
    int seconds = 8, threads = 2, batch = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:m:c:M:s:a:t:b:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': root = optarg; break;
        case 'm': model = optarg; break;
        case 'c': clients = optarg; break;
        case 'M': mode = optarg; break;
        case 's': if ((seconds = cli_parse_int("--seconds", optarg, 1, 3600)) < 0) return 2; break;
        case 'a': audio_path = optarg; break;
        case 't': if ((threads = cli_parse_int("--threads", optarg, 1, 256)) < 0) return 2; break;
        case 'b': if ((batch = cli_parse_int("--batch", optarg, 0, 64)) < 0) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!root || !model || optind != argc) {
        usage(stderr);
        return 2;
    }
    ls_error err = {0};
    ls_audio audio = {0};
    float *synth = NULL;
    const float *x;
    size_t n;
    if (audio_path) {
        if (ls_audio_load_16k(audio_path, NULL, 0, &audio, &err)) return cli_fail("audio", &err);
        x = audio.samples;
        n = audio.n;
    } else {
        x = synth = synth_speech(seconds, &n);
    }
    int counts[16], n_counts = 0;
    char list[64];
    snprintf(list, sizeof list, "%s", clients);
    for (char *s = NULL, *tok = strtok_r(list, ",", &s); tok && n_counts < 16;
         tok = strtok_r(NULL, ",", &s))
        if ((counts[n_counts++] = cli_parse_int("--clients", tok, 1, 64)) < 0) return 2;
    int max_clients = 1;
    for (int i = 0; i < n_counts; i++)
        if (counts[i] > max_clients) max_clients = counts[i];

    ls_server_config cfg;
    ls_server_config_defaults(&cfg);
    cfg.port = 0;
    snprintf(cfg.models_root, sizeof cfg.models_root, "%s", root);
    snprintf(cfg.preload, sizeof cfg.preload, "%s", model);
    cfg.max_sessions = max_clients;
    cfg.workers = max_clients;
    cfg.threads = threads;
    cfg.batch = batch;
    cfg.idle_timeout_s = 600;
    ls_server *srv;
    if (ls_server_create(&cfg, &srv, &err)) return cli_fail("server", &err);
    serve_thread st = {srv};
    pthread_t loop;
    pthread_create(&loop, NULL, serve_main, &st);
    printf("bench serve: model %s, %.1f s of audio per client, pool %d threads, batch %s\n",
           model, (double)n / 16000, threads, batch ? "set" : "model default");
    printf("%-5s %3s  %8s  %8s  %8s  %8s  %7s\n", "mode", "N", "fps/sess", "first_ms", "p50_ms",
           "p99_ms", "frames");
    int failed = 0;
    for (int live = 1; live >= 0; live--) {
        if ((live && !strcmp(mode, "fast")) || (!live && !strcmp(mode, "live"))) continue;
        for (int i = 0; i < n_counts; i++)
            failed |= run_round(ls_server_port(srv), model, x, n, counts[i], live);
    }
    ls_server_stop(srv);
    pthread_join(loop, NULL);
    ls_server_destroy(srv);
    free(synth);
    ls_audio_free(&audio);
    return failed ? 1 : 0;
}

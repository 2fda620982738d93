/* bench_serve.c - `lipsync bench serve`: N concurrent streaming clients on
 * loopback against an in-process server (N = 1, 2, 4 by default).
 *
 * Each client opens /v1/stream, waits for "ready" (the model is loaded
 * before timing starts), sends 16 kHz f32le audio in 40 ms chunks and
 * "end", and records when every frame arrives. Two modes:
 *   live: chunks paced in real time, the session in live mode (flush per
 *         chunk, frames paced at 25 fps): latency is what a caller feels;
 *   fast: all audio sent at once: throughput per session;
 *   batch: one client walking the clip with POST /v1/batch (the seed's API:
 *         batch_size B, start_frame 0, B, 2B, ...), per B of --batch-sizes;
 *         reported: ms per call (p50, p99) and per frame returned, beside
 *         the same clip rendered whole in one call (/v1/render, jpeg-zip),
 *         which is what every batch call cost when the API computed the
 *         whole clip.
 * Reported per N: frames per second per session (frames / time from the
 * first audio byte to the last frame), first-frame latency (first audio
 * byte -> first frame), and p50/p99 frame latency (frame i: from sending
 * the chunk that completes its 40 ms of audio to its arrival; so it
 * includes the model's lookahead of future audio).
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
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

/* POSTs body to 127.0.0.1:port/path (Connection: close) and reads the whole
 * answer; returns the HTTP status, or -1 when the exchange failed. The answer
 * goes to *resp (malloc'd, NUL-terminated) when resp is not NULL. */
static int http_post(int port, const char *path, const void *body, size_t len, char **resp)
{
    if (resp) *resp = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", path, len);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && hl > 0 && (size_t)hl < sizeof head;
    for (size_t off = 0; ok && off < (size_t)hl;) {
        ssize_t w = write(fd, head + off, (size_t)hl - off);
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    for (size_t off = 0; ok && off < len;) {
        ssize_t w = write(fd, (const char *)body + off, len - off);
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = ok ? malloc(cap + 1) : NULL;
    ssize_t r = 0;
    while (buf && (r = read(fd, buf + n, cap - n)) > 0) {
        n += (size_t)r;
        if (n == cap) {
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) break;
            buf = b;
            cap *= 2;
        }
    }
    close(fd);
    int status = -1;
    if (buf) {
        buf[n] = 0;
        if (r == 0 && sscanf(buf, "HTTP/1.1 %d", &status) != 1) status = -1;
        if (resp) *resp = buf;
        else free(buf);
    }
    return status;
}

/* A WAV file (float32 mono 16 kHz) of x, for /v1/render. */
static uint8_t *wav_f32(const float *x, size_t n, size_t *len)
{
    size_t data = n * 4;
    uint8_t *w = malloc(44 + data);
    if (!w) return NULL;
    uint32_t v32;
    uint16_t v16;
#define PUT(off, v) memcpy(w + (off), &(v), sizeof(v))
    memcpy(w, "RIFF", 4);
    v32 = (uint32_t)(36 + data); PUT(4, v32);
    memcpy(w + 8, "WAVEfmt ", 8);
    v32 = 16; PUT(16, v32);
    v16 = 3; PUT(20, v16); /* IEEE float */
    v16 = 1; PUT(22, v16);
    v32 = 16000; PUT(24, v32);
    v32 = 64000; PUT(28, v32);
    v16 = 4; PUT(32, v16);
    v16 = 32; PUT(34, v16);
    memcpy(w + 36, "data", 4);
    v32 = (uint32_t)data; PUT(40, v32);
#undef PUT
    memcpy(w + 44, x, data);
    *len = 44 + data;
    return w;
}

/* One client walking the clip with /v1/batch, for each B in sizes. */
static int run_batch_walk(int port, const char *model, const float *x, size_t n,
                          const int *sizes, int n_sizes)
{
    size_t wlen;
    uint8_t *wav = wav_f32(x, n, &wlen);
    char path[256];
    snprintf(path, sizeof path, "/v1/render?model=%s&output=jpeg-zip", model);
    double t0 = ls_now();
    int st = wav ? http_post(port, path, wav, wlen, NULL) : -1;
    double whole_ms = (ls_now() - t0) * 1e3;
    free(wav);
    if (st != 200) {
        fprintf(stderr, "lipsync: bench serve: render of the whole clip: status %d\n", st);
        return 1;
    }
    printf("whole clip in one render call (what each batch call cost before): %.1f ms\n", whole_ms);
    printf("%-8s %3s  %6s  %8s  %8s  %9s  %7s\n", "mode", "B", "calls", "p50_ms", "p99_ms",
           "ms/frame", "frames");
    int failed = 0;
    for (int i = 0; i < n_sizes && !failed; i++) {
        int b = sizes[i];
        size_t cap = 64, calls = 0;
        double *ms = malloc(cap * sizeof *ms), sum = 0;
        long long frames = 0, total = -1;
        for (long long g = 0; ms && (total < 0 || g < total); g += b) {
            snprintf(path, sizeof path, "/v1/batch?model=%s&batch_size=%d&start_frame=%lld", model,
                     b, g);
            char *resp;
            t0 = ls_now();
            st = http_post(port, path, x, n * sizeof *x, &resp);
            double t = (ls_now() - t0) * 1e3;
            char *tf = resp ? strstr(resp, "\"total_frames\":") : NULL;
            char *ct = resp ? strstr(resp, "\"count\":") : NULL;
            if (st != 200 || !tf || !ct) {
                fprintf(stderr, "lipsync: bench serve: batch at %lld: status %d\n", g, st);
                free(resp);
                failed = 1;
                break;
            }
            total = atoll(tf + 15);
            frames += atoll(ct + 8);
            free(resp);
            if (calls == cap) {
                double *m2 = realloc(ms, 2 * cap * sizeof *ms);
                if (!m2) break;
                ms = m2;
                cap *= 2;
            }
            ms[calls++] = t;
            sum += t;
        }
        if (!failed && calls)
            printf("%-8s %3d  %6zu  %8.1f  %8.1f  %9.2f  %7lld\n", "batch", b, calls,
                   ls_percentile(ms, calls, 50), ls_percentile(ms, calls, 99),
                   frames ? sum / (double)frames : 0, frames);
        free(ms);
    }
    return failed;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lipsync bench serve --models-root DIR --model ID [--clients 1,2,4]\n"
            "                           [--mode live|fast|both|batch] [--seconds S] [--audio FILE]\n"
            "                           [--threads T] [--batch B] [--batch-sizes 8,25]\n"
            "Runs an in-process server and N concurrent streaming clients on loopback;\n"
            "prints fps per session, first-frame latency and p50/p99 frame latency.\n"
            "--mode batch: one client walks the clip with POST /v1/batch for each size of\n"
            "--batch-sizes (ms per call and per frame), beside a whole-clip render call.\n");
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
                                         {"batch-sizes", required_argument, 0, 'B'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *root = NULL, *model = NULL, *clients = "1,2,4", *mode = "both", *audio_path = NULL;
    const char *batch_sizes = "8,25";
    int seconds = 8, threads = 2, batch = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:m:c:M:s:a:t:b:B:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': root = optarg; break;
        case 'm': model = optarg; break;
        case 'c': clients = optarg; break;
        case 'M': mode = optarg; break;
        case 's': if ((seconds = cli_parse_int("--seconds", optarg, 1, 3600)) < 0) return 2; break;
        case 'a': audio_path = optarg; break;
        case 't': if ((threads = cli_parse_int("--threads", optarg, 1, 256)) < 0) return 2; break;
        case 'b': if ((batch = cli_parse_int("--batch", optarg, 0, 64)) < 0) return 2; break;
        case 'B': batch_sizes = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!root || !model || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (strcmp(mode, "live") && strcmp(mode, "fast") && strcmp(mode, "both") &&
        strcmp(mode, "batch")) {
        fprintf(stderr, "lipsync: bench serve: --mode %s: want live, fast, both or batch\n", mode);
        return 2;
    }
    int sizes[16], counts[16];
    int n_sizes = cli_parse_int_list("--batch-sizes", batch_sizes, 1, 32, sizes, 16);
    int n_counts = cli_parse_int_list("--clients", clients, 1, 64, counts, 16);
    if (n_sizes < 0 || n_counts < 0) return 2;
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
    int failed = 0;
    if (!strcmp(mode, "batch"))
        failed = run_batch_walk(ls_server_port(srv), model, x, n, sizes, n_sizes);
    else
        printf("%-5s %3s  %8s  %8s  %8s  %8s  %7s\n", "mode", "N", "fps/sess", "first_ms",
               "p50_ms", "p99_ms", "frames");
    for (int live = 1; live >= 0 && strcmp(mode, "batch"); live--) {
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

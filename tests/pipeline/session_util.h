/* session_util.h - running a session over test audio and comparing frames. */
#ifndef LS_TEST_SESSION_UTIL_H
#define LS_TEST_SESSION_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/session.h"
#include "support/test_util.h"

typedef struct frame_list {
    int n, cap;
    int64_t *index, *avatar;
    int *silent;
    uint8_t **bytes;
    size_t *size;
} frame_list;

static inline void frames_free(frame_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->bytes[i]);
    free(l->index); free(l->avatar); free(l->silent); free(l->bytes); free(l->size);
    memset(l, 0, sizeof *l);
}

/* Appends a copy of frame f. */
static inline void frames_add(frame_list *l, const ls_frame *f)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->index = realloc(l->index, (size_t)l->cap * sizeof *l->index);
        l->avatar = realloc(l->avatar, (size_t)l->cap * sizeof *l->avatar);
        l->silent = realloc(l->silent, (size_t)l->cap * sizeof *l->silent);
        l->bytes = realloc(l->bytes, (size_t)l->cap * sizeof *l->bytes);
        l->size = realloc(l->size, (size_t)l->cap * sizeof *l->size);
    }
    l->index[l->n] = f->index;
    l->avatar[l->n] = f->avatar_frame;
    l->silent[l->n] = f->silent;
    l->bytes[l->n] = malloc(f->size);
    memcpy(l->bytes[l->n], f->data, f->size);
    l->size[l->n] = f->size;
    l->n++;
}

/* Pulls every ready frame of s into l. */
static inline void frames_take(ls_session *s, frame_list *l)
{
    ls_frame f;
    while (ls_session_pull_frame(s, &f)) frames_add(l, &f);
}

/* The demo model of the build tree ($LS_DEMO_MODEL) at `batch` on a new
 * two-thread pool; -1 (with a message) when it cannot be loaded. */
static inline int load_demo_model(int batch, ls_pool **pool, ls_model **model)
{
    const char *dir = getenv("LS_DEMO_MODEL");
    ls_error err = {0};
    *model = NULL;
    ls_model_options mo = {.batch = batch};
    if (ls_pool_create(2, pool, &err) || !dir || ls_model_load(dir, &mo, *pool, model, &err)) {
        fprintf(stderr, "cannot load the demo model (%s): %s\n", dir ? dir : "LS_DEMO_MODEL unset",
                err.msg);
        return -1;
    }
    return 0;
}

/* Speech-like test audio: a gliding harmonic tone with syllable-rate bursts. */
static inline float *make_speech(size_t n, uint64_t seed)
{
    float *x = malloc(n * sizeof *x);
    uint64_t s = seed;
    double phase = 0, f0 = 110 + 60 * test_rand_uniform(&s);
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / 16000.0;
        phase += 2 * M_PI * (f0 + 30 * sin(2 * M_PI * 1.3 * t)) / 16000.0;
        double v = sin(phase) + 0.5 * sin(2 * phase) + 0.25 * sin(3 * phase);
        double env = 0.5 + 0.5 * sin(2 * M_PI * 4.0 * t);
        x[i] = (float)(0.25 * v * env + 0.01 * (test_rand_uniform(&s) - 0.5));
    }
    return x;
}

/* Pushes x in chunks (chunk 0: all at once; < 0: random sizes up to -chunk). */
static inline int run_session(ls_model *m, ls_pool *pool, const ls_session_options *o,
                              const float *x, size_t n, long chunk, uint64_t seed, frame_list *out,
                              ls_error *err)
{
    memset(out, 0, sizeof *out);
    ls_session *s;
    int rc = ls_session_create(m, pool, o, &s, err);
    if (rc) return rc;
    uint64_t rng = seed;
    for (size_t off = 0; off < n && !rc;) {
        size_t len = chunk == 0 ? n : chunk > 0 ? (size_t)chunk : 1 + test_rand(&rng) % (size_t)(-chunk);
        if (len > n - off) len = n - off;
        rc = ls_session_push_audio(s, x + off, len, err);
        off += len;
        frames_take(s, out);
    }
    if (!rc) rc = ls_session_finish(s, err);
    frames_take(s, out);
    ls_session_destroy(s);
    return rc;
}

static inline void assert_same_frames(const frame_list *a, const frame_list *b, const char *what)
{
    if (a->n != b->n) fail_msg("%s: %d frames vs %d", what, a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        if (a->index[i] != b->index[i] || a->avatar[i] != b->avatar[i] ||
            a->silent[i] != b->silent[i])
            fail_msg("%s: frame %d index/avatar/silent differ", what, i);
        if (a->size[i] != b->size[i] || memcmp(a->bytes[i], b->bytes[i], a->size[i]))
            fail_msg("%s: frame %d bytes differ", what, i);
    }
}

#endif

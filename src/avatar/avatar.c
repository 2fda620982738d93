#include "avatar/avatar.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "image/codec.h"
#include "image/face.h"
#include "image/resize.h"

#define CROP_BYTES ((size_t)LS_CROP_SIDE * LS_CROP_SIDE * 3)

typedef struct encoded {
    uint8_t *bytes;
    size_t len;
} encoded;

/* A decoded frame held by the LRU cache. */
typedef struct cache_slot {
    int frame;     /* -1 when empty */
    int pins;      /* acquirers holding it */
    int loading;   /* being decoded by the thread that claimed it */
    uint64_t used; /* last acquisition, for LRU */
    ls_image img;
} cache_slot;

typedef struct frame_cache {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a slot finished loading or was unpinned */
    cache_slot *slots;
    int n_slots;
    int *slot_of;           /* frame -> slot or -1 */
    uint64_t clock;
    ls_image_decoder **decoders; /* idle decoders, reused by misses */
    int n_decoders, decoders_cap;
} frame_cache;

struct ls_avatar {
    ls_avatar_layout layout;
    char *dir;
    int width, height;
    uint8_t *crop_pixels; /* n_frames crops of CROP_BYTES */
    ls_image *crops;
    uint8_t *frame_pixels; /* all frames, when kept decoded; else NULL */
    encoded *files;        /* compressed frames, when decoding on demand; else NULL */
    frame_cache *cache;
    size_t compressed_bytes;
};

/* ---- loading ---- */

typedef struct load_job {
    ls_avatar *av;
    int n_bands;
    encoded *files;
    int *bad_frame;   /* per band: first failing frame, or -1 */
    ls_error *errors; /* per band */
} load_job;

static int load_frame(ls_avatar *av, const encoded *f, int i, ls_image_decoder *dec,
                      ls_resizer *rz, ls_image *scratch, ls_error *err)
{
    int w, h;
    int rc = ls_image_decode_size(dec, f->bytes, f->len, &w, &h, err);
    if (rc != LS_OK) return rc;
    if (w != av->width || h != av->height)
        return ls_error_set(err, LS_ERR_FORMAT, "image is %dx%d, frame 0 is %dx%d", w, h,
                            av->width, av->height);
    ls_rect r = av->layout.rects[i];
    if (r.x2 <= r.x1 || r.y2 <= r.y1)
        return ls_error_set(err, LS_ERR_RANGE, "crop rectangle (%d,%d)-(%d,%d) has zero area",
                            r.x1, r.y1, r.x2, r.y2);
    if (!ls_rect_valid(r, w, h))
        return ls_error_set(err, LS_ERR_RANGE,
                            "crop rectangle (%d,%d)-(%d,%d) is outside the %dx%d frame", r.x1,
                            r.y1, r.x2, r.y2, w, h);
    ls_image frame = *scratch;
    if (av->frame_pixels)
        frame = ls_image_view(av->frame_pixels + (size_t)i * w * h * 3, w, h, 3);
    rc = ls_image_decode_into(dec, f->bytes, f->len, &frame, err);
    if (rc == LS_OK) rc = ls_face_crop(rz, NULL, &frame, r, &av->crops[i], err);
    return rc;
}

static void load_band(void *ctx, int begin, int end, int band)
{
    load_job *j = ctx;
    ls_avatar *av = j->av;
    ls_error *err = &j->errors[band];
    ls_image_decoder *dec = NULL;
    ls_resizer *rz = NULL;
    ls_image scratch = {0};
    int rc = ls_image_decoder_create(&dec, err);
    if (rc == LS_OK) rc = ls_resizer_create(&rz, err);
    if (rc == LS_OK && !av->frame_pixels)
        rc = ls_image_alloc(&scratch, av->width, av->height, 3, err);
    if (rc != LS_OK) j->bad_frame[band] = begin;
    for (int i = begin; rc == LS_OK && i < end; i++) {
        rc = load_frame(av, &j->files[i], i, dec, rz, &scratch, err);
        if (rc != LS_OK) {
            ls_error_prefix(err, "frame %d (%s)", i, av->layout.paths[i]);
            j->bad_frame[band] = i;
        }
    }
    ls_image_free(&scratch);
    ls_resizer_destroy(rz);
    ls_image_decoder_destroy(dec);
}

static int read_files(ls_avatar *av, encoded *files, ls_error *err)
{
    for (int i = 0; i < av->layout.n_frames; i++) {
        int rc = ls_read_file(av->layout.paths[i], &files[i].bytes, &files[i].len, err);
        if (rc != LS_OK) return ls_error_prefix(err, "frame %d", i);
        av->compressed_bytes += files[i].len;
    }
    return LS_OK;
}

static void free_files(encoded *files, int n)
{
    for (int i = 0; files && i < n; i++) free(files[i].bytes);
    free(files);
}

static int create_cache(ls_avatar *av, int n_slots, ls_error *err)
{
    frame_cache *c = calloc(1, sizeof *c);
    if (!c) return ls_error_set(err, LS_ERR_NOMEM, "frame cache");
    av->cache = c;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->changed, NULL);
    c->slots = calloc((size_t)n_slots, sizeof *c->slots);
    c->slot_of = malloc((size_t)av->layout.n_frames * sizeof *c->slot_of);
    if (!c->slots || !c->slot_of) return ls_error_set(err, LS_ERR_NOMEM, "frame cache");
    c->n_slots = n_slots;
    for (int i = 0; i < av->layout.n_frames; i++) c->slot_of[i] = -1;
    for (int s = 0; s < n_slots; s++) {
        c->slots[s].frame = -1;
        int rc = ls_image_alloc(&c->slots[s].img, av->width, av->height, 3, err);
        if (rc != LS_OK) return rc;
    }
    return LS_OK;
}

static void destroy_cache(frame_cache *c)
{
    if (!c) return;
    for (int s = 0; c->slots && s < c->n_slots; s++) ls_image_free(&c->slots[s].img);
    for (int d = 0; d < c->n_decoders; d++) ls_image_decoder_destroy(c->decoders[d]);
    free(c->decoders);
    free(c->slots);
    free(c->slot_of);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->changed);
    free(c);
}

int ls_avatar_load(const char *dir, const ls_avatar_options *opt, ls_pool *pool,
                   ls_avatar **out, ls_error *err)
{
    *out = NULL;
    ls_avatar *av = calloc(1, sizeof *av);
    if (!av) return ls_error_set(err, LS_ERR_NOMEM, "avatar");
    int rc = ls_avatar_layout_scan(dir, &av->layout, err);
    int n = av->layout.n_frames;
    encoded *files = NULL;
    if (rc == LS_OK && !(av->dir = strdup(dir))) rc = ls_error_set(err, LS_ERR_NOMEM, "avatar");
    if (rc == LS_OK && !(files = calloc((size_t)n, sizeof *files)))
        rc = ls_error_set(err, LS_ERR_NOMEM, "avatar");
    if (rc == LS_OK) rc = read_files(av, files, err);
    if (rc == LS_OK) {
        ls_image_decoder *dec;
        rc = ls_image_decoder_create(&dec, err);
        if (rc == LS_OK)
            rc = ls_image_decode_size(dec, files[0].bytes, files[0].len, &av->width,
                                      &av->height, err);
        ls_image_decoder_destroy(dec);
        if (rc != LS_OK) ls_error_prefix(err, "frame 0 (%s)", av->layout.paths[0]);
    }
    if (rc == LS_OK && av->layout.width &&
        (av->layout.width != av->width || av->layout.height != av->height))
        rc = ls_error_set(err, LS_ERR_FORMAT, "avatar.json says %dx%d, frame 0 is %dx%d",
                          av->layout.width, av->layout.height, av->width, av->height);
    size_t frame_bytes = (size_t)av->width * av->height * 3;
    size_t budget = opt ? opt->memory_budget : 0;
    int keep_all = budget == 0 || frame_bytes * (size_t)n <= budget;
    if (rc == LS_OK) {
        av->crop_pixels = malloc(CROP_BYTES * (size_t)n);
        av->crops = malloc((size_t)n * sizeof *av->crops);
        if (keep_all) av->frame_pixels = malloc(frame_bytes * (size_t)n);
        if (!av->crop_pixels || !av->crops || (keep_all && !av->frame_pixels))
            rc = ls_error_set(err, LS_ERR_NOMEM, "cannot allocate %d decoded frames", n);
    }
    if (rc == LS_OK) {
        for (int i = 0; i < n; i++)
            av->crops[i] = ls_image_view(av->crop_pixels + CROP_BYTES * (size_t)i, LS_CROP_SIDE,
                                         LS_CROP_SIDE, 3);
        load_job job = {av, ls_band_count(n, ls_pool_threads(pool)), files, NULL, NULL};
        job.bad_frame = malloc((size_t)job.n_bands * sizeof *job.bad_frame);
        job.errors = calloc((size_t)job.n_bands, sizeof *job.errors);
        if (!job.bad_frame || !job.errors) {
            rc = ls_error_set(err, LS_ERR_NOMEM, "avatar");
        } else {
            for (int b = 0; b < job.n_bands; b++) job.bad_frame[b] = -1;
            ls_pool_parallel_for_bands(pool, n, job.n_bands, load_band, &job);
            /* Report the lowest failing frame, whatever band found it. */
            for (int b = 0; b < job.n_bands && rc == LS_OK; b++)
                if (job.bad_frame[b] >= 0) {
                    rc = job.errors[b].code ? job.errors[b].code : LS_ERR_INTERNAL;
                    if (err) *err = job.errors[b];
                }
        }
        free(job.bad_frame);
        free(job.errors);
    }
    if (rc == LS_OK && !keep_all) {
        size_t slots = budget / frame_bytes;
        rc = create_cache(av, slots < 1 ? 1 : (int)slots, err);
        av->files = files;
        files = NULL;
    }
    free_files(files, n);
    if (rc != LS_OK) {
        ls_avatar_destroy(av);
        return rc;
    }
    if (keep_all) av->compressed_bytes = 0;
    *out = av;
    return LS_OK;
}

void ls_avatar_destroy(ls_avatar *av)
{
    if (!av) return;
    destroy_cache(av->cache);
    free_files(av->files, av->layout.n_frames);
    free(av->frame_pixels);
    free(av->crop_pixels);
    free(av->crops);
    free(av->dir);
    ls_avatar_layout_free(&av->layout);
    free(av);
}

void ls_avatar_get_info(const ls_avatar *av, ls_avatar_info *info)
{
    memset(info, 0, sizeof *info);
    info->name = av->layout.name;
    info->source = av->layout.source;
    info->dir = av->dir;
    info->layout = av->layout.kind;
    info->fps = av->layout.fps;
    info->width = av->width;
    info->height = av->height;
    info->n_frames = av->layout.n_frames;
    size_t frame_bytes = (size_t)av->width * av->height * 3;
    info->cached_frames = av->cache ? av->cache->n_slots : av->layout.n_frames;
    info->frames_bytes = frame_bytes * (size_t)info->cached_frames;
    info->crops_bytes = CROP_BYTES * (size_t)av->layout.n_frames;
    info->compressed_bytes = av->compressed_bytes;
    info->total_bytes = info->frames_bytes + info->crops_bytes + info->compressed_bytes;
}

const char *ls_avatar_frame_path(const ls_avatar *av, int i)
{
    return i >= 0 && i < av->layout.n_frames ? av->layout.paths[i] : NULL;
}

ls_rect ls_avatar_rect(const ls_avatar *av, int i)
{
    return av->layout.rects[i];
}

const ls_image *ls_avatar_crop(const ls_avatar *av, int i)
{
    return &av->crops[i];
}

/* ---- frame access ---- */

static int take_decoder(frame_cache *c, ls_image_decoder **out, ls_error *err)
{
    pthread_mutex_lock(&c->lock);
    *out = c->n_decoders ? c->decoders[--c->n_decoders] : NULL;
    pthread_mutex_unlock(&c->lock);
    return *out ? LS_OK : ls_image_decoder_create(out, err);
}

static void return_decoder(frame_cache *c, ls_image_decoder *d)
{
    pthread_mutex_lock(&c->lock);
    if (c->n_decoders == c->decoders_cap) {
        int cap = c->decoders_cap ? c->decoders_cap * 2 : 4;
        ls_image_decoder **v = realloc(c->decoders, (size_t)cap * sizeof *v);
        if (v) {
            c->decoders = v;
            c->decoders_cap = cap;
        }
    }
    if (c->n_decoders < c->decoders_cap) {
        c->decoders[c->n_decoders++] = d;
        d = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    ls_image_decoder_destroy(d);
}

/* Decodes frame i into slot s, claimed (loading, pinned) by this thread. */
static int fill_slot(ls_avatar *av, int s, int i, ls_error *err)
{
    frame_cache *c = av->cache;
    ls_image_decoder *dec;
    int rc = take_decoder(c, &dec, err);
    if (rc == LS_OK)
        rc = ls_image_decode_into(dec, av->files[i].bytes, av->files[i].len, &c->slots[s].img,
                                  err);
    if (dec) return_decoder(c, dec);
    if (rc != LS_OK) ls_error_prefix(err, "frame %d (%s)", i, av->layout.paths[i]);
    pthread_mutex_lock(&c->lock);
    c->slots[s].loading = 0;
    if (rc != LS_OK) {
        c->slots[s].frame = -1;
        c->slots[s].pins = 0;
        c->slot_of[i] = -1;
    }
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int ls_avatar_acquire_frame(ls_avatar *av, int i, ls_image *frame, ls_error *err)
{
    if (!av || i < 0 || i >= av->layout.n_frames)
        return ls_error_set(err, LS_ERR_RANGE, "avatar frame %d outside 0..%d", i,
                            av ? av->layout.n_frames - 1 : -1);
    if (av->frame_pixels) {
        size_t bytes = (size_t)av->width * av->height * 3;
        *frame = ls_image_view(av->frame_pixels + bytes * (size_t)i, av->width, av->height, 3);
        return LS_OK;
    }
    frame_cache *c = av->cache;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        int s = c->slot_of[i];
        if (s >= 0) {
            if (c->slots[s].loading) { /* another thread is decoding it */
                pthread_cond_wait(&c->changed, &c->lock);
                continue;
            }
            c->slots[s].pins++;
            c->slots[s].used = ++c->clock;
            *frame = c->slots[s].img;
            pthread_mutex_unlock(&c->lock);
            return LS_OK;
        }
        int victim = -1;
        for (int k = 0; k < c->n_slots; k++) {
            cache_slot *v = &c->slots[k];
            if (v->pins) continue;
            if (victim < 0 || v->used < c->slots[victim].used) victim = k;
        }
        if (victim < 0) { /* all pinned: wait for a release */
            pthread_cond_wait(&c->changed, &c->lock);
            continue;
        }
        cache_slot *v = &c->slots[victim];
        if (v->frame >= 0) c->slot_of[v->frame] = -1;
        v->frame = i;
        v->pins = 1;
        v->loading = 1;
        v->used = ++c->clock;
        c->slot_of[i] = victim;
        pthread_mutex_unlock(&c->lock);
        int rc = fill_slot(av, victim, i, err);
        if (rc == LS_OK) *frame = v->img;
        return rc;
    }
}

void ls_avatar_release_frame(ls_avatar *av, int i)
{
    if (!av || !av->cache || i < 0 || i >= av->layout.n_frames) return;
    frame_cache *c = av->cache;
    pthread_mutex_lock(&c->lock);
    int s = c->slot_of[i];
    if (s >= 0 && c->slots[s].pins > 0 && --c->slots[s].pins == 0)
        pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

int ls_avatar_pingpong(int n_frames, int start, int64_t k)
{
    if (n_frames < 1 || start < 0 || start >= n_frames || k < 0) return -1;
    int64_t m = n_frames - start; /* frames in the bounce, start..last */
    if (m == 1) return start;
    int64_t period = 2 * (m - 1);
    int64_t t = (k + 1) % period;
    return start + (int)(t <= m - 1 ? t : period - t);
}

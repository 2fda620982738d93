#include "avatar/prepare.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avatar/avatar.h"
#include "avatar/croprect.h"
#include "avatar/layout.h"
#include "avatar/video.h"
#include "core/npy.h"
#include "image/codec.h"

#define DEFAULT_VIDEO_QUALITY 95

static int write_file(const char *path, const void *bytes, size_t len, ls_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f) return ls_error_set(err, LS_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    size_t put = fwrite(bytes, 1, len, f);
    if (fclose(f) != 0 || put != len)
        return ls_error_set(err, LS_ERR_IO, "cannot write %s", path);
    return LS_OK;
}

/* Writes root as OUT/name and frees it (a NULL root means building it ran out of memory). */
static int write_json(const char *out, const char *name, cJSON *root, ls_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, name);
    char *text = root ? cJSON_Print(root) : NULL;
    int rc = text ? write_file(path, text, strlen(text), err)
                  : ls_error_set(err, LS_ERR_NOMEM, "JSON for %s", path);
    free(text);
    cJSON_Delete(root);
    return rc;
}

/* OUT must be new or empty (here: the fresh directory ls_avatar_prepare made);
 * creates OUT and OUT/frames. */
static int make_output_dir(const char *out, ls_error *err)
{
    DIR *d = opendir(out);
    if (d) {
        struct dirent *e;
        int empty = 1;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
        closedir(d);
        if (!empty) return ls_error_set(err, LS_ERR_STATE, "%s exists and is not empty", out);
    } else if (mkdir(out, 0777) != 0) {
        return ls_error_set(err, LS_ERR_IO, "cannot create %s: %s", out, strerror(errno));
    }
    char frames[4096];
    snprintf(frames, sizeof frames, "%s/frames", out);
    if (mkdir(frames, 0777) != 0)
        return ls_error_set(err, LS_ERR_IO, "cannot create %s: %s", frames, strerror(errno));
    return LS_OK;
}

static int write_rects(const char *out, const ls_rect *rects, int n, ls_error *err)
{
    cJSON *root = cJSON_CreateArray();
    for (int i = 0; root && i < n; i++) {
        int v[4] = {rects[i].x1, rects[i].y1, rects[i].x2, rects[i].y2};
        cJSON *r = cJSON_CreateIntArray(v, 4);
        if (!r || !cJSON_AddItemToArray(root, r)) {
            cJSON_Delete(r);
            cJSON_Delete(root);
            root = NULL;
        }
    }
    return write_json(out, "crop_rects.json", root, err);
}

static int write_manifest(const char *out, const char *name, double fps, int w, int h, int n,
                          const char *source, ls_error *err)
{
    cJSON *root = cJSON_CreateObject();
    if (root && (!cJSON_AddStringToObject(root, "name", name) ||
                 !cJSON_AddNumberToObject(root, "fps", fps) ||
                 !cJSON_AddNumberToObject(root, "width", w) ||
                 !cJSON_AddNumberToObject(root, "height", h) ||
                 !cJSON_AddNumberToObject(root, "frames", n) ||
                 !cJSON_AddStringToObject(root, "source", source))) {
        cJSON_Delete(root);
        root = NULL;
    }
    return write_json(out, "avatar.json", root, err);
}

/* Copies the validated frames of a directory source. */
static int prepare_from_dir(const char *src, const char *out, const ls_prepare_options *opt,
                            ls_pool *pool, ls_error *err)
{
    ls_avatar *av;
    int rc = ls_avatar_load(src, NULL, pool, &av, err);
    if (rc != LS_OK) return rc;
    ls_avatar_info info;
    ls_avatar_get_info(av, &info);
    ls_rect *rects = malloc((size_t)info.n_frames * sizeof *rects);
    rc = rects ? make_output_dir(out, err) : ls_error_set(err, LS_ERR_NOMEM, "rects");
    for (int i = 0; rc == LS_OK && i < info.n_frames; i++) {
        uint8_t *bytes;
        size_t len;
        rects[i] = ls_avatar_rect(av, i);
        rc = ls_read_file(ls_avatar_frame_path(av, i), &bytes, &len, err);
        if (rc != LS_OK) break;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/frames/frame_%04d.%s", out, i,
                     ls_image_sniff(bytes, len) == LS_IMAGE_PNG ? "png" : "jpg") >=
            (int)sizeof path)
            rc = ls_error_set(err, LS_ERR_INVALID_ARG, "output path too long: %s", out);
        else
            rc = write_file(path, bytes, len, err);
        free(bytes);
    }
    if (rc == LS_OK) rc = write_rects(out, rects, info.n_frames, err);
    if (rc == LS_OK)
        rc = write_manifest(out, opt->name ? opt->name : info.name,
                            opt->fps > 0 ? opt->fps : info.fps, info.width, info.height,
                            info.n_frames, src, err);
    free(rects);
    ls_avatar_destroy(av);
    return rc;
}

typedef struct video_job {
    const char *out, *lms_dir;
    const ls_prepare_options *opt;
    ls_jpeg_encoder *enc;
    uint8_t *jpeg;
    size_t jpeg_cap;
    ls_rect *rects;
    int n_rects, rects_cap;
    int width, height;
} video_job;

/* One decoded video frame: its rectangle from the landmarks, then the image file. */
static int on_video_frame(void *ctx, int i, const ls_image *bgr, ls_error *err)
{
    video_job *j = ctx;
    if (i == 0) {
        j->width = bgr->width;
        j->height = bgr->height;
    } else if (bgr->width != j->width || bgr->height != j->height) {
        return ls_error_set(err, LS_ERR_FORMAT, "video frame %d is %dx%d, frame 0 is %dx%d", i,
                            bgr->width, bgr->height, j->width, j->height);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%d.lms", j->lms_dir, i);
    if (j->n_rects == j->rects_cap) {
        int cap = j->rects_cap ? j->rects_cap * 2 : 256;
        ls_rect *r = realloc(j->rects, (size_t)cap * sizeof *r);
        if (!r) return ls_error_set(err, LS_ERR_NOMEM, "rects");
        j->rects = r;
        j->rects_cap = cap;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return ls_error_set(err, LS_ERR_NOT_FOUND,
                            "frame %d: %s is missing (count mismatch: the video has more "
                            "frames than landmark files)",
                            i, path);
    ls_rect *r = &j->rects[j->n_rects];
    int rc = ls_croprect_read(path, r, err);
    if (rc != LS_OK) return ls_error_prefix(err, "frame %d", i);
    if (r->x2 <= r->x1 || r->y2 <= r->y1 || !ls_rect_valid(*r, bgr->width, bgr->height))
        return ls_error_set(err, LS_ERR_RANGE,
                            "frame %d: crop rectangle (%d,%d)-(%d,%d) from %s %s", i, r->x1,
                            r->y1, r->x2, r->y2, path,
                            r->x2 <= r->x1 || r->y2 <= r->y1 ? "has zero area"
                                                             : "is outside the frame");
    j->n_rects++;
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (j->opt->png) {
        rc = ls_png_encode(bgr, &bytes, &len, err);
    } else {
        size_t cap = ls_jpeg_bound(bgr->width, bgr->height);
        if (cap > j->jpeg_cap) {
            free(j->jpeg);
            j->jpeg_cap = 0;
            if (!(j->jpeg = malloc(cap))) return ls_error_set(err, LS_ERR_NOMEM, "jpeg");
            j->jpeg_cap = cap;
        }
        int q = j->opt->jpeg_quality ? j->opt->jpeg_quality : DEFAULT_VIDEO_QUALITY;
        rc = ls_jpeg_encode(j->enc, bgr, q, j->jpeg, j->jpeg_cap, &len, err);
    }
    if (rc == LS_OK) {
        if (snprintf(path, sizeof path, "%s/frames/frame_%04d.%s", j->out, i,
                     j->opt->png ? "png" : "jpg") >= (int)sizeof path)
            rc = ls_error_set(err, LS_ERR_INVALID_ARG, "output path too long: %s", j->out);
        else
            rc = write_file(path, j->opt->png ? bytes : j->jpeg, len, err);
    }
    free(bytes);
    if (j->opt->report && i % 100 == 99) fprintf(j->opt->report, "  %d frames\n", i + 1);
    return rc;
}

static int count_lms(const char *dir, ls_error *err)
{
    DIR *d = opendir(dir);
    if (!d) return ls_error_set(err, LS_ERR_NOT_FOUND, "cannot open landmarks folder %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".lms")) n++;
    }
    closedir(d);
    return n;
}

static int prepare_from_video(const char *src, const char *out, const ls_prepare_options *opt,
                              ls_error *err)
{
    if (!opt->landmarks_dir)
        return ls_error_set(err, LS_ERR_INVALID_ARG,
                            "%s is a file: a video source needs a landmarks folder", src);
    int n_lms = count_lms(opt->landmarks_dir, err);
    if (n_lms < 0) return n_lms;
    video_job j = {.out = out, .lms_dir = opt->landmarks_dir, .opt = opt};
    int rc = make_output_dir(out, err);
    if (rc == LS_OK) rc = ls_jpeg_encoder_create(&j.enc, err);
    double fps = 0;
    int n = 0;
    if (rc == LS_OK) rc = ls_video_decode(src, on_video_frame, &j, &fps, &n, err);
    if (rc == LS_OK && n != n_lms)
        rc = ls_error_set(err, LS_ERR_FORMAT,
                          "count mismatch: %s has %d frames, %s has %d .lms files", src, n,
                          opt->landmarks_dir, n_lms);
    if (rc == LS_OK) rc = write_rects(out, j.rects, n, err);
    if (rc == LS_OK) {
        const char *base = strrchr(src, '/');
        char name[LS_AVATAR_NAME_MAX];
        snprintf(name, sizeof name, "%s", base ? base + 1 : src);
        char *dot = strrchr(name, '.');
        if (dot && dot != name) *dot = 0;
        double rate = opt->fps > 0 ? opt->fps : (fps > 0 ? fps : LS_AVATAR_DEFAULT_FPS);
        rc = write_manifest(out, opt->name ? opt->name : name, rate, j.width, j.height, n, src,
                            err);
    }
    ls_jpeg_encoder_destroy(j.enc);
    free(j.jpeg);
    free(j.rects);
    return rc;
}

/* OUT must not exist yet or be empty (nothing of the user's is replaced). */
static int check_output_free(const char *out, ls_error *err)
{
    DIR *d = opendir(out);
    if (!d) {
        if (errno == ENOENT) return LS_OK;
        return ls_error_set(err, LS_ERR_IO, "cannot use %s: %s", out, strerror(errno));
    }
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    return empty ? LS_OK : ls_error_set(err, LS_ERR_STATE, "%s exists and is not empty", out);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int prepare_into(const char *src, const char *dir, const ls_prepare_options *opt,
                        ls_pool *pool, ls_error *err)
{
    struct stat st;
    if (stat(src, &st) != 0)
        return ls_error_set(err, LS_ERR_NOT_FOUND, "%s: %s", src, strerror(errno));
    int rc = S_ISDIR(st.st_mode) ? prepare_from_dir(src, dir, opt, pool, err)
                                 : prepare_from_video(src, dir, opt, err);
    if (rc != LS_OK) return rc;
    /* Load the result back: what we wrote must be what the pipeline can read. */
    ls_avatar *av;
    rc = ls_avatar_load(dir, NULL, pool, &av, err);
    if (rc != LS_OK) return ls_error_prefix(err, "checking the prepared avatar");
    if (opt->report) {
        ls_avatar_info info;
        ls_avatar_get_info(av, &info);
        fprintf(opt->report,
                "avatar %s: %d frames %dx%d at %.3g fps from %s\n"
                "memory: %.1f MB decoded frames + %.1f MB face crops\n",
                info.name, info.n_frames, info.width, info.height, info.fps, src,
                (double)info.frames_bytes / 1e6, (double)info.crops_bytes / 1e6);
    }
    ls_avatar_destroy(av);
    return LS_OK;
}

/* The avatar is written into a fresh sibling directory OUT.partial-XXXXXX and
 * renamed to OUT once it is complete and loads back: a failure (a bad frame
 * halfway through a video, a full disk) leaves neither a half-written OUT
 * behind nor anything else, and OUT appears whole or not at all. */
int ls_avatar_prepare(const char *src, const char *out_dir, const ls_prepare_options *opt,
                      ls_pool *pool, ls_error *err)
{
    ls_prepare_options defaults = {0};
    if (!opt) opt = &defaults;
    if (!src || !out_dir || !out_dir[0])
        return ls_error_set(err, LS_ERR_INVALID_ARG, "prepare: no source or output");
    struct stat st;
    if (stat(src, &st) != 0)
        return ls_error_set(err, LS_ERR_NOT_FOUND, "%s: %s", src, strerror(errno));
    int rc = check_output_free(out_dir, err);
    if (rc != LS_OK) return rc;
    /* A sibling of OUT, so that rename() moves it; mkdir (not mkdtemp) gives
     * it the permissions OUT itself would get. */
    char tmp[4096];
    size_t n = strlen(out_dir);
    while (n > 1 && out_dir[n - 1] == '/') n--; /* "out/" -> "out.partial-..." beside it */
    int made = 0;
    for (int k = 0; k < 1000 && !made; k++) {
        if (snprintf(tmp, sizeof tmp, "%.*s.partial-%ld-%d", (int)n, out_dir, (long)getpid(), k) >=
            (int)sizeof tmp)
            return ls_error_set(err, LS_ERR_INVALID_ARG, "output path too long: %s", out_dir);
        if (mkdir(tmp, 0777) == 0) made = 1;
        else if (errno != EEXIST)
            return ls_error_set(err, LS_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    }
    if (!made) return ls_error_set(err, LS_ERR_IO, "cannot create a directory beside %s", out_dir);
    rc = prepare_into(src, tmp, opt, pool, err);
    /* rename() onto an empty directory replaces it; a non-empty one (filled
     * meanwhile) makes it fail, untouched. */
    if (rc == LS_OK && rename(tmp, out_dir) != 0)
        rc = ls_error_set(err, LS_ERR_IO, "cannot move the prepared avatar to %s: %s", out_dir,
                          strerror(errno));
    if (rc != LS_OK) nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

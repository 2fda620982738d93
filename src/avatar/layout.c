#include "avatar/layout.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "avatar/croprect.h"
#include "core/npy.h"

#define MAX_FRAMES 1000000

const char *ls_avatar_layout_name(ls_avatar_layout_kind kind)
{
    switch (kind) {
    case LS_LAYOUT_DATASET: return "dataset (full_body_img/ + landmarks/)";
    case LS_LAYOUT_FRAMES: return "frames/ + crop_rects.json";
    case LS_LAYOUT_PREPARED: return "prepared (avatar.json)";
    default: return "unknown";
    }
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A numbered file found in a folder. */
typedef struct numbered {
    long index;
    char *name;
} numbered;

static int cmp_numbered(const void *a, const void *b)
{
    long x = ((const numbered *)a)->index, y = ((const numbered *)b)->index;
    return (x > y) - (x < y);
}

/* Index of "<prefix><digits><suffix>" where suffix is one of the comma list; -1 if not. */
static long parse_numbered(const char *name, const char *prefix, const char *suffixes)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl)) return -1;
    const char *d = name + pl;
    if (*d < '0' || *d > '9') return -1;
    char *rest;
    errno = 0;
    long v = strtol(d, &rest, 10);
    if (errno || v < 0 || v > MAX_FRAMES) return -1;
    char list[64];
    snprintf(list, sizeof list, "%s", suffixes);
    char *save;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (!strcmp(rest, tok)) return v;
    return -1;
}

/* Lists folder entries matching prefix<N>suffix, sorted by N; duplicates are an error. */
static int list_numbered(const char *dir, const char *prefix, const char *suffixes,
                         numbered **out, int *count, ls_error *err)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return ls_error_set(err, LS_ERR_IO, "cannot open %s: %s", dir, strerror(errno));
    numbered *v = NULL;
    int n = 0, cap = 0, rc = LS_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        long idx = parse_numbered(e->d_name, prefix, suffixes);
        if (idx < 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            numbered *nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                rc = ls_error_set(err, LS_ERR_NOMEM, "listing %s", dir);
                break;
            }
            v = nv;
        }
        v[n].index = idx;
        v[n].name = strdup(e->d_name);
        if (!v[n].name) {
            rc = ls_error_set(err, LS_ERR_NOMEM, "listing %s", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == LS_OK) {
        if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_numbered);
        for (int i = 1; i < n; i++)
            if (v[i].index == v[i - 1].index) {
                rc = ls_error_set(err, LS_ERR_FORMAT, "%s: both %s and %s are frame %ld", dir,
                                  v[i - 1].name, v[i].name, v[i].index);
                break;
            }
    }
    if (rc != LS_OK) {
        for (int i = 0; i < n; i++) free(v[i].name);
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return LS_OK;
}

static void free_numbered(numbered *v, int n)
{
    for (int i = 0; i < n; i++) free(v[i].name);
    free(v);
}

/* The files must be numbered base, base+1, ...: names the first gap. */
static int check_contiguous(const numbered *v, int n, long base, const char *dir,
                            const char *pattern, ls_error *err)
{
    for (int i = 0; i < n; i++) {
        if (v[i].index != base + i) {
            char want[64];
            snprintf(want, sizeof want, pattern, base + i);
            return ls_error_set(err, LS_ERR_NOT_FOUND,
                                "frame %d: %s/%s is missing (%d files, numbered up to %ld)", i,
                                dir, want, n, v[n - 1].index);
        }
    }
    return LS_OK;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

static int alloc_frames(ls_avatar_layout *l, int n, ls_error *err)
{
    if (n > MAX_FRAMES) return ls_error_set(err, LS_ERR_RANGE, "%d frames (max %d)", n, MAX_FRAMES);
    l->paths = calloc((size_t)n, sizeof *l->paths);
    l->rects = calloc((size_t)n, sizeof *l->rects);
    if (!l->paths || !l->rects) return ls_error_set(err, LS_ERR_NOMEM, "%d frames", n);
    l->n_frames = n;
    return LS_OK;
}

static int scan_dataset(const char *dir, ls_avatar_layout *l, ls_error *err)
{
    char *img_dir = join(dir, "full_body_img"), *lms_dir = join(dir, "landmarks");
    numbered *imgs = NULL, *lms = NULL;
    int n_img = 0, n_lms = 0;
    int rc = img_dir && lms_dir ? LS_OK : ls_error_set(err, LS_ERR_NOMEM, "paths");
    if (rc == LS_OK && !is_dir(lms_dir))
        rc = ls_error_set(err, LS_ERR_NOT_FOUND, "%s: full_body_img/ without landmarks/", dir);
    if (rc == LS_OK) rc = list_numbered(img_dir, "", ".jpg,.png", &imgs, &n_img, err);
    if (rc == LS_OK) rc = list_numbered(lms_dir, "", ".lms", &lms, &n_lms, err);
    if (rc == LS_OK && n_img == 0)
        rc = ls_error_set(err, LS_ERR_NOT_FOUND, "%s: no <i>.jpg frames", img_dir);
    if (rc == LS_OK) rc = check_contiguous(imgs, n_img, 0, "full_body_img", "%ld.jpg", err);
    if (rc == LS_OK && n_lms != n_img) {
        /* Name the first frame without landmarks, or say which side has extra files. */
        int i = 0;
        while (i < n_lms && i < n_img && lms[i].index == i) i++;
        if (i < n_img)
            rc = ls_error_set(err, LS_ERR_NOT_FOUND,
                              "frame %d: landmarks/%d.lms is missing (count mismatch: %d "
                              "frames, %d landmark files)",
                              i, i, n_img, n_lms);
        else
            rc = ls_error_set(err, LS_ERR_FORMAT,
                              "count mismatch: %d frames in full_body_img/, %d landmark files "
                              "(landmarks/%s has no frame)",
                              n_img, n_lms, lms[i].name);
    }
    if (rc == LS_OK) rc = check_contiguous(lms, n_lms, 0, "landmarks", "%ld.lms", err);
    if (rc == LS_OK) rc = alloc_frames(l, n_img, err);
    for (int i = 0; rc == LS_OK && i < n_img; i++) {
        l->paths[i] = join(img_dir, imgs[i].name);
        char *lp = join(lms_dir, lms[i].name);
        if (!l->paths[i] || !lp) rc = ls_error_set(err, LS_ERR_NOMEM, "paths");
        else if ((rc = ls_croprect_read(lp, &l->rects[i], err)) != LS_OK)
            ls_error_prefix(err, "frame %d", i);
        free(lp);
    }
    free_numbered(imgs, n_img);
    free_numbered(lms, n_lms);
    free(img_dir);
    free(lms_dir);
    return rc;
}

/* Parses a JSON file whose top level must be an array (want_array) or an object. */
static int read_json(const char *path, int want_array, cJSON **out, ls_error *err)
{
    *out = NULL;
    uint8_t *text;
    size_t len;
    int rc = ls_read_file(path, &text, &len, err);
    if (rc != LS_OK) return rc;
    cJSON *root = cJSON_ParseWithLength((const char *)text, len);
    free(text);
    if (want_array ? !cJSON_IsArray(root) : !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_error_set(err, LS_ERR_FORMAT, "%s: not a JSON %s", path,
                            want_array ? "array of [x1, y1, x2, y2]" : "object");
    }
    *out = root;
    return LS_OK;
}

/* Reads crop_rects.json into l->rects (n_frames entries expected). */
static int read_rects_json(const char *path, ls_avatar_layout *l, ls_error *err)
{
    cJSON *root;
    int rc = read_json(path, 1, &root, err);
    if (rc != LS_OK) return rc;
    int n = cJSON_GetArraySize(root);
    if (n != l->n_frames)
        rc = ls_error_set(err, LS_ERR_FORMAT,
                          "count mismatch: %d frames, %s has %d rectangles", l->n_frames, path,
                          n);
    int i = 0;
    for (cJSON *e = root->child; rc == LS_OK && e; e = e->next, i++) {
        double v[4];
        int ok = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 4;
        for (int k = 0; ok && k < 4; k++) {
            cJSON *x = cJSON_GetArrayItem(e, k);
            ok = cJSON_IsNumber(x) && x->valuedouble > -1e6 && x->valuedouble < 1e6;
            if (ok) v[k] = x->valuedouble;
        }
        if (!ok)
            rc = ls_error_set(err, LS_ERR_FORMAT, "frame %d: %s entry is not [x1, y1, x2, y2]",
                              i, path);
        else
            l->rects[i] = (ls_rect){(int)v[0], (int)v[1], (int)v[2], (int)v[3]};
    }
    cJSON_Delete(root);
    return rc;
}

static int scan_frames(const char *dir, ls_avatar_layout *l, ls_error *err)
{
    char *fdir = join(dir, "frames"), *rpath = join(dir, "crop_rects.json");
    numbered *files = NULL;
    int n = 0;
    int rc = fdir && rpath ? LS_OK : ls_error_set(err, LS_ERR_NOMEM, "paths");
    if (rc == LS_OK) rc = list_numbered(fdir, "frame_", ".jpg,.png", &files, &n, err);
    if (rc == LS_OK && n == 0)
        rc = ls_error_set(err, LS_ERR_NOT_FOUND, "%s: no frame_NNNN.jpg or .png files", fdir);
    if (rc == LS_OK && files[0].index > 1)
        rc = ls_error_set(err, LS_ERR_NOT_FOUND,
                          "frame 0: frames/frame_0000 (or _0001) is missing; the first is %s",
                          files[0].name);
    if (rc == LS_OK)
        rc = check_contiguous(files, n, files[0].index, "frames", "frame_%04ld.*", err);
    if (rc == LS_OK && !is_file(rpath))
        rc = ls_error_set(err, LS_ERR_NOT_FOUND, "%s is missing", rpath);
    if (rc == LS_OK) rc = alloc_frames(l, n, err);
    for (int i = 0; rc == LS_OK && i < n; i++)
        if (!(l->paths[i] = join(fdir, files[i].name)))
            rc = ls_error_set(err, LS_ERR_NOMEM, "paths");
    if (rc == LS_OK) rc = read_rects_json(rpath, l, err);
    free_numbered(files, n);
    free(fdir);
    free(rpath);
    return rc;
}

static int read_manifest(const char *path, ls_avatar_layout *l, ls_error *err)
{
    cJSON *root;
    int rc = read_json(path, 0, &root, err);
    if (rc != LS_OK) return rc;
    cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    cJSON *fps = cJSON_GetObjectItemCaseSensitive(root, "fps");
    cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "width");
    cJSON *h = cJSON_GetObjectItemCaseSensitive(root, "height");
    cJSON *frames = cJSON_GetObjectItemCaseSensitive(root, "frames");
    cJSON *source = cJSON_GetObjectItemCaseSensitive(root, "source");
    if (!cJSON_IsString(name) || !cJSON_IsNumber(fps) || !cJSON_IsNumber(w) ||
        !cJSON_IsNumber(h) || !cJSON_IsNumber(frames))
        rc = ls_error_set(err, LS_ERR_FORMAT,
                          "%s: needs \"name\" (string), \"fps\", \"width\", \"height\" and "
                          "\"frames\" (numbers)",
                          path);
    else if (!(fps->valuedouble > 0 && fps->valuedouble <= 1000) || w->valuedouble < 1 ||
             h->valuedouble < 1 || w->valuedouble > LS_IMAGE_MAX_SIDE ||
             h->valuedouble > LS_IMAGE_MAX_SIDE || frames->valuedouble < 1 ||
             frames->valuedouble > MAX_FRAMES)
        rc = ls_error_set(err, LS_ERR_RANGE, "%s: fps, size or frame count out of range", path);
    if (rc == LS_OK) {
        snprintf(l->name, sizeof l->name, "%s", name->valuestring);
        if (cJSON_IsString(source))
            snprintf(l->source, sizeof l->source, "%s", source->valuestring);
        l->fps = fps->valuedouble;
        l->width = (int)w->valuedouble;
        l->height = (int)h->valuedouble;
        if ((int)frames->valuedouble != l->n_frames)
            rc = ls_error_set(err, LS_ERR_FORMAT, "count mismatch: %s says %d frames, found %d",
                              path, (int)frames->valuedouble, l->n_frames);
    }
    cJSON_Delete(root);
    return rc;
}

int ls_avatar_layout_scan(const char *dir, ls_avatar_layout *out, ls_error *err)
{
    memset(out, 0, sizeof *out);
    out->fps = LS_AVATAR_DEFAULT_FPS;
    if (!dir || !is_dir(dir))
        return ls_error_set(err, LS_ERR_NOT_FOUND, "%s is not a directory", dir ? dir : "(null)");
    /* Default name: the directory's last component. */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
    const char *base = strrchr(tmp, '/');
    snprintf(out->name, sizeof out->name, "%s", base ? base + 1 : tmp);
    snprintf(out->source, sizeof out->source, "%s", dir);

    char *manifest = join(dir, "avatar.json"), *fb = join(dir, "full_body_img"),
         *fr = join(dir, "frames");
    int rc;
    if (!manifest || !fb || !fr) {
        rc = ls_error_set(err, LS_ERR_NOMEM, "paths");
    } else if (is_file(manifest)) {
        out->kind = LS_LAYOUT_PREPARED;
        rc = scan_frames(dir, out, err);
        if (rc == LS_OK) rc = read_manifest(manifest, out, err);
    } else if (is_dir(fb)) {
        out->kind = LS_LAYOUT_DATASET;
        rc = scan_dataset(dir, out, err);
    } else if (is_dir(fr)) {
        out->kind = LS_LAYOUT_FRAMES;
        rc = scan_frames(dir, out, err);
    } else {
        rc = ls_error_set(err, LS_ERR_NOT_FOUND,
                          "%s: no avatar.json, full_body_img/ + landmarks/ or frames/ + "
                          "crop_rects.json",
                          dir);
    }
    free(manifest);
    free(fb);
    free(fr);
    if (rc != LS_OK) {
        ls_error_prefix(err, "avatar %s", dir);
        ls_avatar_layout_free(out);
    }
    return rc;
}

void ls_avatar_layout_free(ls_avatar_layout *l)
{
    if (!l) return;
    for (int i = 0; i < l->n_frames; i++) free(l->paths ? l->paths[i] : NULL);
    free(l->paths);
    free(l->rects);
    l->paths = NULL;
    l->rects = NULL;
    l->n_frames = 0;
}

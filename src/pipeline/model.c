#include "pipeline/model.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/fps.h"
#include "core/npy.h"
#include "nn/lower.h"
#include "nn/onnx.h"
#include "pipeline/calibration.h"
#include "pipeline/model_internal.h"

#define MAX_BATCH_SIZES 8 /* distinct (batch, threads) pairs compiled per model */
#define MAX_BATCH 64

struct ls_model {
    atomic_int refs;
    char *dir, *name;
    int batch, engine_threads;
    ls_precision precision;
    ls_avatar *avatar;
    ls_onnx_model *unet_onnx, *enc_onnx;
    char *visual_name, *audio_name, *mel_name; /* explicit input names, or NULL */
    pthread_mutex_t lock; /* guards engines[] while one is compiled */
    ls_model_engines engines[MAX_BATCH_SIZES];
    int n_engines;
    size_t onnx_bytes;
    char *unet_path;
    ls_calib *calib; /* precision int8: the UNet's ranges (int8.json) */
};

/* model.json's fields, with the defaults a bare directory gets. */
typedef struct model_config {
    char *name, *unet, *encoder, *avatar;
    char *visual_name, *audio_name, *mel_name;
    int fps, batch;
} model_config;

static void config_free(model_config *c)
{
    free(c->name); free(c->unet); free(c->encoder); free(c->avatar);
    free(c->visual_name); free(c->audio_name); free(c->mel_name);
    memset(c, 0, sizeof *c);
}

static char *json_string(const cJSON *obj, const char *key, const char *fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *s = cJSON_IsString(v) ? v->valuestring : fallback;
    return s ? strdup(s) : NULL;
}

static int read_config(const char *dir, model_config *c, ls_error *err)
{
    memset(c, 0, sizeof *c);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.json", dir);
    uint8_t *bytes;
    size_t len;
    int rc = ls_read_file(path, &bytes, &len, err);
    if (rc) return rc;
    cJSON *root = cJSON_ParseWithLength((const char *)bytes, len);
    free(bytes);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_error_set(err, LS_ERR_FORMAT, "%s: not a JSON object", path);
    }
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    c->name = json_string(root, "name", base);
    c->unet = json_string(root, "unet", "unet.onnx");
    c->encoder = json_string(root, "encoder", "audio_encoder.onnx");
    c->avatar = json_string(root, "avatar", "avatar");
    const cJSON *ui = cJSON_GetObjectItemCaseSensitive(root, "unet_inputs");
    c->visual_name = ui ? json_string(ui, "visual", NULL) : NULL;
    c->audio_name = ui ? json_string(ui, "audio", NULL) : NULL;
    c->mel_name = json_string(root, "encoder_input", NULL);
    const cJSON *fps = cJSON_GetObjectItemCaseSensitive(root, "fps");
    const cJSON *batch = cJSON_GetObjectItemCaseSensitive(root, "batch");
    c->fps = cJSON_IsNumber(fps) ? fps->valueint : LS_VIDEO_FPS;
    c->batch = cJSON_IsNumber(batch) ? batch->valueint : 8;
    cJSON_Delete(root);
    if (!c->name || !c->unet || !c->encoder || !c->avatar) {
        config_free(c);
        return ls_error_set(err, LS_ERR_NOMEM, "reading %s", path);
    }
    if (c->fps != LS_VIDEO_FPS) {
        int fps_val = c->fps;
        config_free(c);
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "%s: fps %d (this model family runs at %d)",
                            path, fps_val, LS_VIDEO_FPS);
    }
    if (c->batch < 1 || c->batch > MAX_BATCH) {
        int b = c->batch;
        config_free(c);
        return ls_error_set(err, LS_ERR_RANGE, "%s: batch %d outside 1..%d", path, b, MAX_BATCH);
    }
    return LS_OK;
}

static int load_onnx(const char *dir, const char *file, ls_onnx_model **out, size_t *bytes,
                     ls_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = ls_onnx_load(path, out, err);
    if (rc) return rc;
    FILE *f = fopen(path, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        *bytes += (size_t)ftell(f);
        fclose(f);
    }
    return LS_OK;
}

/* int8: the UNet's ranges from int8.json, checked against its values (by
 * name, on the graph for batch 1: names do not depend on the batch). */
static int load_calibration(ls_model *m, ls_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", m->dir, LS_CALIBRATION_FILE);
    ls_graph *g = NULL;
    int rc = ls_graph_build(m->unet_onnx, 1, &g, err);
    if (!rc) rc = ls_calib_create(g, &m->calib, err);
    if (!rc) rc = ls_calibration_read(path, m->unet_path, m->calib, err);
    ls_graph_destroy(g);
    return rc;
}

const char *ls_model_unet_path(const ls_model *m) { return m->unet_path; }
const ls_onnx_model *ls_model_unet_onnx(const ls_model *m) { return m->unet_onnx; }

static void engines_free(ls_model_engines *e)
{
    ls_engine_destroy(e->unet);
    ls_engine_destroy(e->enc);
    ls_graph_destroy(e->unet_graph);
    ls_graph_destroy(e->enc_graph);
    memset(e, 0, sizeof *e);
}

/* Lowers and compiles both networks for one batch size; checks that they
 * have the shapes this pipeline feeds them. */
static int engines_build(ls_model *m, int batch, int threads, ls_model_engines *e,
                         ls_error *err)
{
    memset(e, 0, sizeof *e);
    e->batch = batch;
    e->threads = threads;
    int rc = ls_graph_build(m->unet_onnx, batch, &e->unet_graph, err);
    if (rc) return ls_error_prefix(err, "UNet");
    if (m->calib && (rc = ls_calib_apply(m->calib, e->unet_graph, err))) {
        engines_free(e);
        return rc;
    }
    rc = ls_graph_build(m->enc_onnx, batch, &e->enc_graph, err);
    if (rc) {
        engines_free(e);
        return ls_error_prefix(err, "audio encoder");
    }
    const ls_graph *u = e->unet_graph, *a = e->enc_graph;
    e->unet_visual = ls_graph_find_input(u, LS_ROLE_VISUAL, m->visual_name, err);
    if (e->unet_visual >= 0) e->unet_audio = ls_graph_find_input(u, LS_ROLE_AUDIO_FEAT, m->audio_name, err);
    int mel = e->unet_visual >= 0 && e->unet_audio >= 0
                  ? ls_graph_find_input(a, LS_ROLE_MEL, m->mel_name, err) : -1;
    if (e->unet_visual < 0 || e->unet_audio < 0 || mel < 0) {
        engines_free(e);
        return ls_error_prefix(err, "model inputs");
    }
    if (u->n_inputs != 2 || u->n_outputs != 1 || a->n_inputs != 1 || a->n_outputs != 1) {
        engines_free(e);
        return ls_error_set(err, LS_ERR_UNSUPPORTED,
                            "expected a UNet with 2 inputs and 1 output and an encoder with 1 "
                            "input and 1 output");
    }
    int64_t unet_out = ls_value_count(&u->values[u->outputs[0]]);
    int64_t enc_out = ls_value_count(&a->values[a->outputs[0]]);
    if (unet_out != (int64_t)batch * 3 * 320 * 320 || enc_out != (int64_t)batch * 512) {
        engines_free(e);
        return ls_error_set(err, LS_ERR_UNSUPPORTED,
                            "output sizes %lld (UNet, want B*3*320*320) and %lld (encoder, "
                            "want B*512) do not fit this pipeline",
                            (long long)unet_out, (long long)enc_out);
    }
    rc = ls_engine_create(u, m->precision, threads, &e->unet, err);
    if (!rc) rc = ls_engine_create(a, LS_PREC_FP32, threads, &e->enc, err);
    if (rc) {
        engines_free(e);
        return ls_error_prefix(err, "compiling");
    }
    return LS_OK;
}

int ls_model_engines_get(ls_model *m, int batch, int threads, const ls_model_engines **out,
                         ls_error *err)
{
    *out = NULL;
    if (batch < 1 || batch > MAX_BATCH)
        return ls_error_set(err, LS_ERR_RANGE, "batch %d outside 1..%d", batch, MAX_BATCH);
    if (threads < 1 || threads > 1024)
        return ls_error_set(err, LS_ERR_RANGE, "thread count %d outside 1..1024", threads);
    pthread_mutex_lock(&m->lock);
    int rc = LS_OK;
    for (int i = 0; i < m->n_engines; i++)
        if (m->engines[i].batch == batch && m->engines[i].threads == threads) *out = &m->engines[i];
    if (!*out) {
        if (m->n_engines == MAX_BATCH_SIZES) {
            rc = ls_error_set(err, LS_ERR_BUSY,
                              "model %s already compiled for %d batch sizes and thread counts",
                              m->name, MAX_BATCH_SIZES);
        } else {
            rc = engines_build(m, batch, threads, &m->engines[m->n_engines], err);
            if (!rc) *out = &m->engines[m->n_engines++];
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

ls_avatar *ls_model_avatar(const ls_model *m)
{
    return m->avatar;
}

static void model_free(ls_model *m)
{
    for (int i = 0; i < m->n_engines; i++) engines_free(&m->engines[i]);
    ls_avatar_destroy(m->avatar);
    ls_onnx_destroy(m->unet_onnx);
    ls_onnx_destroy(m->enc_onnx);
    pthread_mutex_destroy(&m->lock);
    ls_calib_destroy(m->calib);
    free(m->unet_path);
    free(m->visual_name); free(m->audio_name); free(m->mel_name);
    free(m->dir);
    free(m->name);
    free(m);
}

int ls_model_load(const char *dir, const ls_model_options *opt, ls_pool *pool, ls_model **out,
                  ls_error *err)
{
    *out = NULL;
    static const ls_model_options defaults = {0};
    if (!opt) opt = &defaults;
    if (!dir) return ls_error_set(err, LS_ERR_INVALID_ARG, "no model directory");
    if (opt->precision != LS_PREC_FP32 && opt->precision != LS_PREC_BF16 &&
        opt->precision != LS_PREC_INT8)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "unknown precision %d", opt->precision);
    model_config c;
    int rc = read_config(dir, &c, err);
    if (rc) return rc;
    ls_model *m = calloc(1, sizeof *m);
    if (!m) {
        config_free(&c);
        return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate model");
    }
    atomic_init(&m->refs, 1);
    pthread_mutex_init(&m->lock, NULL);
    m->dir = strdup(dir);
    m->name = c.name;
    m->visual_name = c.visual_name;
    m->audio_name = c.audio_name;
    m->mel_name = c.mel_name;
    c.name = c.visual_name = c.audio_name = c.mel_name = NULL;
    m->batch = opt->batch > 0 ? opt->batch : c.batch;
    m->engine_threads = opt->engine_threads > 0 ? opt->engine_threads : ls_pool_threads(pool);
    m->precision = (ls_precision)opt->precision;
    rc = load_onnx(dir, c.unet, &m->unet_onnx, &m->onnx_bytes, err);
    if (!rc) rc = load_onnx(dir, c.encoder, &m->enc_onnx, &m->onnx_bytes, err);
    if (!rc) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, c.unet);
        if (!(m->unet_path = strdup(path))) rc = ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    }
    if (!rc && m->precision == LS_PREC_INT8) rc = load_calibration(m, err);
    if (!rc) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, c.avatar);
        ls_avatar_options ao = {.memory_budget = opt->avatar_memory_budget};
        rc = ls_avatar_load(path, &ao, pool, &m->avatar, err);
    }
    /* Compile the default batch now so that a bad model fails at load. */
    const ls_model_engines *e;
    if (!rc) rc = ls_model_engines_get(m, m->batch, m->engine_threads, &e, err);
    config_free(&c);
    if (rc) {
        ls_error_prefix(err, "model %s", dir);
        model_free(m);
        return rc;
    }
    *out = m;
    return LS_OK;
}

ls_model *ls_model_retain(ls_model *m)
{
    if (m) atomic_fetch_add(&m->refs, 1);
    return m;
}

void ls_model_release(ls_model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) model_free(m);
}

void ls_model_get_info(const ls_model *m, ls_model_info *info)
{
    ls_avatar_info av;
    ls_avatar_get_info(m->avatar, &av);
    memset(info, 0, sizeof *info);
    info->name = m->name;
    info->dir = m->dir;
    info->fps = LS_VIDEO_FPS;
    info->width = av.width;
    info->height = av.height;
    info->n_frames = av.n_frames;
    info->batch = m->batch;
    info->engine_threads = m->engine_threads;
    info->memory_bytes = av.total_bytes + m->onnx_bytes;
}

int ls_model_check(const char *dir, FILE *report, ls_error *err)
{
    ls_model *m;
    int rc = ls_model_load(dir, NULL, NULL, &m, err);
    if (rc) return rc;
    if (report) {
        ls_model_info info;
        ls_model_get_info(m, &info);
        const ls_model_engines *e = &m->engines[0];
        const ls_graph *u = e->unet_graph, *a = e->enc_graph;
        fprintf(report, "model %s (%s)\n", info.name, dir);
        fprintf(report, "  unet: inputs %s (visual), %s (audio); %.3f GMAC per frame\n",
                u->values[u->inputs[e->unet_visual]].name, u->values[u->inputs[e->unet_audio]].name,
                (double)ls_graph_conv_macs(u) / e->batch * 1e-9);
        fprintf(report, "  audio encoder: input %s; %.3f GMAC per window\n",
                a->values[a->inputs[0]].name, (double)ls_graph_conv_macs(a) / e->batch * 1e-9);
        fprintf(report, "  avatar: %d frames of %dx%d\n", info.n_frames, info.width, info.height);
        fprintf(report, "  fps %d, batch %d, %.1f MB resident\n", info.fps, info.batch,
                (double)info.memory_bytes / 1e6);
    }
    ls_model_release(m);
    return LS_OK;
}

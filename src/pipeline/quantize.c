/* quantize.c - int8 calibration of a model directory (quantize.h). */
#include "pipeline/quantize.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "nn/engine.h"
#include "nn/lower.h"
#include "nn/quant.h"
#include "pipeline/calibration.h"
#include "pipeline/drive.h"
#include "pipeline/features.h"
#include "pipeline/model_internal.h"
#include "pipeline/session.h"

#define VISUAL_FLOATS (6 * 320 * 320)
#define OUT_FLOATS (3 * 320 * 320)

/* The UNet inputs the session ran, item by item, up to cap items. */
typedef struct kept_inputs {
    float *visual, *audio;
    int n, cap;
} kept_inputs;

static void keep(void *ctx, const float *visual, const float *audio, int items)
{
    kept_inputs *k = ctx;
    for (int i = 0; i < items && k->n < k->cap; i++, k->n++) {
        memcpy(k->visual + (size_t)k->n * VISUAL_FLOATS, visual + (size_t)i * VISUAL_FLOATS,
               VISUAL_FLOATS * sizeof(float));
        memcpy(k->audio + (size_t)k->n * LS_FEATURE_FLOATS, audio + (size_t)i * LS_FEATURE_FLOATS,
               LS_FEATURE_FLOATS * sizeof(float));
    }
}

static int drop_frame(void *ctx, const ls_frame *f, ls_error *err)
{
    (void)ctx;
    (void)f;
    (void)err;
    return LS_OK;
}

/* Runs the model in float32 over the speech, keeping the UNet's inputs. */
static int collect(ls_model *m, ls_pool *pool, const float *speech, size_t n, kept_inputs *k,
                   ls_error *err)
{
    ls_session_options so = {.format = LS_FRAME_BGR, .unet_tap = keep, .unet_tap_ctx = k};
    ls_session *s;
    int rc = ls_session_create(m, pool, &so, &s, err);
    if (rc) return rc;
    ls_drive_options dopt = {.chunk = 16000, .finish = 1};
    ls_drive_sink sink = {.frame = drop_frame};
    rc = ls_session_drive(s, speech, n, &dopt, &sink, err);
    ls_session_destroy(s);
    return rc;
}

/* Item i's inputs in the order of g's inputs. */
static void item_inputs(const kept_inputs *k, int i, int visual_slot, const float **ins)
{
    ins[visual_slot] = k->visual + (size_t)i * VISUAL_FLOATS;
    ins[1 - visual_slot] = k->audio + (size_t)i * LS_FEATURE_FLOATS;
}

/* Check items (odd) through int8 and float32 engines of g; errors x255. */
static int check(ls_graph *g, int visual_slot, const kept_inputs *k, int threads,
                 ls_quantize_report *r, ls_error *err)
{
    ls_engine *q = NULL, *f = NULL;
    ls_engine_ctx *qc = NULL, *fc = NULL;
    float *qo = malloc(OUT_FLOATS * sizeof(float)), *fo = malloc(OUT_FLOATS * sizeof(float));
    int rc = qo && fo ? LS_OK : ls_error_set(err, LS_ERR_NOMEM, "quantize: out of memory");
    if (!rc) rc = ls_engine_create(g, LS_PREC_INT8, threads, &q, err);
    if (!rc) rc = ls_engine_create(g, LS_PREC_FP32, threads, &f, err);
    if (!rc) rc = ls_engine_ctx_create(q, &qc, err);
    if (!rc) rc = ls_engine_ctx_create(f, &fc, err);
    double sum = 0;
    r->int8_convs = q ? ls_engine_int8_convs(q) : 0;
    for (int i = 1; !rc && i < k->n; i += 2) {
        const float *ins[2];
        item_inputs(k, i, visual_slot, ins);
        float *qout[1] = {qo}, *fout[1] = {fo};
        rc = ls_engine_run(qc, ins, qout, err);
        if (!rc) rc = ls_engine_run(fc, ins, fout, err);
        for (size_t j = 0; !rc && j < OUT_FLOATS; j++) {
            double d = fabs((double)qo[j] - fo[j]) * 255.0;
            sum += d;
            r->max_err = d > r->max_err ? d : r->max_err;
        }
        if (!rc) r->check_items++;
    }
    r->mean_err = r->check_items ? sum / ((double)r->check_items * OUT_FLOATS) : 0;
    ls_engine_ctx_destroy(qc);
    ls_engine_ctx_destroy(fc);
    ls_engine_destroy(q);
    ls_engine_destroy(f);
    free(qo);
    free(fo);
    return rc;
}

int ls_model_quantize(const char *dir, const float *speech, size_t n,
                      const ls_quantize_options *opt, ls_quantize_report *report, ls_error *err)
{
    static const ls_quantize_options defaults = {0};
    ls_quantize_report r = {0};
    if (!opt) opt = &defaults;
    int frames = opt->frames > 0 ? opt->frames : 32;
    int threads = opt->threads > 0 ? opt->threads : 2;
    if (!dir || !speech || n == 0) return ls_error_set(err, LS_ERR_INVALID_ARG, "quantize: no speech");
    /* 2 x frames items of 2.5 MB each are kept: 640 MB at most */
    if (frames > 128 || threads > 1024)
        return ls_error_set(err, LS_ERR_RANGE, "quantize: at most 128 frames and 1024 threads");
    ls_pool *pool = NULL;
    ls_model *m = NULL;
    ls_graph *g = NULL;
    ls_calib *cal = NULL;
    kept_inputs k = {malloc((size_t)2 * frames * VISUAL_FLOATS * sizeof(float)),
                     malloc((size_t)2 * frames * LS_FEATURE_FLOATS * sizeof(float)), 0,
                     2 * frames};
    int rc = k.visual && k.audio ? LS_OK : ls_error_set(err, LS_ERR_NOMEM, "quantize: out of memory");
    ls_model_options mo = {.batch = 1, .precision = LS_PREC_FP32, .engine_threads = threads};
    if (!rc) rc = ls_pool_create(threads, &pool, err);
    if (!rc) rc = ls_model_load(dir, &mo, pool, &m, err);
    if (!rc) rc = collect(m, pool, speech, n, &k, err);
    if (!rc && k.n < 2)
        rc = ls_error_set(err, LS_ERR_INVALID_ARG, "quantize: the speech gave %d frames (at least 2)",
                          k.n);
    if (!rc) rc = ls_graph_build(ls_model_unet_onnx(m), 1, &g, err);
    int visual = rc ? 0 : ls_graph_find_input(g, LS_ROLE_VISUAL, NULL, err);
    if (!rc && visual < 0) rc = visual;
    if (!rc) rc = ls_calib_create(g, &cal, err);
    for (int i = 0; !rc && i < k.n; i += 2) {
        const float *ins[2];
        item_inputs(&k, i, visual, ins);
        rc = ls_calib_observe(cal, g, ins, err);
        if (!rc) r.calib_items++;
    }
    if (!rc) rc = ls_calib_apply(cal, g, err);
    if (!rc) rc = check(g, visual, &k, threads, &r, err);
    if (!rc) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, LS_CALIBRATION_FILE);
        rc = ls_calibration_write(path, cal, ls_model_unet_path(m), err);
    }
    ls_calib_destroy(cal);
    ls_graph_destroy(g);
    ls_model_release(m);
    ls_pool_destroy(pool);
    free(k.visual);
    free(k.audio);
    if (report) *report = r;
    return rc;
}

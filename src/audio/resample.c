#include "audio/resample.h"

#include <math.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

struct ls_resampler {
    soxr_t soxr;
    int in_rate, out_rate;
};

/* One soxr stream at the project's settings: float in and out, high
 * quality, one thread (our pool owns the cores). */
static soxr_t new_soxr(int in_rate, int out_rate, ls_error *err)
{
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);
    soxr_error_t e = NULL;
    soxr_t s = soxr_create(in_rate, out_rate, 1, &e, &io, &q, &rt);
    if (!s) ls_error_set(err, LS_ERR_INTERNAL, "soxr_create: %s", e ? e : "failed");
    return s;
}

int ls_resampler_create(int in_rate, int out_rate, ls_resampler **out, ls_error *err)
{
    *out = NULL;
    if (in_rate < LS_AUDIO_MIN_RATE || in_rate > LS_AUDIO_MAX_RATE || out_rate < LS_AUDIO_MIN_RATE ||
        out_rate > LS_AUDIO_MAX_RATE)
        return ls_error_set(err, LS_ERR_RANGE, "resample %d -> %d Hz: rate outside %d..%d",
                            in_rate, out_rate, LS_AUDIO_MIN_RATE, LS_AUDIO_MAX_RATE);
    ls_resampler *r = calloc(1, sizeof *r);
    if (!r) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate resampler");
    if (!(r->soxr = new_soxr(in_rate, out_rate, err))) {
        free(r);
        return err ? err->code : LS_ERR_INTERNAL;
    }
    r->in_rate = in_rate;
    r->out_rate = out_rate;
    *out = r;
    return LS_OK;
}

int ls_resampler_reset(ls_resampler *r, ls_error *err)
{
    soxr_error_t e = soxr_clear(r->soxr);
    return e ? ls_error_set(err, LS_ERR_INTERNAL, "soxr_clear: %s", e) : LS_OK;
}

void ls_resampler_destroy(ls_resampler *r)
{
    if (!r) return;
    soxr_delete(r->soxr);
    free(r);
}

size_t ls_resampler_max_out(const ls_resampler *r, size_t n_in)
{
    /* Output of n_in samples plus the filter's delayed tail, with margin. */
    return (size_t)ceil((double)n_in * r->out_rate / r->in_rate) + 4096;
}

int ls_resampler_process(ls_resampler *r, const float *in, size_t n_in, float *out, size_t cap,
                         size_t *n_out, ls_error *err)
{
    *n_out = 0;
    size_t used = 0;
    /* soxr may hold input back when out is full; loop until it took it all. */
    do {
        size_t idone = 0, odone = 0;
        soxr_error_t e = soxr_process(r->soxr, in ? in + used : NULL, in ? n_in - used : 0,
                                      &idone, out + *n_out, cap - *n_out, &odone);
        if (e) return ls_error_set(err, LS_ERR_INTERNAL, "soxr_process: %s", e);
        used += idone;
        *n_out += odone;
        if (odone == 0 && idone == 0) break;
        if (!in && odone == 0) break;
    } while ((in && used < n_in) || (!in && *n_out < cap));
    if (in && used < n_in)
        return ls_error_set(err, LS_ERR_RANGE, "resampler output buffer too small");
    return LS_OK;
}

int ls_resample(const float *in, size_t n, int in_rate, int out_rate, ls_audio *out,
                ls_error *err)
{
    memset(out, 0, sizeof *out);
    ls_resampler *r;
    int rc = ls_resampler_create(in_rate, out_rate, &r, err);
    if (rc) return rc;
    size_t cap = ls_resampler_max_out(r, n);
    float *buf = malloc(cap * sizeof *buf);
    if (!buf) {
        ls_resampler_destroy(r);
        return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate %zu samples", cap);
    }
    size_t got = 0, tail = 0;
    rc = ls_resampler_process(r, in, n, buf, cap, &got, err);
    if (!rc) rc = ls_resampler_process(r, NULL, 0, buf + got, cap - got, &tail, err);
    ls_resampler_destroy(r);
    if (rc) {
        free(buf);
        return rc;
    }
    /* soxr's flushed output runs to the exact converted length. */
    out->samples = buf;
    out->n = got + tail;
    out->rate = out_rate;
    return LS_OK;
}

/* fuzz_calibration - a model directory's int8.json (pipeline/calibration.h),
 * parsed against a small graph of three activations ("input" 4-D with 3
 * channels, "mid" 4-D with 2, "flat" 2-D) and a UNet size and hash of 1234
 * bytes and 0x00000000000004d2; then every accepted range is applied to the
 * graph and must hold lo <= hi, finite, per channel. */
#include <math.h>
#include <string.h>

#include "fuzz_util.h"
#include "nn/graph.h"
#include "nn/quant.h"
#include "pipeline/calibration.h"

static ls_graph *make_graph(void)
{
    ls_graph_builder b;
    ls_error err;
    if (ls_builder_init(&b, 1, &err)) return NULL;
    const int64_t d4[4] = {1, 3, 4, 4}, m4[4] = {1, 2, 4, 4}, d2[2] = {1, 8};
    if (ls_builder_add_value(&b, "input", 4, d4, NULL, &err) < 0 ||
        ls_builder_add_value(&b, "mid", 4, m4, NULL, &err) < 0 ||
        ls_builder_add_value(&b, "flat", 2, d2, NULL, &err) < 0) {
        ls_graph_destroy(b.g);
        return NULL;
    }
    return b.g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return 0;
    static ls_graph *g;
    if (!g) g = make_graph();
    FUZZ_CHECK(g != NULL);
    ls_calib *c = NULL;
    ls_error err = {0};
    FUZZ_CHECK(ls_calib_create(g, &c, &err) == LS_OK);
    int rc = ls_calibration_parse((const char *)data, size, "int8.json", 1234, 0x4d2, c, &err);
    fuzz_note("parse", rc, err.msg);
    if (rc != LS_OK) {
        FUZZ_CHECK(err.msg[0]);
    } else {
        FUZZ_CHECK(ls_calib_apply(c, g, &err) == LS_OK);
        for (int v = 0; v < g->n_values; v++) {
            const ls_value *x = &g->values[v];
            if (!x->has_range) continue;
            FUZZ_CHECK(x->range_channels == (x->ndim == 4 ? x->dims[1] : 1));
            FUZZ_CHECK(isfinite(x->range_lo) && isfinite(x->range_hi) && x->range_lo <= x->range_hi);
            for (int k = 0; k < x->range_channels; k++)
                FUZZ_CHECK(isfinite(x->chan_lo[k]) && x->chan_lo[k] <= x->chan_hi[k]);
        }
    }
    ls_calib_destroy(c);
    return 0;
}

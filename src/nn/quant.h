/* quant.h - int8 calibration: the ranges a graph's activations take on real
 * inputs, seen through the reference executor (exact float32, ref.h).
 *
 * A calibration holds, per graph value and channel, the lowest and highest
 * element seen over every run it observed. Applied to a graph
 * (ls_calib_apply) they become the values' ranges, which an int8 engine
 * (engine.h) quantizes to, one step per channel: u8 over [0, hi] where the
 * tensor has nothing negative, s8 over [-max|x|, max|x|] otherwise. Per
 * channel, because a UNet's concat holds a skip of pixel scale next to
 * decoder features a hundred times larger: one step for both would erase
 * the skip. Weights need no calibration (their steps, per output channel,
 * come from the weights themselves). Saving ranges to a
 * file and matching them to values by name is the pipeline's (model.h).
 */
#ifndef LS_NN_QUANT_H
#define LS_NN_QUANT_H

#include <stdint.h>

#include "core/error.h"
#include "nn/graph.h"

typedef struct ls_calib ls_calib;

/* An empty calibration for graph g's values. */
int ls_calib_create(const ls_graph *g, ls_calib **out, ls_error *err);
void ls_calib_destroy(ls_calib *c);

/* Runs g (the graph the calibration was made for) on inputs through the
 * reference executor, widening each activation's range to what it takes. */
int ls_calib_observe(ls_calib *c, const ls_graph *g, const float *const *inputs, ls_error *err);

/* Batch items observed so far. */
int64_t ls_calib_items(const ls_calib *c);

/* Value v's range over all its channels: 1 when observed (and *lo <= *hi), else 0. */
int ls_calib_range(const ls_calib *c, int v, float *lo, float *hi);
/* Value v's range per channel (4-D values: one per channel; others: one):
 * the channel count, with *lo and *hi pointing at that many lows and highs
 * owned by c; 0 when not observed. */
int ls_calib_channels(const ls_calib *c, int v, const float **lo, const float **hi);

/* Writes the ranges into g's values (has_range, range_lo/hi and the
 * per-channel chan_lo/chan_hi, which point into c: it must outlive every
 * engine compiled from g): the graph observed (by index), or the same model
 * lowered for another batch size (by value name). Values with no range get
 * none. */
int ls_calib_apply(const ls_calib *c, ls_graph *g, ls_error *err);

/* The values a calibration knows (its graph's), by index, and their names
 * (NULL for unnamed ones): what a calibration file stores. */
int ls_calib_count(const ls_calib *c);
const char *ls_calib_name(const ls_calib *c, int v);
/* Sets the channel ranges of the value named `name` (a calibration file read
 * back): LS_ERR_NOT_FOUND for a name the graph lacks, LS_ERR_RANGE for a
 * channel count not the value's or a range not finite with lo <= hi. */
int ls_calib_set(ls_calib *c, const char *name, const float *lo, const float *hi, int channels,
                 ls_error *err);

/* Largest magnitude of a range (the scale of an s8 quantization). */
static inline float ls_range_absmax(float lo, float hi)
{
    float a = lo < 0 ? -lo : lo, b = hi < 0 ? -hi : hi;
    return a > b ? a : b;
}

#endif

/* quantize.h - calibrating a model directory for int8 (`lipsync quantize`).
 *
 * The model runs in float32 on its own avatar frames with the speech given;
 * the UNet inputs of up to 2 x frames output frames are kept, alternately
 * for calibration and for a check. The calibration items go through the
 * reference executor, which records every activation's range (nn/quant.h);
 * the ranges are written to the directory's int8.json (calibration.h). The
 * check items then run through the UNet in int8 and in float32, and the
 * report gives their difference per output pixel, in 1/255 steps: the
 * issue's accuracy bar for int8 is a mean of at most 1.5.
 */
#ifndef LS_PIPELINE_QUANTIZE_H
#define LS_PIPELINE_QUANTIZE_H

#include <stddef.h>

#include "core/error.h"

typedef struct ls_quantize_options {
    int frames;  /* calibration items (and as many check items), at most 128; 0: 32 */
    int threads; /* engine and pool threads; 0: 2 */
} ls_quantize_options;

typedef struct ls_quantize_report {
    int calib_items, check_items;
    int int8_convs;               /* of the UNet's convs, those that run in int8 */
    double mean_err, max_err;     /* |int8 - fp32| of the check items' UNet outputs, x255 */
} ls_quantize_report;

/* Calibrates model directory dir on speech (16 kHz mono) and writes its
 * int8.json; fills *report (may be NULL). */
int ls_model_quantize(const char *dir, const float *speech, size_t n,
                      const ls_quantize_options *opt, ls_quantize_report *report, ls_error *err);

#endif

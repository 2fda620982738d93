/* resample.h - sample-rate conversion with libsoxr (high quality).
 *
 * ls_resampler converts a stream chunk by chunk (sessions feed it network
 * chunks of any size); ls_resample converts a whole buffer. Both give the
 * same samples: the whole-buffer call is one chunk plus a flush.
 */
#ifndef LS_AUDIO_RESAMPLE_H
#define LS_AUDIO_RESAMPLE_H

#include <stddef.h>

#include "audio/audio.h"
#include "core/error.h"

typedef struct ls_resampler ls_resampler;

/* Rates within LS_AUDIO_MIN_RATE..LS_AUDIO_MAX_RATE (else LS_ERR_RANGE); *out is NULL on
 * failure. */
int ls_resampler_create(int in_rate, int out_rate, ls_resampler **out, ls_error *err);
void ls_resampler_destroy(ls_resampler *r);

/* Forgets the stream so far (input held in the filter, its tail): the next
 * process call starts a new stream, as from a new resampler (also after a
 * flush, which otherwise ends the resampler's use). */
int ls_resampler_reset(ls_resampler *r, ls_error *err);

/* Upper bound of output samples for n_in more input samples (incl. flush). */
size_t ls_resampler_max_out(const ls_resampler *r, size_t n_in);

/* Converts n_in samples, writing up to cap samples to out (*n_out set).
 * in == NULL with n_in == 0 flushes the filter's tail at end of stream. */
int ls_resampler_process(ls_resampler *r, const float *in, size_t n_in, float *out, size_t cap,
                         size_t *n_out, ls_error *err);

/* Whole buffer: out receives malloc'd samples at out_rate. */
int ls_resample(const float *in, size_t n, int in_rate, int out_rate, ls_audio *out,
                ls_error *err);

#endif

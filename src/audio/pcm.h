/* pcm.h - streaming raw PCM (s16le, f32le; 1..64 interleaved channels) to
 * mono float, the one place raw sample bytes become samples.
 *
 * Bytes may arrive split anywhere, even inside a sample: the decoder keeps the
 * bytes of an unfinished frame (at most one frame, sized by the spec) and
 * completes it with the next chunk, so the samples never depend on how the
 * input was cut. Channels are averaged; one channel is copied bit-exact.
 *
 * One validation policy for every caller (CLI, HTTP jobs, WebSocket streams):
 * an f32le sample must be finite with |x| <= LS_PCM_MAX_ABS (full scale is
 * 1.0; anything far beyond it is the wrong format, not audio). A bad sample
 * fails the whole chunk with LS_ERR_FORMAT and resets the decoder.
 */
#ifndef LS_AUDIO_PCM_H
#define LS_AUDIO_PCM_H

#include <stddef.h>

#include "core/error.h"

#define LS_PCM_MAX_ABS 64.0f

typedef enum ls_pcm_format { LS_PCM_S16LE, LS_PCM_F32LE } ls_pcm_format;

/* A raw stream's layout: sample format, rate, interleaved channels. */
typedef struct ls_raw_spec {
    ls_pcm_format format;
    int rate;
    int channels;
} ls_raw_spec;

/* Bytes per frame (all channels) of a raw spec. */
size_t ls_raw_frame_bytes(const ls_raw_spec *spec);

typedef struct ls_pcm_decoder ls_pcm_decoder;

/* Checks the spec (format, 1..64 channels; the rate is not used here). */
int ls_pcm_decoder_create(const ls_raw_spec *spec, ls_pcm_decoder **out, ls_error *err);
void ls_pcm_decoder_destroy(ls_pcm_decoder *d);

/* Samples that `len` more bytes would complete: the capacity feed needs. */
size_t ls_pcm_decoder_max_out(const ls_pcm_decoder *d, size_t len);

/* Decodes every frame the held bytes plus `bytes` complete into out (room
 * for ls_pcm_decoder_max_out(len) samples), *n set to their count; keeps
 * the rest. bytes may be NULL when len is 0. */
int ls_pcm_decoder_feed(ls_pcm_decoder *d, const void *bytes, size_t len, float *out, size_t *n,
                        ls_error *err);

/* Bytes of an unfinished frame held (0 when the input ended on a frame). */
size_t ls_pcm_decoder_pending(const ls_pcm_decoder *d);
/* Drops the held bytes (an interrupted stream starts on a frame boundary). */
void ls_pcm_decoder_reset(ls_pcm_decoder *d);

#endif

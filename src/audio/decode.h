/* decode.h - audio files and raw PCM to mono float samples.
 *
 * Files: whatever libsndfile 1.2 reads (WAV PCM 8/16/24/32-bit and float,
 * FLAC, Ogg/Vorbis, MP3, AIFF, ...), from a path or from memory. Raw PCM:
 * s16le or f32le at a declared rate and channel count. Channels are averaged
 * to mono; the sample rate is kept (see resample.h). Mono float input comes
 * through bit-exact.
 *
 * Bad input (empty, truncated, a header promising more data than the file
 * holds, zero channels, non-audio bytes, absurd rates, raw byte counts that
 * are not whole frames) returns LS_ERR_FORMAT or LS_ERR_RANGE with a message.
 */
#ifndef LS_AUDIO_DECODE_H
#define LS_AUDIO_DECODE_H

#include <stddef.h>

#include "core/error.h"

/* The sample rate every model of this family was trained on. */
#define LS_AUDIO_MODEL_RATE 16000

/* Rates outside this range are rejected as absurd. */
#define LS_AUDIO_MIN_RATE 1000
#define LS_AUDIO_MAX_RATE 768000

typedef struct ls_audio {
    float *samples; /* mono, owned */
    size_t n;       /* sample count */
    int rate;       /* Hz */
} ls_audio;

typedef enum ls_pcm_format { LS_PCM_S16LE, LS_PCM_F32LE } ls_pcm_format;

typedef struct ls_raw_spec {
    ls_pcm_format format;
    int rate;
    int channels;
} ls_raw_spec;

/* Parses "FORMAT:RATE:CHANNELS", e.g. "s16le:48000:2". */
int ls_raw_spec_parse(const char *text, ls_raw_spec *spec, ls_error *err);
/* Bytes per frame (all channels) of a raw spec. */
size_t ls_raw_frame_bytes(const ls_raw_spec *spec);

int ls_audio_decode_file(const char *path, ls_audio *out, ls_error *err);
int ls_audio_decode_memory(const void *bytes, size_t len, ls_audio *out, ls_error *err);
int ls_audio_decode_raw(const void *bytes, size_t len, const ls_raw_spec *spec, ls_audio *out,
                        ls_error *err);

/* Decodes (raw when spec is non-NULL) and resamples to 16 kHz mono. */
int ls_audio_load_16k(const char *path, const ls_raw_spec *raw, ls_audio *out, ls_error *err);

void ls_audio_free(ls_audio *a);

#endif

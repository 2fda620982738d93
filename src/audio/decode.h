/* decode.h - audio files and raw PCM to mono float samples.
 *
 * Files: whatever libsndfile 1.2 reads (WAV PCM 8/16/24/32-bit and float,
 * FLAC, MP3, AIFF, ...), and Ogg (Vorbis, Opus, FLAC) through FFmpeg's own
 * decoders, from a path or from memory. Raw PCM: s16le or f32le at a
 * declared rate and channel count. Channels are averaged to mono; the sample
 * rate is kept unless the limits ask for another (see resample.h). Mono float
 * input comes through bit-exact.
 *
 * Bad input (empty, truncated, a header promising more data than the file
 * holds, zero channels, non-audio bytes, absurd rates, raw byte counts that
 * are not whole frames) returns LS_ERR_FORMAT or LS_ERR_RANGE with a message.
 *
 * What a decode may cost is the caller's to bound (ls_audio_limits): a small
 * file can stand for hours of audio (10 MB of FLAC holds an hour of silence,
 * 64 MiB of 8-bit WAV at 1 kHz eighteen hours). Decoding stops, and returns
 * LS_ERR_TOO_LARGE, as soon as the audio passes max_seconds, so memory and
 * time follow the limit, never what the file claims. With out_rate set the
 * samples are resampled block by block as they are decoded: only the output
 * is held, never the file's own rate.
 */
#ifndef LS_AUDIO_DECODE_H
#define LS_AUDIO_DECODE_H

#include <stddef.h>

#include "audio/audio.h"
#include "audio/pcm.h"
#include "core/error.h"

typedef struct ls_audio_limits {
    double max_seconds; /* longer audio: LS_ERR_TOO_LARGE; 0 = no limit */
    int out_rate;       /* resample to this rate while decoding; 0 = the input's rate */
} ls_audio_limits;

/* Parses "FORMAT:RATE:CHANNELS", e.g. "s16le:48000:2" (the rate checked as
 * every decode checks it). */
int ls_raw_spec_parse(const char *text, ls_raw_spec *spec, ls_error *err);

/* lim may be NULL: no limit, the input's rate. */
int ls_audio_decode_file(const char *path, const ls_audio_limits *lim, ls_audio *out,
                         ls_error *err);
int ls_audio_decode_memory(const void *bytes, size_t len, const ls_audio_limits *lim,
                           ls_audio *out, ls_error *err);
int ls_audio_decode_raw(const void *bytes, size_t len, const ls_raw_spec *spec,
                        const ls_audio_limits *lim, ls_audio *out, ls_error *err);

/* Decodes (raw when spec is non-NULL) and resamples to 16 kHz mono;
 * max_seconds as in ls_audio_limits (0 = no limit). */
int ls_audio_load_16k(const char *path, const ls_raw_spec *raw, double max_seconds,
                      ls_audio *out, ls_error *err);

void ls_audio_free(ls_audio *a);

#endif

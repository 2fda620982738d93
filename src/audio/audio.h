/* audio.h - the types the audio modules share: samples at a rate, and the
 * rates this project accepts. Decoding (decode.h), raw PCM (pcm.h) and
 * resampling (resample.h) all speak it, and none of them needs another's
 * header for it.
 */
#ifndef LS_AUDIO_AUDIO_H
#define LS_AUDIO_AUDIO_H

#include <stddef.h>

/* The sample rate every model of this family was trained on. */
#define LS_AUDIO_MODEL_RATE 16000

/* Rates outside this range are rejected as absurd. */
#define LS_AUDIO_MIN_RATE 1000
#define LS_AUDIO_MAX_RATE 768000

typedef struct ls_audio {
    float *samples; /* mono, owned (ls_audio_free, decode.h) */
    size_t n;       /* sample count */
    int rate;       /* Hz */
} ls_audio;

#endif

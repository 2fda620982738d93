/* fuzz_audio_decode - an uploaded audio file (POST /v1/render, `lipsync render`)
 * from memory: every container libsndfile reads (WAV, FLAC, Ogg/Vorbis, MP3,
 * AIFF, ...), through ls_audio_decode_memory. */
#include "audio/decode.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return 0;
    ls_audio a;
    ls_error err = {0};
    int rc = ls_audio_decode_memory(data, size, NULL, &a, &err);
    fuzz_note("decode", rc, err.msg);
    if (rc == LS_OK) {
        FUZZ_CHECK(a.samples && a.n > 0);
        FUZZ_CHECK(a.rate >= LS_AUDIO_MIN_RATE && a.rate <= LS_AUDIO_MAX_RATE);
        volatile float sum = 0; /* every sample is readable */
        for (size_t i = 0; i < a.n; i++) sum += a.samples[i];
        (void)sum;
        ls_audio_free(&a);
    } else {
        FUZZ_CHECK(err.msg[0] && !a.samples);
    }
    return 0;
}

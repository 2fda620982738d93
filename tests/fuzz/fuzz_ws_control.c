/* fuzz_ws_control - a WebSocket stream's text (control) message as the server
 * parses it once reassembled (stream_parse_control, server/stream.h): JSON,
 * its "type", and a start's format, rate, channels, start_frame, batch, live,
 * skip_silence and output. Checks that an accepted start is within the
 * documented ranges and makes a valid raw PCM decoder, and that its output
 * is none or an rtmp(s):// URL of printable ASCII within LS_PUSH_URL_MAX. */
#include <string.h>

#include "audio/audio.h"
#include "audio/pcm.h"
#include "fuzz_util.h"
#include "server/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return 0;
    stream_start st;
    char why[160] = "";
    ctl_type t = stream_parse_control((const char *)data, size, &st, why, sizeof why);
    fuzz_note(stream_control_name(t), t == CTL_BAD || t == CTL_BAD_START, why);
    FUZZ_CHECK(t >= CTL_BAD && t <= CTL_INTERRUPT);
    FUZZ_CHECK(stream_control_name(t)[0]);
    if (t == CTL_BAD || t == CTL_BAD_START) {
        FUZZ_CHECK(why[0]);
    } else if (t == CTL_START) {
        FUZZ_CHECK(st.format == LS_PCM_S16LE || st.format == LS_PCM_F32LE);
        FUZZ_CHECK(st.rate >= LS_AUDIO_MIN_RATE && st.rate <= LS_AUDIO_MAX_RATE);
        FUZZ_CHECK(st.channels >= 1 && st.channels <= 8);
        FUZZ_CHECK(st.start_frame >= 0 && st.start_frame <= (int64_t)1e12);
        FUZZ_CHECK(st.batch >= 0 && st.batch <= 64);
        FUZZ_CHECK(st.live == 0 || st.live == 1);
        FUZZ_CHECK(st.skip_silence == 0 || st.skip_silence == 1);
        size_t n = strnlen(st.output, sizeof st.output);
        FUZZ_CHECK(n <= LS_PUSH_URL_MAX);
        if (n) {
            char why2[160];
            FUZZ_CHECK(ls_push_url_ok(st.output, n, why2, sizeof why2));
            FUZZ_CHECK(!strncmp(st.output, "rtmp://", 7) || !strncmp(st.output, "rtmps://", 8));
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(st.output[i] > 0x20 && st.output[i] < 0x7f);
        }
        ls_raw_spec spec = {st.format, st.rate, st.channels};
        ls_pcm_decoder *d = NULL;
        ls_error err = {0};
        FUZZ_CHECK(ls_pcm_decoder_create(&spec, &d, &err) == LS_OK);
        ls_pcm_decoder_destroy(d);
    }
    return 0;
}

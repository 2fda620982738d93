/* fuzz_webrtc_offer - the SDP offer a client POSTs to /v1/webrtc
 * (ls_webrtc_read_offer, server/webrtc.h: GStreamer's SDP parser, then our
 * reading of its m-lines, payload types, rtpmap and fmtp). Checks that an
 * accepted offer names payload types in RTP's range and that a refusal says
 * why. */
#include "fuzz_util.h"
#include "server/webrtc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ls_webrtc_offer_info info;
    ls_error err = {0};
    int rc = ls_webrtc_read_offer((const char *)data, size, &info, &err);
    if (rc == LS_OK) {
        FUZZ_CHECK(info.video_pt >= 0 && info.video_pt <= 127);
        FUZZ_CHECK(info.audio_pt >= -1 && info.audio_pt <= 127);
        FUZZ_CHECK(info.audio_pt >= 0 || (!info.audio_send && !info.audio_recv));
    } else {
        FUZZ_CHECK(rc == LS_ERR_INVALID_ARG || rc == LS_ERR_NOMEM);
        FUZZ_CHECK(err.msg[0]);
    }
    return 0;
}

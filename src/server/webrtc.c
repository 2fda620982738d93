/* webrtc.c - WebRTC sessions through GStreamer's webrtcbin (webrtc.h). */
#define GST_USE_UNSTABLE_API /* gst/webrtc's headers ask for it */
#include "server/webrtc.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include "audio/audio.h"
#include "core/clock.h"
#include "core/fps.h"
#include "server/env.h"

#define FRAME_SAMPLES (LS_AUDIO_MODEL_RATE / LS_VIDEO_FPS) /* 640: a frame's audio */
/* The session clock runs this far ahead of the microphone's audio before
 * silence fills the gap: a network's jitter is not a pause. */
#define MIC_SLACK_S 0.2
/* Microphone audio further ahead of the clock than this is dropped (a burst
 * after a stall would otherwise add its length to the latency for good). */
#define MIC_AHEAD_MAX_S 0.5
/* A connected peer that sends nothing (no RTP, no RTCP report: browsers
 * report every second or so) for this long is gone. GStreamer 1.22's ICE
 * has no consent freshness: a closed tab never fails the connection. */
#define PEER_SILENT_S 10.0
/* One pass of the drive loop waits at most this long for audio. */
#define POLL_NS (10 * GST_MSECOND)

/* ---- the offer's checks ---- */

/* The direction of an m-line: its own attribute, else the session's, else
 * sendrecv (RFC 4566). */
static const char *direction_of(const GstSDPMessage *msg, const GstSDPMedia *m)
{
    static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
    for (size_t i = 0; i < 4; i++)
        if (gst_sdp_media_get_attribute_val(m, dirs[i])) return dirs[i];
    for (size_t i = 0; i < 4; i++)
        if (gst_sdp_message_get_attribute_val(msg, dirs[i])) return dirs[i];
    return "sendrecv";
}

/* The value of m's attribute `key` that starts with payload type pt
 * ("96 H264/90000"), past the pt, or NULL. */
static const char *pt_attribute(const GstSDPMedia *m, const char *key, int pt)
{
    char head[16];
    int n = snprintf(head, sizeof head, "%d ", pt);
    for (guint i = 0; i < gst_sdp_media_attributes_len(m); i++) {
        const GstSDPAttribute *a = gst_sdp_media_get_attribute(m, i);
        if (a->key && a->value && !strcmp(a->key, key) && !strncmp(a->value, head, (size_t)n))
            return a->value + n;
    }
    return NULL;
}

/* An fmtp parameter's value ("packetization-mode=1") as an int, or def. */
static long fmtp_param(const char *fmtp, const char *name, int base, long def)
{
    size_t len = strlen(name);
    for (const char *p = fmtp; p && *p;) {
        while (*p == ' ' || *p == ';') p++;
        if (!strncasecmp(p, name, len) && p[len] == '=') return strtol(p + len + 1, NULL, base);
        p = strchr(p, ';');
    }
    return def;
}

int ls_webrtc_read_offer(const char *sdp, size_t len, ls_webrtc_offer_info *out, ls_error *err)
{
    memset(out, 0, sizeof *out);
    out->video_pt = out->audio_pt = -1;
    if (!sdp || len == 0)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "empty body: an SDP offer expected");
    if (len > LS_WEBRTC_OFFER_MAX)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "SDP offer of %zu bytes (at most %d)", len,
                            LS_WEBRTC_OFFER_MAX);
    if (memchr(sdp, 0, len))
        return ls_error_set(err, LS_ERR_INVALID_ARG, "SDP offer holds a NUL byte");
    GstSDPMessage *msg = NULL;
    if (gst_sdp_message_new(&msg) != GST_SDP_OK)
        return ls_error_set(err, LS_ERR_NOMEM, "SDP: out of memory");
    int rc = LS_OK;
    if (gst_sdp_message_parse_buffer((const guint8 *)sdp, (guint)len, msg) != GST_SDP_OK ||
        strcmp(gst_sdp_message_get_version(msg) ? gst_sdp_message_get_version(msg) : "", "0") ||
        gst_sdp_message_medias_len(msg) == 0) {
        rc = ls_error_set(err, LS_ERR_INVALID_ARG,
                          "not an SDP offer (wants v=0 and at least one m= line)");
        goto done;
    }
    for (guint i = 0; i < gst_sdp_message_medias_len(msg); i++) {
        const GstSDPMedia *m = gst_sdp_message_get_media(msg, i);
        const char *kind = gst_sdp_media_get_media(m);
        const char *dir = direction_of(msg, m);
        if (!kind || gst_sdp_media_get_port(m) == 0 || !strcmp(dir, "inactive")) continue;
        int peer_recv = strcmp(dir, "sendonly") != 0, peer_send = strcmp(dir, "recvonly") != 0;
        for (guint f = 0; f < gst_sdp_media_formats_len(m); f++) {
            const char *fmt = gst_sdp_media_get_format(m, f);
            char *end;
            long pt = fmt ? strtol(fmt, &end, 10) : -1;
            if (!fmt || *end || pt < 0 || pt > 127) continue;
            const char *map = pt_attribute(m, "rtpmap", (int)pt);
            if (!map) continue;
            if (!strcmp(kind, "video") && peer_recv && out->video_pt < 0 &&
                !strncasecmp(map, "H264/90000", 10)) {
                const char *fmtp = pt_attribute(m, "fmtp", (int)pt);
                long mode = fmtp_param(fmtp, "packetization-mode", 10, 0);
                long profile = fmtp_param(fmtp, "profile-level-id", 16, 0x42e01f);
                /* profile_idc 66 (baseline): our constrained baseline plays there. */
                if (mode == 1 && (profile >> 16) == 0x42) out->video_pt = (int)pt;
            } else if (!strcmp(kind, "audio") && out->audio_pt < 0 &&
                       !strncasecmp(map, "opus/48000", 10)) {
                out->audio_pt = (int)pt;
                out->audio_send = peer_send;
                out->audio_recv = peer_recv;
            }
        }
    }
    if (out->video_pt < 0)
        rc = ls_error_set(err, LS_ERR_INVALID_ARG,
                          "the offer receives no video the server can send: it wants a video "
                          "m-line (recvonly or sendrecv) offering H.264 with "
                          "packetization-mode=1 and a baseline profile (42xxxx)");
done:
    gst_sdp_message_free(msg);
    return rc;
}

/* ---- sessions ---- */

typedef struct rtc_session {
    ls_webrtc *set;
    char id[LS_WEBRTC_ID_LEN + 1];
    ls_model *model;
    ls_session *session;
    int width, height;
    GstElement *pipe, *rtc;
    GstAppSrc *vsrc, *asrc;   /* asrc NULL: the peer takes no audio */
    GstElement *mic_bin;      /* [GStreamer] the decoder of the peer's audio, once it comes */
    _Atomic(GstAppSink *) mic;
    GstClockTime base;        /* the pipeline's running time at frame 0 */
    pthread_t thread;
    int thread_started;
    atomic_int stop;          /* asked to end (DELETE, drain) */
    atomic_int finished;      /* the thread ended and tore the pipeline down */
    atomic_llong frames;
    _Atomic double last_rx;   /* [GStreamer] when the peer's last packet came (ls_now) */
    char why[LS_ERROR_MSG_MAX]; /* [thread] why it ended on its own */
    /* [thread] the input audio not yet sent with its frame */
    float *audio;
    size_t audio_len, audio_cap;
    int64_t audio_first;      /* session sample index of audio[0] */
    int64_t fed;              /* samples given to the session */
    struct rtc_session *next; /* [set lock] */
} rtc_session;

struct ls_webrtc {
    ls_env *env;
    pthread_mutex_t lock;
    rtc_session *list; /* [lock] */
    int count;         /* [lock] */
    int gst_ready;     /* [lock] gst_init done */
};

int ls_webrtc_create(ls_env *env, ls_webrtc **out, ls_error *err)
{
    *out = NULL;
    ls_webrtc *set = calloc(1, sizeof *set);
    if (!set) return ls_error_set(err, LS_ERR_NOMEM, "webrtc: out of memory");
    set->env = env;
    pthread_mutex_init(&set->lock, NULL);
    *out = set;
    return LS_OK;
}

/* GStreamer once, and the elements every session needs, so that a missing
 * plugin package is named at the first offer, not as a parse error. */
static int gst_ready(ls_webrtc *set, ls_error *err)
{
    static const char *const need[] = {
        "webrtcbin", "appsrc",       "appsink",     "videoconvert", "x264enc",
        "h264parse", "rtph264pay",   "audioconvert", "audioresample", "opusenc",
        "rtpopuspay", "rtpopusdepay", "opusdec",     "queue",        "fakesink"};
    pthread_mutex_lock(&set->lock);
    int ok = set->gst_ready;
    if (!ok) {
        GError *gerr = NULL;
        ok = gst_init_check(NULL, NULL, &gerr);
        if (!ok) {
            ls_error_set(err, LS_ERR_INTERNAL, "GStreamer: %s", gerr ? gerr->message : "init");
            g_clear_error(&gerr);
        }
        for (size_t i = 0; ok && i < sizeof need / sizeof need[0]; i++) {
            GstElementFactory *f = gst_element_factory_find(need[i]);
            if (!f)
                ok = 0, ls_error_set(err, LS_ERR_INTERNAL,
                                     "GStreamer element %s is missing (scripts/install-deps.sh "
                                     "installs its plugin package)",
                                     need[i]);
            else
                gst_object_unref(f);
        }
        set->gst_ready = ok;
    }
    pthread_mutex_unlock(&set->lock);
    return ok ? LS_OK : LS_ERR_INTERNAL;
}

static int random_id(char *id, ls_error *err)
{
    unsigned char raw[LS_WEBRTC_ID_LEN / 2];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0) close(fd);
    if (n != (ssize_t)sizeof raw) return ls_error_set(err, LS_ERR_IO, "/dev/urandom unreadable");
    for (size_t i = 0; i < sizeof raw; i++) snprintf(id + 2 * i, 3, "%02x", raw[i]);
    return LS_OK;
}

/* [GStreamer thread] A stream from the peer: its audio is decoded to the
 * session's input format for the drive thread; anything else is dropped. */
static void on_pad_added(GstElement *rtc, GstPad *pad, gpointer data)
{
    (void)rtc;
    rtc_session *s = data;
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, NULL);
    const GstStructure *st = caps && gst_caps_get_size(caps) ? gst_caps_get_structure(caps, 0)
                                                            : NULL;
    const char *media = st ? gst_structure_get_string(st, "media") : NULL;
    const char *enc = st ? gst_structure_get_string(st, "encoding-name") : NULL;
    int opus = media && enc && !strcmp(media, "audio") && !strcasecmp(enc, "OPUS") &&
               !atomic_load(&s->mic);
    char desc[256];
    snprintf(desc, sizeof desc, "%s",
             opus ? "queue ! rtpopusdepay ! opusdec ! audioconvert ! audioresample ! "
                    "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved ! "
                    "appsink name=mic sync=false max-buffers=400 drop=true"
                  : "fakesink sync=false async=false");
    if (caps) gst_caps_unref(caps);
    GError *gerr = NULL;
    GstElement *bin = gst_parse_bin_from_description(desc, TRUE, &gerr);
    if (!bin) {
        g_clear_error(&gerr);
        return;
    }
    gst_bin_add(GST_BIN(s->pipe), bin);
    GstPad *sink = gst_element_get_static_pad(bin, "sink");
    int linked = sink && gst_pad_link(pad, sink) == GST_PAD_LINK_OK;
    if (sink) gst_object_unref(sink);
    gst_element_sync_state_with_parent(bin);
    if (linked && opus) {
        GstElement *mic = gst_bin_get_by_name(GST_BIN(bin), "mic");
        if (mic) atomic_store(&s->mic, GST_APP_SINK(mic)); /* the ref goes with it */
    }
}

/* [GStreamer thread] Every packet from the peer. */
static GstPadProbeReturn on_rx(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    (void)pad, (void)info;
    atomic_store(&((rtc_session *)data)->last_rx, ls_now());
    return GST_PAD_PROBE_OK;
}

/* Watches what the peer sends: a probe on the src pad of each of
 * webrtcbin's ICE sources (made by the remote description). */
static void watch_peer(rtc_session *s)
{
    GstIterator *it = gst_bin_iterate_recurse(GST_BIN(s->rtc));
    GValue v = G_VALUE_INIT;
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
        GstElement *e = g_value_get_object(&v);
        GstElementFactory *f = gst_element_get_factory(e);
        if (f && !strcmp(GST_OBJECT_NAME(f), "nicesrc")) {
            GstPad *src = gst_element_get_static_pad(e, "src");
            if (src) {
                gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                                  on_rx, s, NULL);
                gst_object_unref(src);
            }
        }
        g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);
}

/* The pipeline for an offer: the painted frames to H.264, the input audio
 * to Opus, both with the offer's payload types so that the answer keeps
 * them. The peer's streams are linked as they come (on_pad_added). */
static int build_pipeline(rtc_session *s, const ls_webrtc_offer_info *info, ls_error *err)
{
    const ls_server_config *cfg = &s->set->env->cfg;
    char desc[2048];
    int n = snprintf(
        desc, sizeof desc,
        "webrtcbin name=rtc bundle-policy=max-bundle "
        "appsrc name=vsrc is-live=true format=time do-timestamp=false max-bytes=%d "
        "caps=video/x-raw,format=BGR,width=%d,height=%d,framerate=%d/1 ! queue ! "
        "videoconvert ! video/x-raw,format=I420 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=%d bitrate=2000 threads=1 ! "
        "video/x-h264,profile=constrained-baseline ! h264parse ! "
        "rtph264pay config-interval=-1 aggregate-mode=zero-latency pt=%d ! "
        "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=%d ! rtc. ",
        s->width * s->height * 3 * 8, s->width, s->height, LS_VIDEO_FPS, 2 * LS_VIDEO_FPS,
        info->video_pt, info->video_pt);
    if (info->audio_pt >= 0 && info->audio_recv)
        n += snprintf(desc + n, sizeof desc - (size_t)n,
                      "appsrc name=asrc is-live=true format=time do-timestamp=false "
                      "caps=audio/x-raw,format=F32LE,rate=%d,channels=1,layout=interleaved ! "
                      "queue ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=%d ! "
                      "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,"
                      "payload=%d ! rtc. ",
                      LS_AUDIO_MODEL_RATE, info->audio_pt, info->audio_pt);
    if (n >= (int)sizeof desc) return ls_error_set(err, LS_ERR_INTERNAL, "pipeline too long");
    GError *gerr = NULL;
    s->pipe = gst_parse_launch(desc, &gerr);
    if (!s->pipe || gerr) {
        ls_error_set(err, LS_ERR_INTERNAL, "GStreamer pipeline: %s",
                     gerr ? gerr->message : "failed");
        g_clear_error(&gerr);
        return LS_ERR_INTERNAL;
    }
    s->rtc = gst_bin_get_by_name(GST_BIN(s->pipe), "rtc");
    GstElement *v = gst_bin_get_by_name(GST_BIN(s->pipe), "vsrc");
    GstElement *a = gst_bin_get_by_name(GST_BIN(s->pipe), "asrc");
    s->vsrc = v ? GST_APP_SRC(v) : NULL;
    s->asrc = a ? GST_APP_SRC(a) : NULL;
    if (cfg->stun_server[0]) g_object_set(s->rtc, "stun-server", cfg->stun_server, NULL);
    if (cfg->turn_server[0]) g_object_set(s->rtc, "turn-server", cfg->turn_server, NULL);
    g_signal_connect(s->rtc, "pad-added", G_CALLBACK(on_pad_added), s);
    return LS_OK;
}

/* Waits for a promise: LS_OK with its reply in *reply (may be NULL; owned
 * by the promise), or an error naming what was refused. */
static int await(GstPromise *p, const char *what, const GstStructure **reply, ls_error *err)
{
    *reply = NULL;
    if (gst_promise_wait(p) != GST_PROMISE_RESULT_REPLIED)
        return ls_error_set(err, LS_ERR_INTERNAL, "webrtc: %s was not answered", what);
    const GstStructure *r = gst_promise_get_reply(p);
    GError *gerr = NULL;
    if (r && gst_structure_has_field(r, "error") &&
        gst_structure_get(r, "error", G_TYPE_ERROR, &gerr, NULL)) {
        ls_error_set(err, LS_ERR_INVALID_ARG, "webrtc: %s: %s", what,
                     gerr ? gerr->message : "refused");
        g_clear_error(&gerr);
        return LS_ERR_INVALID_ARG;
    }
    *reply = r;
    return LS_OK;
}

/* Sets a description (remote: the offer; local: our answer). */
static int set_description(rtc_session *s, const char *signal, GstWebRTCSessionDescription *d,
                           const char *what, ls_error *err)
{
    GstPromise *p = gst_promise_new();
    g_signal_emit_by_name(s->rtc, signal, d, p);
    const GstStructure *reply;
    int rc = await(p, what, &reply, err);
    gst_promise_unref(p);
    return rc;
}

/* Offer in, answer out, candidates gathered (non-trickle). */
static int negotiate(rtc_session *s, const char *sdp, size_t len, ls_buf *answer, ls_error *err)
{
    GstSDPMessage *msg = NULL;
    if (gst_sdp_message_new(&msg) != GST_SDP_OK)
        return ls_error_set(err, LS_ERR_NOMEM, "webrtc: out of memory");
    gst_sdp_message_parse_buffer((const guint8 *)sdp, (guint)len, msg); /* checked before */
    GstWebRTCSessionDescription *offer =
        gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, msg);
    int rc = set_description(s, "set-remote-description", offer, "the offer", err);
    gst_webrtc_session_description_free(offer);
    if (rc) return rc;

    GstPromise *p = gst_promise_new();
    g_signal_emit_by_name(s->rtc, "create-answer", NULL, p);
    const GstStructure *reply;
    GstWebRTCSessionDescription *ans = NULL;
    rc = await(p, "the answer", &reply, err);
    if (rc == LS_OK && reply)
        gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &ans, NULL);
    gst_promise_unref(p);
    if (rc) return rc;
    if (!ans) return ls_error_set(err, LS_ERR_INTERNAL, "webrtc: no answer was made");
    rc = set_description(s, "set-local-description", ans, "the answer", err);
    gst_webrtc_session_description_free(ans);
    if (rc) return rc;

    double until = ls_now() + LS_WEBRTC_GATHER_TIMEOUT_S;
    GstWebRTCICEGatheringState g = GST_WEBRTC_ICE_GATHERING_STATE_NEW;
    for (;;) {
        g_object_get(s->rtc, "ice-gathering-state", &g, NULL);
        if (g == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE || ls_now() > until) break;
        g_usleep(10000);
    }
    if (g != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
        return ls_error_set(err, LS_ERR_IO, "webrtc: candidates not gathered in %.0f s",
                            LS_WEBRTC_GATHER_TIMEOUT_S);
    GstWebRTCSessionDescription *local = NULL;
    g_object_get(s->rtc, "local-description", &local, NULL);
    if (!local) return ls_error_set(err, LS_ERR_INTERNAL, "webrtc: no local description");
    gchar *text = gst_sdp_message_as_text(local->sdp);
    gst_webrtc_session_description_free(local);
    rc = text && !ls_buf_append(answer, text, strlen(text))
             ? LS_OK
             : ls_error_set(err, LS_ERR_NOMEM, "webrtc: out of memory");
    g_free(text);
    return rc;
}

/* ---- the drive thread ---- */

static int keep_audio(rtc_session *s, const float *x, size_t n)
{
    if (s->audio_len + n > s->audio_cap) {
        size_t cap = s->audio_cap ? s->audio_cap : 16 * FRAME_SAMPLES;
        while (cap < s->audio_len + n) cap *= 2;
        float *a = realloc(s->audio, cap * sizeof *a);
        if (!a) return -1;
        s->audio = a, s->audio_cap = cap;
    }
    memcpy(s->audio + s->audio_len, x, n * sizeof *x);
    s->audio_len += n;
    return 0;
}

/* n samples of input: to the session, and kept to go out with their frame. */
static int feed(rtc_session *s, const float *x, size_t n, ls_error *err)
{
    if (keep_audio(s, x, n)) return ls_error_set(err, LS_ERR_NOMEM, "webrtc: out of memory");
    s->fed += (int64_t)n;
    return ls_session_push_audio(s->session, x, n, err);
}

static int feed_silence(rtc_session *s, int64_t n, ls_error *err)
{
    static const float zeros[FRAME_SAMPLES];
    while (n > 0) {
        size_t k = n < FRAME_SAMPLES ? (size_t)n : FRAME_SAMPLES;
        int rc = feed(s, zeros, k, err);
        if (rc) return rc;
        n -= (int64_t)k;
    }
    return LS_OK;
}

static GstBuffer *buffer_of(const void *data, size_t bytes, GstClockTime pts)
{
    GstBuffer *b = gst_buffer_new_allocate(NULL, bytes, NULL);
    if (!b) return NULL;
    gst_buffer_fill(b, 0, data, bytes);
    GST_BUFFER_PTS(b) = pts;
    GST_BUFFER_DURATION(b) = GST_SECOND / LS_VIDEO_FPS;
    return b;
}

/* Frame k and its 40 ms of input audio, both at the session clock's k/25 s. */
static int send_frame(rtc_session *s, const ls_frame *f, ls_error *err)
{
    GstClockTime pts = s->base + gst_util_uint64_scale_int((guint64)f->index, GST_SECOND,
                                                           LS_VIDEO_FPS);
    GstBuffer *v = buffer_of(f->data, f->size, pts);
    if (!v || gst_app_src_push_buffer(s->vsrc, v) != GST_FLOW_OK)
        return ls_error_set(err, LS_ERR_IO, "webrtc: the video encoder refused a frame");
    int64_t first = f->index * FRAME_SAMPLES;
    int64_t skip = first - s->audio_first;
    if (skip < 0 || (size_t)skip > s->audio_len) skip = (int64_t)s->audio_len;
    size_t have = s->audio_len - (size_t)skip;
    size_t n = have < FRAME_SAMPLES ? have : FRAME_SAMPLES;
    if (s->asrc) {
        float out[FRAME_SAMPLES] = {0}; /* past the input's end: silence */
        memcpy(out, s->audio + skip, n * sizeof *out);
        GstBuffer *a = buffer_of(out, sizeof out, pts);
        if (!a || gst_app_src_push_buffer(s->asrc, a) != GST_FLOW_OK)
            return ls_error_set(err, LS_ERR_IO, "webrtc: the audio encoder refused audio");
    }
    size_t drop = (size_t)skip + n;
    memmove(s->audio, s->audio + drop, (s->audio_len - drop) * sizeof *s->audio);
    s->audio_len -= drop;
    s->audio_first += (int64_t)drop;
    atomic_fetch_add(&s->frames, 1);
    return LS_OK;
}

static int send_ready_frames(rtc_session *s, ls_error *err)
{
    ls_frame f;
    while (ls_session_pull_frame(s->session, &f)) {
        int rc = send_frame(s, &f, err);
        if (rc) return rc;
    }
    return LS_OK;
}

/* The pipeline's errors end the session; its other messages are dropped
 * (nothing else reads the bus, and it would keep them all). */
static int poll_bus(rtc_session *s, ls_error *err)
{
    GstBus *bus = gst_element_get_bus(s->pipe);
    GstMessage *m;
    int rc = LS_OK;
    while (rc == LS_OK && (m = gst_bus_pop(bus))) {
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
            GError *gerr = NULL;
            gst_message_parse_error(m, &gerr, NULL);
            rc = ls_error_set(err, LS_ERR_IO, "webrtc: %s: %s", GST_OBJECT_NAME(m->src),
                              gerr ? gerr->message : "error");
            g_clear_error(&gerr);
        }
        gst_message_unref(m);
    }
    gst_object_unref(bus);
    return rc;
}

/* LS_OK while the peer connection lives; an error once it failed, closed, or
 * never connected in time. */
static int check_connection(rtc_session *s, double t, int *connected, ls_error *err)
{
    GstWebRTCICEConnectionState ice = GST_WEBRTC_ICE_CONNECTION_STATE_NEW;
    g_object_get(s->rtc, "ice-connection-state", &ice, NULL);
    if (ice == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED ||
        ice == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED)
        *connected = 1;
    if (ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED)
        return ls_error_set(err, LS_ERR_IO, "webrtc: ICE failed (the peer is gone)");
    if (ice == GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED)
        return ls_error_set(err, LS_ERR_IO, "webrtc: the peer connection closed");
    double silent = ls_now() - atomic_load(&s->last_rx);
    if (*connected && silent > PEER_SILENT_S)
        return ls_error_set(err, LS_ERR_IO, "webrtc: the peer sent nothing for %.0f s (gone)",
                            silent);
    if (!*connected && t > LS_WEBRTC_CONNECT_TIMEOUT_S)
        return ls_error_set(err, LS_ERR_IO, "webrtc: not connected within %.0f s",
                            LS_WEBRTC_CONNECT_TIMEOUT_S);
    return LS_OK;
}

static int drive_once(rtc_session *s, double t0, int *connected, ls_error *err)
{
    int rc = LS_OK;
    GstAppSink *mic = atomic_load(&s->mic);
    GstSample *sample = mic ? gst_app_sink_try_pull_sample(mic, POLL_NS) : NULL;
    if (!mic) g_usleep(POLL_NS / GST_USECOND);
    double t = ls_now() - t0;
    if (sample) {
        GstBuffer *b = gst_sample_get_buffer(sample);
        GstMapInfo map;
        if (b && gst_buffer_map(b, &map, GST_MAP_READ)) {
            size_t n = map.size / sizeof(float);
            if (s->fed + (int64_t)n <= (int64_t)((t + MIC_AHEAD_MAX_S) * LS_AUDIO_MODEL_RATE))
                rc = feed(s, (const float *)map.data, n, err);
            gst_buffer_unmap(b, &map);
        }
        gst_sample_unref(sample);
    }
    int64_t due = (int64_t)((t - MIC_SLACK_S) * LS_AUDIO_MODEL_RATE);
    if (rc == LS_OK && due > s->fed) rc = feed_silence(s, due - s->fed, err);
    if (rc == LS_OK) rc = ls_session_flush(s->session, err);
    if (rc == LS_OK) rc = send_ready_frames(s, err);
    if (rc == LS_OK) rc = poll_bus(s, err);
    if (rc == LS_OK) rc = check_connection(s, t, connected, err);
    return rc;
}

static void *drive_main(void *arg)
{
    rtc_session *s = arg;
    ls_error err = {0};
    double t0 = ls_now();
    GstClock *clock = gst_element_get_clock(s->pipe);
    if (clock) {
        GstClockTime now = gst_clock_get_time(clock), bt = gst_element_get_base_time(s->pipe);
        s->base = now > bt ? now - bt : 0;
        gst_object_unref(clock);
    }
    int connected = 0;
    while (!atomic_load(&s->stop))
        if (drive_once(s, t0, &connected, &err)) {
            snprintf(s->why, sizeof s->why, "%s", err.msg);
            break;
        }
    if (s->set->env->cfg.verbose)
        lwsl_user("webrtc %.8s: ended after %lld frames%s%s\n", s->id,
                  (long long)atomic_load(&s->frames), s->why[0] ? ": " : "", s->why);
    /* The teardown here, not where the session is freed: setting a pipeline
     * to NULL waits for its threads, which the loop must not. */
    gst_element_set_state(s->pipe, GST_STATE_NULL);
    atomic_store(&s->finished, 1);
    return NULL;
}

/* Frees a session whose thread has ended (or never started). */
static void session_free(rtc_session *s)
{
    if (s->thread_started) pthread_join(s->thread, NULL);
    if (s->pipe) gst_element_set_state(s->pipe, GST_STATE_NULL);
    GstAppSink *mic = atomic_load(&s->mic);
    if (mic) gst_object_unref(mic);
    if (s->vsrc) gst_object_unref(s->vsrc);
    if (s->asrc) gst_object_unref(s->asrc);
    if (s->rtc) gst_object_unref(s->rtc);
    if (s->pipe) gst_object_unref(s->pipe);
    ls_session_destroy(s->session);
    if (s->model) ls_registry_release(s->set->env->registry, s->model);
    atomic_fetch_sub(&s->set->env->active_streams, 1);
    free(s->audio);
    free(s);
}

int ls_webrtc_offer(ls_webrtc *set, const char *model_id, const char *sdp, size_t len,
                    char *id, ls_buf *answer, ls_error *err)
{
    ls_env *env = set->env;
    ls_webrtc_offer_info info;
    rtc_session *s = calloc(1, sizeof *s);
    if (!s) {
        atomic_fetch_sub(&env->active_streams, 1);
        return ls_error_set(err, LS_ERR_NOMEM, "webrtc: out of memory");
    }
    s->set = set;
    int rc = ls_webrtc_read_offer(sdp, len, &info, err);
    if (rc == LS_OK) rc = random_id(s->id, err);
    /* The model before GStreamer: a wrong id costs no GStreamer start. */
    if (rc == LS_OK) rc = ls_registry_acquire(env->registry, model_id, &s->model, err);
    if (rc == LS_OK) rc = gst_ready(set, err);
    if (rc == LS_OK) {
        ls_model_info mi;
        ls_model_get_info(s->model, &mi);
        s->width = mi.width, s->height = mi.height;
        ls_session_options so = {
            .batch = env->cfg.batch,
            .format = LS_FRAME_BGR,
            .silence_rms = (float)env->cfg.silence_rms,
        };
        rc = ls_session_create(s->model, env->pool, &so, &s->session, err);
    }
    if (rc == LS_OK) rc = build_pipeline(s, &info, err);
    if (rc == LS_OK && gst_element_set_state(s->pipe, GST_STATE_PLAYING) ==
                           GST_STATE_CHANGE_FAILURE)
        rc = ls_error_set(err, LS_ERR_INTERNAL, "webrtc: the pipeline did not start");
    if (rc == LS_OK) rc = negotiate(s, sdp, len, answer, err);
    if (rc == LS_OK) {
        atomic_store(&s->last_rx, ls_now());
        watch_peer(s);
    }
    if (rc == LS_OK) {
        if (pthread_create(&s->thread, NULL, drive_main, s))
            rc = ls_error_set(err, LS_ERR_INTERNAL, "webrtc: no thread for the session");
        else
            s->thread_started = 1;
    }
    if (rc != LS_OK) {
        session_free(s);
        return rc;
    }
    memcpy(id, s->id, sizeof s->id);
    pthread_mutex_lock(&set->lock);
    s->next = set->list;
    set->list = s;
    set->count++;
    pthread_mutex_unlock(&set->lock);
    if (env->cfg.verbose) lwsl_user("webrtc %.8s: answered (model %s)\n", s->id, model_id);
    if (env->cfg.verbose > 1)
        fprintf(stderr, "webrtc %.8s: offer:\n%.*s\nanswer:\n%.*s\n", s->id, (int)len, sdp,
                  (int)answer->len, (const char *)answer->data);
    return LS_OK;
}

/* [lock] Unlinks and returns the session that matches: id, or (id NULL)
 * the first finished one. */
static rtc_session *take(ls_webrtc *set, const char *id)
{
    for (rtc_session **p = &set->list; *p; p = &(*p)->next) {
        rtc_session *s = *p;
        if (id ? !strcmp(s->id, id) : atomic_load(&s->finished)) {
            *p = s->next;
            set->count--;
            return s;
        }
    }
    return NULL;
}

int ls_webrtc_end(ls_webrtc *set, const char *id, long long *frames, ls_error *err)
{
    pthread_mutex_lock(&set->lock);
    rtc_session *s = take(set, id);
    pthread_mutex_unlock(&set->lock);
    if (!s) return ls_error_set(err, LS_ERR_NOT_FOUND, "no WebRTC session %.40s", id);
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    s->thread_started = 0;
    if (frames) *frames = atomic_load(&s->frames);
    session_free(s);
    return LS_OK;
}

void ls_webrtc_scan(ls_webrtc *set)
{
    for (;;) {
        pthread_mutex_lock(&set->lock);
        rtc_session *s = take(set, NULL);
        pthread_mutex_unlock(&set->lock);
        if (!s) return;
        session_free(s); /* its thread has returned: the join does not wait */
    }
}

void ls_webrtc_stop_all(ls_webrtc *set)
{
    pthread_mutex_lock(&set->lock);
    for (rtc_session *s = set->list; s; s = s->next) atomic_store(&s->stop, 1);
    pthread_mutex_unlock(&set->lock);
}

int ls_webrtc_count(ls_webrtc *set)
{
    pthread_mutex_lock(&set->lock);
    int n = set->count;
    pthread_mutex_unlock(&set->lock);
    return n;
}

void ls_webrtc_destroy(ls_webrtc *set)
{
    if (!set) return;
    ls_webrtc_stop_all(set);
    for (;;) {
        pthread_mutex_lock(&set->lock);
        rtc_session *s = set->list;
        if (s) set->list = s->next, set->count--;
        pthread_mutex_unlock(&set->lock);
        if (!s) break;
        session_free(s);
    }
    pthread_mutex_destroy(&set->lock);
    free(set);
}

/* drive.c - push / pull / finish over a session (drive.h). */
#include "pipeline/drive.h"

int ls_session_drain(ls_session *s, const ls_drive_sink *sink, ls_error *err)
{
    ls_frame f;
    int rc = LS_OK;
    while (!rc && ls_session_pull_frame(s, &f) == 1) rc = sink->frame(sink->ctx, &f, err);
    if (sink->pulled) sink->pulled(sink->ctx);
    return rc;
}

int ls_session_drive(ls_session *s, const float *x, size_t n, const ls_drive_options *opt,
                     const ls_drive_sink *sink, ls_error *err)
{
    size_t chunk = opt->chunk ? opt->chunk : n;
    for (size_t at = 0; at < n; at += chunk) {
        if (sink->proceed) {
            int go = sink->proceed(sink->ctx, err);
            if (go == LS_DRIVE_STOP) return LS_OK;
            if (go) return go;
        }
        size_t k = n - at < chunk ? n - at : chunk;
        int rc = ls_session_push_audio(s, x + at, k, err);
        if (!rc && opt->flush) rc = ls_session_flush(s, err);
        if (!rc) rc = ls_session_drain(s, sink, err);
        if (rc) return rc;
    }
    if (!opt->finish) return LS_OK;
    int rc = ls_session_finish(s, err);
    return rc ? rc : ls_session_drain(s, sink, err);
}

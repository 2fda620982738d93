#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ls_error_set(ls_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int ls_error_prefix(ls_error *err, const char *fmt, ...)
{
    if (!err) return LS_ERR_INTERNAL;
    char prefix[LS_ERROR_MSG_MAX], old[LS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Keep as much of both as fits; a cut message beats no message. */
    size_t np = strnlen(prefix, sizeof err->msg - 3);
    memcpy(err->msg, prefix, np);
    memcpy(err->msg + np, ": ", 2);
    size_t room = sizeof err->msg - np - 3;
    size_t no = strnlen(old, room);
    memcpy(err->msg + np + 2, old, no);
    err->msg[np + 2 + no] = '\0';
    return err->code;
}

void ls_error_clear(ls_error *err)
{
    if (err) {
        err->code = LS_OK;
        err->msg[0] = '\0';
    }
}

const char *ls_status_name(int code)
{
    switch (code) {
    case LS_OK: return "ok";
    case LS_ERR_INVALID_ARG: return "invalid argument";
    case LS_ERR_IO: return "i/o";
    case LS_ERR_FORMAT: return "format";
    case LS_ERR_UNSUPPORTED: return "unsupported";
    case LS_ERR_NOMEM: return "out of memory";
    case LS_ERR_RANGE: return "out of range";
    case LS_ERR_NOT_FOUND: return "not found";
    case LS_ERR_BUSY: return "busy";
    case LS_ERR_STATE: return "bad state";
    case LS_ERR_INTERNAL: return "internal";
    case LS_ERR_TOO_LARGE: return "too large";
    default: return "unknown";
    }
}

/* error.h - status codes and error messages shared by every module.
 *
 * Functions that can fail return an int: LS_OK (0) on success or a negative
 * ls_status. When the caller passes an ls_error, it receives a human-readable
 * message naming what was wrong (the file, the frame, the node...). No global
 * or thread-local error state exists: the message travels with the call.
 *
 * Every constructor has one shape: int ls_x_create(inputs..., ls_x **out,
 * ls_error *err) returns a status and stores the new object in *out, which is
 * NULL whenever the status is not LS_OK; ls_x_destroy(NULL) does nothing.
 */
#ifndef LS_CORE_ERROR_H
#define LS_CORE_ERROR_H

#include <stddef.h>

typedef enum ls_status {
    LS_OK = 0,
    LS_ERR_INVALID_ARG = -1, /* a caller passed something out of contract */
    LS_ERR_IO = -2,          /* a file or socket could not be read or written */
    LS_ERR_FORMAT = -3,      /* input bytes are malformed or truncated */
    LS_ERR_UNSUPPORTED = -4, /* well-formed, but a feature we do not handle */
    LS_ERR_NOMEM = -5,       /* an allocation failed */
    LS_ERR_RANGE = -6,       /* a value outside its allowed range */
    LS_ERR_NOT_FOUND = -7,   /* a named thing does not exist */
    LS_ERR_BUSY = -8,        /* a limit was reached (sessions, queue) */
    LS_ERR_STATE = -9,       /* call not valid in the object's current state */
    LS_ERR_INTERNAL = -10,   /* a library we call failed unexpectedly */
    LS_ERR_TOO_LARGE = -11   /* an input exceeds a configured size or duration limit */
} ls_status;

#define LS_ERROR_MSG_MAX 512

typedef struct ls_error {
    int code;
    char msg[LS_ERROR_MSG_MAX];
} ls_error;

/* Records code and a printf-style message in err (which may be NULL) and
 * returns code, so that `return ls_error_set(err, LS_ERR_IO, "...")` reads
 * naturally. */
int ls_error_set(ls_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in err with more context ("loading x: ..."). */
int ls_error_prefix(ls_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void ls_error_clear(ls_error *err);

/* Short stable name of a status code, e.g. "format" for LS_ERR_FORMAT. */
const char *ls_status_name(int code);

#endif

/* request.h - what the loop reads of an HTTP request head as lws parsed it,
 * the same way for every protocol (HTTP routes, the WebSocket upgrade):
 * limits lws applied silently, the method, query arguments, the bearer
 * token; and the JSON answer to a refused upgrade. Loop thread only: every
 * function reads the wsi's headers.
 *
 * Request size limits: lws cuts the request URI (each query argument on its
 * own) and every header it knows at LS_HTTP_FIELD_MAX bytes (token_limits:
 * it keeps the first bytes and skips the rest of the line), and such a
 * request is answered 414 or 431 (ls_request_check). All the request head
 * lws stores - the kept parts, plus unknown headers, which it stores whole -
 * must fit in LS_HTTP_HEAD_MAX bytes: past that, or past its fixed count of
 * URI arguments and headers (about 90), or at a %00 (NUL) its URI decoder
 * refuses, lws's parser fails and closes the connection without a callback
 * that could answer (lws 4.1, parsers.c: LPR_FAIL, no hook).
 */
#ifndef LS_SERVER_REQUEST_H
#define LS_SERVER_REQUEST_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "server/env.h"

#define LS_HTTP_FIELD_MAX 8192
#define LS_HTTP_HEAD_MAX 32768
/* The longest token= argument read: longer than any token can be. */
#define LS_TOKEN_ARG_MAX (LS_CONFIG_STR_MAX + 16)

/* What lws passed on but is refused before routing: 0 when the request is
 * fine, else the HTTP status, with the message in why.
 * - 414 / 431: lws cut the URI (or a query argument) / a header at
 *   LS_HTTP_FIELD_MAX bytes; a cut piece is exactly that long.
 * - 400: a NUL byte (%00) in the path. lws's URI decoder fails the whole
 *   request (closing without a callback) at a %00 anywhere but right after
 *   a '/' or "/."; there it keeps the NUL, which would end the path early.
 * - 505 / 400: a version other than HTTP/1.x, or not a version at all. */
int ls_request_check(struct lws *wsi, char *why, size_t cap);

/* The request line's method ("GET", "POST", ...), or "" when lws kept none. */
const char *ls_request_method(struct lws *wsi);

/* The value of query argument name ("model="), URL-decoded by lws, into
 * buf: 1, or 0 when absent, or -1 when longer than cap - 1 bytes (never cut
 * short). */
int ls_request_arg(struct lws *wsi, const char *name, char *buf, int cap);

/* Bearer token from the Authorization header or the token= query argument:
 * 1 when it matches (or none is configured), 0 when not, -1 when token= is
 * longer than any token. */
int ls_request_authorized(const ls_env *env, struct lws *wsi);

/* Whether the Accept header names multipart/mixed, however long it is. */
int ls_request_accepts_multipart(struct lws *wsi);

/* A decimal integer in min..max (min >= 0): digits only, no sign, no
 * spaces, no overflow. 1 with *out set, or 0. */
int ls_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* A Retry-After header of seconds; nonzero when it does not fit. */
int ls_request_add_retry_after(struct lws *wsi, int seconds, unsigned char **p,
                               unsigned char *end);

/* Answers a request lws would upgrade (or a refused upgrade) with a JSON
 * error and Connection: close; 1 when sent (lws then closes), -1 if not. */
int ls_request_refuse(ls_env *env, struct lws *wsi, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

/* request.c - reading a request head from lws (request.h). */
#include "server/request.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tokens lws keeps a request line's URI in, one per method. */
static const struct {
    enum lws_token_indexes token;
    const char *method;
} uri_tokens[] = {
    {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_OPTIONS_URI, "OPTIONS"}, {WSI_TOKEN_PUT_URI, "PUT"},
    {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_DELETE_URI, "DELETE"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};
#define N_URI_TOKENS (sizeof uri_tokens / sizeof uri_tokens[0])

static int is_uri_token(int h)
{
    if (h == WSI_TOKEN_HTTP_URI_ARGS) return 1;
    for (size_t i = 0; i < N_URI_TOKENS; i++)
        if (h == (int)uri_tokens[i].token) return 1;
    return 0;
}

const char *ls_request_method(struct lws *wsi)
{
    for (size_t i = 0; i < N_URI_TOKENS; i++)
        if (lws_hdr_total_length(wsi, uri_tokens[i].token) > 0) return uri_tokens[i].method;
    return "";
}

int ls_request_check(struct lws *wsi, char *why, size_t cap)
{
    for (int h = 0; h < (int)WSI_TOKEN_COUNT; h++) {
        if (h == WSI_TOKEN_HTTP || lws_hdr_total_length(wsi, h) < LS_HTTP_FIELD_MAX) continue;
        /* Pieces past the last are 0 long; there are at most
         * WSI_TOKEN_COUNT (lws's fragment table). */
        for (int f = 0; f < (int)WSI_TOKEN_COUNT; f++) {
            if (lws_hdr_fragment_length(wsi, h, f) < LS_HTTP_FIELD_MAX) continue;
            if (is_uri_token(h)) {
                snprintf(why, cap, "request URI %s longer than %d bytes",
                         h == WSI_TOKEN_HTTP_URI_ARGS ? "query argument" : "path",
                         LS_HTTP_FIELD_MAX - 1);
                return 414;
            }
            const char *name = (const char *)lws_token_to_string(h);
            int n = name ? (int)strcspn(name, ": ") : 0;
            snprintf(why, cap, "header %.*s longer than %d bytes", n, n ? name : "field",
                     LS_HTTP_FIELD_MAX - 1);
            return 431;
        }
    }
    for (size_t i = 0; i < N_URI_TOKENS; i++) {
        if (lws_hdr_total_length(wsi, uri_tokens[i].token) <= 0) continue;
        /* lws counts the bytes but the NUL, and its copy stops at a NUL. */
        char path[LS_HTTP_FIELD_MAX + 1];
        int n = lws_hdr_copy(wsi, path, sizeof path, uri_tokens[i].token);
        if (n > 0 && strlen(path) < (size_t)n) {
            snprintf(why, cap, "bad path: it holds a NUL byte (%%00)");
            return 400;
        }
    }
    char v[16];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP);
    if (n > 0) {
        if (n >= (int)sizeof v || lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP) != n ||
            strncmp(v, "HTTP/", 5)) {
            snprintf(why, cap, "malformed HTTP version in the request line");
            return 400;
        }
        if (n != 8 || strncmp(v, "HTTP/1.", 7) || !isdigit((unsigned char)v[7])) {
            snprintf(why, cap, "%s is not supported: this server speaks HTTP/1.1", v);
            return 505;
        }
    }
    return 0;
}

/* lws_get_urlarg_by_name cannot tell absent from too long: it stops at the
 * first argument too long for buf, whichever its name. */
int ls_request_arg(struct lws *wsi, const char *name, char *buf, int cap)
{
    char frag[LS_HTTP_FIELD_MAX + 1]; /* lws keeps no argument longer */
    size_t nl = strlen(name);
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) return 0;
        if ((size_t)n < nl || strncmp(frag, name, nl)) continue;
        if ((size_t)n - nl >= (size_t)cap) return -1;
        memcpy(buf, frag + nl, (size_t)n - nl + 1);
        return 1;
    }
}

int ls_request_authorized(const ls_env *env, struct lws *wsi)
{
    const char *token = env->cfg.token;
    if (!token[0]) return 1;
    char h[LS_CONFIG_STR_MAX + 16];
    if (lws_hdr_copy(wsi, h, sizeof h, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, token))
        return 1;
    char q[LS_TOKEN_ARG_MAX];
    int a = ls_request_arg(wsi, "token=", q, sizeof q);
    return a < 0 ? -1 : a && !strcmp(q, token);
}

int ls_request_accepts_multipart(struct lws *wsi)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_ACCEPT);
    if (n <= 0) return 0;
    char *a = malloc((size_t)n + 1);
    int yes = a && lws_hdr_copy(wsi, a, n + 1, WSI_TOKEN_HTTP_ACCEPT) > 0 &&
              strstr(a, "multipart/mixed");
    free(a);
    return yes;
}

int ls_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!isdigit((unsigned char)s[0])) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < min || v > max) return 0;
    *out = v;
    return 1;
}

int ls_request_add_retry_after(struct lws *wsi, int seconds, unsigned char **p,
                               unsigned char *end)
{
    char v[16];
    int n = snprintf(v, sizeof v, "%d", seconds);
    return lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                       (const unsigned char *)v, n, p, end);
}

int ls_request_refuse(ls_env *env, struct lws *wsi, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = ls_error_json(status, fmt, ap);
    va_end(ap);
    if (!body) return -1;
    size_t n = strlen(body);
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    int rc = -1;
    if (n < 1024 &&
        !lws_add_http_common_headers(wsi, (unsigned)status, "application/json", n, &p, end) &&
        !lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                     (const unsigned char *)"close", 5, &p, end) &&
        (status != 503 || !ls_request_add_retry_after(wsi, LS_RETRY_AFTER_S, &p, end)) &&
        !lws_finalize_write_http_header(wsi, start, &p, end)) {
        memcpy(start, body, n);
        if (lws_write(wsi, start, n, LWS_WRITE_HTTP_FINAL) == (int)n) rc = 1;
    }
    cJSON_free(body);
    ls_metrics_add(env->metrics, LS_M_ERRORS, 1);
    return rc;
}

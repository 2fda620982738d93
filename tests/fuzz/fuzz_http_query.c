/* fuzz_http_query - what the server parses of an HTTP request line and its
 * headers (server/http.h, server/request.h): the route table
 * (ls_http_job_route), the query of /v1/render and /v1/batch
 * (ls_http_parse_job_args), the model id check (ls_registry_valid_id) and
 * Content-Length (ls_parse_i64). Input:
 *   [0]  method: bit 0 POST, bit 1 DELETE (neither: GET)
 *   then the request target "/path?a=1&b=2" up to a newline, then the
 *   Content-Length header's value.
 * lws splits the query at '&' and URL-decodes each argument; the argument
 * getter below does the same over the input, with lws_get_urlarg_by_name's
 * contract: an argument that does not fit the buffer ends the search. */
#include "fuzz_util.h"
#include "server/http.h"
#include "server/request.h"

#define MAX_ARGS 64

typedef struct query {
    int n;
    char *arg[MAX_ARGS];
} query;

static int hex(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One argument, URL-decoded ("%41" -> 'A', '+' -> ' '), malloc'd. */
static char *decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    FUZZ_CHECK(out);
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = hex(s[i + 1])) >= 0 && (l = hex(s[i + 2])) >= 0) {
            *o++ = (char)(h * 16 + l);
            i += 2;
        } else {
            *o++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *o = 0;
    return out;
}

static int get_arg(void *ctx, const char *name, char *buf, int cap)
{
    const query *q = ctx;
    size_t nl = strlen(name);
    for (int i = 0; i < q->n; i++) {
        size_t len = strlen(q->arg[i]);
        if (len < nl || strncmp(q->arg[i], name, nl)) continue;
        if (len - nl >= (size_t)cap) return -1; /* as ls_request_arg */
        memcpy(buf, q->arg[i] + nl, len - nl + 1);
        return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT || size < 1) return 0;
    int post = data[0] & 1, del = (data[0] >> 1) & 1;
    const char *text = (const char *)data + 1, *end = (const char *)data + size;
    const char *nl = memchr(text, '\n', (size_t)(end - text));
    const char *target_end = nl ? nl : end;
    const char *qm = memchr(text, '?', (size_t)(target_end - text));
    const char *path_end = qm ? qm : target_end;

    /* The path as the callback gets it: at most 511 bytes, up to a NUL. */
    char uri[512];
    snprintf(uri, sizeof uri, "%.*s", (int)(path_end - text), text);
    char id[LS_MODEL_ID_MAX + 1];
    ls_job *r = calloc(1, sizeof *r);
    FUZZ_CHECK(r);
    int too_long;
    const char *method = post ? "POST" : del ? "DELETE" : "GET";
    r->kind = ls_http_job_route(method, uri, id, &too_long);
    FUZZ_CHECK(!too_long || r->kind == LS_JOB_NONE);
    if (r->kind == LS_JOB_LOAD || r->kind == LS_JOB_UNLOAD) {
        FUZZ_CHECK(id[0] && strlen(id) <= LS_MODEL_ID_MAX && !strchr(id, '/'));
        (void)ls_registry_valid_id(id);
    } else if (r->kind == LS_JOB_RENDER || r->kind == LS_JOB_BATCH) {
        FUZZ_CHECK(post);
        query q = {0};
        for (const char *p = qm ? qm + 1 : target_end; p < target_end && q.n < MAX_ARGS;) {
            const char *amp = memchr(p, '&', (size_t)(target_end - p));
            const char *e = amp ? amp : target_end;
            q.arg[q.n++] = decode(p, (size_t)(e - p));
            p = e + 1;
        }
        char why[LS_ERROR_MSG_MAX];
        int rc = ls_http_parse_job_args(r, get_arg, &q, why, sizeof why);
        fuzz_note("query", rc, why);
        if (rc == 0) {
            FUZZ_CHECK(r->model[0] && memchr(r->model, 0, sizeof r->model));
            (void)ls_registry_valid_id(r->model);
            FUZZ_CHECK(r->start_frame >= 0 && r->start_frame <= (INT64_C(1) << 40));
            if (r->kind == LS_JOB_RENDER)
                FUZZ_CHECK(!strcmp(r->output, "mp4") || !strcmp(r->output, "mjpeg") ||
                           !strcmp(r->output, "jpeg-zip"));
            else
                FUZZ_CHECK(r->batch_size >= 1 && r->batch_size <= 32);
        } else {
            FUZZ_CHECK(why[0] && memchr(why, 0, sizeof why));
        }
        for (int i = 0; i < q.n; i++) free(q.arg[i]);
    } else {
        FUZZ_CHECK(r->kind == LS_JOB_NONE);
    }
    free(r);

    /* Content-Length: lws copies it into the server's 32-byte buffer, or fails. */
    if (nl) {
        char cl[32];
        size_t n = (size_t)(end - nl - 1);
        if (n < sizeof cl) {
            memcpy(cl, nl + 1, n);
            cl[n] = 0;
            int64_t len = -1;
            if (ls_parse_i64(cl, 0, INT64_MAX, &len)) FUZZ_CHECK(len >= 0);
        }
    }
    return 0;
}

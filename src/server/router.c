/* router.c - matching requests against a route table (router.h). */
#include "server/router.h"

#include <stdio.h>
#include <string.h>

/* Whether path has pattern's shape; the parameter's place and length. */
static int shape_matches(const char *pattern, const char *path, const char **param,
                         size_t *param_len)
{
    *param = NULL;
    *param_len = 0;
    while (*pattern) {
        if (!strncmp(pattern, "{}", 2)) {
            size_t n = strcspn(path, "/");
            if (n == 0) return 0;
            *param = path;
            *param_len = n;
            pattern += 2;
            path += n;
            continue;
        }
        if (*pattern++ != *path++) return 0;
    }
    return *path == '\0';
}

void ls_route_find(const void *table, size_t n, size_t stride, const char *method,
                   const char *path, char *param, size_t cap, ls_route_match *out)
{
    memset(out, 0, sizeof *out);
    out->result = LS_ROUTE_NOT_FOUND;
    size_t allow_len = 0;
    for (size_t i = 0; i < n; i++) {
        const ls_route *r = (const ls_route *)((const char *)table + i * stride);
        const char *p;
        size_t plen;
        if (!shape_matches(r->pattern, path, &p, &plen)) continue;
        if (strcmp(r->method, method)) {
            if (out->result == LS_ROUTE_NOT_FOUND) {
                out->result = LS_ROUTE_BAD_METHOD;
                out->index = i;
            }
            /* Each method once, in table order. */
            if (!strstr(out->allow, r->method)) {
                int w = snprintf(out->allow + allow_len, sizeof out->allow - allow_len, "%s%s",
                                 allow_len ? ", " : "", r->method);
                if (w > 0 && (size_t)w < sizeof out->allow - allow_len) allow_len += (size_t)w;
            }
            continue;
        }
        out->index = i;
        if (p && plen >= cap) {
            out->result = LS_ROUTE_PARAM_TOO_LONG;
            return;
        }
        if (p) {
            memcpy(param, p, plen);
            param[plen] = '\0';
        } else if (cap) {
            param[0] = '\0';
        }
        out->result = LS_ROUTE_MATCH;
        out->allow[0] = '\0';
        return;
    }
}

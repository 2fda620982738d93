#include "avatar/croprect.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"

/* One number at *p (skipping spaces and tabs, not newlines); truncated toward zero. */
static int read_coord(const char **p, const char *end, int *out)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    if (s == end || *s == '\n' || *s == '\r') return 0;
    char buf[64];
    size_t n = 0;
    while (s + n < end && n < sizeof buf - 1 && !strchr(" \t\r\n", s[n])) {
        buf[n] = s[n];
        n++;
    }
    buf[n] = 0;
    char *stop;
    errno = 0;
    double v = strtod(buf, &stop);
    if (stop == buf || *stop || errno || !isfinite(v) || fabs(v) > 1e6) return 0;
    *out = (int)v;
    *p = s + n;
    return 1;
}

int ls_croprect_parse(const char *text, size_t len, const char *name, ls_rect *out,
                      ls_error *err)
{
    const char *what = name ? name : "landmarks";
    const char *p = text, *end = text + len;
    int xs[LS_LMS_POINTS], ys[LS_LMS_POINTS];
    int n = 0, line = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        line++;
        const char *q = p;
        while (q < eol && strchr(" \t\r", *q)) q++;
        if (q < eol) { /* not a blank line */
            if (n == LS_LMS_POINTS)
                return ls_error_set(err, LS_ERR_FORMAT, "%s: more than %d points (line %d)",
                                    what, LS_LMS_POINTS, line);
            int x, y;
            if (!read_coord(&q, eol, &x) || !read_coord(&q, eol, &y))
                return ls_error_set(err, LS_ERR_FORMAT, "%s line %d: expected \"x y\"", what,
                                    line);
            while (q < eol && strchr(" \t\r", *q)) q++;
            if (q != eol)
                return ls_error_set(err, LS_ERR_FORMAT, "%s line %d: extra text after \"x y\"",
                                    what, line);
            xs[n] = x;
            ys[n] = y;
            n++;
        }
        p = eol + 1;
    }
    if (n != LS_LMS_POINTS)
        return ls_error_set(err, LS_ERR_FORMAT, "%s: %d points, expected %d", what, n,
                            LS_LMS_POINTS);
    out->x1 = xs[1];
    out->y1 = ys[52];
    out->x2 = xs[31];
    out->y2 = out->y1 + (out->x2 - out->x1);
    return LS_OK;
}

int ls_croprect_read(const char *path, ls_rect *out, ls_error *err)
{
    uint8_t *bytes;
    size_t len;
    int rc = ls_read_file(path, &bytes, &len, err);
    if (rc != LS_OK) return rc;
    rc = ls_croprect_parse((const char *)bytes, len, path, out, err);
    free(bytes);
    return rc;
}

#include "core/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int ls_read_file(const char *path, uint8_t **bytes, size_t *len, ls_error *err)
{
    *bytes = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ls_error_set(err, LS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    /* A directory opens too, and seeking to its end gives a size of LONG_MAX on
     * some file systems: only regular files are read. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ls_error_set(err, LS_ERR_IO, "%s is not a regular file", path);
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return ls_error_set(err, LS_ERR_IO, "cannot seek %s", path);
    }
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return ls_error_set(err, LS_ERR_IO, "cannot size %s (not a regular file?)", path);
    }
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate %ld bytes for %s", size, path);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(buf);
        return ls_error_set(err, LS_ERR_IO, "short read on %s", path);
    }
    buf[size] = 0;
    *bytes = buf;
    *len = (size_t)size;
    return LS_OK;
}

/* Finds `'key':` in the header dict and returns a pointer just past the colon. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p) return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

int ls_npy_parse(const uint8_t *b, size_t len, ls_npy *out, ls_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return ls_error_set(err, LS_ERR_FORMAT, "not a .npy file (bad magic)");
    int major = b[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return ls_error_set(err, LS_ERR_FORMAT, "truncated .npy header");
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hoff = 12;
    } else {
        return ls_error_set(err, LS_ERR_UNSUPPORTED, ".npy format version %d", major);
    }
    if (hlen > len - hoff) return ls_error_set(err, LS_ERR_FORMAT, "truncated .npy header");
    char hdr[4096];
    if (hlen >= sizeof hdr) return ls_error_set(err, LS_ERR_FORMAT, ".npy header too long");
    memcpy(hdr, b + hoff, hlen);
    hdr[hlen] = 0;

    const char *descr = dict_value(hdr, "descr");
    const char *fo = dict_value(hdr, "fortran_order");
    const char *shp = dict_value(hdr, "shape");
    if (!descr || !fo || !shp) return ls_error_set(err, LS_ERR_FORMAT, "malformed .npy header");
    char dt[8] = {0};
    if (sscanf(descr, "'%7[^']'", dt) != 1) return ls_error_set(err, LS_ERR_FORMAT, "bad descr");
    size_t esize;
    if (!strcmp(dt, "<f4")) esize = 4;
    else if (!strcmp(dt, "<f8")) esize = 8;
    else if (!strcmp(dt, "<i4")) esize = 4;
    else if (!strcmp(dt, "<i8")) esize = 8;
    else if (!strcmp(dt, "|u1") || !strcmp(dt, "<u1")) esize = 1;
    else return ls_error_set(err, LS_ERR_UNSUPPORTED, ".npy dtype %s", dt);
    int fortran = strncmp(fo, "True", 4) == 0;

    if (*shp != '(') return ls_error_set(err, LS_ERR_FORMAT, "bad .npy shape");
    const char *p = shp + 1;
    size_t count = 1;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        long long d = strtoll(p, &end, 10);
        if (end == p || d < 0) return ls_error_set(err, LS_ERR_FORMAT, "bad .npy shape");
        if (out->ndim >= LS_NPY_MAX_DIMS)
            return ls_error_set(err, LS_ERR_UNSUPPORTED, ".npy with more than %d dims",
                                LS_NPY_MAX_DIMS);
        out->shape[out->ndim++] = d;
        if (d && count > SIZE_MAX / 8 / (size_t)d)
            return ls_error_set(err, LS_ERR_FORMAT, ".npy shape too large");
        count *= (size_t)d;
        p = end;
    }
    size_t doff = hoff + hlen;
    if (count * esize > len - doff)
        return ls_error_set(err, LS_ERR_FORMAT, ".npy data truncated: need %zu bytes, have %zu",
                            count * esize, len - doff);

    float *data = malloc(count ? count * sizeof(float) : sizeof(float));
    if (!data) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate .npy data");
    const uint8_t *src = b + doff;
    for (size_t i = 0; i < count; i++) {
        /* Map C-order index i to its position in the stored order. */
        size_t j = i;
        if (fortran && out->ndim > 1) {
            size_t rem = i, stride = 1;
            j = 0;
            size_t idx[LS_NPY_MAX_DIMS];
            for (int d = out->ndim - 1; d >= 0; d--) {
                idx[d] = rem % (size_t)out->shape[d];
                rem /= (size_t)out->shape[d];
            }
            for (int d = 0; d < out->ndim; d++) {
                j += idx[d] * stride;
                stride *= (size_t)out->shape[d];
            }
        }
        const uint8_t *e = src + j * esize;
        float v;
        if (!strcmp(dt, "<f4")) { memcpy(&v, e, 4); }
        else if (!strcmp(dt, "<f8")) { double x; memcpy(&x, e, 8); v = (float)x; }
        else if (!strcmp(dt, "<i4")) { int32_t x; memcpy(&x, e, 4); v = (float)x; }
        else if (!strcmp(dt, "<i8")) { int64_t x; memcpy(&x, e, 8); v = (float)x; }
        else { v = (float)e[0]; }
        data[i] = v;
    }
    out->count = count;
    out->data = data;
    return LS_OK;
}

int ls_npy_read(const char *path, ls_npy *out, ls_error *err)
{
    uint8_t *bytes;
    size_t len;
    memset(out, 0, sizeof *out);
    int rc = ls_read_file(path, &bytes, &len, err);
    if (rc) return rc;
    rc = ls_npy_parse(bytes, len, out, err);
    free(bytes);
    if (rc) ls_error_prefix(err, "%s", path);
    return rc;
}

void ls_npy_free(ls_npy *a)
{
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

static int npy_write(const char *path, const void *data, size_t esize, const char *descr,
                     int ndim, const int64_t *shape, ls_error *err)
{
    if (ndim < 0 || ndim > LS_NPY_MAX_DIMS)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "npy: bad ndim %d", ndim);
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s", (long long)shape[d],
                      ndim == 1 ? "," : (d + 1 < ndim ? ", " : ""));
        count *= (size_t)shape[d];
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* Header (magic + 2 version + 2 length + dict + '\n') padded to 64 bytes. */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    FILE *f = fopen(path, "wb");
    if (!f) return ls_error_set(err, LS_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    uint8_t head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xff),
                        (uint8_t)(hlen >> 8)};
    int ok = fwrite(head, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && (count == 0 || fwrite(data, esize, count, f) == count);
    ok = (fclose(f) == 0) && ok;
    if (!ok) return ls_error_set(err, LS_ERR_IO, "write failed on %s", path);
    return LS_OK;
}

int ls_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape,
                     ls_error *err)
{
    return npy_write(path, data, 4, "<f4", ndim, shape, err);
}

int ls_npy_write_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape,
                    ls_error *err)
{
    return npy_write(path, data, 1, "|u1", ndim, shape, err);
}

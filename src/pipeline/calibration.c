/* calibration.c - int8.json, read and written (calibration.h). */
#include "pipeline/calibration.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"

#define FORMAT_NAME "lipsync-int8-calibration"
#define MAX_CHANNELS 65536

int ls_file_fnv1a64(const char *path, int64_t *bytes, uint64_t *hash, ls_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ls_error_set(err, LS_ERR_IO, "cannot open %s", path);
    uint64_t h = 0xcbf29ce484222325ull;
    int64_t n = 0;
    unsigned char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < got; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
        n += (int64_t)got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return ls_error_set(err, LS_ERR_IO, "cannot read %s", path);
    *bytes = n;
    *hash = h;
    return LS_OK;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int ls_calibration_write(const char *path, const ls_calib *c, const char *unet_path,
                         ls_error *err)
{
    int64_t size;
    uint64_t hash;
    int rc = ls_file_fnv1a64(unet_path, &size, &hash, err);
    if (rc) return rc;
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, hash);
    cJSON *root = cJSON_CreateObject(), *ranges = cJSON_CreateObject();
    int ok = root && ranges;
    if (ok) {
        cJSON_AddItemToObject(root, "format", cJSON_CreateString(FORMAT_NAME));
        cJSON_AddItemToObject(root, "version", cJSON_CreateNumber(1));
        cJSON_AddItemToObject(root, "unet", cJSON_CreateString(base_name(unet_path)));
        cJSON_AddItemToObject(root, "unet_bytes", cJSON_CreateNumber((double)size));
        cJSON_AddItemToObject(root, "unet_fnv1a64", cJSON_CreateString(hex));
        cJSON_AddItemToObject(root, "items", cJSON_CreateNumber((double)ls_calib_items(c)));
        cJSON_AddItemToObject(root, "ranges", ranges);
    } else {
        cJSON_Delete(ranges);
    }
    for (int v = 0; ok && v < ls_calib_count(c); v++) {
        const float *lo, *hi;
        const char *name = ls_calib_name(c, v);
        int n = name ? ls_calib_channels(c, v, &lo, &hi) : 0;
        if (!n) continue;
        cJSON *r = cJSON_CreateObject();
        cJSON *l = cJSON_CreateFloatArray(lo, n), *h = cJSON_CreateFloatArray(hi, n);
        ok = r && l && h && cJSON_AddItemToObject(r, "lo", l) && cJSON_AddItemToObject(r, "hi", h);
        if (!ok) {
            cJSON_Delete(r);
            cJSON_Delete(l);
            cJSON_Delete(h);
        } else {
            ok = cJSON_AddItemToObject(ranges, name, r);
        }
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return ls_error_set(err, LS_ERR_NOMEM, "writing %s: out of memory", path);
    FILE *f = fopen(path, "wb");
    if (!f) rc = ls_error_set(err, LS_ERR_IO, "cannot write %s", path);
    else {
        size_t n = strlen(text);
        if (fwrite(text, 1, n, f) != n || fputc('\n', f) == EOF) rc = LS_ERR_IO;
        if (fclose(f) || rc) rc = ls_error_set(err, LS_ERR_IO, "cannot write %s", path);
    }
    free(text);
    return rc;
}

static int bad(ls_error *err, const char *what, const char *why)
{
    return ls_error_set(err, LS_ERR_FORMAT, "%s: %s", what, why);
}

int ls_calibration_parse(const char *bytes, size_t len, const char *what, int64_t unet_bytes,
                         uint64_t unet_hash, ls_calib *c, ls_error *err)
{
    if (len > LS_CALIBRATION_MAX_BYTES) return bad(err, what, "larger than 8 MiB");
    cJSON *root = cJSON_ParseWithLength(bytes, len);
    int rc = LS_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(root, "unet_bytes");
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(root, "unet_fnv1a64");
    const cJSON *ranges = cJSON_GetObjectItemCaseSensitive(root, "ranges");
    if (!cJSON_IsObject(root))
        rc = bad(err, what, "not a JSON object");
    else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, FORMAT_NAME))
        rc = bad(err, what, "not a lipsync int8 calibration (\"format\")");
    else if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        rc = bad(err, what, "unknown version (this lipsync reads version 1)");
    else if (!cJSON_IsNumber(size) || !cJSON_IsString(hash) || !cJSON_IsObject(ranges))
        rc = bad(err, what, "\"unet_bytes\", \"unet_fnv1a64\" or \"ranges\" missing or of the "
                            "wrong type");
    if (!rc) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, unet_hash);
        if (size->valuedouble != (double)unet_bytes || strcmp(hash->valuestring, hex))
            rc = bad(err, what,
                     "measured on another unet.onnx (size or hash differ): run lipsync quantize "
                     "again");
    }
    const cJSON *item;
    const cJSON *list = rc ? NULL : ranges;
    float *lo = NULL, *hi = NULL;
    cJSON_ArrayForEach(item, list)
    {
        const char *name = item->string ? item->string : "";
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(item, "lo");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(item, "hi");
        int n = cJSON_IsArray(l) ? cJSON_GetArraySize(l) : -1;
        if (n < 1 || n > MAX_CHANNELS || !cJSON_IsArray(h) || cJSON_GetArraySize(h) != n) {
            rc = ls_error_set(err, LS_ERR_FORMAT,
                              "%s: range of '%.64s' is not {\"lo\": [...], \"hi\": [...]} with "
                              "1..%d channels each",
                              what, name, MAX_CHANNELS);
            break;
        }
        free(lo);
        free(hi);
        lo = malloc((size_t)n * sizeof *lo);
        hi = malloc((size_t)n * sizeof *hi);
        if (!lo || !hi) {
            rc = ls_error_set(err, LS_ERR_NOMEM, "%s: out of memory", what);
            break;
        }
        int k = 0;
        const cJSON *a, *b = h->child;
        cJSON_ArrayForEach(a, l)
        {
            /* doubles beyond float's range would become infinities */
            if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !(fabs(a->valuedouble) <= 3e38) ||
                !(fabs(b->valuedouble) <= 3e38))
                break;
            lo[k] = (float)a->valuedouble;
            hi[k++] = (float)b->valuedouble;
            b = b->next;
        }
        if (k != n) {
            rc = ls_error_set(err, LS_ERR_FORMAT, "%s: range of '%.64s': channel %d is not a pair "
                                                  "of finite numbers",
                              what, name, k);
            break;
        }
        if (ls_calib_set(c, name, lo, hi, n, err)) {
            ls_error_prefix(err, "%s", what);
            rc = LS_ERR_FORMAT; /* the file does not fit the model */
            if (err) err->code = rc;
            break;
        }
    }
    free(lo);
    free(hi);
    cJSON_Delete(root);
    return rc;
}

int ls_calibration_read(const char *path, const char *unet_path, ls_calib *c, ls_error *err)
{
    int64_t size;
    uint64_t hash;
    int rc = ls_file_fnv1a64(unet_path, &size, &hash, err);
    if (rc) return rc;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ls_error_set(err, LS_ERR_NOT_FOUND,
                            "%s not found: precision int8 needs the model calibrated first "
                            "(lipsync quantize MODEL_DIR --audio SPEECH)",
                            path);
    long flen = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    fclose(f);
    if (flen < 0 || flen > LS_CALIBRATION_MAX_BYTES)
        return ls_error_set(err, LS_ERR_FORMAT, "%s: not a readable file of at most 8 MiB", path);
    uint8_t *bytes;
    size_t len;
    if ((rc = ls_read_file(path, &bytes, &len, err))) return rc;
    rc = ls_calibration_parse((const char *)bytes, len, path, size, hash, c, err);
    free(bytes);
    return rc;
}

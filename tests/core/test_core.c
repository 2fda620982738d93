/* core: errors, .npy round trips and malformed input, statistics, byte buffers. */
#include "support/test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/npy.h"

static void test_error_messages(void **state)
{
    (void)state;
    ls_error err;
    assert_int_equal(ls_error_set(&err, LS_ERR_IO, "cannot open %s", "x.wav"), LS_ERR_IO);
    assert_string_equal(err.msg, "cannot open x.wav");
    ls_error_prefix(&err, "decoding");
    assert_string_equal(err.msg, "decoding: cannot open x.wav");
    assert_int_equal(ls_error_set(NULL, LS_ERR_FORMAT, "ignored"), LS_ERR_FORMAT);
    assert_string_equal(ls_status_name(LS_ERR_FORMAT), "format");
}

static void test_npy_roundtrip(void **state)
{
    (void)state;
    float v[2 * 3 * 4];
    for (int i = 0; i < 24; i++) v[i] = (float)i * 0.5f - 3.0f;
    int64_t shape[3] = {2, 3, 4};
    const char *path = test_write_tmp("rt.npy", "", 0);
    ls_error err;
    assert_int_equal(ls_npy_write_f32(path, v, 3, shape, &err), LS_OK);
    ls_npy a;
    assert_int_equal(ls_npy_read(path, &a, &err), LS_OK);
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.shape[2], 4);
    assert_int_equal(a.count, 24);
    assert_memory_equal(a.data, v, sizeof v);
    ls_npy_free(&a);
}

/* The librosa reference is float64 in Fortran order: check the transpose. */
static void test_npy_fortran_f64(void **state)
{
    (void)state;
    char buf[512];
    const char *p = test_data_path(buf, sizeof buf, "mel/reference_mel_spec_correct.npy");
    ls_npy a;
    ls_error err;
    assert_int_equal(ls_npy_read(p, &a, &err), LS_OK);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 52);
    assert_int_equal(a.shape[1], 80);
    /* Element [0][1] of a Fortran array sits at stored index 52. */
    ls_npy raw;
    assert_int_equal(ls_npy_read(p, &raw, &err), LS_OK);
    assert_true(a.data[1] == raw.data[1]);
    ls_npy_free(&raw);
    ls_npy_free(&a);
}

static void test_npy_malformed(void **state)
{
    (void)state;
    ls_npy a;
    ls_error err;
    assert_int_equal(ls_npy_parse((const uint8_t *)"hello", 5, &a, &err), LS_ERR_FORMAT);
    /* Header claims 6 floats, carries 2. */
    uint8_t bytes[128];
    const char *hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }";
    size_t hl = strlen(hdr);
    memcpy(bytes, "\x93NUMPY\x01\x00", 8);
    bytes[8] = (uint8_t)hl;
    bytes[9] = 0;
    memcpy(bytes + 10, hdr, hl);
    memset(bytes + 10 + hl, 0, 8);
    assert_int_equal(ls_npy_parse(bytes, 10 + hl + 8, &a, &err), LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "truncated"));
    /* Header length beyond the buffer. */
    bytes[8] = 0xff;
    assert_int_equal(ls_npy_parse(bytes, 20, &a, &err), LS_ERR_FORMAT);
    assert_int_equal(ls_npy_read("/nonexistent/x.npy", &a, &err), LS_ERR_IO);
    /* A directory (a model.json naming "" as its UNet) is refused, not sized. */
    uint8_t *data;
    size_t len;
    assert_int_equal(ls_read_file("/", &data, &len, &err), LS_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_null(data);
}

static void test_stats(void **state)
{
    (void)state;
    double v[] = {5, 1, 4, 2, 3};
    assert_true(fabs(ls_median(v, 5) - 3.0) < 1e-12);
    double w[] = {4, 1, 3, 2};
    assert_true(fabs(ls_median(w, 4) - 2.5) < 1e-12);
    double p[100];
    for (int i = 0; i < 100; i++) p[i] = 100 - i;
    assert_true(fabs(ls_percentile(p, 100, 99) - 99.0) < 1e-12);
}

/* Appends and printf grow one buffer, keep it NUL-terminated past len, and free resets it. */
static void test_buf(void **state)
{
    (void)state;
    ls_buf b = {0};
    assert_int_equal(ls_buf_append(&b, "ab", 2), LS_OK);
    assert_int_equal(ls_buf_printf(&b, "-%d-", 42), LS_OK);
    assert_int_equal(b.len, 6);
    assert_string_equal((const char *)b.data, "ab-42-");
    assert_int_equal(ls_buf_append(&b, NULL, 0), LS_OK);
    assert_int_equal(b.len, 6);
    char big[10000];
    memset(big, 'x', sizeof big);
    assert_int_equal(ls_buf_append(&b, big, sizeof big), LS_OK);
    assert_int_equal(b.len, 6 + sizeof big);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], 0);
    assert_memory_equal(b.data, "ab-42-xxx", 9);
    assert_int_equal(ls_buf_reserve(&b, 1 << 20), LS_OK);
    assert_true(b.cap - b.len >= 1 << 20);
    assert_int_equal(b.len, 6 + sizeof big);
    ls_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_npy_roundtrip),
        cmocka_unit_test(test_npy_fortran_f64),
        cmocka_unit_test(test_npy_malformed),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

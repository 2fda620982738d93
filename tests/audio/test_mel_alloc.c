/* The streaming mel allocates nothing per chunk after creation. */
#include "support/test_util.h"

#include <math.h>

#include "audio/mel.h"
#include "support/alloc_count.h"

static void test_stream_allocates_nothing(void **state)
{
    (void)state;
    ls_error err;
    ls_mel *m;
    assert_int_equal(ls_mel_create(&m, &err), LS_OK);
    assert_non_null(m);
    static float x[16000], rows[200 * LS_MEL_BINS];
    for (int i = 0; i < 16000; i++) x[i] = (float)sin(i * 0.05);
    size_t got;
    long before = alloc_count();
    for (int rep = 0; rep < 20; rep++) {
        ls_mel_reset(m);
        for (int off = 0; off < 16000; off += 320)
            assert_int_equal(ls_mel_push(m, x + off, 320, rows, 200, &got, &err), LS_OK);
        assert_int_equal(ls_mel_flush(m, rows, 200, &got, &err), LS_OK);
    }
    assert_int_equal(alloc_count() - before, 0);
    ls_mel_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_stream_allocates_nothing)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

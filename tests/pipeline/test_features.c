/* Audio features per frame, against F built literally as the reference does. */
#include "support/test_util.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/features.h"

static float E[40][LS_FEATURE_DIM];

static const float *get_row(void *ctx, int64_t k)
{
    (void)ctx;
    return E[k];
}

static void test_against_literal_padding(void **state)
{
    (void)state;
    for (int k = 0; k < 40; k++)
        for (int d = 0; d < LS_FEATURE_DIM; d++) E[k][d] = (float)(k * 1000 + d + 1);
    static float F[42][LS_FEATURE_DIM], expect[LS_FEATURE_FLOATS], got[LS_FEATURE_FLOATS];
    const int sizes[] = {1, 2, 3, 7, 16, 40};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int N = sizes[si];
        /* F = [E0, E0, E1, ..., E(N-1), E(N-1)] */
        for (int j = 0; j < N + 2; j++) {
            int src = j == 0 ? 0 : j == N + 1 ? N - 1 : j - 1;
            memcpy(F[j], E[src], sizeof F[0]);
        }
        assert_int_equal(ls_feature_frame_count(N), N + 2);
        for (int i = 0; i < N + 2; i++) {
            for (int r = 0; r < 16; r++) {
                int j = i - 8 + r;
                if (j < 0 || j > N + 1) memset(expect + r * LS_FEATURE_DIM, 0, sizeof F[0]);
                else memcpy(expect + r * LS_FEATURE_DIM, F[j], sizeof F[0]);
            }
            ls_feature_assemble(i, N, get_row, NULL, got);
            if (memcmp(got, expect, sizeof got)) fail_msg("N=%d frame %d differs", N, i);
            /* Every window the frame reads lies in [first, last]. */
            for (int r = 0; r < 16; r++) {
                int64_t k = ls_feature_window_of(i - 8 + r, N);
                if (k >= 0) {
                    assert_true(k >= ls_feature_first_window(i));
                    assert_true(k <= ls_feature_last_window(i, N));
                }
            }
        }
    }
}

/* While N is unknown, a frame whose windows all exist gets the same block. */
static void test_streaming_frames_final_early(void **state)
{
    (void)state;
    static float early[LS_FEATURE_FLOATS], late[LS_FEATURE_FLOATS];
    int N = 30;
    for (int i = 0; i < N + 2; i++) {
        if (ls_feature_last_window(i, -1) > N - 1) continue; /* needs the end */
        ls_feature_assemble(i, -1, get_row, NULL, early);
        ls_feature_assemble(i, N, get_row, NULL, late);
        assert_memory_equal(early, late, sizeof early);
    }
    assert_int_equal(ls_feature_last_window(5, -1), 11);
    assert_int_equal(ls_feature_last_window(29, 30), 29);
    assert_int_equal(ls_feature_window_of(-1, 30), -1);
    assert_int_equal(ls_feature_window_of(31, 30), 29);
    assert_int_equal(ls_feature_window_of(32, 30), -1);
    assert_int_equal(ls_feature_window_of(32, -1), 31);
    assert_int_equal(ls_feature_frame_count(0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_literal_padding),
        cmocka_unit_test(test_streaming_frames_final_early),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

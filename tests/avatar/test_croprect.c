/* Crop rectangles from .lms landmarks: the reference fixtures, the CLI, malformed files. */
#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avatar/croprect.h"

/* Checks every "frame x1 y1 x2 y2" line of crop_rects.txt in folder (tests/data or shared). */
static int check_folder(const char *folder)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/crop_rects.txt", folder);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        int frame;
        ls_rect want;
        if (line[0] == '#' ||
            sscanf(line, "%d %d %d %d %d", &frame, &want.x1, &want.y1, &want.x2, &want.y2) != 5)
            continue;
        snprintf(path, sizeof path, "%s/%d.lms", folder, frame);
        ls_rect got;
        ls_error err;
        if (ls_croprect_read(path, &got, &err) != LS_OK) fail_msg("%s", err.msg);
        assert_memory_equal(&got, &want, sizeof got);
        checked++;
    }
    fclose(f);
    return checked;
}

static void test_reference_fixtures(void **state)
{
    (void)state;
    char buf[512];
    int n = check_folder(test_data_path(buf, sizeof buf, "landmarks"));
    assert_int_equal(n, 5);
    const char *shared = test_shared_path(buf, sizeof buf, "fixtures/landmarks");
    if (shared) print_message("shared fixtures: %d rectangles match\n", check_folder(shared));
}

/* `lipsync croprect` prints the same rectangle. */
static void test_cli(void **state)
{
    (void)state;
    const char *bin = getenv("LS_BIN");
    assert_non_null(bin);
    char cmd[1024], buf[512], out[128] = {0};
    snprintf(cmd, sizeof cmd, "'%s' croprect '%s'", bin,
             test_data_path(buf, sizeof buf, "landmarks/100.lms"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof out, p));
    assert_int_equal(pclose(p), 0);
    assert_string_equal(out, "552 313 734 495\n");
    snprintf(cmd, sizeof cmd, "'%s' croprect /nonexistent.lms 2>/dev/null", bin);
    assert_int_not_equal(system(cmd), 0);
}

static int parse(const char *text, ls_rect *r, ls_error *err)
{
    return ls_croprect_parse(text, strlen(text), "t.lms", r, err);
}

static void test_malformed(void **state)
{
    (void)state;
    char *text = malloc(110 * 32 + 64);
    text[0] = 0;
    for (int k = 0; k < 110; k++) sprintf(text + strlen(text), "%d.5 %d.25\n", 100 + k, 200 + k);
    ls_rect r;
    ls_error err;
    assert_int_equal(parse(text, &r, &err), LS_OK);
    assert_int_equal(r.x1, 101);
    assert_int_equal(r.x2, 131);
    assert_int_equal(r.y1, 252);
    assert_int_equal(r.y2, 282);
    /* Windows line ends and blank trailing lines are fine. */
    char *crlf = malloc(110 * 40 + 64);
    crlf[0] = 0;
    for (int k = 0; k < 110; k++) sprintf(crlf + strlen(crlf), "%d %d\r\n", k, 2 * k);
    strcat(crlf, "\n\n");
    assert_int_equal(parse(crlf, &r, &err), LS_OK);
    assert_int_equal(r.y1, 104);
    /* 109 points, 111 points. */
    char *cut = strdup(text);
    *strrchr(cut, '\n') = 0;
    *(strrchr(cut, '\n') + 1) = 0;
    assert_int_equal(parse(cut, &r, &err), LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "109 points, expected 110"));
    char *more = malloc(strlen(text) + 16);
    sprintf(more, "%s1 2\n", text);
    assert_int_equal(parse(more, &r, &err), LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "more than 110"));
    /* Bad lines name the line. */
    char *bad = strdup(text);
    memcpy(strchr(bad, '\n') + 1, "x", 1);
    assert_int_equal(parse(bad, &r, &err), LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "line 2"));
    const char *cases[] = {"", "1\n", "1 2 3\n", "nan 4\n", "1e300 2\n", "\x01\x02", "1,2\n"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_int_equal(parse(cases[i], &r, &err), LS_ERR_FORMAT);
    assert_int_equal(ls_croprect_read("/nonexistent/x.lms", &r, &err), LS_ERR_IO);
    free(text);
    free(crlf);
    free(cut);
    free(more);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_fixtures),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

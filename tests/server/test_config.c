/* test_config.c - serve settings: file, environment and flags, bad values. */
#include <stdio.h>
#include <string.h>

#include "server/config.h"
#include "support/test_util.h"

static void test_defaults_and_set(void **state)
{
    (void)state;
    ls_server_config c;
    ls_server_config_defaults(&c);
    assert_string_equal(c.host, "127.0.0.1");
    assert_true(c.max_sessions > 0 && c.max_models > 0 && c.max_body_bytes > 0);
    ls_error err = {0};
    assert_int_equal(ls_server_config_set(&c, "port", "9001", "flag", &err), LS_OK);
    assert_int_equal(c.port, 9001);
    assert_int_equal(ls_server_config_set(&c, "port", "70000", "flag", &err), LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "port"));
    assert_int_equal(ls_server_config_set(&c, "port", "12x", "flag", &err), LS_ERR_FORMAT);
    assert_int_equal(ls_server_config_set(&c, "max_sessions", "2.5", "flag", &err),
                     LS_ERR_FORMAT);
    assert_int_equal(ls_server_config_set(&c, "nosuch", "1", "flag", &err), LS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nosuch"));
    assert_int_equal(ls_server_config_set(&c, "silence_rms", "0.01", "flag", &err), LS_OK);
    assert_true(c.silence_rms > 0.0099 && c.silence_rms < 0.0101);
    assert_int_equal(ls_server_config_set(&c, "max_body_bytes", "5000000000", "f", &err), LS_OK);
    assert_true(c.max_body_bytes == 5000000000ll);
    assert_true(c.max_body_bytes_total == 256ll << 20);
    assert_int_equal(ls_server_config_set(&c, "max_body_bytes_total", "0", "f", &err),
                     LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "max_body_bytes_total"));
    char big[LS_CONFIG_STR_MAX + 8];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(ls_server_config_set(&c, "token", big, "f", &err), LS_ERR_RANGE);
    assert_string_equal(c.precision, "fp32");
    assert_int_equal(ls_server_config_set(&c, "precision", "bf16", "flag", &err), LS_OK);
    assert_string_equal(c.precision, "bf16");
    assert_int_equal(ls_server_config_set(&c, "precision", "int4", "flag", &err),
                     LS_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "int4"));
    assert_string_equal(c.precision, "bf16"); /* unchanged by the refused value */
    assert_int_equal(ls_server_config_set(&c, "precision", "int8", "flag", &err), LS_OK);
    assert_string_equal(c.precision, "int8");
    /* ICE servers: a URL of the right scheme or nothing. */
    assert_int_equal(ls_server_config_set(&c, "stun_server", "stun.example.org:3478", "f", &err),
                     LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "stun://"));
    assert_string_equal(c.stun_server, "");
    assert_int_equal(ls_server_config_set(&c, "stun_server", "stun://127.0.0.1:3478", "f", &err),
                     LS_OK);
    assert_string_equal(c.stun_server, "stun://127.0.0.1:3478");
    assert_int_equal(ls_server_config_set(&c, "turn_server", "stun://h:1", "f", &err),
                     LS_ERR_FORMAT);
    assert_int_equal(ls_server_config_set(&c, "turn_server", "turns://u:p@h:5349", "f", &err),
                     LS_OK);
    assert_int_equal(ls_server_config_set(&c, "stun_server", "", "f", &err), LS_OK);
    assert_string_equal(c.stun_server, "");
}

static void test_file(void **state)
{
    (void)state;
    ls_server_config c;
    ls_server_config_defaults(&c);
    ls_error err = {0};
    const char *ok = "{\"port\": 0, \"models_root\": \"/m\", \"max_models\": 3,"
                     " \"token\": \"s3cret\", \"verbose\": true}";
    const char *p = test_write_tmp("ok.json", ok, strlen(ok));
    assert_int_equal(ls_server_config_load_file(&c, p, &err), LS_OK);
    assert_int_equal(c.port, 0);
    assert_string_equal(c.models_root, "/m");
    assert_int_equal(c.max_models, 3);
    assert_string_equal(c.token, "s3cret");
    assert_int_equal(c.verbose, 1);

    const char *bad[] = {"{\"port\": ", "[1,2]", "{\"port\": \"80\"}", "{\"host\": 5}",
                         "{\"typo\": 1}", "{\"max_models\": 0}", "", NULL};
    for (int i = 0; bad[i]; i++) {
        p = test_write_tmp("bad.json", bad[i], strlen(bad[i]));
        err.msg[0] = '\0';
        assert_true(ls_server_config_load_file(&c, p, &err) < 0);
        assert_non_null(strstr(err.msg, "bad.json"));
    }
    assert_int_equal(ls_server_config_load_file(&c, "/nonexistent.json", &err), LS_ERR_IO);
}

static void test_env(void **state)
{
    (void)state;
    ls_server_config c;
    ls_server_config_defaults(&c);
    ls_error err = {0};
    char *env[] = {"HOME=/root", "LS_TEST_DATA=/x", "LS_MAX_SESSIONS=5", "LS_TOKEN=abc",
                   "LS_MAX_BODY_BYTES_TOTAL=1048576", NULL};
    assert_int_equal(ls_server_config_apply_env(&c, env, &err), LS_OK);
    assert_int_equal(c.max_sessions, 5);
    assert_true(c.max_body_bytes_total == 1048576);
    assert_int_equal(c.max_jobs, 0); /* the default: workers - 1, decided by the server */
    char *jobs[] = {"LS_MAX_JOBS=3", NULL};
    assert_int_equal(ls_server_config_apply_env(&c, jobs, &err), LS_OK);
    assert_int_equal(c.max_jobs, 3);
    char *negative[] = {"LS_MAX_JOBS=-1", NULL};
    assert_int_equal(ls_server_config_apply_env(&c, negative, &err), LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "max_jobs"));
    assert_string_equal(c.token, "abc");
    char *bad[] = {"LS_PORT=http", NULL};
    assert_int_equal(ls_server_config_apply_env(&c, bad, &err), LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "LS_PORT"));
    char help[4096];
    ls_server_config_describe(help, sizeof help);
    assert_non_null(strstr(help, "--max-sessions"));
}

/* web_root: "" (none) or a folder with index.html; anything else is refused. */
static void test_web_root_check(void **state)
{
    (void)state;
    ls_server_config c;
    ls_server_config_defaults(&c);
    ls_error err = {0};
    assert_int_equal(ls_server_config_check_web_root(&c, &err), LS_OK); /* "": no client */
    snprintf(c.web_root, sizeof c.web_root, "/nonexistent/web");
    assert_int_equal(ls_server_config_check_web_root(&c, &err), LS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/web is not a directory"));
    snprintf(c.web_root, sizeof c.web_root, "%s", test_tmp_dir());
    char stale[LS_CONFIG_STR_MAX + 16];
    snprintf(stale, sizeof stale, "%s/index.html", c.web_root);
    remove(stale); /* a scratch folder of an earlier run with this pid */
    assert_int_equal(ls_server_config_check_web_root(&c, &err), LS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "has no index.html"));
    test_write_tmp("index.html", "<html></html>", 13);
    assert_int_equal(ls_server_config_check_web_root(&c, &err), LS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_set),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_web_root_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The route table's match (server/router.h) and the server's own table
 * (server/http.h): one table gives the route, 404, and 405 with Allow. */
#include <stdio.h>
#include <string.h>

#include "server/http.h"
#include "server/router.h"
#include "support/test_util.h"

typedef struct route {
    ls_route route;
    int id;
} route;

static const route table[] = {
    {{"GET", "/health"}, 1},
    {{"GET", "/v1/models"}, 2},
    {{"POST", "/v1/models/{}/load"}, 3},
    {{"DELETE", "/v1/models/{}"}, 4},
    {{"POST", "/v1/render"}, 5},
};
#define N (sizeof table / sizeof table[0])

static void find(const char *method, const char *path, char *param, size_t cap,
                 ls_route_match *m)
{
    ls_route_find(table, N, sizeof table[0], method, path, param, cap, m);
}

static void test_match_and_param(void **state)
{
    (void)state;
    char p[8];
    ls_route_match m;
    find("GET", "/health", p, sizeof p, &m);
    assert_int_equal(m.result, LS_ROUTE_MATCH);
    assert_int_equal(table[m.index].id, 1);
    assert_string_equal(p, "");
    find("POST", "/v1/models/demo/load", p, sizeof p, &m);
    assert_int_equal(m.result, LS_ROUTE_MATCH);
    assert_int_equal(table[m.index].id, 3);
    assert_string_equal(p, "demo");
    find("DELETE", "/v1/models/demo", p, sizeof p, &m);
    assert_int_equal(table[m.index].id, 4);
    find("DELETE", "/v1/models/1234567", p, sizeof p, &m); /* 7 bytes: the most that fit */
    assert_int_equal(m.result, LS_ROUTE_MATCH);
    assert_string_equal(p, "1234567");
    find("DELETE", "/v1/models/12345678", p, sizeof p, &m);
    assert_int_equal(m.result, LS_ROUTE_PARAM_TOO_LONG);
    assert_int_equal(table[m.index].id, 4);
}

static void test_not_found_and_bad_method(void **state)
{
    (void)state;
    char p[8];
    ls_route_match m;
    const char *missing[] = {"/nope", "/v1/models/", "/v1/models/a/b", "/healthz", "/v1/render/",
                             "/v1/models//load"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        find("GET", missing[i], p, sizeof p, &m);
        if (m.result != LS_ROUTE_NOT_FOUND) fail_msg("%s: %d", missing[i], m.result);
    }
    find("POST", "/health", p, sizeof p, &m);
    assert_int_equal(m.result, LS_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "GET");
    find("GET", "/v1/models/demo/load", p, sizeof p, &m);
    assert_int_equal(m.result, LS_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "POST");
    /* A parameter too long with another method is a 405, not a 400. */
    find("GET", "/v1/models/12345678", p, sizeof p, &m);
    assert_int_equal(m.result, LS_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "DELETE");
}

/* Two methods on one path: both in Allow, in table order. */
static void test_allow_lists_each_method_once(void **state)
{
    (void)state;
    static const route t2[] = {
        {{"GET", "/x"}, 1}, {{"POST", "/x"}, 2}, {{"GET", "/x"}, 3}, {{"DELETE", "/{}"}, 4}};
    ls_route_match m;
    char p[8];
    ls_route_find(t2, 4, sizeof t2[0], "PUT", "/x", p, sizeof p, &m);
    assert_int_equal(m.result, LS_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "GET, POST, DELETE");
    ls_route_find(t2, 4, sizeof t2[0], "POST", "/x", p, sizeof p, &m);
    assert_int_equal(m.result, LS_ROUTE_MATCH);
    assert_int_equal(t2[m.index].id, 2);
    assert_string_equal(m.allow, "");
}

/* The server's table: the job routes as the fuzz target sees them. */
static void test_server_job_routes(void **state)
{
    (void)state;
    char id[LS_MODEL_ID_MAX + 1], long_id[LS_MODEL_ID_MAX + 32];
    int too_long;
    assert_int_equal(ls_http_job_route("POST", "/v1/render", id, &too_long), LS_JOB_RENDER);
    assert_int_equal(ls_http_job_route("POST", "/v1/batch", id, &too_long), LS_JOB_BATCH);
    assert_int_equal(ls_http_job_route("POST", "/v1/models/demo/load", id, &too_long),
                     LS_JOB_LOAD);
    assert_string_equal(id, "demo");
    assert_int_equal(ls_http_job_route("DELETE", "/v1/models/demo", id, &too_long),
                     LS_JOB_UNLOAD);
    assert_int_equal(ls_http_job_route("GET", "/v1/render", id, &too_long), LS_JOB_NONE);
    assert_int_equal(too_long, 0);
    assert_int_equal(ls_http_job_route("GET", "/health", id, &too_long), LS_JOB_NONE);
    snprintf(long_id, sizeof long_id, "/v1/models/%0*d", LS_MODEL_ID_MAX + 1, 0);
    assert_int_equal(ls_http_job_route("DELETE", long_id, id, &too_long), LS_JOB_NONE);
    assert_int_equal(too_long, 1);
    assert_int_equal(ls_http_job_route("GET", long_id, id, &too_long), LS_JOB_NONE);
    assert_int_equal(too_long, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_and_param),
        cmocka_unit_test(test_not_found_and_bad_method),
        cmocka_unit_test(test_allow_lists_each_method_once),
        cmocka_unit_test(test_server_job_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

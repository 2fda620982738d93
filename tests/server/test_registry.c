/* test_registry.c - the model registry's LRU, refcount and concurrency rules,
 * with a small loader that reads a model.json from real directories. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/registry.h"
#include "support/test_util.h"

/* The test's model: what the loader read, and a reference count. */
struct ls_model {
    atomic_int refs;
    char dir[512];
    char name[64];
    size_t bytes;
};

typedef struct loader_ctx {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int gate_closed;      /* loads of "slow" wait while set */
    int slow_waiting;     /* a load of "slow" is inside the loader */
    atomic_int loads;
    atomic_int frees;
} loader_ctx;

static int test_load(void *ctx, const char *dir, ls_model **out, ls_error *err)
{
    loader_ctx *lc = ctx;
    atomic_fetch_add(&lc->loads, 1);
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    if (!strcmp(base, "slow")) {
        pthread_mutex_lock(&lc->lock);
        lc->slow_waiting = 1;
        pthread_cond_broadcast(&lc->cond);
        while (lc->gate_closed) pthread_cond_wait(&lc->cond, &lc->lock);
        lc->slow_waiting = 0;
        pthread_mutex_unlock(&lc->lock);
    }
    char path[600];
    snprintf(path, sizeof path, "%s/model.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return ls_error_set(err, LS_ERR_IO, "no %s", path);
    char text[512];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *j = cJSON_Parse(text);
    cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    cJSON *bytes = cJSON_GetObjectItemCaseSensitive(j, "bytes");
    if (!cJSON_IsString(name) || !cJSON_IsNumber(bytes)) {
        cJSON_Delete(j);
        return ls_error_set(err, LS_ERR_FORMAT, "%s: wants name and bytes", path);
    }
    ls_model *m = calloc(1, sizeof *m);
    atomic_init(&m->refs, 1);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    snprintf(m->name, sizeof m->name, "%s", name->valuestring);
    m->bytes = (size_t)bytes->valuedouble;
    cJSON_Delete(j);
    *out = m;
    return LS_OK;
}

static loader_ctx *g_ctx; /* release() has no ctx parameter: counts go here */

static ls_model *test_retain(ls_model *m)
{
    atomic_fetch_add(&m->refs, 1);
    return m;
}

static void test_release(ls_model *m)
{
    if (atomic_fetch_sub(&m->refs, 1) == 1) {
        atomic_fetch_add(&g_ctx->frees, 1);
        free(m);
    }
}

static void test_info(const ls_model *m, ls_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->name = m->name;
    info->dir = m->dir;
    info->fps = 25;
    info->width = 64;
    info->height = 48;
    info->n_frames = 10;
    info->batch = 8;
    info->memory_bytes = m->bytes;
}

static char g_root[512];

static void write_model(const char *id, const char *json)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", g_root, id);
    mkdir(path, 0755);
    if (!json) return;
    snprintf(path, sizeof path, "%s/%s/model.json", g_root, id);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
}

static int setup(void **state)
{
    static loader_ctx lc;
    memset(&lc, 0, sizeof lc);
    pthread_mutex_init(&lc.lock, NULL);
    pthread_cond_init(&lc.cond, NULL);
    g_ctx = &lc;
    static int run;
    snprintf(g_root, sizeof g_root, "%s/models%d", test_tmp_dir(), run++);
    mkdir(g_root, 0755);
    write_model("a", "{\"name\":\"alpha\",\"bytes\":100}");
    write_model("b", "{\"name\":\"beta\",\"bytes\":200}");
    write_model("c", "{\"name\":\"gamma\",\"bytes\":300}");
    write_model("slow", "{\"name\":\"slow\",\"bytes\":1}");
    write_model("broken", "{\"name\":1}");
    char path[700];
    snprintf(path, sizeof path, "%s/not_a_dir", g_root);
    FILE *f = fopen(path, "wb");
    fclose(f);
    write_model(".hidden", "{\"name\":\"h\",\"bytes\":1}");
    *state = &lc;
    return 0;
}

static ls_registry *make(int max_models)
{
    ls_registry_options o = {g_root, max_models,
                             {test_load, test_retain, test_release, test_info, g_ctx}};
    ls_registry *r;
    ls_error err = {0};
    assert_int_equal(ls_registry_create(&o, &r, &err), LS_OK);
    return r;
}

static ls_model_state state_of(ls_registry *r, const char *id)
{
    ls_registry_entry e;
    assert_int_equal(ls_registry_state(r, id, &e, NULL), LS_OK);
    return e.state;
}

static void test_bad_ids_and_unknown(void **state)
{
    (void)state;
    ls_registry *r = make(2);
    ls_model *m;
    ls_error err = {0};
    const char *bad[] = {"", "../a", "a/b", ".hidden", "a b", "..", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(ls_registry_acquire(r, bad[i], &m, &err), LS_ERR_INVALID_ARG);
    assert_int_equal(ls_registry_acquire(r, "nope", &m, &err), LS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nope"));
    assert_null(strstr(err.msg, g_root)); /* the server's folders are not the client's to see */
    assert_int_equal(ls_registry_unload(r, "a", &err), LS_ERR_NOT_FOUND);
    assert_int_equal(atomic_load(&g_ctx->loads), 0);
    ls_registry_destroy(r);

    ls_registry_options o = {"/nonexistent/models", 1,
                             {test_load, test_retain, test_release, test_info, g_ctx}};
    assert_int_equal(ls_registry_create(&o, &r, &err), LS_ERR_NOT_FOUND);
    o.root = g_root;
    o.ops.load = NULL;
    assert_int_equal(ls_registry_create(&o, &r, &err), LS_ERR_INVALID_ARG);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    ls_registry *r = make(2);
    ls_error err = {0};
    assert_int_equal(ls_registry_load(r, "a", &err), LS_OK);
    assert_int_equal(ls_registry_load(r, "b", &err), LS_OK);
    assert_int_equal(ls_registry_load(r, "a", &err), LS_OK); /* a is now the most recent */
    assert_int_equal(atomic_load(&g_ctx->loads), 2);
    assert_int_equal(ls_registry_load(r, "c", &err), LS_OK);
    assert_int_equal(state_of(r, "a"), LS_MODEL_RESIDENT);
    assert_int_equal(state_of(r, "b"), LS_MODEL_AVAILABLE);
    assert_int_equal(state_of(r, "c"), LS_MODEL_RESIDENT);
    assert_int_equal(atomic_load(&g_ctx->frees), 1);
    ls_registry_stats st;
    ls_registry_get_stats(r, &st);
    assert_int_equal(st.resident, 2);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.loads, 3);
    assert_int_equal(st.resident_bytes, 400);

    ls_registry_entry list[16];
    int n = ls_registry_list(r, list, 16);
    assert_int_equal(n, 5); /* a b broken c slow: no file, no hidden dir */
    const char *want[] = {"a", "b", "broken", "c", "slow"};
    for (int i = 0; i < n; i++) assert_string_equal(list[i].id, want[i]);
    assert_string_equal(list[0].name, "alpha");
    assert_int_equal(list[0].memory_bytes, 100);
    assert_int_equal(list[1].state, LS_MODEL_AVAILABLE);

    /* Reloading the evicted one evicts the least recent of the others (a). */
    assert_int_equal(ls_registry_load(r, "b", &err), LS_OK);
    assert_int_equal(state_of(r, "a"), LS_MODEL_AVAILABLE);
    ls_registry_destroy(r);
    assert_int_equal(atomic_load(&g_ctx->frees), atomic_load(&g_ctx->loads));
}

static void test_in_use_never_freed(void **state)
{
    (void)state;
    ls_registry *r = make(1);
    ls_error err = {0};
    ls_model *a, *b;
    assert_int_equal(ls_registry_acquire(r, "a", &a, &err), LS_OK);
    /* Loading b evicts a (the only other), but a is still in use. */
    assert_int_equal(ls_registry_acquire(r, "b", &b, &err), LS_OK);
    assert_int_equal(state_of(r, "a"), LS_MODEL_AVAILABLE);
    assert_int_equal(atomic_load(&g_ctx->frees), 0);
    assert_string_equal(a->name, "alpha"); /* still valid memory (ASan checks) */
    ls_registry_release(r, a);
    assert_int_equal(atomic_load(&g_ctx->frees), 1);

    /* Unloading a model in use drops only the registry's reference. */
    ls_registry_entry e;
    assert_int_equal(ls_registry_state(r, "b", &e, NULL), LS_OK);
    assert_int_equal(e.users, 1);
    assert_int_equal(ls_registry_unload(r, "b", &err), LS_OK);
    assert_int_equal(atomic_load(&g_ctx->frees), 1);
    assert_string_equal(b->name, "beta");
    ls_registry_release(r, b);
    assert_int_equal(atomic_load(&g_ctx->frees), 2);
    assert_int_equal(ls_registry_unload(r, "b", &err), LS_ERR_NOT_FOUND);
    ls_registry_destroy(r);
}

static void test_prefers_evicting_unused(void **state)
{
    (void)state;
    ls_registry *r = make(2);
    ls_error err = {0};
    ls_model *a;
    assert_int_equal(ls_registry_acquire(r, "a", &a, &err), LS_OK); /* oldest, in use */
    assert_int_equal(ls_registry_load(r, "b", &err), LS_OK);
    assert_int_equal(ls_registry_load(r, "c", &err), LS_OK);
    assert_int_equal(state_of(r, "a"), LS_MODEL_RESIDENT);
    assert_int_equal(state_of(r, "b"), LS_MODEL_AVAILABLE);
    ls_registry_release(r, a);
    ls_registry_destroy(r);
    assert_int_equal(atomic_load(&g_ctx->frees), atomic_load(&g_ctx->loads));
}

static void test_failed_load_then_retry(void **state)
{
    (void)state;
    ls_registry *r = make(2);
    ls_error err = {0};
    ls_model *m;
    assert_int_equal(ls_registry_acquire(r, "broken", &m, &err), LS_ERR_FORMAT);
    assert_null(m);
    assert_non_null(strstr(err.msg, "broken"));
    /* The loader's message names the file; the models root is cut from it. */
    assert_null(strstr(err.msg, g_root));
    assert_non_null(strstr(err.msg, "broken/model.json: wants name"));
    ls_registry_entry e;
    assert_int_equal(ls_registry_state(r, "broken", &e, NULL), LS_OK);
    assert_int_equal(e.state, LS_MODEL_FAILED);
    assert_non_null(strstr(e.error, "wants name"));
    assert_null(strstr(e.error, g_root));
    write_model("broken", "{\"name\":\"fixed\",\"bytes\":5}");
    assert_int_equal(ls_registry_acquire(r, "broken", &m, &err), LS_OK);
    assert_string_equal(m->name, "fixed");
    ls_registry_release(r, m);
    ls_registry_destroy(r);
    write_model("broken", "{\"name\":1}");
}

typedef struct acquirer {
    ls_registry *r;
    const char *id;
    ls_model *m;
    int rc;
} acquirer;

static void *acquire_thread(void *arg)
{
    acquirer *a = arg;
    a->rc = ls_registry_acquire(a->r, a->id, &a->m, NULL);
    return NULL;
}

static void test_loading_blocks_only_its_model(void **state)
{
    loader_ctx *lc = *state;
    ls_registry *r = make(3);
    lc->gate_closed = 1;
    acquirer s1 = {r, "slow", NULL, -1}, s2 = {r, "slow", NULL, -1};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, acquire_thread, &s1);
    pthread_mutex_lock(&lc->lock);
    while (!lc->slow_waiting) pthread_cond_wait(&lc->cond, &lc->lock);
    pthread_mutex_unlock(&lc->lock);
    assert_int_equal(state_of(r, "slow"), LS_MODEL_LOADING);

    /* Another model loads and serves while "slow" is stuck in its loader. */
    ls_model *a;
    assert_int_equal(ls_registry_acquire(r, "a", &a, NULL), LS_OK);
    ls_registry_release(r, a);
    ls_registry_entry list[8];
    assert_int_equal(ls_registry_list(r, list, 8), 5);
    ls_error err = {0};
    assert_int_equal(ls_registry_unload(r, "slow", &err), LS_ERR_BUSY);

    /* A second request for "slow" waits for the same load. */
    pthread_create(&t2, NULL, acquire_thread, &s2);
    pthread_mutex_lock(&lc->lock);
    lc->gate_closed = 0;
    pthread_cond_broadcast(&lc->cond);
    pthread_mutex_unlock(&lc->lock);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(s1.rc, LS_OK);
    assert_int_equal(s2.rc, LS_OK);
    assert_ptr_equal(s1.m, s2.m);
    assert_int_equal(atomic_load(&lc->loads), 2); /* a once, slow once */
    assert_int_equal(atomic_load(&s1.m->refs), 3); /* registry + two users */
    ls_registry_release(r, s1.m);
    ls_registry_release(r, s2.m);
    ls_registry_destroy(r);
    assert_int_equal(atomic_load(&lc->frees), 2);
}

typedef struct churn_arg {
    ls_registry *r;
    uint64_t seed;
    int failures;
} churn_arg;

static void *churn_thread(void *arg)
{
    churn_arg *c = arg;
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 200; i++) {
        ls_model *m;
        const char *id = ids[test_rand(&c->seed) % 3];
        if (ls_registry_acquire(c->r, id, &m, NULL) != LS_OK) {
            c->failures++;
            continue;
        }
        /* The model must stay whole while held, whatever others evict. */
        if (strstr(m->dir, id) == NULL) c->failures++;
        if (test_rand(&c->seed) % 8 == 0) ls_registry_unload(c->r, id, NULL);
        ls_registry_release(c->r, m);
    }
    return NULL;
}

static void test_concurrent_churn(void **state)
{
    loader_ctx *lc = *state;
    ls_registry *r = make(1);
    pthread_t t[4];
    churn_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (churn_arg){r, (uint64_t)i + 1, 0};
        pthread_create(&t[i], NULL, churn_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    ls_registry_stats st;
    ls_registry_get_stats(r, &st);
    assert_true(st.resident <= 1);
    ls_registry_destroy(r);
    assert_int_equal(atomic_load(&lc->frees), atomic_load(&lc->loads));
}

/* A folder without model.json is not a model: not listed, not loaded (an
 * error that says so, 404 on the server), and the survey a server warns
 * with names it; an empty root surveys as nothing. */
static void test_folders_that_are_not_models(void **state)
{
    (void)state;
    write_model("empty", NULL);
    ls_registry *r = make(2);
    ls_model *m;
    ls_error err = {0};
    assert_int_equal(ls_registry_acquire(r, "empty", &m, &err), LS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "'empty' is not a model directory"));
    ls_registry_entry st;
    assert_int_equal(ls_registry_state(r, "empty", &st, &err), LS_ERR_NOT_FOUND);
    assert_int_equal(atomic_load(&g_ctx->loads), 0);
    ls_registry_entry e[16];
    int n = ls_registry_list(r, e, 16);
    assert_int_equal(n, 5); /* a, b, broken, c, slow */
    for (int i = 0; i < n; i++) assert_string_not_equal(e[i].id, "empty");
    char others[256];
    assert_int_equal(ls_registry_survey(r, others, sizeof others), 5);
    assert_non_null(strstr(others, "empty/ (no model.json)"));
    assert_non_null(strstr(others, "not_a_dir"));
    assert_null(strstr(others, "hidden"));
    char tiny[12];
    assert_int_equal(ls_registry_survey(r, tiny, sizeof tiny), 5); /* cut, still a string */
    assert_true(strlen(tiny) < sizeof tiny);
    ls_registry_destroy(r);

    char root[600];
    snprintf(root, sizeof root, "%s-empty", g_root);
    mkdir(root, 0755);
    ls_registry_options o = {root, 1, {test_load, test_retain, test_release, test_info, g_ctx}};
    assert_int_equal(ls_registry_create(&o, &r, &err), LS_OK);
    assert_int_equal(ls_registry_survey(r, others, sizeof others), 0);
    assert_string_equal(others, "");
    ls_registry_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_bad_ids_and_unknown, setup),
        cmocka_unit_test_setup(test_lru_eviction, setup),
        cmocka_unit_test_setup(test_in_use_never_freed, setup),
        cmocka_unit_test_setup(test_prefers_evicting_unused, setup),
        cmocka_unit_test_setup(test_failed_load_then_retry, setup),
        cmocka_unit_test_setup(test_loading_blocks_only_its_model, setup),
        cmocka_unit_test_setup(test_concurrent_churn, setup),
        cmocka_unit_test_setup(test_folders_that_are_not_models, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

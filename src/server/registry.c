#include "server/registry.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"

typedef struct entry {
    char id[LS_MODEL_ID_MAX + 1];
    ls_model_state state;
    ls_model *model;      /* the registry's reference while resident */
    int users;
    uint64_t used_tick;   /* LRU order */
    double used_at;       /* ls_now() of the last acquire */
    uint64_t load_gen;    /* bumped at the end of every load attempt */
    ls_error error;       /* last load failure */
} entry;

struct ls_registry {
    char *root;
    int max_models;
    ls_registry_ops ops;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a load finished */
    entry **entries;
    int n_entries, cap_entries;
    uint64_t tick;
    int64_t loads, load_failures, evictions;
};

int ls_registry_valid_id(const char *id)
{
    if (!id || !id[0] || id[0] == '.') return 0;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok || n >= LS_MODEL_ID_MAX) return 0;
    }
    return 1;
}

int ls_registry_create(const ls_registry_options *opt, ls_registry **out, ls_error *err)
{
    *out = NULL;
    if (!opt || !opt->root || opt->max_models < 1 || !opt->ops.load || !opt->ops.retain ||
        !opt->ops.release || !opt->ops.get_info)
        return ls_error_set(err, LS_ERR_INVALID_ARG,
                            "registry: needs a root, max_models >= 1 and all loader functions");
    struct stat st;
    if (stat(opt->root, &st) != 0 || !S_ISDIR(st.st_mode))
        return ls_error_set(err, LS_ERR_NOT_FOUND, "models root %s is not a directory", opt->root);
    ls_registry *r = calloc(1, sizeof *r);
    if (!r || !(r->root = strdup(opt->root))) {
        free(r);
        return ls_error_set(err, LS_ERR_NOMEM, "registry: out of memory");
    }
    r->max_models = opt->max_models;
    r->ops = opt->ops;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
    *out = r;
    return LS_OK;
}

void ls_registry_destroy(ls_registry *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_entries; i++) {
        if (r->entries[i]->model) r->ops.release(r->entries[i]->model);
        free(r->entries[i]);
    }
    free(r->entries);
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->lock);
    free(r->root);
    free(r);
}

/* What the root's entry `id` is: a model directory (a folder with a
 * model.json), another folder, or nothing we use. buf gets its path. */
enum { ENTRY_NONE, ENTRY_MODEL, ENTRY_FOLDER };
static int entry_kind(const ls_registry *r, const char *id, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", r->root, id);
    if (n < 0 || (size_t)n + sizeof "/model.json" > cap) return ENTRY_NONE;
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return ENTRY_NONE;
    char json[4096 + 16];
    snprintf(json, sizeof json, "%s/model.json", buf);
    return stat(json, &st) == 0 && S_ISREG(st.st_mode) ? ENTRY_MODEL : ENTRY_FOLDER;
}

static int model_dir(const ls_registry *r, const char *id, char *buf, size_t cap)
{
    return entry_kind(r, id, buf, cap) == ENTRY_MODEL;
}

/* Why id names no model, from its entry_kind: a folder without model.json,
 * or no such folder. */
static int not_a_model(const char *id, int kind, ls_error *err)
{
    if (kind == ENTRY_FOLDER)
        return ls_error_set(err, LS_ERR_NOT_FOUND,
                            "'%s' is not a model directory (it has no model.json)", id);
    return ls_error_set(err, LS_ERR_NOT_FOUND, "unknown model '%s' (no such folder in the models root)",
                        id);
}

/* Clients see errors, and the server's folders are not theirs to know: the
 * models root is cut from a loader's message ("ID/model.json: ..."), where
 * it starts a path (ROOT/ after the start, a space, a quote or a bracket). */
static void hide_root(const ls_registry *r, char *msg)
{
    size_t n = strlen(r->root);
    for (char *p = msg; n && (p = strstr(p, r->root));) {
        if (p[n] == '/' && (p == msg || strchr(" '\"(", p[-1])))
            memmove(p, p + n + 1, strlen(p + n + 1) + 1);
        else
            p++;
    }
}

/* Caller holds the lock. */
static entry *find_entry(ls_registry *r, const char *id)
{
    for (int i = 0; i < r->n_entries; i++)
        if (!strcmp(r->entries[i]->id, id)) return r->entries[i];
    return NULL;
}

/* Caller holds the lock. Entries are only made for existing directories, so
 * their number is bounded by the root's contents. */
static entry *get_entry(ls_registry *r, const char *id)
{
    entry *e = find_entry(r, id);
    if (e) return e;
    if (r->n_entries == r->cap_entries) {
        int cap = r->cap_entries ? r->cap_entries * 2 : 8;
        entry **grown = realloc(r->entries, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        r->entries = grown;
        r->cap_entries = cap;
    }
    e = calloc(1, sizeof *e);
    if (!e) return NULL;
    snprintf(e->id, sizeof e->id, "%s", id);
    e->state = LS_MODEL_AVAILABLE;
    r->entries[r->n_entries++] = e;
    return e;
}

/* Caller holds the lock: takes resident models beyond max_models out of the
 * registry, least recently used first, preferring models nobody uses; their
 * references go to evicted[] to be released after unlocking. */
static int evict_over_limit(ls_registry *r, const entry *keep, ls_model **evicted, int cap)
{
    int n = 0;
    for (;;) {
        int resident = 0;
        entry *idle_lru = NULL, *any_lru = NULL;
        for (int i = 0; i < r->n_entries; i++) {
            entry *e = r->entries[i];
            if (e->state != LS_MODEL_RESIDENT) continue;
            resident++;
            if (e == keep) continue;
            if (!any_lru || e->used_tick < any_lru->used_tick) any_lru = e;
            if (e->users == 0 && (!idle_lru || e->used_tick < idle_lru->used_tick)) idle_lru = e;
        }
        entry *victim = idle_lru ? idle_lru : any_lru;
        if (resident <= r->max_models || !victim || n == cap) return n;
        evicted[n++] = victim->model;
        victim->model = NULL;
        victim->state = LS_MODEL_AVAILABLE;
        r->evictions++;
    }
}

static void touch(ls_registry *r, entry *e)
{
    e->used_tick = ++r->tick;
    e->used_at = ls_now();
}

int ls_registry_acquire(ls_registry *r, const char *id, ls_model **out, ls_error *err)
{
    *out = NULL;
    if (!ls_registry_valid_id(id))
        return ls_error_set(err, LS_ERR_INVALID_ARG, "invalid model id '%.80s'", id ? id : "");
    char dir[4096];
    int kind = entry_kind(r, id, dir, sizeof dir);
    if (kind != ENTRY_MODEL) return not_a_model(id, kind, err);

    pthread_mutex_lock(&r->lock);
    entry *e = get_entry(r, id);
    if (!e) {
        pthread_mutex_unlock(&r->lock);
        return ls_error_set(err, LS_ERR_NOMEM, "registry: out of memory");
    }
    uint64_t gen = e->load_gen;
    while (e->state == LS_MODEL_LOADING) pthread_cond_wait(&r->changed, &r->lock);
    if (e->state == LS_MODEL_FAILED && e->load_gen != gen) {
        /* We waited for someone else's load: share its failure. */
        if (err) *err = e->error;
        int rc = e->error.code ? e->error.code : LS_ERR_INTERNAL;
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    if (e->state == LS_MODEL_RESIDENT) {
        *out = r->ops.retain(e->model);
        e->users++;
        touch(r, e);
        pthread_mutex_unlock(&r->lock);
        return LS_OK;
    }

    e->state = LS_MODEL_LOADING;
    pthread_mutex_unlock(&r->lock);
    ls_model *m = NULL;
    ls_error lerr = {0};
    int rc = r->ops.load(r->ops.ctx, dir, &m, &lerr);
    if (rc == LS_OK && !m) rc = ls_error_set(&lerr, LS_ERR_INTERNAL, "loader returned no model");

    ls_model *evicted[64];
    int n_evicted = 0;
    pthread_mutex_lock(&r->lock);
    e->load_gen++;
    if (rc != LS_OK) {
        if (!lerr.msg[0]) ls_error_set(&lerr, rc, "load failed");
        hide_root(r, lerr.msg);
        ls_error_prefix(&lerr, "loading model '%s'", id);
        lerr.code = rc;
        e->error = lerr;
        e->state = LS_MODEL_FAILED;
        r->load_failures++;
    } else {
        e->model = m;
        e->state = LS_MODEL_RESIDENT;
        e->users++;
        touch(r, e);
        r->loads++;
        *out = r->ops.retain(m);
        n_evicted = evict_over_limit(r, e, evicted, 64);
    }
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    /* Freeing a model can take a while: never under the lock. */
    for (int i = 0; i < n_evicted; i++) r->ops.release(evicted[i]);
    if (rc != LS_OK && err) *err = lerr;
    return rc;
}

void ls_registry_release(ls_registry *r, ls_model *m)
{
    if (!m) return;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->n_entries; i++) {
        entry *e = r->entries[i];
        if (e->model == m && e->users > 0) {
            e->users--;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    r->ops.release(m);
}

int ls_registry_load(ls_registry *r, const char *id, ls_error *err)
{
    ls_model *m;
    int rc = ls_registry_acquire(r, id, &m, err);
    if (rc == LS_OK) ls_registry_release(r, m);
    return rc;
}

int ls_registry_unload(ls_registry *r, const char *id, ls_error *err)
{
    if (!ls_registry_valid_id(id))
        return ls_error_set(err, LS_ERR_INVALID_ARG, "invalid model id '%.80s'", id ? id : "");
    pthread_mutex_lock(&r->lock);
    entry *e = find_entry(r, id);
    ls_model *m = NULL;
    int rc = LS_OK;
    if (!e || e->state == LS_MODEL_AVAILABLE || e->state == LS_MODEL_FAILED) {
        rc = ls_error_set(err, LS_ERR_NOT_FOUND, "model '%s' is not loaded", id);
    } else if (e->state == LS_MODEL_LOADING) {
        rc = ls_error_set(err, LS_ERR_BUSY, "model '%s' is loading; unload it afterwards", id);
    } else {
        m = e->model;
        e->model = NULL;
        e->state = LS_MODEL_AVAILABLE;
    }
    pthread_mutex_unlock(&r->lock);
    if (m) r->ops.release(m);
    return rc;
}

/* Caller holds the lock. */
static void fill_entry(ls_registry *r, const char *id, ls_registry_entry *out, double now)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    const entry *e = find_entry(r, id);
    if (!e) return; /* AVAILABLE */
    out->state = e->state;
    out->users = e->users;
    if (e->state == LS_MODEL_FAILED) snprintf(out->error, sizeof out->error, "%s", e->error.msg);
    if (e->state != LS_MODEL_RESIDENT) return;
    ls_model_info info;
    r->ops.get_info(e->model, &info);
    snprintf(out->name, sizeof out->name, "%s", info.name ? info.name : id);
    out->fps = info.fps;
    out->width = info.width;
    out->height = info.height;
    out->n_frames = info.n_frames;
    out->batch = info.batch;
    out->memory_bytes = info.memory_bytes;
    out->idle_s = now - e->used_at;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ls_registry_list(ls_registry *r, ls_registry_entry *out, int cap)
{
    DIR *d = opendir(r->root);
    if (!d) return 0;
    char *ids[1024];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 1024) {
        char dir[4096];
        if (!ls_registry_valid_id(de->d_name) || !model_dir(r, de->d_name, dir, sizeof dir))
            continue;
        if (!(ids[n] = strdup(de->d_name))) break;
        n++;
    }
    closedir(d);
    qsort(ids, (size_t)n, sizeof ids[0], cmp_str);
    double now = ls_now();
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < n && i < cap; i++) fill_entry(r, ids[i], &out[i], now);
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < n; i++) free(ids[i]);
    return n;
}

int ls_registry_survey(const ls_registry *r, char *others, size_t cap)
{
    if (cap) others[0] = 0;
    DIR *d = opendir(r->root);
    if (!d) return 0;
    int models = 0, full = cap == 0;
    size_t len = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        int kind = ls_registry_valid_id(de->d_name) ? entry_kind(r, de->d_name, path, sizeof path)
                                                    : ENTRY_NONE;
        if (kind == ENTRY_MODEL) {
            models++;
            continue;
        }
        if (full) continue;
        int n = snprintf(others + len, cap - len, "%s%s%s", len ? ", " : "", de->d_name,
                         kind == ENTRY_FOLDER ? "/ (no model.json)" : "");
        if (n < 0 || (size_t)n >= cap - len) { /* no room: end the list with "..." */
            others[len] = 0;
            if (len + 4 < cap) memcpy(others + len, "...", 4);
            full = 1;
            continue;
        }
        len += (size_t)n;
    }
    closedir(d);
    return models;
}

int ls_registry_state(ls_registry *r, const char *id, ls_registry_entry *out, ls_error *err)
{
    if (!ls_registry_valid_id(id))
        return ls_error_set(err, LS_ERR_INVALID_ARG, "invalid model id '%.80s'", id ? id : "");
    char dir[4096];
    int kind = entry_kind(r, id, dir, sizeof dir);
    if (kind != ENTRY_MODEL) return not_a_model(id, kind, err);
    pthread_mutex_lock(&r->lock);
    fill_entry(r, id, out, ls_now());
    pthread_mutex_unlock(&r->lock);
    return LS_OK;
}

void ls_registry_get_stats(ls_registry *r, ls_registry_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&r->lock);
    st->loads = r->loads;
    st->load_failures = r->load_failures;
    st->evictions = r->evictions;
    for (int i = 0; i < r->n_entries; i++) {
        const entry *e = r->entries[i];
        if (e->state == LS_MODEL_LOADING) st->loading++;
        if (e->state != LS_MODEL_RESIDENT) continue;
        st->resident++;
        ls_model_info info;
        r->ops.get_info(e->model, &info);
        st->resident_bytes += info.memory_bytes;
    }
    pthread_mutex_unlock(&r->lock);
}

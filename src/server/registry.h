/* registry.h - the models a server can serve, loaded on demand, LRU-evicted.
 *
 * Models live under a root folder, one directory per id (the id is the
 * directory name: letters, digits, '.', '_', '-'; no leading dot, so no id
 * can escape the root). ls_registry_acquire returns a model ready to use,
 * loading it first when needed; at most max_models stay resident, the least
 * recently used unused one being evicted first (a model in use is evicted
 * only when all are, and is still freed only when its last user releases it,
 * since the registry and every user hold references).
 *
 * Loading runs on the calling thread without the registry lock: requests to
 * other models proceed meanwhile; requests to the model being loaded wait
 * for that load and share its result (or its error). Call acquire from
 * worker threads, never from an event loop.
 *
 * The loader is a set of function pointers, so the registry's policy is
 * tested with any loader; ls_registry_pipeline_ops (registry_pipeline.c)
 * plugs in ls_model_load and friends.
 */
#ifndef LS_SERVER_REGISTRY_H
#define LS_SERVER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "pipeline/model.h"

typedef struct ls_registry ls_registry;

typedef struct ls_registry_ops {
    /* Loads the model directory dir into *out holding one reference. */
    int (*load)(void *ctx, const char *dir, ls_model **out, ls_error *err);
    ls_model *(*retain)(ls_model *m);
    void (*release)(ls_model *m);
    void (*get_info)(const ls_model *m, ls_model_info *info);
    void *ctx;
} ls_registry_ops;

typedef struct ls_registry_options {
    const char *root;   /* models root folder */
    int max_models;     /* >= 1 */
    ls_registry_ops ops;
} ls_registry_options;

typedef enum ls_model_state {
    LS_MODEL_AVAILABLE, /* on disk, not loaded */
    LS_MODEL_LOADING,
    LS_MODEL_RESIDENT,
    LS_MODEL_FAILED     /* last load failed; the next acquire retries */
} ls_model_state;

#define LS_MODEL_ID_MAX 64

typedef struct ls_registry_entry {
    char id[LS_MODEL_ID_MAX + 1];
    ls_model_state state;
    int users;                 /* acquired and not yet released */
    double idle_s;             /* seconds since last acquire (resident only) */
    /* When resident: copied from ls_model_get_info. */
    char name[128];
    int fps, width, height, n_frames, batch;
    size_t memory_bytes;
    char error[LS_ERROR_MSG_MAX]; /* when failed */
} ls_registry_entry;

typedef struct ls_registry_stats {
    int64_t loads, load_failures, evictions;
    int resident, loading;
    size_t resident_bytes;
} ls_registry_stats;

int ls_registry_create(const ls_registry_options *opt, ls_registry **out, ls_error *err);
/* Releases the registry's references; models still acquired live on until
 * their users release them (through ops.release, not the registry). */
void ls_registry_destroy(ls_registry *r);

/* Returns 1 if id is a well-formed model id. */
int ls_registry_valid_id(const char *id);

/* A retained model for id, loading it if needed. Release with
 * ls_registry_release. LS_ERR_NOT_FOUND when no such model directory. */
int ls_registry_acquire(ls_registry *r, const char *id, ls_model **out, ls_error *err);
void ls_registry_release(ls_registry *r, ls_model *m);

/* Makes id resident (acquire + release). */
int ls_registry_load(ls_registry *r, const char *id, ls_error *err);

/* Drops the registry's reference to a resident model (LS_ERR_NOT_FOUND if
 * not resident, LS_ERR_BUSY while loading). */
int ls_registry_unload(ls_registry *r, const char *id, ls_error *err);

/* Lists the model directories under the root with their state, sorted by
 * id: fills up to cap entries and returns how many exist (may exceed cap). */
int ls_registry_list(ls_registry *r, ls_registry_entry *out, int cap);

/* The root's model directories, counted; the names of its other entries
 * ("name/ (no model.json)" for folders) go to others, cut at cap. For the
 * warning a server gives when its root holds no model. */
int ls_registry_survey(const ls_registry *r, char *others, size_t cap);

/* State of one id (LS_MODEL_AVAILABLE when unknown but on disk). */
int ls_registry_state(ls_registry *r, const char *id, ls_registry_entry *out, ls_error *err);

void ls_registry_get_stats(ls_registry *r, ls_registry_stats *st);

/* The pipeline's loader: ctx is an ls_registry_pipeline_ctx. */
typedef struct ls_registry_pipeline_ctx {
    ls_pool *pool;
    ls_model_options options;
} ls_registry_pipeline_ctx;
ls_registry_ops ls_registry_pipeline_ops(ls_registry_pipeline_ctx *ctx);

#endif

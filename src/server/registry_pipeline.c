/* registry_pipeline.c - the registry's loader for real model directories.
 * Kept apart from registry.c so the registry's policy links (and is tested)
 * without the pipeline. */
#include "server/registry.h"

static int pipeline_load(void *ctx, const char *dir, ls_model **out, ls_error *err)
{
    const ls_registry_pipeline_ctx *c = ctx;
    return ls_model_load(dir, &c->options, c->pool, out, err);
}

ls_registry_ops ls_registry_pipeline_ops(ls_registry_pipeline_ctx *ctx)
{
    ls_registry_ops ops = {pipeline_load, ls_model_retain, ls_model_release, ls_model_get_info,
                           ctx};
    return ops;
}

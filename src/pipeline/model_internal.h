/* model_internal.h - what sessions reach inside a loaded model. */
#ifndef LS_PIPELINE_MODEL_INTERNAL_H
#define LS_PIPELINE_MODEL_INTERNAL_H

#include "avatar/avatar.h"
#include "nn/engine.h"
#include "nn/graph.h"
#include "nn/onnx.h"
#include "pipeline/model.h"

/* The two networks compiled for one batch size and thread count (oneDNN
 * fixes a primitive's thread count when it is created). */
typedef struct ls_model_engines {
    int batch, threads;
    ls_graph *unet_graph, *enc_graph;
    ls_engine *unet, *enc;
    int unet_visual, unet_audio; /* positions of the two inputs in unet_graph->inputs */
} ls_model_engines;

/* The engines for (batch, threads), compiled on first use and kept with the model. */
int ls_model_engines_get(ls_model *m, int batch, int threads, const ls_model_engines **out,
                         ls_error *err);

ls_avatar *ls_model_avatar(const ls_model *m);

/* The UNet as loaded (its file and parsed ONNX), for calibration (quantize.h). */
const char *ls_model_unet_path(const ls_model *m);
const ls_onnx_model *ls_model_unet_onnx(const ls_model *m);

#endif

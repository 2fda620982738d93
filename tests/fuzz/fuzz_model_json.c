/* fuzz_model_json - a model directory's model.json ({"name", "unet", "encoder",
 * "avatar", "fps", "batch", "unet_inputs", "encoder_input"}), read by
 * ls_model_check (the API reads directories only: the input is written to
 * model.json in the fuzz folder, which holds nothing else, so the check stops
 * at the networks once the file is accepted). */
#include "fuzz_util.h"
#include "pipeline/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return 0;
    static char dir[4096];
    if (!dir[0]) {
        fuzz_path(dir, sizeof dir, "model");
        fuzz_mkdir(dir);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.json", dir);
    fuzz_write(path, data, size);
    ls_error err = {0};
    /* Without the networks no model.json can make a loadable model. */
    int rc = ls_model_check(dir, NULL, &err);
    fuzz_note("check", rc, err.msg);
    FUZZ_CHECK(rc != LS_OK && err.msg[0]);
    return 0;
}

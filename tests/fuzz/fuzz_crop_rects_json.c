/* fuzz_crop_rects_json - an avatar's crop_rects.json ([[x1, y1, x2, y2], ...]),
 * read by ls_avatar_layout_scan of a frames/ layout with 3 frames (the API
 * reads directories only: the input is written to a file in the fuzz folder). */
#include "fuzz_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return 0;
    const char *dir = fuzz_avatar_dir("frames-layout");
    fuzz_avatar_file(dir, "crop_rects.json", data, size);
    fuzz_scan(dir, LS_LAYOUT_FRAMES);
    return 0;
}

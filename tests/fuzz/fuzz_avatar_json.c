/* fuzz_avatar_json - a prepared avatar's avatar.json manifest ({"name", "fps",
 * "width", "height", "frames", "source"}), read by ls_avatar_layout_scan of a
 * prepared layout with 3 frames and a valid crop_rects.json (the API reads
 * directories only: the input is written to a file in the fuzz folder). */
#include "fuzz_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return 0;
    static int made;
    const char *dir = fuzz_avatar_dir("prepared-layout");
    if (!made) {
        static const char rects[] = "[[10,20,110,120],[12,20,112,120],[14,21,114,121]]";
        fuzz_avatar_file(dir, "crop_rects.json", rects, sizeof rects - 1);
        made = 1;
    }
    fuzz_avatar_file(dir, "avatar.json", data, size);
    fuzz_scan(dir, LS_LAYOUT_PREPARED);
    return 0;
}

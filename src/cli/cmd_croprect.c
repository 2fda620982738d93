/* cmd_croprect.c - `lipsync croprect FILE.lms...`: the crop rectangle of landmark files. */
#include <stdio.h>

#include "avatar/croprect.h"
#include "cli/commands.h"

int cmd_croprect(int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: lipsync croprect FILE.lms [FILE.lms...]\n"
                "Prints the face crop rectangle \"x1 y1 x2 y2\" of each SyncTalk_2D landmark\n"
                "file (110 lines \"x y\"): x1 = lms[1].x, y1 = lms[52].y, x2 = lms[31].x,\n"
                "y2 = y1 + (x2 - x1), coordinates truncated to int.\n");
        return argc < 2 ? 2 : 0;
    }
    for (int i = 1; i < argc; i++) {
        ls_rect r;
        ls_error err = {0};
        if (ls_croprect_read(argv[i], &r, &err) != LS_OK) return cli_fail("croprect", &err);
        printf("%d %d %d %d\n", r.x1, r.y1, r.x2, r.y2);
    }
    return 0;
}

# The lipsync command line: usage errors, help, hints (tests/cli/test_cli.c).
# Runs the binary and, for `infer`, the test UNet (nn/load.cmake).
ls_add_test(test_cli cli/test_cli.c)
add_dependencies(test_cli lipsync ls_test_models)

# The lipsync command line: usage errors, help, hints (tests/cli/test_cli.c).
# Runs the binary and, for `infer`, the test UNet (nn/load.cmake).
ls_add_test(test_cli cli/test_cli.c)
add_dependencies(test_cli lipsync ls_test_models)

# `cmake --install` into a scratch prefix; the installed `lipsync serve` serves
# its browser client from PREFIX/share/lipsync/web and refuses a --web-root
# that is not the client's folder (tests/cli/install.sh).
add_test(NAME test_install
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/install.sh ${CMAKE_COMMAND} ${CMAKE_BINARY_DIR}
          ${CMAKE_BINARY_DIR}/install-test)
set_tests_properties(test_install PROPERTIES TIMEOUT 300)

# Test models: the SyncTalk_2D UNet and audio encoder with seeded random
# weights, exported by torch, with torch's outputs (tools/gen_test_models.py).
# Generated once per build tree (about 30 s) and regenerated only when the
# script changes; tests find them through LS_MODELS_DIR.
find_program(LS_DEBIAN_PYTHON /usr/bin/python3 NO_DEFAULT_PATH)
if(NOT LS_DEBIAN_PYTHON)
  message(FATAL_ERROR "tests need Debian's /usr/bin/python3 with python3-torch and python3-onnx")
endif()
set(LS_MODELS_STAMP ${LS_MODELS_DIR}/.generated)
add_custom_command(
  OUTPUT ${LS_MODELS_STAMP}
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${LS_MODELS_DIR}
  COMMAND ${LS_DEBIAN_PYTHON} ${CMAKE_SOURCE_DIR}/tools/gen_test_models.py ${LS_MODELS_DIR}
  COMMAND ${CMAKE_COMMAND} -E touch ${LS_MODELS_STAMP}
  DEPENDS ${CMAKE_SOURCE_DIR}/tools/gen_test_models.py
  COMMENT "Generating the torch test models into ${LS_MODELS_DIR}"
  VERBATIM)
add_custom_target(ls_test_models ALL DEPENDS ${LS_MODELS_STAMP})

ls_add_test(test_onnx nn/test_onnx.c)
add_dependencies(test_onnx ls_test_models)
ls_add_test(test_onnx_malformed nn/test_onnx_malformed.c)
add_dependencies(test_onnx_malformed ls_test_models)

# `lipsync info` on the test UNet: the counts the issue gives for the architecture.
add_test(NAME cli_info_unet COMMAND lipsync info ${LS_MODELS_DIR}/unet_op11.onnx)
set_tests_properties(cli_info_unet PROPERTIES
  PASS_REGULAR_EXPRESSION "parameters: 12,186,935\n.*Conv 93 \\(\\+relu 62, \\+sigmoid 1, \\+residual add 15\\).*MACs per item: [0-9,]+ \\(4\\.886 GMAC\\)"
  TIMEOUT 300)
add_test(NAME cli_info_rejects_garbage COMMAND lipsync info ${CMAKE_SOURCE_DIR}/tests/nn/load.cmake)
set_tests_properties(cli_info_rejects_garbage PROPERTIES
  PASS_REGULAR_EXPRESSION "lipsync: info: .*load.cmake: not a valid ONNX model" TIMEOUT 60)

# tools/export_synctalk.py: a checkpoint saved with SyncTalk_2D's own key names
# becomes a model directory that `lipsync model check` passes and whose UNet and
# encoder give torch's outputs (tests/nn/test_export_synctalk.py; about a
# minute on two cores, mostly torch's export of the full-width UNet). Plain
# builds only: it tests the Python tool, and the C paths it drives (model
# check, infer) run under the sanitizers in their own tests.
if(LS_SANITIZE STREQUAL "")
  add_test(NAME test_export_synctalk
           COMMAND ${LS_DEBIAN_PYTHON} ${CMAKE_SOURCE_DIR}/tests/nn/test_export_synctalk.py)
  set_tests_properties(test_export_synctalk PROPERTIES
    ENVIRONMENT "${LS_TEST_ENV};LS_TMP=${CMAKE_BINARY_DIR}/tests"
    TIMEOUT ${LS_TEST_TIMEOUT})
endif()

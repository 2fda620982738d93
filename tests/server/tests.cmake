ls_add_test(test_server_config server/test_config.c)
ls_add_test(test_registry server/test_registry.c)
ls_add_test(test_server_outputs server/test_outputs.c)
target_link_libraries(test_server_outputs PRIVATE PkgConfig::LIBZIP)
if(LS_HAVE_PIPELINE)
  ls_add_test(test_server server/test_server.c server/server_test_util.c)
  target_link_libraries(test_server PRIVATE PkgConfig::LIBZIP)
  set_property(TEST test_server APPEND PROPERTY ENVIRONMENT
    "LS_SERVER_TEST_MODELS=${LS_SERVER_TEST_MODELS}" "LS_SERVER_TEST_MODEL=${LS_SERVER_TEST_MODEL}")
endif()
# The browser client in headless Chromium (needs node, npm and /usr/bin/chromium).
if(LS_HAVE_PIPELINE)
  add_test(NAME test_web_e2e
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/server/web_e2e.sh $<TARGET_FILE:lipsync>
            ${LS_SERVER_TEST_MODELS} ${LS_SERVER_TEST_MODEL} ${CMAKE_BINARY_DIR}/web-e2e)
  set_tests_properties(test_web_e2e PROPERTIES TIMEOUT 600 RUN_SERIAL ON)
endif()

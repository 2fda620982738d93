# The demo model directory (test UNet/encoder + the portrait avatar), built
# from the generated test models; pipeline tests find it via LS_DEMO_MODEL.
set(LS_DEMO_MODEL_DIR ${CMAKE_BINARY_DIR}/demo-model)
add_custom_command(
  OUTPUT ${LS_DEMO_MODEL_DIR}/model.json
  COMMAND ${LS_DEBIAN_PYTHON} ${CMAKE_SOURCE_DIR}/tools/make_demo.py
          --models ${LS_MODELS_DIR} --out ${LS_DEMO_MODEL_DIR}
  DEPENDS ${CMAKE_SOURCE_DIR}/tools/make_demo.py ${LS_MODELS_STAMP}
  COMMENT "Building the demo model directory"
  VERBATIM)
add_custom_target(ls_demo_model ALL DEPENDS ${LS_DEMO_MODEL_DIR}/model.json)
# A target-level order too: both targets would otherwise run the generator at once.
add_dependencies(ls_demo_model ls_test_models)

ls_add_test(test_session pipeline/test_session.c)
add_dependencies(test_session ls_demo_model lipsync)
set_property(TEST test_session APPEND PROPERTY ENVIRONMENT "LS_DEMO_MODEL=${LS_DEMO_MODEL_DIR}")
ls_add_test(test_session_silence pipeline/test_session_silence.c)
add_dependencies(test_session_silence ls_demo_model)
set_property(TEST test_session_silence APPEND PROPERTY ENVIRONMENT "LS_DEMO_MODEL=${LS_DEMO_MODEL_DIR}")
# A session's frame range (the batch API's window on a clip). Not under
# ThreadSanitizer: it is test_session's code on test_session's threads, and
# each of its sessions runs the full-size test UNet.
if(NOT LS_SANITIZE STREQUAL "thread")
  ls_add_test(test_session_range pipeline/test_session_range.c)
  add_dependencies(test_session_range ls_demo_model)
  set_property(TEST test_session_range APPEND PROPERTY ENVIRONMENT "LS_DEMO_MODEL=${LS_DEMO_MODEL_DIR}")
endif()
# The push / pull / finish loop (pipeline/drive.h) over the demo model.
ls_add_test(test_drive pipeline/test_drive.c)
add_dependencies(test_drive ls_demo_model)
set_property(TEST test_drive APPEND PROPERTY ENVIRONMENT "LS_DEMO_MODEL=${LS_DEMO_MODEL_DIR}")
ls_add_alloc_test(test_session_alloc pipeline/test_session_alloc.c)
if(TARGET test_session_alloc)
  add_dependencies(test_session_alloc ls_demo_model)
  set_property(TEST test_session_alloc APPEND PROPERTY ENVIRONMENT "LS_DEMO_MODEL=${LS_DEMO_MODEL_DIR}")
endif()
# The render command's behaviour (frames directories, PNG frames, a quiet
# stderr). Not under ThreadSanitizer: it runs whole renders through a TSan
# lipsync (7 minutes, starving test_session beside it past its timeout), and
# the threads of the render path are test_session's to check there.
if(NOT LS_SANITIZE STREQUAL "thread")
  ls_add_test(test_render_cli pipeline/test_render_cli.c)
  add_dependencies(test_render_cli ls_demo_model lipsync)
  set_property(TEST test_render_cli APPEND PROPERTY ENVIRONMENT "LS_DEMO_MODEL=${LS_DEMO_MODEL_DIR}")
endif()

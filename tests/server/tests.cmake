ls_add_test(test_server_config server/test_config.c)
ls_add_test(test_registry server/test_registry.c)
ls_add_test(test_router server/test_router.c)
ls_add_test(test_server_outputs server/test_outputs.c)
target_link_libraries(test_server_outputs PRIVATE PkgConfig::LIBZIP)
ls_add_alloc_test(test_server_alloc server/test_server_alloc.c)

# The API tests serve the demo model directory of pipeline/session.cmake
# (test UNet/encoder, portrait avatar) from a models root of their own, as id "demo".
set(LS_SERVER_TEST_MODELS ${CMAKE_BINARY_DIR}/server-models)
add_custom_command(
  OUTPUT ${LS_SERVER_TEST_MODELS}/demo
  COMMAND ${CMAKE_COMMAND} -E make_directory ${LS_SERVER_TEST_MODELS}
  COMMAND ${CMAKE_COMMAND} -E create_symlink ${LS_DEMO_MODEL_DIR} ${LS_SERVER_TEST_MODELS}/demo
  COMMENT "Linking the demo model into the server tests' models root"
  VERBATIM)
# And the trained demo (pipeline/lipsync_demo.cmake) as id "trained": small
# enough to paint 25 frames a second on two cores, for the real-time tests.
add_custom_command(
  OUTPUT ${LS_SERVER_TEST_MODELS}/trained
  COMMAND ${CMAKE_COMMAND} -E make_directory ${LS_SERVER_TEST_MODELS}
  COMMAND ${CMAKE_COMMAND} -E create_symlink ${LS_TRAINED_DEMO_DIR} ${LS_SERVER_TEST_MODELS}/trained
  COMMENT "Linking the trained demo model into the server tests' models root"
  VERBATIM)
add_custom_target(ls_server_models ALL DEPENDS ${LS_SERVER_TEST_MODELS}/demo
  ${LS_SERVER_TEST_MODELS}/trained)
add_dependencies(ls_server_models ls_demo_model ls_trained_demo)

ls_add_test(test_server server/test_server.c server/server_test_util.c)
target_link_libraries(test_server PRIVATE PkgConfig::LIBZIP)
add_dependencies(test_server ls_server_models)
set_property(TEST test_server APPEND PROPERTY ENVIRONMENT
  "LS_SERVER_TEST_MODELS=${LS_SERVER_TEST_MODELS}" "LS_SERVER_TEST_MODEL=demo")
if(LS_SANITIZE STREQUAL "thread")
  # TSan cannot see libgomp's synchronisation: one engine thread, no OpenMP team.
  set_property(TEST test_server APPEND PROPERTY ENVIRONMENT
    "OMP_NUM_THREADS=1" "LS_SERVER_TEST_THREADS=1" "LS_SERVER_TEST_TSAN=1")
  # Alone: beside test_session under TSan, starts and batch calls took
  # longer than the tests wait for them.
  set_tests_properties(test_server PROPERTIES RUN_SERIAL ON)
endif()

# The browser client in headless Chromium (needs node, npm and /usr/bin/chromium).
# Not in the ThreadSanitizer build: its scenarios wait for a real-time client
# (previews, live latency, a stalled server) and a TSan server on two shared
# cores once answered nothing within them; the server's threads under TSan are
# test_server's (streams, batch, render, drain), with one engine thread.
if(NOT LS_SANITIZE STREQUAL "thread")
  add_test(NAME test_web_e2e
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/server/web_e2e.sh $<TARGET_FILE:lipsync>
            ${LS_SERVER_TEST_MODELS} demo ${CMAKE_BINARY_DIR}/web-e2e)
  set_tests_properties(test_web_e2e PROPERTIES TIMEOUT 600 RUN_SERIAL ON)
endif()

# Graceful drain behind a load balancer: two instances behind Debian's nginx
# with docs/nginx-lipsync.conf (lb_drain.sh; skipped, exit 77, without nginx).
# Not in the ThreadSanitizer build: two TSan servers streaming the full-size
# test model through nginx on two shared cores were never run within the
# test's bounds; the drain's threads are test_server's drain tests there.
if(NOT LS_SANITIZE STREQUAL "thread")
  add_test(NAME test_lb_drain
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/server/lb_drain.sh $<TARGET_FILE:lipsync>
            ${LS_SERVER_TEST_MODELS} demo ${CMAKE_BINARY_DIR}/lb-drain)
  set_tests_properties(test_lb_drain PROPERTIES TIMEOUT 900 RUN_SERIAL ON SKIP_RETURN_CODE 77)
endif()

# `lipsync bench serve --mode batch` runs end to end (a whole-clip render, then
# one client walking the clip with /v1/batch: 1 s gives 24 frames, 3 calls of
# 8); the figures are bench's to give.
if(NOT LS_SANITIZE)
  add_test(NAME bench_serve_batch
    COMMAND lipsync bench serve --models-root ${LS_SERVER_TEST_MODELS} --model demo --mode batch
            --seconds 1 --batch-sizes 8)
  set_tests_properties(bench_serve_batch PROPERTIES TIMEOUT 300
    PASS_REGULAR_EXPRESSION "batch +8 +3 +[0-9.]+ +[0-9.]+ +[0-9.]+ +24")
endif()

# A soak (soak.sh, soak.py): one server under 150 s of renders, batch calls
# and streams mixed with abrupt disconnects, slow readers, interrupt storms,
# bad control messages and malformed HTTP. Every good session's frames are
# byte-identical to a quiet run's, a stream's first frame stays within 2x of
# its quiet latency while jobs run, RSS plateaus, and the server drains and
# exits 0. It serves the trained demo (fast enough to be real-time on two
# cores). Plain builds only: latency means nothing under a sanitizer.
if(LS_SANITIZE STREQUAL "")
  add_test(NAME test_soak
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/server/soak.sh $<TARGET_FILE:lipsync>
            ${LS_TRAINED_DEMO_DIR} ${CMAKE_BINARY_DIR}/soak 150)
  set_tests_properties(test_soak PROPERTIES TIMEOUT 600 RUN_SERIAL ON)
endif()

# WebRTC end to end (webrtc_e2e.sh): headless Chromium's fake microphone to
# the trained demo and H.264 + Opus back, 25 frames a second of session
# time, bad offers, the session limit, a client that vanishes. Plain builds
# only: its bounds are real time, and GStreamer's threads are not
# instrumented for the sanitizers.
if(LS_SANITIZE STREQUAL "")
  add_test(NAME test_webrtc_e2e
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/server/webrtc_e2e.sh $<TARGET_FILE:lipsync>
            ${LS_SERVER_TEST_MODELS} trained ${CMAKE_BINARY_DIR}/webrtc-e2e 10)
  set_tests_properties(test_webrtc_e2e PROPERTIES TIMEOUT 600 RUN_SERIAL ON)
endif()

# RTMP push (rtmp_push.sh, rtmp_push.py): a stream with "output":"rtmp://..."
# recorded by Debian's nginx with libnginx-mod-rtmp on loopback; the FLV has
# every frame the stream produced and its audio and video durations agree
# within a frame; bad outputs and an unreachable server are error events.
# Skipped (exit 77) without nginx or its RTMP module. It serves the trained
# demo (real-time on two cores). Not under ThreadSanitizer: the push's
# threads are the stream's, which test_server covers there.
if(NOT LS_SANITIZE STREQUAL "thread")
  add_test(NAME test_rtmp_push
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/server/rtmp_push.sh $<TARGET_FILE:lipsync>
            ${LS_TRAINED_DEMO_DIR} ${CMAKE_BINARY_DIR}/rtmp-push)
  set_tests_properties(test_rtmp_push PROPERTIES TIMEOUT 600 RUN_SERIAL ON SKIP_RETURN_CODE 77)
endif()

# The server: HTTP + WebSocket API (libwebsockets), JSON (cJSON), zip (libzip),
# WebRTC (GStreamer's webrtcbin; its headers stay inside webrtc.c).
pkg_check_modules(GST REQUIRED IMPORTED_TARGET gstreamer-1.0 gstreamer-app-1.0 gstreamer-sdp-1.0
  gstreamer-webrtc-1.0)
add_library(lipsync_server STATIC
  src/server/config.c
  src/server/registry.c
  src/server/registry_pipeline.c
  src/server/workq.c
  src/server/metrics.c
  src/server/outputs.c
  src/server/conn.c
  src/server/env.c
  src/server/request.c
  src/server/router.c
  src/server/http.c
  src/server/jobs.c
  src/server/push.c
  src/server/stream.c
  src/server/server.c
  src/server/webrtc.c
  src/server/ws_client.c)
target_compile_definitions(lipsync_server PRIVATE LS_VERSION="${PROJECT_VERSION}")
target_link_libraries(lipsync_server PUBLIC lipsync_pipeline lipsync_media lipsync_audio
  lipsync_nn lipsync_core PkgConfig::LWS PkgConfig::LIBZIP PkgConfig::CJSON
  PRIVATE PkgConfig::GST)

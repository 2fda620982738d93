# The server: HTTP + WebSocket API (libwebsockets), JSON (cJSON), zip (libzip).
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
  src/server/ws_client.c)
target_compile_definitions(lipsync_server PRIVATE LS_VERSION="${PROJECT_VERSION}")
target_link_libraries(lipsync_server PUBLIC lipsync_pipeline lipsync_media lipsync_audio
  lipsync_nn lipsync_core PkgConfig::LWS PkgConfig::LIBZIP PkgConfig::CJSON)

# The server: HTTP + WebSocket API (libwebsockets), JSON (cJSON), zip (libzip).
pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
target_sources(lipsync_core PRIVATE
  src/server/config.c
  src/server/registry.c
  src/server/registry_pipeline.c
  src/server/workq.c
  src/server/metrics.c
  src/server/outputs.c
  src/server/server.c
  src/server/stream.c
  src/server/jobs.c
  src/server/ws_client.c)
target_link_libraries(lipsync_core PUBLIC PkgConfig::LWS PkgConfig::LIBZIP PkgConfig::CJSON)

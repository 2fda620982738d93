# The server: HTTP + WebSocket API (libwebsockets), JSON (cJSON), zip (libzip).
pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
target_sources(lipsync_core PRIVATE
  src/server/config.c
  src/server/registry.c)
target_link_libraries(lipsync_core PUBLIC PkgConfig::LWS PkgConfig::LIBZIP PkgConfig::CJSON)

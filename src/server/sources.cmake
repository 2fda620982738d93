# The server: HTTP + WebSocket API (libwebsockets), JSON (cJSON), zip (libzip).
pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
target_sources(lipsync_core PRIVATE
  src/server/config.c
  src/server/registry.c
  src/server/workq.c
  src/server/metrics.c
  src/server/outputs.c
  src/server/ws_client.c)
target_link_libraries(lipsync_core PUBLIC PkgConfig::LWS PkgConfig::LIBZIP PkgConfig::CJSON)

# The parts that call the pipeline (session.h, model.h) build once its
# implementation is in the tree.
set(LS_HAVE_PIPELINE OFF)
get_target_property(_ls_core_sources lipsync_core SOURCES)
foreach(_src IN LISTS _ls_core_sources)
  if(_src MATCHES "^src/pipeline/.*\\.c$")
    file(READ ${CMAKE_SOURCE_DIR}/${_src} _text)
    if(_text MATCHES "\nint ls_session_create\\(")
      set(LS_HAVE_PIPELINE ON)
    endif()
  endif()
endforeach()
if(LS_HAVE_PIPELINE)
  target_sources(lipsync_core PRIVATE
    src/server/registry_pipeline.c
    src/server/server.c
    src/server/stream.c
    src/server/jobs.c)
  if(EXISTS ${CMAKE_SOURCE_DIR}/src/media/video_writer.h)
    set_source_files_properties(src/server/jobs.c PROPERTIES COMPILE_DEFINITIONS LS_HAVE_MEDIA_WRITER)
  endif()
endif()

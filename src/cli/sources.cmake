# The lipsync binary: subcommands and benchmarks, on top of every layer.
add_executable(lipsync
  src/cli/main.c
  src/cli/cmd_bench.c
  src/cli/cmd_mel.c
  src/cli/cmd_render.c
  src/cli/cmd_model.c
  src/cli/cmd_quantize.c
  src/cli/bench_mel.c
  src/cli/bench_pipeline.c
  src/cli/cmd_info.c
  src/cli/cmd_infer.c
  src/cli/bench_engine.c
  src/cli/bench_image.c
  src/cli/cmd_avatar.c
  src/cli/cmd_croprect.c
  src/cli/cmd_serve.c
  src/cli/bench_serve.c)
# Where `lipsync serve` finds the browser client by default (cmd_serve.c): the
# installed web/ (below), relative to the binary's folder, else this source tree's.
if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_DATADIR}")
  set(LS_INSTALLED_WEB_ROOT "${CMAKE_INSTALL_FULL_DATADIR}/lipsync/web")
else()
  file(RELATIVE_PATH LS_INSTALLED_WEB_ROOT "/${CMAKE_INSTALL_BINDIR}"
       "/${CMAKE_INSTALL_DATADIR}/lipsync/web")
endif()
target_compile_definitions(lipsync PRIVATE LS_VERSION="${PROJECT_VERSION}"
  LS_INSTALLED_WEB_ROOT="${LS_INSTALLED_WEB_ROOT}" LS_SOURCE_WEB_ROOT="${CMAKE_SOURCE_DIR}/web")
target_link_libraries(lipsync PRIVATE lipsync_server lipsync_pipeline lipsync_avatar
  lipsync_media lipsync_nn lipsync_image lipsync_audio lipsync_core
  PkgConfig::CJSON PkgConfig::LIBAV PkgConfig::TURBOJPEG)

# `cmake --install build [--prefix DIR]`: the binary and its browser client.
# The static libraries are the binary's layers, not an API: they stay in the build.
install(TARGETS lipsync RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/web/ DESTINATION ${CMAKE_INSTALL_DATADIR}/lipsync/web)

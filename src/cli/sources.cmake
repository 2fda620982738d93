# The lipsync binary: subcommands and benchmarks, on top of every layer.
add_executable(lipsync
  src/cli/main.c
  src/cli/cmd_bench.c
  src/cli/cmd_mel.c
  src/cli/cmd_render.c
  src/cli/cmd_model.c
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
target_compile_definitions(lipsync PRIVATE LS_VERSION="${PROJECT_VERSION}"
  LS_WEB_ROOT="${CMAKE_SOURCE_DIR}/web")
target_link_libraries(lipsync PRIVATE lipsync_server lipsync_pipeline lipsync_avatar
  lipsync_media lipsync_nn lipsync_image lipsync_audio lipsync_core
  PkgConfig::CJSON PkgConfig::LIBAV PkgConfig::TURBOJPEG)

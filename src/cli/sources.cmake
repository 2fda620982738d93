# Subcommands and benchmarks compiled into the lipsync binary.
target_sources(lipsync PRIVATE
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
target_compile_definitions(lipsync PRIVATE LS_WEB_ROOT="${CMAKE_SOURCE_DIR}/web")


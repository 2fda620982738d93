# Subcommands and benchmarks compiled into the lipsync binary.
target_sources(lipsync PRIVATE
  src/cli/cmd_mel.c
  src/cli/bench_mel.c)
if(LS_HAVE_PIPELINE)
  target_sources(lipsync PRIVATE src/cli/cmd_serve.c src/cli/bench_serve.c)
  target_compile_definitions(lipsync PRIVATE LS_HAVE_SERVER LS_WEB_ROOT="${CMAKE_SOURCE_DIR}/web")
endif()

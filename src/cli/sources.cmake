# Subcommands and benchmarks compiled into the lipsync binary.
target_sources(lipsync PRIVATE
  src/cli/bench_image.c
  src/cli/cmd_avatar.c
  src/cli/cmd_croprect.c)

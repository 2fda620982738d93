# Subcommands and benchmarks compiled into the lipsync binary.
target_sources(lipsync PRIVATE
  src/cli/cmd_info.c)

# The executors: the plain C reference (ref.c) and the oneDNN engine.
# oneDNN (Debian libdnnl-dev 2.6) is built on OpenMP, and the engine's own
# kernels share its OpenMP team. Its CMake config also wants OpenCL's, so the
# library is found directly.
find_package(OpenMP REQUIRED COMPONENTS C)
find_path(DNNL_INCLUDE_DIR dnnl.h REQUIRED)
find_library(DNNL_LIBRARY dnnl REQUIRED)
target_sources(lipsync_core PRIVATE
  src/nn/ref.c
  src/nn/engine.c
  src/nn/engine_kernels.c)
target_include_directories(lipsync_core PRIVATE ${DNNL_INCLUDE_DIR})
target_link_libraries(lipsync_core PUBLIC ${DNNL_LIBRARY} OpenMP::OpenMP_C)

# The executors: the plain C reference (ref.c) and the oneDNN engine (engine.c,
# the executor, over engine_lower.c's lowering; oneDNN and OpenMP are found in
# the top CMakeLists.txt).
target_sources(lipsync_nn PRIVATE
  src/nn/ref.c
  src/nn/quant.c
  src/nn/engine.c
  src/nn/engine_lower.c
  src/nn/engine_kernels.c)
target_include_directories(lipsync_nn PRIVATE ${DNNL_INCLUDE_DIR})
target_link_libraries(lipsync_nn PUBLIC ${DNNL_LIBRARY} OpenMP::OpenMP_C)

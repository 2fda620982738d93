# ONNX loading: C code generated at build time from Debian's onnx.proto.
find_program(LS_PROTOC_C protoc-c REQUIRED)
set(LS_ONNX_PROTO_DIR /usr/include/onnx CACHE PATH "Directory holding onnx.proto (Debian libonnx-dev)")
if(NOT EXISTS ${LS_ONNX_PROTO_DIR}/onnx.proto)
  message(FATAL_ERROR "onnx.proto not found in ${LS_ONNX_PROTO_DIR}: install libonnx-dev")
endif()
set(LS_GENERATED_DIR ${CMAKE_BINARY_DIR}/generated)
add_custom_command(
  OUTPUT ${LS_GENERATED_DIR}/onnx/onnx.pb-c.c ${LS_GENERATED_DIR}/onnx/onnx.pb-c.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${LS_GENERATED_DIR}/onnx
  COMMAND ${LS_PROTOC_C} --proto_path=${LS_ONNX_PROTO_DIR} --c_out=${LS_GENERATED_DIR}/onnx
          ${LS_ONNX_PROTO_DIR}/onnx.proto
  DEPENDS ${LS_ONNX_PROTO_DIR}/onnx.proto
  COMMENT "Generating the protobuf-c ONNX parser from ${LS_ONNX_PROTO_DIR}/onnx.proto"
  VERBATIM)

add_library(lipsync_nn STATIC
  ${LS_GENERATED_DIR}/onnx/onnx.pb-c.c
  src/nn/onnx.c
  src/nn/lower.c
  src/nn/passes.c
  src/nn/graph.c
  src/nn/shape.c
  src/nn/plan.c
  src/nn/resize_map.c)
# Tests build models through the generated structs, hence PUBLIC.
target_include_directories(lipsync_nn PUBLIC ${LS_GENERATED_DIR})
target_link_libraries(lipsync_nn PUBLIC lipsync_core PkgConfig::PROTOBUF_C)

# Reference outputs from Debian's python3-opencv, generated into the build tree.
set(LS_IMAGE_REFS ${CMAKE_BINARY_DIR}/image_refs)
add_custom_command(
  OUTPUT ${LS_IMAGE_REFS}/stamp
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tools/gen_image_refs.py ${LS_IMAGE_REFS}
  DEPENDS ${CMAKE_SOURCE_DIR}/tools/gen_image_refs.py
  COMMENT "Generating image reference outputs with python3-opencv")
add_custom_target(image_refs ALL DEPENDS ${LS_IMAGE_REFS}/stamp)

ls_add_test(test_resize image/test_resize.c image/ref_util.c)
ls_add_test(test_face image/test_face.c image/ref_util.c)
ls_add_test(test_codec image/test_codec.c image/ref_util.c)
ls_add_alloc_test(test_image_alloc image/test_image_alloc.c image/ref_util.c)
foreach(t test_resize test_face)
  add_dependencies(${t} image_refs)
endforeach()
if(NOT LS_SANITIZE STREQUAL "")
  target_compile_definitions(test_resize PRIVATE LS_TEST_SANITIZED=1)
  target_compile_definitions(test_face PRIVATE LS_TEST_SANITIZED=1)
endif()

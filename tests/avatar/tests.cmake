ls_add_test(test_croprect avatar/test_croprect.c)
ls_add_test(test_avatar avatar/test_avatar.c avatar/fixture.c)
ls_add_alloc_test(test_avatar_alloc avatar/test_avatar_alloc.c avatar/fixture.c)
# test_avatar decodes the reference video written by tools/gen_image_refs.py.
add_dependencies(test_avatar image_refs)

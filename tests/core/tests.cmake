ls_add_test(test_core core/test_core.c)

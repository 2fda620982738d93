ls_add_test(test_core core/test_core.c)
ls_add_test(test_threadpool core/test_threadpool.c)

ls_add_test(test_threadpool pipeline/test_threadpool.c)

ls_add_test(test_threadpool pipeline/test_threadpool.c)
ls_add_test(test_features pipeline/test_features.c)


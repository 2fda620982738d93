ls_add_test(test_features pipeline/test_features.c)


ls_add_test(test_features pipeline/test_features.c)
ls_add_test(test_silence pipeline/test_silence.c)

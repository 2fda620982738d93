ls_add_test(test_mel audio/test_mel.c)
target_link_libraries(test_mel PRIVATE PkgConfig::CJSON)
ls_add_test(test_decode audio/test_decode.c)
ls_add_alloc_test(test_mel_alloc audio/test_mel_alloc.c)

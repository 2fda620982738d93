ls_add_test(test_server_config server/test_config.c)
ls_add_test(test_registry server/test_registry.c)

ls_add_test(test_core core/test_core.c)
ls_add_test(test_threadpool core/test_threadpool.c)
# The layers of src/ read from the sources (no compiler): no #include and no link from a
# lower layer to a higher one or between siblings; each failure names its file and line.
add_test(NAME layering COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/core/layering.py
                               ${CMAKE_SOURCE_DIR}/src)

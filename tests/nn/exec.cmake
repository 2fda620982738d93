# The executors: reference op semantics, engine vs reference, allocations.
ls_add_test(test_ref nn/test_ref.c nn/test_engine_graphs.c)
ls_add_test(test_engine nn/test_engine.c nn/test_engine_graphs.c)
ls_add_alloc_test(test_engine_alloc nn/test_engine_alloc.c nn/test_engine_graphs.c)
ls_add_test(test_engine_models nn/test_engine_models.c)
add_dependencies(test_engine_models ls_test_models)
# The engine's layout follows the CPU (nChw16c with AVX-512, nChw8c with
# AVX2): on an AVX-512 machine, run the executor tests in the AVX2 layout too.
foreach(t test_engine test_engine_models)
  add_test(NAME ${t}_avx2 COMMAND ${t})
  set_tests_properties(${t}_avx2 PROPERTIES TIMEOUT 900
                       ENVIRONMENT "${LS_TEST_ENV};ONEDNN_MAX_CPU_ISA=AVX2")
endforeach()
ls_add_test(test_engine_cli nn/test_engine_cli.c)
add_dependencies(test_engine_cli ls_test_models lipsync)
# libgomp spins idle threads by default; on shared cores that stalls every
# parallel region (see bench/README.md), so the executor tests let them sleep.
foreach(t test_engine test_engine_alloc test_engine_models test_engine_cli test_engine_avx2
        test_engine_models_avx2)
  if(TEST ${t})
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=passive")
  endif()
endforeach()

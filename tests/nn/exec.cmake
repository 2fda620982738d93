# The storage planner alone (no oneDNN, no graph).
ls_add_test(test_plan nn/test_plan.c)
# The executors: reference op semantics, engine vs reference, allocations.
ls_add_test(test_ref nn/test_ref.c nn/test_engine_graphs.c)
ls_add_test(test_engine nn/test_engine.c nn/test_engine_graphs.c)
ls_add_alloc_test(test_engine_alloc nn/test_engine_alloc.c nn/test_engine_graphs.c)
ls_add_test(test_engine_models nn/test_engine_models.c)
add_dependencies(test_engine_models ls_test_models)
# oneDNN's kernels, and with them the layouts the engine propagates, follow
# the ISA it reports (nChw8c / brgemm-free on AVX2, nhwc brgemm convs on
# AVX-512, bf16 brgemm with AVX-512 BF16): the executor tests also run with
# oneDNN capped at each ISA class, so one machine runs every class it can.
# A cap above what the CPU has is harmless (oneDNN then runs what it has).
# Not in the ThreadSanitizer build: the ISA paths are the same code on the
# same threads there, the plain and ASan builds cover them, and TSan runs
# them 20-50x slower within CI's time.
set(LS_ENGINE_ISAS AVX2 AVX512_CORE AVX512_CORE_BF16)
if(LS_SANITIZE STREQUAL "thread")
  set(LS_ENGINE_ISAS AVX2)  # test_engine_avx2 as before this list existed
endif()
set(LS_ENGINE_ISA_TESTS)
foreach(isa ${LS_ENGINE_ISAS})
  string(TOLOWER ${isa} isa_lower)
  foreach(t test_engine test_engine_models)
    add_test(NAME ${t}_${isa_lower} COMMAND ${t})
    set_tests_properties(${t}_${isa_lower} PROPERTIES TIMEOUT 900
                         ENVIRONMENT "${LS_TEST_ENV};ONEDNN_MAX_CPU_ISA=${isa}")
    list(APPEND LS_ENGINE_ISA_TESTS ${t}_${isa_lower})
  endforeach()
endforeach()
ls_add_test(test_engine_cli nn/test_engine_cli.c)
add_dependencies(test_engine_cli ls_test_models lipsync)
# libgomp spins idle threads by default; on shared cores that stalls every
# parallel region (see bench/README.md), so the executor tests let them sleep.
foreach(t test_engine test_engine_alloc test_engine_models test_engine_cli ${LS_ENGINE_ISA_TESTS})
  if(TEST ${t})
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=passive")
  endif()
endforeach()

# Runs one libFuzzer harness for a bounded time on a fresh copy of its seed
# corpus (the checked-in corpus is never written to).  Invoked by ctest:
#   cmake -DFUZZER=bin -DCORPUS=dir -DWORKDIR=dir -DSECONDS=n [-DDICT=file] -P run_fuzz.cmake
# With -DMISSING=1 it only fails, saying why (clang was not found).
if(MISSING)
  message(FATAL_ERROR
    "fuzz: clang was not found when the build was configured; the libFuzzer "
    "harnesses in t/fuzz need it (apt-get install clang), then re-run cmake.")
endif()

file(REMOVE_RECURSE "${WORKDIR}")
file(MAKE_DIRECTORY "${WORKDIR}/corpus")
file(COPY "${CORPUS}/" DESTINATION "${WORKDIR}/corpus")

set(args -max_total_time=${SECONDS} -max_len=8192 -timeout=10
         -print_final_stats=1 "-artifact_prefix=${WORKDIR}/")
if(DICT)
  list(APPEND args "-dict=${DICT}")
endif()
execute_process(COMMAND "${FUZZER}" ${args} "${WORKDIR}/corpus"
  WORKING_DIRECTORY "${WORKDIR}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR
    "fuzz: ${FUZZER} failed (${rc}); the crashing input is in ${WORKDIR}")
endif()

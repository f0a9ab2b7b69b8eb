#!/usr/bin/env bash
# Stage of packaging/run-tests.sh: the engine and its unit tests built with AddressSanitizer + UndefinedBehavior-
# Sanitizer (clang, -DCLOQ_SANITIZE=ON, GUI off) in the instrumented tree that the fuzz stage shares
# (packaging/configure-sanitized.sh), running the parser/writer/engine suites
# (SUITES below) except `slow` ones. Any sanitizer report fails the suite that triggered it (UBSan aborts: -fno-sanitize-recover).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/cloq-ccache}
BUILD=$(bash packaging/configure-sanitized.sh)
# The suites that exercise the parsers, the file writers and the engine end to end (cli_layer runs GPTQ, every init
# and the metrics through `cloq layer`) — where memory errors and UB would live. The float64 Eigen comparisons
# (lowrank, metrics, layer_solver, magr) stay out: they are the slowest suites to compile and add no parser code.
SUITES=(core_test_safetensors core_test_npy core_test_gguf core_test_tokenizer_spm core_test_tokenizer_bpe
        core_test_profile cli_test_hostile_inputs core_test_quant_int core_test_gptq core_test_nf_quant
        cli_test_cli_layer core_test_atomic_file core_test_gptq_pack core_test_peft_export core_test_gptq_checkpoint
        core_test_model_files core_test_llama_model)
targets=() regex=""
for s in "${SUITES[@]}"; do targets+=("$s"); regex+="${regex:+|}^$s\$"; done
cmake --build "$BUILD" -j"$JOBS" --target cloq "${targets[@]}"

SUPP=$(pwd)/packaging/sanitizers
# Leak checking stays on; packaging/sanitizers/lsan.supp lists (with reasons) the only leaks tolerated, all in
# system libraries' one-time initialisation. halt_on_error: the first report ends the test with a failure.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:${ASAN_OPTIONS_EXTRA:-}"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$SUPP/ubsan.supp"
# Sanitized code runs 2-5x slower; the non-slow suites take seconds, well inside their 300 s CTest timeout.
ctest --test-dir "$BUILD" -R "$regex" -LE slow --output-on-failure -j"$JOBS"

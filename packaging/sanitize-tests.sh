#!/usr/bin/env bash
# Stage of packaging/run-tests.sh: the engine and its unit tests built with AddressSanitizer + UndefinedBehavior-
# Sanitizer (gcc, -DCLOQ_SANITIZE=ON, GUI off) in their own build folder, running every `unit` suite except the
# `slow` ones. Any sanitizer report fails the suite that triggered it (UBSan aborts: -fno-sanitize-recover).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_ASAN:-build-asan}
JOBS=${JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/cloq-ccache}

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOQ_SANITIZE=ON -DCLOQ_BUILD_GUI=OFF \
      -DCLOQ_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS"

SUPP=$(pwd)/packaging/sanitizers
# Leak checking stays on; packaging/sanitizers/lsan.supp lists (with reasons) the only leaks tolerated, all in
# system libraries' one-time initialisation. halt_on_error: the first report ends the test with a failure.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:${ASAN_OPTIONS_EXTRA:-}"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$SUPP/ubsan.supp"
# Sanitized code runs 2-5x slower; the non-slow suites take seconds, well inside their 300 s CTest timeout.
ctest --test-dir "$BUILD" -L unit -LE slow --output-on-failure -j"$JOBS"

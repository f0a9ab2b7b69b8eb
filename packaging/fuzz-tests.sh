#!/usr/bin/env bash
# Stage of packaging/run-tests.sh: bounded libFuzzer runs of every parser (tests/fuzz/fuzz_*.cpp), built with clang
# (-fsanitize=fuzzer,address,undefined) in the instrumented tree the sanitizer stage shares
# (packaging/configure-sanitized.sh).
#   1. replays each committed corpus (tests/fuzz/corpus/<target>/, which includes past findings) once via CTest;
#   2. fuzzes each target for FUZZ_SECONDS (default 30) from a scratch copy of its corpus, JOBS targets at a time;
#   3. fails on any crash, sanitizer report, leak, timeout or out-of-memory, naming the saved input.
# Prints executions per target and in total. FUZZ_SECONDS=0 does only the replay.
# New inputs found while fuzzing stay in the scratch copy (BUILD/fuzz-work); they are not added to the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/cloq-ccache}
BUILD=$(bash packaging/configure-sanitized.sh)  # the tree the sanitizer stage built: only the fuzzers are new
cmake --build "$BUILD" -j"$JOBS" --target fuzzers

export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS_EXTRA:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "fuzz-tests: replaying the committed corpora"
ctest --test-dir "$BUILD" -L fuzz --output-on-failure -j"$JOBS"
((FUZZ_SECONDS > 0)) || exit 0

WORK=$(cd "$BUILD" && pwd)/fuzz-work
rm -rf "$WORK" && mkdir -p "$WORK"
targets=()
for exe in "$BUILD"/tests/fuzz/fuzz_*; do
  [[ -x $exe && -f $exe ]] && targets+=("$(basename "$exe")")
done
((${#targets[@]} > 0)) || { echo "fuzz-tests: no fuzz targets were built" >&2; exit 1; }

fuzz_one() {  # fuzz_one TARGET: runs one fuzzer, leaves its log in $WORK/TARGET.log
  local t=$1 name=${1#fuzz_}
  local corpus="$WORK/$name-corpus" dict=()
  mkdir -p "$corpus" "$WORK/$name-artifacts"
  [[ -d $SRC/tests/fuzz/corpus/$name ]] && cp -r "$SRC/tests/fuzz/corpus/$name/." "$corpus/"
  [[ -f $SRC/tests/fuzz/dict/$name.dict ]] && dict=(-dict="$SRC/tests/fuzz/dict/$name.dict")
  # -rss_limit_mb / -malloc_limit_mb turn allocation bombs (a lying length that makes a parser reserve gigabytes)
  # into findings; -timeout turns a hang (or quadratic blow-up) on one input into a finding.
  "$BUILD/tests/fuzz/$t" "$corpus" "${dict[@]}" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$WORK/$name-artifacts/" >"$WORK/$t.log" 2>&1
}
export -f fuzz_one
export WORK SRC BUILD FUZZ_SECONDS

echo "fuzz-tests: fuzzing ${#targets[@]} targets for ${FUZZ_SECONDS}s each, $JOBS at a time"
status=0
printf '%s\n' "${targets[@]}" | xargs -P "$JOBS" -I{} bash -c 'fuzz_one {}' || status=$?

total=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$WORK/$t.log" | grep -o '[0-9]*$' | tail -1)
  execs=${execs:-0}
  total=$((total + execs))
  findings=("$WORK/$name-artifacts"/*)
  if [[ -e ${findings[0]} ]]; then
    status=1
    echo "fuzz-tests: $t FOUND A PROBLEM; input saved as ${findings[*]}"
    grep -a -m1 -E 'ERROR: |runtime error|terminate called|SUMMARY' "$WORK/$t.log" || true
    echo "  reproduce: $BUILD/tests/fuzz/$t ${findings[0]}"
    echo "  then add the input to tests/fuzz/corpus/$name/ and fix the parser"
  fi
  printf 'fuzz-tests: %-28s %12d executions\n' "$t" "$execs"
done
printf 'fuzz-tests: %-28s %12d executions\n' "TOTAL" "$total"
echo "$total" >"$WORK/total-executions"
if ((status != 0)); then
  echo "fuzz-tests: FAILED (logs in $WORK)" >&2
  exit 1
fi

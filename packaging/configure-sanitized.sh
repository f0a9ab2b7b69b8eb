#!/usr/bin/env bash
# Configures the one instrumented build tree (clang, ASan + UBSan, libFuzzer) that both packaging/sanitize-tests.sh
# and packaging/fuzz-tests.sh use: the engine is compiled once for both stages (CI's 45 minutes on 2 cores do not
# fit two more builds of the engine), GUI and benchmarks off. Prints the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_SAN:-build-san}
command -v clang++ >/dev/null || { echo "configure-sanitized: clang++ not found (packaging/install-deps.sh installs it)" >&2; exit 1; }
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOQ_SANITIZE=ON \
  -DCLOQ_FUZZ=ON -DCLOQ_BUILD_GUI=OFF -DCLOQ_BUILD_BENCH=OFF >/dev/null
echo "$BUILD"

#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: install dependencies, build, run every CTest suite.
# Later stages (sanitizer build, bounded fuzzing, Python interoperability) are appended by their issues.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
BUILD=${BUILD:-build}

bash packaging/install-deps.sh
# SmolLM2-135M (GGUF) for the slow tests: fetched into a cache outside the repository; the tests find it here.
CLOQ_SMOLLM2_GGUF=${CLOQ_SMOLLM2_GGUF:-$(bash packaging/fetch-smollm2.sh)}  # a failed fetch stops here (set -e)
export CLOQ_SMOLLM2_GGUF
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/cloq-ccache}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD" -j"$JOBS"
ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS"
# Python interoperability (issue 5): transformers + PEFT load the exports and match cloq eval's logits. It fails
# loudly when its environment cannot be built, unless CLOQ_INTEROP=skip is set explicitly.
bash tests/interop/check_peft_interop.sh "$BUILD/app/cloq"

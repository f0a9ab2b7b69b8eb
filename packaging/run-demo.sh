#!/usr/bin/env bash
# Install dependencies, build, and start CLoQ Studio on the bundled demo model (stories260K).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
bash packaging/install-deps.sh
# The second demo model, SmolLM2-135M (GGUF), fetched into a cache outside the repository.
CLOQ_SMOLLM2_GGUF=${CLOQ_SMOLLM2_GGUF:-$(bash packaging/fetch-smollm2.sh)}  # a failed fetch stops here (set -e)
export CLOQ_SMOLLM2_GGUF
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/cloq-ccache}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$JOBS"
if [[ -x build/app/cloq-studio ]]; then
  exec build/app/cloq-studio --demo "$@"
fi
echo "cloq-studio is not built yet; the command line works: build/app/cloq --help" >&2
exec build/app/cloq --help

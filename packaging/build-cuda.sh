#!/usr/bin/env bash
# Builds the CUDA variant of the engine and CLI (no Qt) against a CUDA LibTorch taken from the PyTorch wheel on
# PyPI. The wheel and the build live outside the repository (CLOQ_CUDA_CACHE). Needs the CUDA toolkit (nvcc);
# a GPU is needed only to run it.
#   packaging/build-cuda.sh            # configure + build into $CLOQ_CUDA_CACHE/build
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
TORCH_VERSION=${TORCH_VERSION:-2.15.0}       # PyPI's default build of this version is CUDA 13 (cuda-toolkit 13.x)
CACHE=${CLOQ_CUDA_CACHE:-$HOME/.cache/cloq-cuda}
ARCHS=${TORCH_CUDA_ARCH_LIST:-9.0}           # Hopper (H100/H200); add e.g. "8.0;9.0" for A100 too
PY=${PYTHON:-python3}
mkdir -p "$CACHE"

if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then export PATH=/usr/local/cuda/bin:$PATH; fi
command -v nvcc >/dev/null || { echo "build-cuda: nvcc not found; install the CUDA toolkit" >&2; exit 1; }

TORCH_ROOT=$CACHE/libtorch-$TORCH_VERSION/torch
if [[ ! -f $TORCH_ROOT/share/cmake/Torch/TorchConfig.cmake ]]; then
  whl=$(ls "$CACHE"/torch-"$TORCH_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z $whl ]]; then
    "$PY" -m pip download --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
      --python-version 3.11 "torch==$TORCH_VERSION" -d "$CACHE"
    whl=$(ls "$CACHE"/torch-"$TORCH_VERSION"-*.whl | head -n1)
  fi
  rm -rf "$CACHE/libtorch-$TORCH_VERSION.tmp"
  unzip -q "$whl" 'torch/lib/*' 'torch/include/*' 'torch/share/*' -d "$CACHE/libtorch-$TORCH_VERSION.tmp"
  mv "$CACHE/libtorch-$TORCH_VERSION.tmp" "$CACHE/libtorch-$TORCH_VERSION"
fi

# CMAKE_PREFIX_PATH first: otherwise TorchConfig's find_library picks Debian's CPU libtorch.so from /usr/lib.
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/cloq-ccache}
cmake -S "$SRC" -B "$CACHE/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLOQ_BUILD_GUI=OFF \
  -DCMAKE_PREFIX_PATH="$TORCH_ROOT" -DTorch_DIR="$TORCH_ROOT/share/cmake/Torch" \
  -DTORCH_CUDA_ARCH_LIST="$ARCHS" -DCMAKE_CUDA_ARCHITECTURES="${ARCHS//./}" "$@"
cmake --build "$CACHE/build" -j"${JOBS:-$(nproc)}" --target cloq
echo "build-cuda: built $CACHE/build/app/cloq against LibTorch $TORCH_VERSION (CUDA)"

#!/usr/bin/env bash
# Installs every Debian package CLoQ Studio needs to build, test, run and package.
# Idempotent: packages already present are skipped by apt; safe to run repeatedly.
set -euo pipefail

PKGS=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git python3 python3-venv python3-pip
  clang libclang-rt-dev
  # engine
  libtorch-dev libopenblas0-pthread libeigen3-dev nlohmann-json3-dev libsentencepiece-dev
  # GUI
  qt6-base-dev qt6-base-dev-tools qt6-charts-dev qt6-svg-dev libqt6svg6 libqt6opengl6-dev libgl-dev
  libquazip1-qt6-dev fonts-dejavu-core qt6-qpa-plugins
  # screenshots, packaging, metadata validation
  xvfb xauth appstream dpkg-dev file
  # the Python interoperability check (tests/interop): the venv takes torch from here, the rest from PyPI
  python3-torch python3-numpy
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PKGS[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

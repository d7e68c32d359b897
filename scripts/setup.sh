#!/usr/bin/env bash
# Sets up, configures and builds aha on Debian 12. Safe to run again: each step is skipped
# when already done.
#   ./scripts/setup.sh [TARGET ...]    build only these targets (e.g. aha); default: everything
# Environment:
#   LIBTORCH=/path/to/libtorch   use that LibTorch instead of installing pip's torch==2.11.0
#   AHA_BUILD_DIR=build          where to build
#   AHA_CMAKE_ARGS="..."         extra cmake arguments
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${AHA_BUILD_DIR:-$root/build}
torch_version=2.11.0

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# 1. Debian packages: compilers, cmake, and the libraries aha uses.
packages=(g++ cmake ninja-build pkg-config git python3 python3-venv python3-pip
          rapidjson-dev libboost-dev libsqlite3-dev libpcre2-dev libseccomp-dev
          libgtest-dev libgmock-dev libcld2-dev libcld2-0
          libjs-chart.js  # the dashboard's charts, embedded in the binary at build time
          libgloo-dev     # headers for LibTorch's ProcessGroupGloo (multi-process training on CPUs)
          chromium)       # the dashboard's browser test (test_dashboard)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Python with venv support (pyenv or the system's) stands in for python3-venv/-pip.
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}"); missing=("${missing[@]/python3-pip}")
fi
read -r -a missing <<< "${missing[*]}"
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. LibTorch: the user's, else pip's torch==2.11.0 in a project-local virtual environment.
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release)
if [ -n "${LIBTORCH:-}" ]; then
  say "using LibTorch at $LIBTORCH"
elif ! ls "$root"/.venv/lib/python3*/site-packages/torch/share/cmake/Torch/TorchConfig.cmake >/dev/null 2>&1; then
  say "installing torch==$torch_version into .venv (LibTorch comes with it; ~530 MB download)"
  python3 -m venv "$root/.venv"
  # Only LibTorch's files are used: skip torch's Python dependencies and its CUDA wheels, except
  # the two small libraries libtorch_cpu.so itself links (cudart, cupti).
  "$root/.venv/bin/pip" install -q --disable-pip-version-check --no-deps "torch==$torch_version" \
    "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cupti==13.0.85"
fi

# 3. Configure and build.
if [ ! -f "$build_dir/build.ninja" ]; then
  say "configuring in $build_dir"
  cmake -S "$root" -B "$build_dir" "${cmake_args[@]}" ${AHA_CMAKE_ARGS:-} >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
say "building ${*:-everything} (the first build takes several minutes on 2 cores)"
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"

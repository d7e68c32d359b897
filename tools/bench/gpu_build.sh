#!/usr/bin/env bash
# On the GPU machine (see ../shared/device/README.md): configure build-gpu/ as .devdeps/build.sh
# does, but build only the named targets (a whole build with the test suites takes minutes of
# device time that a benchmark does not need).
#   bash tools/bench/gpu_build.sh aha bench_learner ...     then: export LD_LIBRARY_PATH as printed
# ../shared/device/pack.sh does not fetch every package the project configures with: beside its
# .debs, .devdeps needs these (on your machine: cd .devdeps && apt-get download PACKAGE ...).
set -euo pipefail
(($#)) || { echo "usage: $0 TARGET..." >&2; exit 2; }
for p in libjs-chart.js libcld2-dev libcld2-0 libgloo-dev; do
  ls .devdeps/"${p}"_*.deb > /dev/null 2>&1 \
    || { echo "missing .devdeps/${p}_*.deb: on your machine, cd .devdeps && apt-get download $p" >&2; exit 1; }
done
mkdir -p /opt/deps
for f in .devdeps/*.deb; do dpkg -x "$f" /opt/deps; done
export PKG_CONFIG_SYSROOT_DIR=/opt/deps
export PKG_CONFIG_PATH=/opt/deps/usr/lib/x86_64-linux-gnu/pkgconfig:/opt/deps/usr/share/pkgconfig
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
mkdir -p build-gpu
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix;/opt/deps/usr" \
  > build-gpu/cmake.log 2>&1 || { tail -40 build-gpu/cmake.log; exit 1; }
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build-gpu -j "$(nproc)" "${targets[@]}" > build-gpu/build.log 2>&1 \
  || { grep -E "error|FAILED" -A3 build-gpu/build.log | head -60; exit 1; }
echo "export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:\$LD_LIBRARY_PATH"

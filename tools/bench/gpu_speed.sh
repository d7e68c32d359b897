#!/usr/bin/env bash
# One device call for the decode-speed work (issue #4): configure + build only the targets it
# needs, the rollout benchmark without transformers (0.5B and 1.5B: the ATen sampler, the fused
# sampler, the fused sampler with span bucket 64), then the CUDA tests (rollout|policy). Logs to $OUT (or ./gpu-out).
#   bash tools/bench/gpu_speed.sh      (needs .devdeps with the Debian -dev packages, as gpu_rollout.sh)
set -uo pipefail
out=${OUT:-gpu-out}; mkdir -p "$out"
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
for f in .devdeps/*.deb; do dpkg -x "$f" /opt/deps; done
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PKG_CONFIG_SYSROOT_DIR=/opt/deps PKG_CONFIG_PATH=/opt/deps/usr/lib/x86_64-linux-gnu/pkgconfig:/opt/deps/usr/share/pkgconfig
tp=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$tp;/opt/deps/usr" > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
cmake --build build-gpu -j 16 --target aha bench_rollout test_policy test_rollout >> "$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
stamp built
nvidia-smi -L
for config in recipes/models/qwen2.5-0.5b.json recipes/models/qwen2.5-1.5b.json; do
  for args in "--no-fused-sampler" "" "--span-bucket 64"; do
    stamp "bench rollout $config $args"
    timeout 90 python3 tools/bench/rollout_throughput.py --build build-gpu --config "$config" --skip-hf $args 2>&1 \
      | grep -E "bandwidth_bound|rollout_tokens_s" | tee -a "$out/bench_rollout.txt"
  done
done
stamp "tests"
timeout 200 ctest --test-dir build-gpu -j 8 -L "rollout|policy" --output-on-failure > "$out/ctest.log" 2>&1; tail -4 "$out/ctest.log"
grep -E "\*\*\*Failed|Not Run|SEGFAULT|Exception|Timeout" "$out/ctest.log" | head -20
grep -E "(CudaSampler|RolloutCuda).*(Passed|Skipped|Failed)" "$out/ctest.log" | head -12
stamp done

#!/usr/bin/env bash
# One device call for the decode-speed work (issue #4): configure + build only the targets it
# needs, then the rollout benchmark with and without the decode kernels (0.5B and 1.5B), the 0.5B
# one against transformers, and the CUDA tests (rollout|policy). Logs to $OUT (or ./gpu-out).
#   bash tools/bench/gpu_speed.sh         (needs .devdeps with the Debian -dev packages, as gpu_rollout.sh)
#   bash tools/bench/gpu_speed.sh quick   (the decode-kernel tests and the 0.5B benchmark, no transformers)
#   bash tools/bench/gpu_speed.sh transformers   (0.5B and 1.5B, default path, each against transformers)
set -uo pipefail
out=${OUT:-gpu-out}; mkdir -p "$out"
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
for f in .devdeps/*.deb; do dpkg -x "$f" /opt/deps; done
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PKG_CONFIG_SYSROOT_DIR=/opt/deps PKG_CONFIG_PATH=/opt/deps/usr/lib/x86_64-linux-gnu/pkgconfig:/opt/deps/usr/share/pkgconfig
tp=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$tp;/opt/deps/usr" > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
cmake --build build-gpu -j 16 --target aha bench_rollout bench_decode_kernels test_policy_tokenizer test_policy_model test_policy_learner test_rollout >> "$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
stamp built
nvidia-smi -L
kernels() {
  for config in recipes/models/qwen2.5-0.5b.json recipes/models/qwen2.5-1.5b.json; do
    for context in 128 384 639; do
      stamp "bench_decode_kernels $config context $context"
      timeout 60 build-gpu/bench/bench_decode_kernels --config "$config" --context $context --span 640 2>&1 \
        | tee -a "$out/bench_decode_kernels.txt"
    done
  done
}
bench() {
  stamp "bench rollout $*"
  timeout 150 python3 tools/bench/rollout_throughput.py --build build-gpu "$@" 2>&1 \
    | grep -E "bandwidth_bound|rollout_tokens_s|speedup|transformers" | tee -a "$out/bench_rollout.txt"
}
decode_tests() {
  stamp "decode kernel tests"
  timeout 120 build-gpu/tests/rollout/test_rollout --gtest_filter='*Decode*:*RolloutCuda*' 2>&1 \
    | grep -E "FAILED|Failure|Expected|actual|mean \||PASSED" | head -40
}
if [ "${1:-}" = transformers ]; then  # both shapes, default decode path, against transformers
  for config in recipes/models/qwen2.5-0.5b.json recipes/models/qwen2.5-1.5b.json; do bench --config "$config"; done
  stamp done
  exit 0
fi
if [ "${1:-}" = quick ]; then
  decode_tests
  kernels
  bench --skip-hf --no-decode-kernels
  bench --skip-hf
  bench --skip-hf --sdpa-decode-attention
  stamp done
  exit 0
fi
decode_tests
kernels
for config in recipes/models/qwen2.5-0.5b.json recipes/models/qwen2.5-1.5b.json; do
  bench --config "$config" --skip-hf --no-decode-kernels
  bench --config "$config" --skip-hf
  bench --config "$config" --skip-hf --sdpa-decode-attention
done
bench  # 0.5B with the kernels against transformers, side by side
stamp "tests"
timeout 200 ctest --test-dir build-gpu -j 8 -L "rollout|policy" --output-on-failure > "$out/ctest.log" 2>&1; tail -4 "$out/ctest.log"
grep -E "\*\*\*Failed|Not Run|SEGFAULT|Exception|Timeout" "$out/ctest.log" | head -20
grep -E "(CudaSampler|RolloutCuda|Decode).*(Passed|Skipped|Failed)" "$out/ctest.log" | head -30
stamp done

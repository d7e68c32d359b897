#!/usr/bin/env bash
# On a GPU machine with 2 GPUs (nvidia-h200-x2; see ../shared/device/README.md): build with CUDA,
# run the weight-sync tests, then tools/bench/bench_weight_sync over NCCL, rank 0 (the learner) on
# cuda:0 and rank 1 (a rollout worker) on cuda:1, for the Qwen2.5-0.5B, 1.5B and 7B shapes in
# bf16 at bucket sizes of 16, 64 and 256 MiB. Each line says the median sync time, GB/s and the
# fraction of the link's bound (--link-gbs, default 450: NVLink 4 one way on an H200; anchors:
# NeMo-RL 0.21-0.34 s for a 4B model on H100, verl "under 300 ms" for 7B). Logs go to $OUT.
#   bash tools/bench/gpu_weight_sync.sh [LINK_GBS]
# Not yet measured here: async vs on-policy step time, which needs the split layout's rollout
# worker processes (not built yet; see README.md).
set -uo pipefail
link=${1:-450}
out=${OUT:-gpu-out}
mkdir -p "$out"
bash .devdeps/build.sh > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi -L
nvidia-smi topo -m 2>/dev/null | head -5
echo "== tests (weight sync, Gloo on loopback)"
ctest --test-dir build-gpu -R WeightSync --output-on-failure 2>&1 | tail -3
cmake --build build-gpu --target bench_weight_sync > "$out/build_bench.log" 2>&1 || { tail -30 "$out/build_bench.log"; exit 1; }
# The 7B shape: Qwen2.5-7B's published config.json sizes on the 1.5B file's other fields.
seven="$out/qwen2.5-7b.json"
sed -e 's/"hidden_size": 1536/"hidden_size": 3584/' -e 's/"intermediate_size": 8960/"intermediate_size": 18944/' \
    -e 's/"num_attention_heads": 12/"num_attention_heads": 28/' -e 's/"num_key_value_heads": 2/"num_key_value_heads": 4/' \
    -e 's/"tie_word_embeddings": true/"tie_word_embeddings": false/' -e 's/"vocab_size": 151936/"vocab_size": 152064/' \
    recipes/models/qwen2.5-1.5b.json > "$seven"
port=$((29600 + RANDOM % 1000))
for config in recipes/models/qwen2.5-0.5b.json recipes/models/qwen2.5-1.5b.json "$seven"; do
  echo "== $config"
  for r in 0 1; do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      build-gpu/bench/bench_weight_sync --model "$config" --dtype bfloat16 --bucket-mb 16 64 256 --repeats 5 \
      --link-gbs "$link" --backend nccl --device cuda > "$out/rank$r.log" 2>&1 &
  done
  wait
  cat "$out/rank0.log" | tee -a "$out/bench_weight_sync.txt"
  grep -v "^$" "$out/rank1.log" | head -5
  port=$((port + 1))
done

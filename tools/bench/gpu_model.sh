#!/usr/bin/env bash
# On the GPU machine (see ../shared/device/README.md): build with CUDA, run the whole test
# suite with the CUDA tests enabled, regenerate the transformers fixtures and compare them
# with the committed ones, check that aha-saved models load in transformers, and run the model
# benchmark. Logs go to $OUT (or ./gpu-out).
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
bash .devdeps/build.sh > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi -L
echo "== tests"
ctest --test-dir build-gpu -j 8 --output-on-failure > "$out/ctest.log" 2>&1; tail -5 "$out/ctest.log"
grep -c "Passed" "$out/ctest.log" | sed 's/^/passed: /'; grep -E "\*\*\*Failed|Not Run" "$out/ctest.log" | head -20
grep -E "CudaLogits.*(Passed|Skipped|Failed)" "$out/ctest.log" | head -3
if grep -q SEGFAULT "$out/ctest.log"; then  # a backtrace of the first crash
  t=$(grep -m1 SEGFAULT "$out/ctest.log" | sed -E 's/.* - ([^ ]+) .*/\1/')
  cuda-gdb -batch -ex run -ex bt --args build-gpu/tests/policy/model/test_policy_model --gtest_filter="$t" 2>&1 | tail -25
fi
echo "== fixtures regenerated here vs committed"
python3 tests/fixtures/make_model_fixtures.py --out /tmp/fixtures > /dev/null 2>&1
python3 - <<'PY'
import os, torch
from safetensors.torch import load_file
base = "tests/fixtures/models"
for name in sorted(os.listdir(base)):
    a = load_file(os.path.join(base, name, "expected.safetensors"))
    b = load_file(os.path.join("/tmp/fixtures", name, "expected.safetensors"))
    diffs = {k: (a[k].double() - b[k].double()).abs().max().item() for k in a if k in b and a[k].numel()}
    worst = max(diffs, key=diffs.get)
    print(f"{name:28s} identical: {all(v == 0 for v in diffs.values())}  largest difference {diffs[worst]:.2e} in {worst}")
PY
tar -C /tmp/fixtures -czf "$out/fixtures_models.tgz" .
echo "== transformers reloads aha-saved models"
python3 tests/fixtures/check_hf_reload.py --aha build-gpu/aha 2>&1 | grep -v "Loading weights"
echo "== benchmark"
python3 tools/bench/model_load_prefill.py --build build-gpu 2>&1 | grep -v "Loading weights" | tee "$out/bench_model.txt"

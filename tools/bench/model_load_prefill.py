#!/usr/bin/env python3
"""Model load time and prefill throughput: aha vs Hugging Face transformers, in one run.

Makes a random Qwen2.5-0.5B-shaped bf16 checkpoint with `aha model init`, then measures
  load:    aha load_model(dir, cuda, bf16)  vs  AutoModelForCausalLM.from_pretrained(dir, dtype=bf16,
           device_map="cuda")  -- median of N loads each, page cache warm for both, CUDA context
           created before timing in both.
  prefill: batch 16 x 1024 random tokens, hidden states for all tokens and logits for the last
           (generation's prefill), bf16, transformers with attn_implementation="sdpa".
Targets (issue #2): load <= 0.5x transformers' time; prefill >= 1.0x transformers' tokens/s.

Run from the build directory's parent: python3 tools/bench/model_load_prefill.py --build build-gpu
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM


def read_all(path):
    for name in os.listdir(path):
        with open(os.path.join(path, name), "rb") as f:
            while f.read(1 << 24):
                pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build-gpu")
    p.add_argument("--config", default="recipes/models/qwen2.5-0.5b.json")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--loads", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="aha_bench_model_")
    model_dir = os.path.join(work, "model")
    subprocess.run([os.path.join(args.build, "aha"), "model", "init", "--config", args.config, "--out", model_dir,
                    "--dtype", "bfloat16"], check=True)
    read_all(model_dir)

    aha = json.loads(subprocess.run(
        [os.path.join(args.build, "bench", "bench_model"), "--model", model_dir, "--batch", str(args.batch),
         "--seq", str(args.seq), "--loads", str(args.loads), "--iters", str(args.iters)],
        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])

    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    hf_load = []
    model = None
    for _ in range(args.loads):
        del model
        model = None
        torch.cuda.empty_cache()
        t = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, device_map="cuda",
                                                     attn_implementation="sdpa")
        torch.cuda.synchronize()
        hf_load.append(time.perf_counter() - t)
    model.eval()
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq), device="cuda")
    with torch.inference_mode():
        for _ in range(2):
            model(input_ids=ids, logits_to_keep=1, use_cache=False)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(args.iters):
            model(input_ids=ids, logits_to_keep=1, use_cache=False)
        torch.cuda.synchronize()
        hf_prefill = (time.perf_counter() - t) / args.iters
    hf_tps = args.batch * args.seq / hf_prefill

    # The transfer floor: host-to-device bandwidth of this machine for the checkpoint's bytes.
    nbytes = sum(os.path.getsize(os.path.join(model_dir, f)) for f in os.listdir(model_dir))
    host_pinned = torch.empty(nbytes, dtype=torch.uint8).pin_memory()
    host_pageable = torch.empty(nbytes, dtype=torch.uint8)
    host_pageable.fill_(1)
    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    h2d = {}
    for name, src in [("pinned", host_pinned), ("pageable", host_pageable)]:
        dev.copy_(src)
        torch.cuda.synchronize()
        t = time.perf_counter()
        dev.copy_(src)
        torch.cuda.synchronize()
        h2d[name] = nbytes / (time.perf_counter() - t) / 1e9
    del dev, host_pinned, host_pageable

    aha_load = statistics.median(aha["load_s"])
    hf_load_med = statistics.median(hf_load)
    print(f"model: {args.config} bf16, {aha['parameters']/1e6:.0f}M parameters, device {torch.cuda.get_device_name()}")
    print(f"load_s            aha {aha_load:.3f}  transformers {hf_load_med:.3f}  ratio {aha_load/hf_load_med:.2f}x  (target <= 0.5x)  runs aha {aha['load_s']} hf {[round(x, 3) for x in hf_load]}")
    print(f"aha load phases (last load): {aha['last_load']}")
    print(f"host-to-device GB/s: pinned {h2d['pinned']:.1f}, pageable {h2d['pageable']:.1f}; "
          f"floor for {nbytes/1e9:.2f} GB = {nbytes/1e9/h2d['pinned']:.3f} s")
    print(f"prefill_tokens_s  aha {aha['prefill_tokens_per_s']:.0f}  transformers {hf_tps:.0f}  ratio {aha['prefill_tokens_per_s']/hf_tps:.2f}x  (target >= 1.0x)  batch {args.batch} x {args.seq}")


if __name__ == "__main__":
    main()

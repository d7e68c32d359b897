#!/usr/bin/env python3
"""Rollout throughput: aha's engine vs Hugging Face transformers' generate(), in one run.

Makes a random bf16 checkpoint of the given shape with `aha model init`, writes random prompts,
then measures, with the same weights, prompts and batch:
  aha:          build/bench/bench_rollout (CUDA graphs, bf16), best of --iters after a first call
  transformers: model.generate(do_sample=True, temperature 1, top_k 0, top_p 1,
                num_return_sequences=G, min_new_tokens = max_new_tokens = --new so EOS is ignored),
                bf16, attn_implementation="sdpa", after a short warm-up call.
Workload (issue #4): 64 prompts x 128 tokens, G = 8, 512 new tokens each.
Prints generated tokens/s for both and the ratio (target >= 10x), and aha's fraction of the
memory-bandwidth bound: (weights + KV cache of the mean context) bytes per decode step over the
measured step time, against the device's peak bandwidth (target >= 30%).

Run from the repository root: python3 tools/bench/rollout_throughput.py --build build-gpu
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM

# Peak HBM bandwidth (bytes/s) by device name; the first matching key wins.
PEAK_BANDWIDTH = [("H200", 4.8e12), ("H100 PCIe", 2.0e12), ("H100 NVL", 3.9e12), ("H100", 3.35e12),
                  ("A100-SXM4-80GB", 2.04e12), ("A100", 1.56e12), ("L40S", 0.864e12)]


def peak_bandwidth(name):
    for key, value in PEAK_BANDWIDTH:
        if key in name:
            return value
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build-gpu")
    p.add_argument("--config", default="recipes/models/qwen2.5-0.5b.json")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--new", type=int, default=512)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--skip-hf", action="store_true")
    p.add_argument("--span-bucket", type=int, default=128, help="EngineOptions::span_bucket for aha")
    p.add_argument("--no-fused-sampler", action="store_true", help="EngineOptions::fused_sampler off for aha")
    p.add_argument("--no-decode-kernels", action="store_true", help="aha decodes with LibTorch ops, not its kernels")
    p.add_argument("--sdpa-decode-attention", action="store_true", help="aha decodes with SDPA, not its attention kernel")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="aha_bench_rollout_")
    model_dir = os.path.join(work, "model")
    subprocess.run([os.path.join(args.build, "aha"), "model", "init", "--config", args.config, "--out", model_dir,
                    "--dtype", "bfloat16"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(model_dir, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(3, vocab, (args.prompts, args.prompt_len), generator=g)
    prompt_file = os.path.join(work, "prompts.txt")
    with open(prompt_file, "w") as f:
        for row in prompts.tolist():
            f.write(",".join(map(str, row)) + "\n")

    run = subprocess.run(
        [os.path.join(args.build, "bench", "bench_rollout"), "--model", model_dir, "--prompt-file", prompt_file,
         "--group", str(args.group), "--new", str(args.new), "--iters", str(args.iters),
         "--span-bucket", str(args.span_bucket)] + (["--no-fused-sampler"] if args.no_fused_sampler else [])
        + (["--no-decode-kernels"] if args.no_decode_kernels else [])
        + (["--sdpa-decode-attention"] if args.sdpa_decode_attention else []),
        capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit("bench_rollout failed:\n" + run.stderr[-4000:])
    aha = json.loads(run.stdout.strip().splitlines()[-1])

    hf_tps = None
    if not args.skip_hf:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa")
        model = model.cuda().eval()
        ids = prompts.cuda()
        mask = torch.ones_like(ids)
        kwargs = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, num_return_sequences=args.group,
                      pad_token_id=0)
        with torch.inference_mode():
            model.generate(ids, attention_mask=mask, min_new_tokens=8, max_new_tokens=8, **kwargs)
            torch.cuda.synchronize()
            t = time.perf_counter()
            out = model.generate(ids, attention_mask=mask, min_new_tokens=args.new, max_new_tokens=args.new, **kwargs)
            torch.cuda.synchronize()
            hf_s = time.perf_counter() - t
        generated = (out.shape[1] - args.prompt_len) * out.shape[0]
        hf_tps = generated / hf_s

    device = torch.cuda.get_device_name()
    peak = peak_bandwidth(device)
    print(f"model: {args.config} bf16, {aha['parameters']/1e6:.0f}M parameters, device {device}; "
          f"{args.prompts} prompts x {args.prompt_len} tokens x G={args.group}, {args.new} new tokens (EOS ignored)")
    ratio = f"ratio {aha['tokens_per_s']/hf_tps:.2f}x  (target >= 10x)" if hf_tps else "transformers skipped"
    print(f"rollout_tokens_s  aha {aha['tokens_per_s']:.0f}  transformers {hf_tps or 0:.0f}  {ratio}  "
          f"(aha prefill {aha['prefill_s']:.3f}s decode {aha['decode_s']:.3f}s, first call {aha['first_call_s']:.2f}s "
          f"with graph capture, {aha['graphs']} graphs)")
    achieved = aha["achieved_bytes_per_s"]
    if peak:
        print(f"bandwidth_bound   aha step {aha['step_s']*1e3:.2f} ms, {aha['bytes_per_step']/1e9:.2f} GB/step "
              f"(weights + mean-context KV), {achieved/1e12:.2f} TB/s of {peak/1e12:.2f} TB/s peak  "
              f"fraction {achieved/peak:.3f}  (target >= 0.30)")
    else:
        print(f"bandwidth_bound   aha {achieved/1e12:.2f} TB/s; unknown peak for {device}")
    print(f"memory_plan       {aha['memory_plan']}")


if __name__ == "__main__":
    main()

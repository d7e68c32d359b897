#!/usr/bin/env python3
"""Long-tailed rollout through `aha generate` as a user runs it (issue #19), against the engine's
fixed-length steady state and against transformers' `generate` on the same file.

Workload (numpy, seeded with --seed): --prompts prompts of random token ids, lengths uniform in
[96, 160]; G = --group samples each; completion lengths log-normal, round(--median x exp(--sigma z)),
clamped to [1, --cap] (defaults: median 256, sigma 0.9, cap 2,048; mean about 375, 1% at the cap).
They are written as one JSON Lines file, each line {"prompt_ids": [...], "max_new_tokens": [G
limits]}, and EOS is ignored, so every completion is exactly its drawn length.

Three measurements, one model (`aha model init --config CONFIG`, bf16, random weights), one run:
  aha generate   the whole process on the file: `aha generate --input F --output O -n G --batch
                 --batch --max-new-tokens --cap --ignore-eos` timed from start to exit (model load,
                 CUDA graph captures, decode with continuous batching, writing the output); tokens/s
                 = the file's completion tokens / wall seconds. The output is checked: N x G lines,
                 each exactly its limit long.
  fixed length   bench_rollout_longtail --modes fixed_length with the same shape, rows and mean
                 length: the engine's fixed-length steady state (every completion the mean length,
                 windows of --batch x G rows, warm). Target: aha generate >= 0.85 of it.
  transformers   AutoModelForCausalLM.generate (bf16, sdpa, sampling at temperature 1, no top-k),
                 the file's first --hf-batches batches of --batch prompts (x G rows, left-padded),
                 each row forced to end with EOS at its drawn length by a logits processor;
                 tokens/s over those batches (generate keeps a batch until its longest row ends, as
                 it would on the whole file). Target: aha generate >= 20x.

Run from the repository root on the GPU machine:
  python3 tools/bench/generate_longtail.py --build build-gpu --config recipes/models/qwen2.5-0.5b.json
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np

from forced_lengths import force_lengths_processor


def draw(args, vocab):
    rng = np.random.default_rng(args.seed)
    prompts = [rng.integers(0, vocab, size=int(rng.integers(96, 161))).tolist() for _ in range(args.prompts)]
    lengths = np.clip(np.round(args.median * np.exp(args.sigma * rng.standard_normal((args.prompts, args.group)))),
                      1, args.cap).astype(int)
    return prompts, lengths


def run_aha_generate(args, model_dir, path, out_path, lengths):
    cmd = [os.path.join(args.build, "aha"), "generate", "--model", model_dir, "--input", path, "--output", out_path,
           "-n", str(args.group), "--batch", str(args.batch), "--max-new-tokens", str(args.cap), "--ignore-eos",
           "--temperature", "1", "--top-p", "1", "--top-k", "0", "--seed", str(args.seed), "--device", args.device]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    count, wrong = 0, 0
    with open(out_path) as f:
        for line in f:
            d = json.loads(line)
            count += 1
            wrong += d["num_tokens"] != lengths[d["prompt_index"], d["sample_index"]]
    assert count == lengths.size, f"aha generate wrote {count} completions, expected {lengths.size}"
    assert wrong == 0, f"{wrong} completions are not their drawn length"
    return wall


def fixed_length(args, model_dir, mean):
    cmd = [os.path.join(args.build, "bench", "bench_rollout_longtail"), "--model", model_dir, "--prompts",
           str(args.prompts), "--group", str(args.group), "--rows", str(args.batch * args.group), "--modes",
           "fixed_length", "--fixed-new", str(mean), "--new", str(args.cap), "--median", str(args.median), "--sigma",
           str(args.sigma), "--seed", str(args.seed), "--device", args.device]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith('{"mode": "fixed_length'):
            return json.loads(line)
    raise RuntimeError("bench_rollout_longtail printed no fixed-length line:\n" + out)


def run_transformers(args, model_dir, prompts, lengths):
    import torch
    from hf_grpo import left_padded
    from transformers import AutoModelForCausalLM, LogitsProcessorList

    dev = args.device
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, device_map=dev,
                                                 attn_implementation="sdpa")
    model.eval()
    eos = model.config.eos_token_id
    eos = (eos[0] if isinstance(eos, list) else eos) if eos is not None else model.config.vocab_size - 1

    def batch(first, count, cap=None):
        ids, mask = left_padded(prompts[first:first + count], args.group, 0, dev)
        width = ids.shape[1]
        row_lengths = torch.tensor(lengths[first:first + count].reshape(-1), device=dev)
        if cap is not None:
            row_lengths = torch.clamp(row_lengths, max=cap)
        return ids, mask, row_lengths, width

    def generate(ids, mask, row_lengths, width):
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=int(row_lengths.max()), pad_token_id=0, eos_token_id=eos,
                             logits_processor=LogitsProcessorList([force_lengths_processor([eos], row_lengths, width)]))
        return out[:, width:]

    with torch.no_grad():
        generate(*batch(0, args.batch, cap=4))  # warm-up
        sync()
        tokens, seconds = 0, 0.0
        for b in range(args.hf_batches):
            ids, mask, row_lengths, width = batch(b * args.batch, args.batch)
            t = time.perf_counter()
            completions = generate(ids, mask, row_lengths, width)
            sync()
            seconds += time.perf_counter() - t
            produced = ((completions != eos).cumsum(1) == torch.arange(1, completions.shape[1] + 1, device=dev))
            got = produced.sum(1) + 1  # tokens before the EOS, plus the EOS
            assert bool((got == row_lengths).all()), "transformers did not end every row at its drawn length"
            tokens += int(row_lengths.sum())
    return tokens, seconds, torch.cuda.get_device_name() if dev.startswith("cuda") else dev


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build-gpu")
    p.add_argument("--config", default="recipes/models/qwen2.5-0.5b.json")
    p.add_argument("--prompts", type=int, default=1024)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--batch", type=int, default=64, help="prompts decoding at once (x group rows)")
    p.add_argument("--median", type=float, default=256)
    p.add_argument("--sigma", type=float, default=0.9)
    p.add_argument("--cap", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hf-batches", type=int, default=1)
    p.add_argument("--skip-hf", action="store_true")
    p.add_argument("--device", default="cuda", help="cpu: a check of the script with a tiny --config, not a figure")
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="aha_generate_longtail_")
    model_dir = os.path.join(work, "model")
    subprocess.run([os.path.join(args.build, "aha"), "model", "init", "--config", args.config, "--out", model_dir,
                    "--dtype", "bfloat16"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(model_dir, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    prompts, lengths = draw(args, vocab)
    path = os.path.join(work, "prompts.jsonl")
    with open(path, "w") as f:
        for ids, limits in zip(prompts, lengths):
            f.write(json.dumps({"prompt_ids": ids, "max_new_tokens": limits.tolist()}) + "\n")
    total = int(lengths.sum())
    mean = int(round(total / lengths.size))
    print(f"workload: {args.config}, {args.prompts} prompts x G {args.group}, {total} completion tokens "
          f"(mean {total / lengths.size:.1f}, longest {lengths.max()}, {int((lengths == args.cap).sum())} at the cap "
          f"{args.cap}), {args.batch * args.group} rows decoding at once", flush=True)

    wall = run_aha_generate(args, model_dir, path, os.path.join(work, "out.jsonl"), lengths)
    aha_tps = total / wall
    print(f"generate_longtail  aha generate (whole process) {aha_tps:.0f} tok/s  wall {wall:.2f} s", flush=True)
    fixed = fixed_length(args, model_dir, mean)
    print(f"generate_longtail  engine fixed length {mean}: {fixed['tokens_per_s']:.0f} tok/s  "
          f"aha generate / fixed {aha_tps / fixed['tokens_per_s']:.3f} (target >= 0.85)", flush=True)
    if args.skip_hf:
        return
    tokens, seconds, device = run_transformers(args, model_dir, prompts, lengths)
    hf_tps = tokens / seconds
    print(f"generate_longtail  transformers generate, first {args.hf_batches} batch(es): {hf_tps:.0f} tok/s "
          f"({tokens} tokens in {seconds:.1f} s)  aha generate / transformers {aha_tps / hf_tps:.1f}x "
          f"(target >= 20x)  device {device}", flush=True)


if __name__ == "__main__":
    main()

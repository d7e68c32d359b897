#!/usr/bin/env python3
"""Learner throughput: aha's GrpoTrainer vs the same GRPO loss in plain PyTorch over transformers.

Makes a random Qwen2.5-0.5B-shaped bf16 checkpoint with `aha model init`, then for a batch of
64 x (256 prompt + 768 completion) random tokens measures one learner step = forward + backward
over micro-batches of 8 + one AdamW step:
  aha:          build/bench/bench_learner (bf16 weights; with activation checkpointing; and
                --autocast: fp32 master weights under bf16 autocast)
  transformers: AutoModelForCausalLM (bf16, sdpa), logits of the completion positions only
                (logits_to_keep, as TRL's GRPOTrainer) -> float32 log_softmax -> gather, the
                clipped-surrogate token-mean loss, torch.optim.AdamW on the bf16 parameters.
                aha's LM head, likewise, runs on the completion positions only.
Prints completion tokens/s with the ratio to transformers (target >= 1.2x), MFU against the H100
bf16 dense peak (989 TFLOP/s; FLOPs = 6 x params x tokens + causal attention 6 x layers x
q_size x T^2 per sequence) and peak memory (target <= transformers').

Run from the repository root: python3 tools/bench/learner_throughput.py --build build-gpu

--longtail: the GRPO workload instead (issue #19's learner figure, and #18's for MoE shapes): 64
sequences with prompts of 192-256 tokens and log-normal completion lengths (median 256, sigma 0.9,
capped at 2,048; bench_learner --longtail draws them and writes the batch, token ids included, so
both sides train on the same sequences). aha trains on packed micro-batches of --micro-tokens
(bf16; float32 weights under autocast; bf16 weights with float32 masters); transformers on padded micro-batches of --micro rows as
TRL does, each trimmed to its own longest row (a stronger baseline than TRL's batch-wide padding),
with position ids that skip the left padding. Prints real tokens/s, the ratio to transformers
(target >= 2x at the 1.5B shape), MFU on real tokens (active parameters), peak memory, and the
losses: the first step's (ratios 1, before any update) equals -sum a_i n_i / sum n_i on both
sides; the last timed step's differs as bf16 rounds the lr-1e-6 updates differently.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM

from hf_grpo import micro_batch_loss, optimizer_step, token_logprobs

PEAK_FLOPS = 989e12


def hf_step(model, opt, batch, micro, temperature=1.0, keep=None):
    ids, mask, cmask, old, adv = batch
    total = cmask.sum()
    for i in range(0, ids.shape[0], micro):
        sl = slice(i, i + micro)
        loss = micro_batch_loss(model, ids[sl], mask[sl], None, cmask[sl], old[sl], adv[sl], total, temperature,
                                keep=keep)
        loss.backward()
    optimizer_step(model, opt)
    return loss.item()


def hf_longtail_step(model, opt, micro_batches, total_tokens):
    """One step over pre-built micro-batches; returns the batch's token-mean loss."""
    loss_sum = torch.zeros((), device=model.device)
    for ids, mask, positions, cmask, old, adv, keep in micro_batches:
        loss = micro_batch_loss(model, ids, mask, positions, cmask, old, adv, total_tokens, keep=keep)
        loss.backward()
        loss_sum += loss.detach()
    optimizer_step(model, opt)
    return loss_sum.item()


def longtail(args, model_dir, work):
    dev = args.device
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    workload = os.path.join(work, "workload.json")
    # The autocast path is a CUDA one (the trainer refuses it on the CPU); float32 masters of the
    # bf16 weights run anywhere.
    configs = "bf16-packed,autocast-packed,master-packed" if dev.startswith("cuda") else "bf16-packed,master-packed"
    cmd = [os.path.join(args.build, "bench", "bench_learner"), "--longtail", "--model", model_dir,
           "--batch", str(args.batch), "--prompt", str(args.prompt), "--completion", str(args.completion),
           "--median", str(args.median), "--sigma", str(args.sigma), "--micro", str(args.micro),
           "--micro-tokens", str(args.micro_tokens), "--steps", str(args.steps),
           "--configs", configs, "--workload-out", workload, "--device", dev]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = [json.loads(l) for l in out.strip().splitlines() if l.startswith("{")]
    shape = lines[0]
    runs = {l["config"]: l for l in lines if "config" in l}
    with open(workload) as f:
        rows = json.load(f)["rows"]
    P = args.prompt

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, device_map=dev,
                                                 attn_implementation="sdpa")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    total = float(sum(r["completion"] for r in rows))
    micro_batches = []
    for i in range(0, len(rows), args.micro):
        part = rows[i:i + args.micro]
        lo = min(r["start"] for r in part)
        hi = max(P + r["completion"] for r in part)
        ids = torch.tensor([r["ids"][lo:hi] for r in part], device=dev)
        cols = torch.arange(lo, hi, device=dev)
        start = torch.tensor([r["start"] for r in part], device=dev).unsqueeze(1)
        end = torch.tensor([P + r["completion"] for r in part], device=dev).unsqueeze(1)
        mask = ((cols >= start) & (cols < end)).long()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # position t predicts token t + 1: completion tokens are columns P .. end - 1
        cmask = ((cols[1:] >= P) & (cols[1:] < end)).float()
        adv = torch.tensor([r["advantage"] for r in part], device=dev, dtype=torch.float32)
        with torch.no_grad():
            old = token_logprobs(model, ids, mask, positions)
        # As TRL: the LM head only on the positions that predict completion tokens (columns P .. hi - 1).
        micro_batches.append((ids, mask, positions, cmask, old, adv, hi - P))
    hf_first = hf_longtail_step(model, opt, micro_batches, total)  # warm-up, at ratio 1
    sync()
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(args.steps):
        hf_loss = hf_longtail_step(model, opt, micro_batches, total)
    sync()
    hf_s = (time.perf_counter() - t) / args.steps
    hf_peak = torch.cuda.max_memory_allocated() if dev.startswith("cuda") else 1

    real = shape["real_tokens"]
    # At ratio 1 the clipped token-mean surrogate is -sum_i a_i n_i / sum_i n_i: the first step's loss.
    expected_first = -sum(r["advantage"] * r["completion"] for r in rows) / total
    flops = runs["bf16 packed"]["mfu"] * runs["bf16 packed"]["step_s"] * PEAK_FLOPS
    hf_tps = real / hf_s
    print(f"model: {args.config} bf16, long-tailed batch of {len(rows)} sequences: {real} real tokens "
          f"({shape['completion_tokens']} completion), {shape['padded_slots']} slots padded to the longest; "
          f"aha packed micro-batches of {args.micro_tokens} tokens, transformers micro-batches of {args.micro} rows; "
          f"device {torch.cuda.get_device_name() if dev.startswith('cuda') else dev}")
    print(f"learner_longtail  transformers {hf_tps:.0f} tok/s  step {hf_s:.3f}s  MFU {flops / hf_s / PEAK_FLOPS:.1%}  "
          f"peak {hf_peak / 2**30:.2f} GiB  loss {hf_loss:.6f}  first-step loss {hf_first:.6f} "
          f"(at ratio 1: {expected_first:.6f})")
    for name, r in runs.items():
        print(f"learner_longtail  aha {name} {r['tokens_per_s']:.0f} tok/s  ratio {r['tokens_per_s'] / hf_tps:.2f}x "
              f"(target >= 2x)  step {r['step_s']:.3f}s  MFU {r['mfu']:.1%} (target >= 50%)  "
              f"peak {r['peak_bytes'] / 2**30:.2f} GiB  ratio {r['peak_bytes'] / hf_peak:.2f}x (target <= 1.0x)  "
              f"loss {r['loss']:.6f}  first-step loss {r['first_loss']:.6f}  skipped {r['skipped']}")
    bf16 = runs["bf16 packed"]["tokens_per_s"]
    for name in ("autocast packed", "master packed"):
        if name in runs:
            print(f"learner_longtail  {name} / bf16 packed {runs[name]['tokens_per_s'] / bf16:.3f} (target >= 0.9 "
                  f"for float32 master weights)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build-gpu")
    p.add_argument("--config", default="recipes/models/qwen2.5-0.5b.json")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--prompt", type=int, default=256)
    p.add_argument("--completion", type=int, default=768)
    p.add_argument("--micro", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--longtail", action="store_true", help="the long-tailed GRPO batch, aha packed (see above)")
    p.add_argument("--median", type=float, default=256)
    p.add_argument("--sigma", type=float, default=0.9)
    p.add_argument("--micro-tokens", type=int, default=16384)
    p.add_argument("--device", default="cuda", help="--longtail only (cpu: a check of the script, not a figure)")
    args = p.parse_args()
    if args.longtail and args.completion == 768:
        args.completion = 2048  # the cap of the long-tailed lengths
    work = tempfile.mkdtemp(prefix="aha_bench_learner_")
    model_dir = os.path.join(work, "model")
    subprocess.run([os.path.join(args.build, "aha"), "model", "init", "--config", args.config, "--out", model_dir,
                    "--dtype", "bfloat16"], check=True)
    if args.longtail:
        return longtail(args, model_dir, work)
    common = ["--model", model_dir, "--batch", str(args.batch), "--prompt", str(args.prompt), "--completion",
              str(args.completion), "--micro", str(args.micro), "--steps", str(args.steps)]
    bench = os.path.join(args.build, "bench", "bench_learner")
    runs = {}
    for name, extra in (("aha bf16", []), ("aha bf16 checkpointing", ["--checkpointing"]),
                        ("aha autocast", ["--autocast"])):
        out = subprocess.run([bench] + common + extra, check=True, capture_output=True, text=True)
        runs[name] = json.loads(out.stdout.strip().splitlines()[-1])

    B, T, C = args.batch, args.prompt + args.completion, args.completion
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, device_map="cuda",
                                                 attn_implementation="sdpa")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    g = torch.Generator(device="cuda").manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (B, T), device="cuda", generator=g)
    mask = torch.ones_like(ids)
    cmask = torch.zeros(B, T - 1, device="cuda")
    cmask[:, args.prompt - 1:] = 1
    adv = torch.randn(B, device="cuda", generator=g)
    with torch.no_grad():
        old = torch.cat([token_logprobs(model, ids[i:i + args.micro]) for i in range(0, B, args.micro)])
    batch = (ids, mask, cmask, old, adv)
    hf_step(model, opt, batch, args.micro, keep=C)  # warm-up; keep: as TRL, the LM head on completions only
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(args.steps):
        hf_step(model, opt, batch, args.micro, keep=C)
    torch.cuda.synchronize()
    hf_s = (time.perf_counter() - t) / args.steps
    hf_peak = torch.cuda.max_memory_allocated()

    cfg = model.config
    # A mixture of experts computes with its active parameters (the routed top-k experts) only.
    params = runs["aha bf16"]["active_parameters"]
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    # Products only: the LM head on the completion positions (both sides score only those), no
    # untied input embedding (a lookup); bench_learner --longtail counts the same way.
    head = cfg.vocab_size * cfg.hidden_size
    body = params - head - (0 if cfg.tie_word_embeddings else head)
    flops = 6 * body * B * T + 6 * head * B * C + 6 * cfg.num_hidden_layers * cfg.num_attention_heads * head_dim * T * T * B
    hf_tps = B * C / hf_s
    print(f"model: {args.config} bf16, {runs['aha bf16']['parameters'] / 1e6:.0f}M parameters "
          f"({params / 1e6:.0f}M active), batch {B} x ({args.prompt} + {C}), "
          f"micro-batch {args.micro}, device {torch.cuda.get_device_name()}")
    print(f"learner_tokens_s  transformers {hf_tps:.0f}  step {hf_s:.3f}s  MFU {flops / hf_s / PEAK_FLOPS:.1%}  "
          f"peak {hf_peak / 2**30:.2f} GiB")
    for name, r in runs.items():
        print(f"learner_tokens_s  {name} {r['completion_tokens_per_s']:.0f}  ratio {r['completion_tokens_per_s'] / hf_tps:.2f}x "
              f"(target >= 1.2x)  step {r['step_s']:.3f}s  MFU {flops / r['step_s'] / PEAK_FLOPS:.1%}  "
              f"peak {r['peak_bytes'] / 2**30:.2f} GiB  ratio {r['peak_bytes'] / hf_peak:.2f}x (target <= 1.0x)  "
              f"skipped {r['skipped']}")


if __name__ == "__main__":
    main()

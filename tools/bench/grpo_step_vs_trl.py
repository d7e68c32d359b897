#!/usr/bin/env python3
"""A whole GRPO step: aha against TRL's GRPOTrainer (no vLLM), on the same model and workload (issue #19).

Figure: at the Qwen2.5-1.5B shape, 32 prompts x G = 16 per step, completion lengths long-tailed up to
2,048 tokens, seconds per step of aha and of TRL, each split into rollout / reward / learn; the issue's
target is TRL / aha >= 10x.

What runs, in order (one process, one GPU):
  1. `aha model init`: a random bf16 model of the shape (--shape 1.5b: recipes/models/qwen2.5-1.5b.json;
     --shape tiny: tiny-qwen2.json in float32, for a CPU check), in Hugging Face format.
  2. A word-level tokenizer made here with `tokenizers` (token i is the word "t<i>", the config's EOS ids
     are special tokens), saved into the model directory: a prompt's text is its ids as words, so TRL
     encodes exactly the prompt ids aha gets.
  3. aha: build/bench/bench_grpo_step, which draws the workload (prompts of random ids, lengths uniform
     in [prompt-len - spread, prompt-len + spread]; completion lengths log-normal, round(median x
     exp(sigma x z)) clamped to [1, cap], drawn exactly as bench_rollout_longtail draws them) and
     writes it (--workload-out), then runs --aha-warmup + --aha-steps GRPO steps with every
     completion forced to its drawn length. Its step: rollout (RolloutEngine, continuous batching),
     reward (the rule below, advantages, the learner's batch), learn (GrpoTrainer::train_step: beta 0,
     one AdamW step over the whole batch, packed micro-batches of --micro-tokens tokens).
  4. TRL: GRPOTrainer on a data set of the same prompts (as text), num_generations G, one optimizer
     step per 32 x G completions (per_device_train_batch_size --trl-micro, gradient accumulation over
     the rest), max_completion_length = cap, temperature 1, top_k 0, top_p 1, beta 0, lr 1e-6,
     max_grad_norm 1, bf16 weights (loaded in bf16, as aha's), sdpa attention, no gradient
     checkpointing (TRL's default turns it on; off is faster and fits the H200), constant learning
     rate (as aha's), generation by transformers' `generate` (TRL's path without vLLM), or with
     --trl-generation continuous by transformers' continuous batching with paged attention (TRL's
     use_transformers_continuous_batching). The completions are forced to the same lengths: with
     `generate`, a logits processor added to it bans the EOS ids before a row's drawn length and
     forces the first EOS id at it; with continuous batching, each request gets its row's drawn
     length as its token limit and no EOS id. A row's drawn length is found from its prompt's index
     (a data set column) and its place among that prompt's G rows. Every completion's length is checked
     against its drawn length in the reward function, and a mismatch fails the run.
     A light warm-up first (generate on all the step's rows for 4 tokens, one micro-batch's forward and
     backward at the widest shape: CUDA, cuBLAS and allocator set-up for a fraction of a step, which at
     1.5B takes minutes), then --trl-warmup whole steps (default 0) and --trl-steps timed ones (default 1);
     each step is timed between the trainer's step-end callbacks (the device synchronised), and split by
     timers around TRL's own methods:
       rollout = GRPOTrainer._generate (prompt tokenisation, `generate`, decoding)
       reward  = the rest of _generate_and_score_completions (the reward function, advantages,
                 padding into tensors: what aha counts as reward)
       learn   = the rest of the step (forward, backward and optimizer over the micro-batches)
  The reward, both sides: the fraction of a completion's tokens whose id is even (a trivial rule:
  neither side spends time on it; it varies within groups, so advantages are not zero).

  5. With --side plain (aha and this) or all (the three): the same step as a plain PyTorch loop around transformers' `generate`
     (run_plain says what it does), timed per step and split the same way; its line reports plain/aha.

Output: one JSON line per step of each side (the aha lines as bench_grpo_step prints them), a summary
JSON in --out/grpo_step_vs_trl.json (written atomically), and one line:
  grpo_step_vs_trl shape=... ratio=TRL/aha ... aha step/rollout/reward/learn ... trl step/rollout/reward/learn

Run from the repository root, e.g. on the GPU machine (tools/bench/gpu_grpo_step_vs_trl.sh does this):
  python3 tools/bench/grpo_step_vs_trl.py --build build-gpu --shape 1.5b --out $OUT
and on a CPU, end to end in a minute or two:
  python3 tools/bench/grpo_step_vs_trl.py --build build --shape tiny --device cpu
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from forced_lengths import force_lengths_processor

SHAPES = {
    # config, model dtype, prompts, G, prompt length, spread, median, sigma, cap
    "1.5b": dict(config="recipes/models/qwen2.5-1.5b.json", dtype="bfloat16", prompts=32, group=16, prompt_len=128,
                 spread=32, median=256, sigma=0.9, cap=2048),
    "tiny": dict(config="recipes/models/tiny-qwen2.json", dtype="float32", prompts=4, group=4, prompt_len=16,
                 spread=4, median=16, sigma=0.9, cap=64),
}


def write_json_atomic(path, value):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def eos_ids_of(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        eos = json.load(f)["eos_token_id"]
    return eos if isinstance(eos, list) else [eos]


def make_tokenizer(model_dir, vocab, eos_ids):
    """Word-level: id i is "t<i>", EOS ids are special tokens; saved into model_dir."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    names = {e: ("<eos>" if k == 0 else f"<eos{k}>") for k, e in enumerate(eos_ids)}
    words = {names.get(i, f"t{i}"): i for i in range(vocab)}
    unk = next(w for w, i in words.items() if i not in names)
    tok = Tokenizer(models.WordLevel(words, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>",
                                   additional_special_tokens=[names[e] for e in eos_ids[1:]])
    fast.save_pretrained(model_dir)
    return fast


def even_fraction(ids):
    """The reward of both sides: the share of a completion's token ids that are even."""
    return sum(1 for i in ids if i % 2 == 0) / max(1, len(ids))


def prompt_text(ids):
    return " ".join(f"t{i}" for i in ids)


def run_aha(args, shape, model_dir, workload_path):
    bench = os.path.join(args.build, "bench", "bench_grpo_step")
    cmd = [bench, "--model", model_dir, "--device", args.device, "--prompts", str(shape["prompts"]),
           "--group", str(shape["group"]), "--prompt-len", str(shape["prompt_len"]),
           "--prompt-spread", str(shape["spread"]), "--median", str(shape["median"]),
           "--sigma", str(shape["sigma"]), "--new", str(shape["cap"]), "--seed", str(args.seed),
           "--micro-tokens", str(args.micro_tokens), "--warmup", str(args.aha_warmup),
           "--steps", str(args.aha_steps), "--workload-out", workload_path]
    if args.aha_autocast:
        cmd.append("--autocast")
    print("aha:", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    for line in lines:
        print("aha", json.dumps(line), flush=True)
    mean = lines[-1]
    if not mean.get("mean"):
        raise RuntimeError("bench_grpo_step printed no summary line")
    return {"steps": lines[:-1], "mean": mean}


def install_xxhash_stand_in():
    """datasets imports xxhash for its cache fingerprints only; a machine without it gets a hashlib stand-in."""
    try:
        import xxhash  # noqa: F401
        return
    except ImportError:
        pass
    import hashlib
    import types

    class xxh64:
        def __init__(self, data=b"", seed=0):
            self._h = hashlib.blake2b(digest_size=8, key=str(seed).encode())
            self.update(data)

        def update(self, data):
            self._h.update(data.encode() if isinstance(data, str) else bytes(data))

        def hexdigest(self):
            return self._h.hexdigest()

        def intdigest(self):
            return int(self._h.hexdigest(), 16)

        def digest(self):
            return self._h.digest()

    module = types.ModuleType("xxhash")
    module.xxh64 = module.xxh3_64 = xxh64
    module.xxh64_hexdigest = lambda data, seed=0: xxh64(data, seed).hexdigest()
    sys.modules["xxhash"] = module
    print("note: xxhash is not installed; datasets fingerprints with a hashlib stand-in", flush=True)


def run_trl(args, shape, model_dir, workload):
    install_xxhash_stand_in()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, LogitsProcessorList, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    G, cap = workload["group"], workload["cap"]
    prompts, lengths = workload["prompts"], workload["lengths"]
    N = len(prompts)
    eos_ids = eos_ids_of(model_dir)
    tokenizer = make_tokenizer(model_dir, workload["vocab"], eos_ids)
    for ids in prompts:  # the text must encode to exactly aha's prompt ids
        got = tokenizer(prompt_text(ids), add_special_tokens=False)["input_ids"]
        if got != ids:
            raise RuntimeError(f"the word-level tokenizer does not round-trip a prompt: {ids[:8]}... -> {got[:8]}...")

    cuda = args.device.startswith("cuda")
    bf16 = shape["dtype"] == "bfloat16"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if bf16 else torch.float32,
                                                 attn_implementation="sdpa")
    if cuda:
        model.to(args.device)

    forcer = force_lengths_processor(eos_ids)
    times = {"generate": 0.0, "rollout": 0.0, "gen_score": 0.0, "rewards": 0.0}
    expected = {"rows": None, "mismatches": 0, "checked": 0}

    original_generate = model.generate

    def generate(*a, **kw):
        input_ids = kw.get("input_ids", a[0] if a else None)
        forcer.prompt_width = input_ids.shape[1]
        if forcer.lengths is None or forcer.lengths.numel() != input_ids.shape[0]:
            raise RuntimeError(f"generate got {input_ids.shape[0]} rows, the forced lengths are for "
                               f"{None if forcer.lengths is None else forcer.lengths.numel()}")
        processors = LogitsProcessorList(kw.pop("logits_processor", None) or [])
        processors.append(forcer)
        sync()
        t = time.perf_counter()
        out = original_generate(*a, logits_processor=processors, **kw)
        sync()
        times["generate"] += time.perf_counter() - t
        print(f"trl generate: {input_ids.shape[0]} rows in {time.perf_counter() - t:.1f} s", flush=True)
        return out

    model.generate = generate

    if args.trl_generation == "continuous":
        # transformers' continuous batching (TRL's use_transformers_continuous_batching) takes no logits
        # processor per row, but its manager takes a token limit per request: each request gets its row's
        # drawn length and no EOS id, so it ends there (TRL counts it as clipped and still trains on it).
        from transformers.generation.continuous_batching.continuous_api import ContinuousBatchingManager

        def add_requests(self, inputs, max_new_tokens=None, streaming=False, record_timestamps=False, **kw):
            rows = forcer.lengths.tolist()
            if len(inputs) != len(rows):
                raise RuntimeError(f"generate_batch got {len(inputs)} rows, the forced lengths are for {len(rows)}")
            return [self.add_request(input_ids=ids, max_new_tokens=int(rows[k]), streaming=streaming,
                                     record_timestamps=record_timestamps, eos_token_id=-1, **kw)
                    for k, ids in enumerate(inputs)]

        ContinuousBatchingManager.add_requests = add_requests
        original_generate_batch = model.generate_batch

        def generate_batch(*a, **kw):
            sync()
            t = time.perf_counter()
            out = original_generate_batch(*a, **kw)
            sync()
            times["generate"] += time.perf_counter() - t
            print(f"trl generate_batch: {len(out)} rows in {time.perf_counter() - t:.1f} s", flush=True)
            return out

        model.generate_batch = generate_batch

    def even_token_fraction(completions, completion_ids, prompt_index, **kwargs):
        rows = expected["rows"]
        for k, ids in enumerate(completion_ids):
            expected["checked"] += 1
            if len(ids) != rows[k]:
                expected["mismatches"] += 1
        if expected["mismatches"]:  # stop at the first step, not after all of them
            raise RuntimeError(f"{expected['mismatches']} of {len(completion_ids)} TRL completions were not their "
                               "drawn length: the forced lengths did not hold")
        return [even_fraction(ids) for ids in completion_ids]

    dataset = Dataset.from_dict({"prompt": [prompt_text(ids) for ids in prompts], "prompt_index": list(range(N))})
    micro = args.trl_micro
    if (N * G) % micro:
        raise SystemExit(f"--trl-micro {micro} must divide the {N * G} completions of a step")
    steps = args.trl_warmup + args.trl_steps
    config = GRPOConfig(
        output_dir=os.path.join(args.work, "trl"), per_device_train_batch_size=micro,
        gradient_accumulation_steps=N * G // micro, num_generations=G, max_completion_length=cap,
        temperature=1.0, top_p=1.0, top_k=0, beta=0.0, learning_rate=1e-6, max_grad_norm=1.0,
        bf16=bf16, fp16=False, gradient_checkpointing=args.trl_checkpointing, max_steps=steps,
        lr_scheduler_type="constant", logging_steps=1, report_to=[], save_strategy="no", disable_tqdm=True,
        seed=args.seed, use_cpu=not cuda, dataloader_num_workers=0, log_completions=False,
        use_transformers_continuous_batching=args.trl_generation == "continuous")
    trainer = GRPOTrainer(model=model, reward_funcs=even_token_fraction, args=config, train_dataset=dataset,
                          processing_class=tokenizer)

    original_gen_score = trainer._generate_and_score_completions
    original_generate_all = trainer._generate
    original_rewards = trainer._calculate_rewards

    def gen_score(inputs):
        seen = {}
        rows = []
        for x in inputs:  # the row's drawn length: its prompt's, by its place among that prompt's rows
            p = x["prompt_index"]
            j = seen.get(p, 0)
            seen[p] = j + 1
            if j >= G:
                raise RuntimeError(f"prompt {p} has more than G = {G} rows in one generation batch")
            rows.append(lengths[p * G + j])
        expected["rows"] = rows
        forcer.lengths, forcer.eos = torch.tensor(rows, dtype=torch.long), None
        sync()
        t = time.perf_counter()
        out = original_gen_score(inputs)
        sync()
        times["gen_score"] += time.perf_counter() - t
        return out

    def generate_all(prompts_):
        t = time.perf_counter()
        out = original_generate_all(prompts_)
        sync()
        times["rollout"] += time.perf_counter() - t
        return out

    def rewards(*a, **kw):
        t = time.perf_counter()
        out = original_rewards(*a, **kw)
        times["rewards"] += time.perf_counter() - t
        return out

    trainer._generate_and_score_completions = gen_score
    trainer._generate = generate_all
    trainer._calculate_rewards = rewards

    records = []

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.last = None
            self.mark = dict(times)

        def on_train_begin(self, *a, **kw):
            sync()
            self.last = time.perf_counter()

        def on_step_end(self, *a, **kw):
            sync()
            now = time.perf_counter()
            d = {k: times[k] - self.mark[k] for k in times}
            step_s = now - self.last
            r = {"step": len(records), "warmup": len(records) < args.trl_warmup, "step_s": step_s,
                 "rollout_s": d["rollout"], "reward_s": d["gen_score"] - d["rollout"],
                 "learn_s": step_s - d["gen_score"], "generate_s": d["generate"], "reward_fn_s": d["rewards"],
                 "generated_tokens": sum(expected["rows"])}
            records.append(r)
            print("trl", json.dumps(r), flush=True)
            self.last, self.mark = now, dict(times)

    trainer.add_callback(StepTimer())
    light_warmup(model, tokenizer.pad_token_id, prompts, G, cap, micro, original_generate, sync)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    mean = timed_mean("TRL", records, ("step_s", "rollout_s", "reward_s", "learn_s", "generate_s", "reward_fn_s",
                                       "generated_tokens"), cuda)
    mean["checked_completions"] = expected["checked"]
    return {"steps": records, "mean": mean}


def run_plain(args, shape, model_dir, workload):
    """The same step written out in plain PyTorch around transformers' `generate`, with no trainer: what a
    researcher's own GRPO loop costs. Rollout: `generate` on all the step's rows at once (left-padded,
    temperature 1, no top-k, each row forced to its drawn length by the shared logits processor). Reward:
    the even-token fraction, advantages (r - group mean) / (group std + 1e-4). Learn: micro-batches of
    --trl-micro rows (each trimmed to its longest row), the clipped surrogate at ratio exp(logp - logp.detach())
    summed over completion tokens and divided by all the step's completion tokens (token mean, hf_grpo.py),
    one AdamW step (lr 1e-6, grad norm clipped at 1). bf16 weights as aha's and TRL's (float32 for --shape tiny)."""
    import torch
    from hf_grpo import left_padded, micro_batch_loss, optimizer_step
    from transformers import AutoModelForCausalLM, LogitsProcessorList

    G, cap = workload["group"], workload["cap"]
    prompts, lengths = workload["prompts"], workload["lengths"]
    eos_ids = eos_ids_of(model_dir)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    dtype = torch.bfloat16 if shape["dtype"] == "bfloat16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    pad = eos_ids[0]
    dev = model.device
    ids, mask = left_padded(prompts, G, pad, dev)
    width = ids.shape[1]
    rows = ids.shape[0]
    drawn = torch.tensor(lengths, dtype=torch.long)
    micro = args.trl_micro
    if rows % micro:
        raise SystemExit(f"--trl-micro {micro} must divide the {rows} completions of a step")

    def step():
        sync()
        t0 = time.perf_counter()
        model.eval()
        forcer = force_lengths_processor(eos_ids, drawn, width)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                                 top_p=1.0, max_new_tokens=int(drawn.max()), pad_token_id=pad, eos_token_id=eos_ids,
                                 logits_processor=LogitsProcessorList([forcer]))
        sync()
        t1 = time.perf_counter()
        completions = out[:, width:].tolist()
        got = []
        for k, c in enumerate(completions):  # each row up to and with its EOS, as the reward sees it
            n = int(lengths[k])
            if len(c) < n or c[n - 1] not in eos_ids or any(x in eos_ids for x in c[:n - 1]):
                raise RuntimeError(f"row {k} did not end at its drawn length {n}")
            got.append(c[:n])
        rewards = torch.tensor([even_fraction(c) for c in got]).view(-1, G)
        adv = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)).view(-1)
        total = float(sum(len(c) for c in got))
        sync()
        t2 = time.perf_counter()
        model.train()
        for b in range(0, rows, micro):
            part = range(b, b + micro)
            w = max(width + len(got[k]) for k in part)
            seq = torch.full((micro, w), pad, dtype=torch.long, device=dev)
            att = torch.zeros((micro, w), dtype=torch.long, device=dev)
            cm = torch.zeros((micro, w - 1), device=dev)
            for j, k in enumerate(part):
                full = out[k, :width + len(got[k])]
                seq[j, :full.numel()] = full
                att[j, :width] = mask[k]
                att[j, width:full.numel()] = 1
                cm[j, width - 1:full.numel() - 1] = 1.0  # position t predicts token t + 1
            positions = (att.cumsum(-1) - 1).clamp(min=0)  # as generate numbered them (left padding)
            loss = micro_batch_loss(model, seq, att, positions, cm, None, adv[list(part)].to(dev), total,
                                    clip=(0.8, 1.28))
            loss.backward()
        optimizer_step(model, opt)
        sync()
        t3 = time.perf_counter()
        return {"step_s": t3 - t0, "rollout_s": t1 - t0, "reward_s": t2 - t1, "learn_s": t3 - t2,
                "generated_tokens": int(total)}

    # The same light warm-up as TRL's side (a whole untimed step at 1.5B would take minutes).
    light_warmup(model, pad, prompts, G, cap, micro, model.generate, sync, label="plain")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    records = []
    for k in range(args.plain_warmup + args.plain_steps):
        r = step()
        r["step"], r["warmup"] = k, k < args.plain_warmup
        records.append(r)
        print("plain", json.dumps(r), flush=True)
    return {"steps": records, "mean": timed_mean("the plain loop", records,
                                                 ("step_s", "rollout_s", "reward_s", "learn_s", "generated_tokens"), cuda)}


def timed_mean(who, records, keys, cuda):
    """The mean of `keys` over the records not marked warm-up, their count, and the peak device memory."""
    import torch

    timed = [r for r in records if not r["warmup"]]
    if not timed:
        raise RuntimeError(f"{who} ran {len(records)} steps, none timed")
    mean = {k: sum(r[k] for r in timed) / len(timed) for k in keys}
    mean["steps"] = len(timed)
    mean["peak_bytes"] = torch.cuda.max_memory_allocated() if cuda else -1
    return mean


def light_warmup(model, pad, prompts, G, cap, micro, generate, sync, label="trl"):
    """What a first step pays once, for much less than a whole TRL step (minutes at 1.5B): CUDA and cuBLAS
    set-up, generate on all the step's rows for a few tokens, and one micro-batch's forward and backward at
    the step's widest shape (gradients dropped)."""
    import torch
    from hf_grpo import left_padded

    t = time.perf_counter()
    ids, mask = left_padded(prompts, G, pad, model.device)
    width = ids.shape[1]
    with torch.no_grad():
        generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=True, top_k=0, pad_token_id=pad)
    wide = torch.randint(0, model.config.vocab_size, (micro, width + cap), device=model.device)
    model.train()
    logits = model(input_ids=wide, use_cache=False, logits_to_keep=cap + 1).logits
    torch.log_softmax(logits.float(), -1).mean().backward()
    del logits
    model.zero_grad(set_to_none=True)
    sync()
    print(f"{label} light warm-up: {time.perf_counter() - t:.1f} s", flush=True)


def split_text(m):
    return (f"step {m['step_s']:.2f}s = rollout {m['rollout_s']:.2f} + reward {m['reward_s']:.3f} + "
            f"learn {m['learn_s']:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build-gpu")
    p.add_argument("--shape", choices=sorted(SHAPES), default="1.5b")
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.environ.get("OUT", "gpu-out"))
    p.add_argument("--work", default=None, help="scratch folder for the model (default: a new temporary one)")
    p.add_argument("--side", choices=["both", "aha", "trl", "plain", "all"], default="both",
                   help="both: aha and TRL; plain: aha and the plain PyTorch + transformers step; all: the three")
    p.add_argument("--aha-warmup", type=int, default=1)
    p.add_argument("--aha-steps", type=int, default=3)
    p.add_argument("--micro-tokens", type=int, default=16384, help="aha's packed micro-batch token budget")
    p.add_argument("--aha-autocast", action="store_true", help="aha with float32 masters under bf16 autocast")
    p.add_argument("--trl-warmup", type=int, default=0,
                   help="whole TRL steps before the timed ones (a light warm-up runs first anyway)")
    p.add_argument("--trl-steps", type=int, default=1)
    p.add_argument("--trl-micro", type=int, default=8, help="TRL's per_device_train_batch_size (completions)")
    p.add_argument("--trl-generation", choices=["generate", "continuous"], default="generate",
                   help="TRL's generation without vLLM: transformers' generate, or its continuous batching "
                        "(use_transformers_continuous_batching; it hangs on the CPU, so GPU only)")
    p.add_argument("--trl-checkpointing", action="store_true", help="TRL with gradient checkpointing (its default)")
    p.add_argument("--plain-warmup", type=int, default=0,
                   help="whole untimed steps of the plain PyTorch loop (a light warm-up runs first anyway)")
    p.add_argument("--plain-steps", type=int, default=1)
    args = p.parse_args()
    shape = SHAPES[args.shape]
    for name in ("aha_steps", "trl_steps", "plain_steps"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
    os.makedirs(args.out, exist_ok=True)
    args.work = args.work or tempfile.mkdtemp(prefix="aha_grpo_vs_trl_")
    model_dir = os.path.join(args.work, "model")
    workload_path = os.path.join(args.work, "workload.json")
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        subprocess.run([os.path.join(args.build, "aha"), "model", "init", "--config", shape["config"], "--out",
                        model_dir, "--dtype", shape["dtype"]], check=True, stdout=subprocess.DEVNULL)

    result = {"shape": args.shape, **shape, "device": args.device, "seed": args.seed}
    if args.side in ("both", "aha", "plain", "all"):
        t = time.perf_counter()
        result["aha"] = run_aha(args, shape, model_dir, workload_path)
        result["aha"]["wall_s"] = time.perf_counter() - t
        write_json_atomic(os.path.join(args.out, "grpo_step_vs_trl.json"), result)  # kept if TRL runs out of time
    else:  # the workload alone
        subprocess.run([os.path.join(args.build, "bench", "bench_grpo_step"), "--model", model_dir, "--workload-only",
                        "--prompts", str(shape["prompts"]), "--group", str(shape["group"]),
                        "--prompt-len", str(shape["prompt_len"]), "--prompt-spread", str(shape["spread"]),
                        "--median", str(shape["median"]), "--sigma", str(shape["sigma"]), "--new", str(shape["cap"]),
                        "--seed", str(args.seed), "--workload-out", workload_path], check=True)
    with open(workload_path) as f:
        workload = json.load(f)
    lengths = workload["lengths"]
    result["workload"] = {"completions": len(lengths), "completion_tokens": sum(lengths),
                          "mean_length": sum(lengths) / len(lengths), "longest": max(lengths),
                          "at_cap": sum(1 for l in lengths if l == workload["cap"])}
    print("workload", json.dumps(result["workload"]), flush=True)
    if args.side in ("both", "trl", "all"):
        t = time.perf_counter()
        result["trl"] = run_trl(args, shape, model_dir, workload)
        result["trl"]["wall_s"] = time.perf_counter() - t
    if args.side in ("plain", "all"):
        t = time.perf_counter()
        result["plain"] = run_plain(args, shape, model_dir, workload)
        result["plain"]["wall_s"] = time.perf_counter() - t
    result["trl_generation"] = args.trl_generation
    line = f"grpo_step_vs_trl shape={args.shape} device={args.device} trl_generation={args.trl_generation}"
    if "aha" in result and "trl" in result:
        a, r = result["aha"]["mean"], result["trl"]["mean"]
        result["ratio_trl_over_aha"] = r["step_s"] / a["step_s"]
        result["target_ratio"] = 10.0
        line += f" ratio={result['ratio_trl_over_aha']:.2f}x (target >= 10x)"
    if "aha" in result and "plain" in result:
        result["ratio_plain_over_aha"] = result["plain"]["mean"]["step_s"] / result["aha"]["mean"]["step_s"]
        line += f" plain/aha={result['ratio_plain_over_aha']:.2f}x"
    for side in ("aha", "trl", "plain"):
        if side in result:
            line += f" | {side} {split_text(result[side]['mean'])} ({result[side]['mean']['steps']} timed)"
    write_json_atomic(os.path.join(args.out, "grpo_step_vs_trl.json"), result)
    print(line, flush=True)


if __name__ == "__main__":
    main()

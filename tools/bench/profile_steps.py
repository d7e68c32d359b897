#!/usr/bin/env python3
"""Where the time of a decode step and of a learner micro-batch goes, with aha's op sequence
replayed in PyTorch (same ATen kernels as the C++ code), and candidate replacements timed beside
it. A profiling aid for issues #4 and #6, not a benchmark: the figures of record come from
rollout_throughput.py and learner_throughput.py.

  python3 tools/bench/profile_steps.py [--rows 512] [--span 640] [--out DIR]
Qwen2.5-0.5B shape, random bf16 weights. Decode variants are captured in CUDA graphs and timed
by replay (median of 20); the learner pieces are timed with CUDA events.
"""
import argparse
import math
import os
import time

import torch
import torch.nn.functional as F

H, L_, NH, KVH, D, I, V = 896, 24, 14, 2, 64, 4864, 151936
EPS = 1e-6


def timed(fn, reps=20, graph=True):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    if graph:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn()
        run = g.replay
    else:
        run = fn
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        run()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def rms_ref(x, w):
    xf = x.float()
    var = xf.pow(2).mean(-1, keepdim=True)
    return w * (xf * torch.rsqrt(var + EPS)).to(x.dtype)


def rms_fused(x, w):
    return w * torch.ops.aten._fused_rms_norm(x, [x.shape[-1]], None, EPS)[0]


def rope_ref(x, cos, sin):
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


def rope_flip(x, cos, sin_signed):
    # rotate_half(x) * sin == flip-halves(x) * [-sin, sin]
    sw = x.unflatten(-1, (2, -1)).flip(-2).flatten(-2)
    return x * cos + sw * sin_signed


class Weights:
    def __init__(self, dev):
        t = lambda *s: (torch.randn(*s, device=dev) * 0.02).to(torch.bfloat16)
        self.embed = t(V, H)
        self.final = torch.ones(H, device=dev, dtype=torch.bfloat16)
        self.layers = []
        for _ in range(L_):
            w = dict(n1=torch.ones(H, device=dev, dtype=torch.bfloat16) + t(H),
                     n2=torch.ones(H, device=dev, dtype=torch.bfloat16) + t(H),
                     q=t(NH * D, H), k=t(KVH * D, H), v=t(KVH * D, H), o=t(H, NH * D),
                     qb=t(NH * D), kb=t(KVH * D), vb=t(KVH * D), g=t(I, H), u=t(I, H), d=t(H, I))
            w["qkv"] = torch.cat([w["q"], w["k"], w["v"]])
            w["qkvb"] = torch.cat([w["qb"], w["kb"], w["vb"]])
            w["gu"] = torch.cat([w["g"], w["u"]])
            self.layers.append(w)


_INV_FREQ = {}


def inv_freq(dev):
    if dev not in _INV_FREQ:  # made once: no host-to-device copy inside a graph capture
        _INV_FREQ[dev] = (1.0 / (1e6 ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))).to(dev)
    return _INV_FREQ[dev]


def cos_sin(pos, dev):
    fr = pos.float().unsqueeze(-1) * inv_freq(dev).view(1, 1, -1)
    emb = torch.cat([fr, fr], -1).unsqueeze(1)
    return emb.cos().to(torch.bfloat16), emb.sin().to(torch.bfloat16)


# ----------------------------------------------------------------------------- decode
class Decode:
    def __init__(self, W, B, span, dev, prompt=128):
        self.W, self.B, self.span, self.dev = W, B, span, dev
        cap = span
        self.cache_k = [torch.randn(B, KVH, cap, D, device=dev, dtype=torch.bfloat16) for _ in range(L_)]
        self.cache_v = [torch.randn(B, KVH, cap, D, device=dev, dtype=torch.bfloat16) for _ in range(L_)]
        # token-major cache for the flash varlen path: [B, cap, KVH, D]
        self.tk = [c.transpose(1, 2).contiguous() for c in self.cache_k]
        self.tv = [c.transpose(1, 2).contiguous() for c in self.cache_v]
        self.ids = torch.randint(0, V, (B, 1), device=dev)
        self.slot_value = span - 64
        self.pos = torch.full((B, 1), self.slot_value, device=dev)
        self.slot = torch.tensor([self.slot_value], device=dev)
        km = torch.zeros(B, cap, dtype=torch.bool, device=dev)
        km[:, : self.slot_value + 1] = True
        km[: B // 4, :5] = False  # some left padding
        self.key_mask = km
        self.pad = (~km).long().argmin(1)  # first real slot
        self.cu_q = torch.arange(B + 1, device=dev, dtype=torch.int32)
        cu_k = torch.arange(B + 1, device=dev, dtype=torch.int64) * cap
        cu_k[:B] += self.pad
        self.cu_k = cu_k.to(torch.int32)
        self.seqused = (self.slot_value + 1 - self.pad).to(torch.int32)
        self.u = torch.rand(B, device=dev)

    def mask(self):
        L = self.span
        ks = torch.arange(L, device=self.dev)
        nf = ks.view(1, L) <= self.slot.view(1, 1)
        return self.key_mask[:, :L].view(self.B, 1, 1, L).logical_and(nf.view(1, 1, 1, L))

    def attention(self, l, q, k, v, mask, mode):
        B = self.B
        if mode == "flash":
            # q [B, 1, NH, D] -> [B, NH, D] packed; keys from the token-major cache
            self.tk[l].index_copy_(1, self.slot, k.transpose(1, 2))
            self.tv[l].index_copy_(1, self.slot, v.transpose(1, 2))
            out = torch.ops.aten._flash_attention_forward(
                q.transpose(1, 2).reshape(B, NH, D), self.tk[l].view(-1, KVH, D), self.tv[l].view(-1, KVH, D),
                self.cu_q, self.cu_k, 1, self.span, 0.0, False, False, scale=1 / math.sqrt(D),
                seqused_k=self.seqused)[0]
            return out.reshape(B, 1, NH * D)
        ck, cv = self.cache_k[l], self.cache_v[l]
        ck.index_copy_(2, self.slot, k)
        cv.index_copy_(2, self.slot, v)
        keys, values = ck[:, :, : self.span], cv[:, :, : self.span]
        g = q.reshape(B, KVH, NH // KVH, D)
        if mode == "sdpa":
            out = F.scaled_dot_product_attention(g, keys, values, mask, scale=1 / math.sqrt(D))
        elif mode == "sdpa_float":
            out = F.scaled_dot_product_attention(g, keys, values, mask, scale=1 / math.sqrt(D))
        elif mode == "math":
            s = torch.matmul(g, keys.transpose(-1, -2)) * (1 / math.sqrt(D)) + mask
            out = torch.matmul(torch.softmax(s.float(), -1).to(g.dtype), values)
        return out.reshape(B, 1, NH * D)

    def model(self, fused_proj=False, rms="ref", rope="ref", attn="sdpa"):
        B = self.B
        W = self.W
        cos, sin = cos_sin(self.pos, self.dev)
        if rope == "flip":
            half = D // 2
            sin_s = torch.cat([-sin[..., :half], sin[..., half:]], -1)
        mask = self.mask()
        if attn == "sdpa_float" or attn == "math":
            mask = torch.zeros(mask.shape, device=self.dev, dtype=torch.bfloat16).masked_fill_(~mask, float("-inf"))
        norm = rms_ref if rms == "ref" else rms_fused
        x = F.embedding(self.ids, W.embed)
        for l, w in enumerate(W.layers):
            h = norm(x, w["n1"])
            if fused_proj:
                qkv = F.linear(h, w["qkv"], w["qkvb"]).view(B, 1, NH + 2 * KVH, D)
                if rope == "flip":
                    qk = rope_flip(qkv[:, :, : NH + KVH].transpose(1, 2), cos, sin_s)
                else:
                    qk = rope_ref(qkv[:, :, : NH + KVH].transpose(1, 2), cos, sin)
                q, k = qk[:, :NH], qk[:, NH:]
                v = qkv[:, :, NH + KVH:].transpose(1, 2)
            else:
                q = F.linear(h, w["q"], w["qb"]).view(B, 1, NH, D).transpose(1, 2)
                k = F.linear(h, w["k"], w["kb"]).view(B, 1, KVH, D).transpose(1, 2)
                v = F.linear(h, w["v"], w["vb"]).view(B, 1, KVH, D).transpose(1, 2)
                if rope == "flip":
                    q, k = rope_flip(q, cos, sin_s), rope_flip(k, cos, sin_s)
                else:
                    q, k = rope_ref(q, cos, sin), rope_ref(k, cos, sin)
            a = self.attention(l, q, k, v, mask, attn)
            x = x + F.linear(a, w["o"])
            h = norm(x, w["n2"])
            if fused_proj:
                gu = F.linear(h, w["gu"])
                m = F.silu(gu[..., :I]) * gu[..., I:]
            else:
                m = F.silu(F.linear(h, w["g"])) * F.linear(h, w["u"])
            x = x + F.linear(m, w["d"])
        return norm(x, W.final)

    def sample(self, logits):
        probs = torch.softmax(logits, -1, dtype=torch.float32)
        Bn = probs.shape[0]
        width = 512
        while V % width:
            width -= 1
        blocks = V // width
        bm = probs.view(Bn, blocks, width).sum(-1)
        bc = bm.cumsum(-1)
        total = bc[:, -1:].contiguous()
        target = self.u.view(Bn, 1) * total
        blk = torch.searchsorted(bc, target, right=True)
        blk = torch.minimum(blk, torch.searchsorted(bc, total)).clamp_max(blocks - 1)
        before = torch.cat([torch.zeros(Bn, 1, device=self.dev), bc], 1).gather(-1, blk)
        cols = blk * width + torch.arange(width, device=self.dev).view(1, width)
        ic = probs.gather(-1, cols).cumsum(-1)
        it = ic[:, -1:].contiguous()
        p = torch.searchsorted(ic, (target - before).contiguous(), right=True)
        p = torch.minimum(p, torch.searchsorted(ic, it)).clamp_max(width - 1)
        tok = blk * width + p
        lp = probs.gather(-1, tok).log()
        return tok, lp

    def step(self, sample=True, head=True, **kw):
        hid = self.model(**kw)
        if not head:
            return hid
        logits = F.linear(hid.squeeze(1), self.W.embed)
        if sample:
            return self.sample(logits)
        return logits


def decode_report(args, dev, out):
    W = Weights(dev)
    dec = Decode(W, args.rows, args.span, dev)
    lines = []
    inv_freq(dev)
    with torch.inference_mode():
        # correctness of the candidate pieces first
        x = torch.randn(64, H, device=dev, dtype=torch.bfloat16)
        w = W.layers[0]["n1"]
        lines.append(f"rms fused vs ref max abs diff {(rms_fused(x, w) - rms_ref(x, w)).abs().max().item():.3g}")
        ref = dec.model()
        for kw in (dict(fused_proj=True), dict(rope="flip"), dict(rms="fused"), dict(attn="flash"),
                   dict(attn="sdpa_float")):
            # rerun the reference each time (the caches get the same slot written)
            got = dec.model(**kw)
            rel = ((got.float() - ref.float()).norm() / ref.float().norm()).item()
            lines.append(f"decode model {kw} rel diff {rel:.3g}")
        variants = [
            ("current step (model + head + sampler)", dict()),
            ("model + head, no sampler", dict(sample=False)),
            ("model only", dict(head=False)),
            ("fused qkv/gate-up", dict(fused_proj=True)),
            ("rms fused", dict(rms="fused")),
            ("rope flip", dict(rope="flip")),
            ("attn sdpa float mask", dict(attn="sdpa_float")),
            ("attn math", dict(attn="math")),
            ("attn flash varlen", dict(attn="flash")),
            ("all: fused proj + rms fused + rope flip + flash", dict(fused_proj=True, rms="fused", rope="flip",
                                                                    attn="flash")),
            ("all but flash", dict(fused_proj=True, rms="fused", rope="flip")),
        ]
        for name, kw in variants:
            try:
                ms = timed(lambda: dec.step(**kw))
                lines.append(f"decode {name:55s} {ms:7.3f} ms")
            except Exception as e:  # noqa
                lines.append(f"decode {name:55s} failed: {str(e)[:200]}")
            print(lines[-1], flush=True)
        # eager profile of the current step: which kernels
        from torch.profiler import profile, ProfilerActivity
        for _ in range(2):
            dec.step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            dec.step()
            torch.cuda.synchronize()
        table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=45)
        with open(os.path.join(out, "decode_profile.txt"), "w") as f:
            f.write(table)
        lines.append("decode kernels: " + str(len([e for e in prof.events() if e.device_type.name == "CUDA"])))
    return lines


# ----------------------------------------------------------------------------- learner
class ChunkedLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk, keep):
        n = hidden.shape[0]
        lp = torch.empty(n, device=hidden.device)
        ent = torch.empty(n, device=hidden.device)
        kept = None
        if keep:
            kept = torch.empty(n, weight.shape[0], device=hidden.device, dtype=hidden.dtype)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            if keep:
                lg16 = torch.mm(hidden[s:e], weight.t(), out=kept[s:e])
                logp = torch.log_softmax(lg16, -1, dtype=torch.float32)
                lp[s:e] = logp.gather(1, targets[s:e, None]).squeeze(1)
                p = logp.exp()
                ent[s:e] = -torch.bmm(p.unsqueeze(1), logp.unsqueeze(2)).view(-1)
            else:
                lg = torch.mm(hidden[s:e], weight.t()).float()
                lse = torch.logsumexp(lg, -1)
                lp[s:e] = lg.gather(1, targets[s:e, None]).squeeze(1) - lse
                p = torch.softmax(lg, -1)
                ent[s:e] = lse - (p * lg).sum(-1)
        ctx.save_for_backward(hidden, weight, targets, kept if keep else torch.empty(0))
        ctx.chunk, ctx.keep = chunk, keep
        return lp, ent

    @staticmethod
    def backward(ctx, g, _):
        hidden, weight, targets, kept = ctx.saved_tensors
        n = hidden.shape[0]
        if ctx.keep:
            for s in range(0, n, ctx.chunk):
                e = min(n, s + ctx.chunk)
                gc = g[s:e, None]
                p = torch.softmax(kept[s:e], -1, dtype=torch.float32)
                pt = p.gather(1, targets[s:e, None])
                torch.mul(p, -gc, out=kept[s:e])
                kept[s:e].scatter_(1, targets[s:e, None], (pt * -gc + gc).to(kept.dtype))
            return torch.mm(kept, weight), torch.mm(kept.t(), hidden), None, None, None
        gh = torch.empty_like(hidden)
        gw = torch.zeros(weight.shape, device=weight.device)
        for s in range(0, n, ctx.chunk):
            e = min(n, s + ctx.chunk)
            gc = g[s:e, None]
            lg = torch.mm(hidden[s:e], weight.t()).float()
            gl = torch.softmax(lg, -1).mul_(-gc)
            gl.scatter_add_(1, targets[s:e, None], gc)
            gl = gl.to(hidden.dtype)
            gh[s:e] = torch.mm(gl, weight)
            gw.add_(torch.mm(gl.t(), hidden[s:e]))
        return gh, gw.to(weight.dtype), None, None, None


def learner_forward(W, ids, rms="ref", rope="ref"):
    B, T = ids.shape
    pos = torch.arange(T, device=ids.device).expand(B, T)
    cos, sin = cos_sin(pos, ids.device)
    half = D // 2
    sin_s = torch.cat([-sin[..., :half], sin[..., half:]], -1)
    norm = rms_ref if rms == "ref" else rms_fused
    x = F.embedding(ids, W.embed)
    for w in W.layers:
        h = norm(x, w["n1"])
        q = F.linear(h, w["q"], w["qb"]).view(B, T, NH, D).transpose(1, 2)
        k = F.linear(h, w["k"], w["kb"]).view(B, T, KVH, D).transpose(1, 2)
        v = F.linear(h, w["v"], w["vb"]).view(B, T, KVH, D).transpose(1, 2)
        if rope == "flip":
            q, k = rope_flip(q, cos, sin_s), rope_flip(k, cos, sin_s)
        else:
            q, k = rope_ref(q, cos, sin), rope_ref(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / math.sqrt(D), enable_gqa=True)
        x = x + F.linear(a.transpose(1, 2).reshape(B, T, NH * D), w["o"])
        h = norm(x, w["n2"])
        x = x + F.linear(F.silu(F.linear(h, w["g"])) * F.linear(h, w["u"]), w["d"])
    return norm(x, W.final)


def learner_report(args, dev, out):
    W = Weights(dev)
    params = [W.embed, W.final]
    for w in W.layers:
        for k in ("n1", "n2", "q", "k", "v", "o", "qb", "kb", "vb", "g", "u", "d"):
            params.append(w[k])
    for p in params:
        p.requires_grad_(True)
    lines = []
    B, T = 8, 1024
    ids = torch.randint(0, V, (B, T), device=dev)
    chunk = (512 << 20) // (V * 4)

    def micro(rms="ref", rope="ref", keep=False, head=True):
        hid = learner_forward(W, ids, rms, rope)[:, :-1].reshape(-1, H)
        if head:
            lp, ent = ChunkedLogprobs.apply(hid, W.embed, ids[:, 1:].reshape(-1), chunk, keep)
            loss = lp.mean()
        else:
            loss = hid.float().square().mean()
        loss.backward()

    # gradient agreement of the keep-logits head against the recompute head
    hid = torch.randn(300, H, device=dev, dtype=torch.bfloat16, requires_grad=True)
    wt = (torch.randn(V, H, device=dev) * 0.02).to(torch.bfloat16).requires_grad_(True)
    tg = torch.randint(0, V, (300,), device=dev)
    gup = torch.randn(300, device=dev)
    res = []
    for keep in (False, True):
        lp, ent = ChunkedLogprobs.apply(hid, wt, tg, 128, keep)
        gh, gw = torch.autograd.grad((lp * gup).sum(), [hid, wt])
        res.append((lp, ent, gh, gw))
    for i, name in enumerate(("lp", "ent", "grad_hidden", "grad_weight")):
        a, b = res[0][i].float(), res[1][i].float()
        lines.append(f"head keep vs recompute {name}: rel {((a - b).norm() / a.norm()).item():.3g}")

    for name, fn in [("micro-batch fwd+bwd current", lambda: micro()),
                     ("no head (model only)", lambda: micro(head=False)),
                     ("rms fused", lambda: micro(rms="fused")),
                     ("rope flip", lambda: micro(rope="flip")),
                     ("head keeps logits", lambda: micro(keep=True)),
                     ("all three", lambda: micro("fused", "flip", True))]:
        ms = timed(fn, reps=3, graph=False)
        for p in params:
            p.grad = None
        lines.append(f"learner {name:40s} {ms:8.1f} ms")
        print(lines[-1], flush=True)
    # optimizers: LibTorch's AdamW is a per-parameter loop (foreach=False here), fused for comparison
    for p in params:
        p.grad = torch.randn_like(p)
    for kind in ("loop", "foreach", "fused"):
        opt = torch.optim.AdamW(params, lr=1e-6, foreach=kind == "foreach", fused=kind == "fused")
        ms = timed(lambda: opt.step(), reps=5, graph=False)
        lines.append(f"adamw {kind:10s} {ms:7.2f} ms")
    # profile one micro-batch
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        micro()
        torch.cuda.synchronize()
    with open(os.path.join(out, "learner_profile.txt"), "w") as f:
        f.write(prof.key_averages().table(sort_by="cuda_time_total", row_limit=45))
    return lines


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--span", type=int, default=640)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--skip-learner", action="store_true")
    args = p.parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    lines = [torch.cuda.get_device_name()]
    t = time.time()
    lines += decode_report(args, dev, args.out)
    torch.cuda.empty_cache()
    if not args.skip_learner:
        lines += learner_report(args, dev, args.out)
    lines.append(f"total {time.time() - t:.1f}s")
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""The GRPO learner step written in plain PyTorch for a transformers model, shared by the benchmarks
that time it against aha (learner_throughput.py, grpo_step_vs_trl.py --side plain): per-token
log-probs, one micro-batch's share of the clipped-surrogate token-mean loss, and the optimizer step;
and the left-padded rows that transformers' `generate` takes (also generate_longtail.py)."""
import torch


def left_padded(prompts, G, pad, device):
    """Each prompt G times, left-padded with `pad` to the longest: ids and attention mask [N x G, width]."""
    rows = [ids for ids in prompts for _ in range(G)]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
    mask = (torch.arange(width, device=device) >= torch.tensor([width - len(r) for r in rows], device=device)
            .unsqueeze(1)).long()
    return ids, mask


def token_logprobs(model, ids, mask=None, positions=None, temperature=1.0, keep=None):
    """log p(ids[:, t + 1] | ids[:, :t + 1]) in float32, [rows, T - 1]; with `keep`, only the last `keep`
    targets' [rows, keep], the LM head run on those positions only (transformers' logits_to_keep, as TRL's
    GRPOTrainer scores its completions)."""
    if keep is None:
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False).logits[:, :-1]
        targets = ids[:, 1:]
    else:
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
                       logits_to_keep=keep + 1).logits[:, :-1]
        targets = ids[:, -keep:]
    return torch.log_softmax(logits.float() / temperature, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def micro_batch_loss(model, ids, mask, positions, cmask, old, adv, total, temperature=1.0, clip=(0.8, 1.2),
                     keep=None):
    """One micro-batch's share of the clipped-surrogate token-mean loss over `total` tokens. `old`: the
    behaviour log-probs [rows, T - 1], or None for on-policy (the ratio is exp(logp - logp.detach())).
    keep: score only the last `keep` targets (every completion token must lie among them)."""
    logp = token_logprobs(model, ids, mask, positions, temperature, keep)
    if keep is not None:
        cmask = cmask[:, -keep:]
        old = None if old is None else old[:, -keep:]
    ratio = torch.exp(torch.clamp(logp - (logp.detach() if old is None else old), -20, 20))
    a = adv.unsqueeze(1)
    surrogate = torch.max(-a * ratio, -a * torch.clamp(ratio, clip[0], clip[1]))
    return (surrogate * cmask).sum() / total


def optimizer_step(model, opt):
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)

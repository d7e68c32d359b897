"""A transformers logits processor that ends each row at a drawn length, shared by the benchmarks
that replay aha's long-tailed workloads in transformers (generate_longtail.py, grpo_step_vs_trl.py).

Row r ends with an EOS token exactly at its length lengths[r]: every EOS id is banned before it,
and there only eos_ids[0] is allowed. torch and transformers are imported when it is made, so
the scripts can still be checked (py_compile, --help) where they are not installed."""


def force_lengths_processor(eos_ids, lengths=None, prompt_width=0):
    """A LogitsProcessor; set .lengths (LongTensor [rows]) and .prompt_width (the padded prompt's
    width) before each generate call that it serves."""
    import torch
    from transformers import LogitsProcessor

    class ForceLengths(LogitsProcessor):
        def __init__(self):
            self.lengths = lengths
            self.prompt_width = prompt_width
            self.eos = None  # the EOS ids on the logits' device

        def __call__(self, input_ids, scores):
            t = input_ids.shape[1] - self.prompt_width  # index of the token being chosen
            if self.eos is None or self.eos.device != scores.device or self.lengths.device != scores.device:
                self.lengths = self.lengths.to(scores.device)
                self.eos = torch.tensor(list(eos_ids), device=scores.device)
            before = (self.lengths - 1 > t).unsqueeze(1)
            scores[:, self.eos] = torch.where(before, float("-inf"), scores[:, self.eos])
            at = self.lengths - 1 == t
            if at.any():  # rare; generate reads its stop flags back every step anyway
                rows = at.nonzero().squeeze(1)
                scores[rows] = float("-inf")
                scores[rows, eos_ids[0]] = 0.0
            return scores

    return ForceLengths()

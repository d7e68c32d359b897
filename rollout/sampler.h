// Sampling the next token from logits, and the behaviour log-probability the learner needs.
//
// Contract:
//   * logprobs are log_softmax(logits / temperature) of the chosen token in float32, taken
//     BEFORE top-k / top-p truncation. The learner scores tokens at the same temperature with
//     no truncation (policy/model/token_logprobs.h), so this keeps the importance ratio pi/pi_old
//     exactly 1 for an unchanged policy. Greedy (temperature 0) reports log_softmax(logits).
//   * Randomness is counter-based: the uniform for row r at step t is a hash of (row key r,
//     t), where a row key is a hash of (request seed, prompt index, sample index) and t counts
//     the row's own tokens (each row has its own step, so that a row placed into a running
//     batch draws as it would alone). A sample's draws therefore do not depend on which other
//     rows share the batch, on when it joined it or on how the batch is compacted, and no host
//     round trip or generator state is involved, so the step can be captured in a CUDA graph. Tokens are drawn by inverse CDF: the first token
//     whose cumulative (truncated) probability exceeds u * total, found in two levels (blocks of
//     the vocabulary, then within the block) to keep memory traffic over [B, V] low.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace aha {

struct SamplerSettings {
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0: no top-k
  double top_p = 1.0;        // 1: no nucleus truncation
};

struct SampledTokens {
  torch::Tensor tokens;    // [B] int64
  torch::Tensor logprobs;  // [B] float32
};

// Checks the settings (temperature >= 0, top_k >= 0, 0 < top_p <= 1); throws aha::Error naming
// the field otherwise.
void validate(const SamplerSettings& settings);

// logits [B, V] (any floating dtype), uniforms [B] float32 in (0, 1) (ignored when greedy).
SampledTokens sample_tokens(const torch::Tensor& logits, const SamplerSettings& settings,
                            const torch::Tensor& uniforms);

// The decode loop's sampler: rows with stream keys row_keys [B] int64 at steps [1] (every row
// at the same step) or [B] (each row's own) int64 (device tensors). On CUDA with no top-k / top-p truncation this is sample_tokens_fused() (one kernel);
// otherwise (or when allow_fused is false) sample_tokens() at counter_uniforms(row_keys, step).
// The two draw differently from the same distribution; each is reproducible per (row key, step).
SampledTokens sample_rows(const torch::Tensor& logits, const SamplerSettings& settings, const torch::Tensor& row_keys,
                          const torch::Tensor& step, bool allow_fused = true);

// Whether sample_rows() takes the fused kernel for these logits and settings (false in a build
// without CUDA).
bool uses_fused_sampler(const torch::Tensor& logits, const SamplerSettings& settings);

// The fused CUDA kernel (rollout/cuda_sampler.h): Gumbel-max sampling from
// softmax(logits / temperature) (greedy at 0) with the same log-prob contract as sample_tokens,
// in one pass over CUDA logits [B, V] (float32, bfloat16 or float16, rows contiguous). Throws
// aha::Error in a build without CUDA or for other inputs.
SampledTokens sample_tokens_fused(const torch::Tensor& logits, double temperature, const torch::Tensor& row_keys,
                                  const torch::Tensor& step);

// The key of one sample's random stream: a hash of the request seed and the sample's place.
int64_t sample_stream_key(uint64_t seed, int64_t prompt_index, int64_t sample_index);

// Uniforms [B] float32 in (0, 1) for row keys [B] int64 at step [1], [] or [B] int64 (a device
// tensor, so that a captured graph reads the current step; [B]: each row's own). 23 random
// bits each.
torch::Tensor counter_uniforms(const torch::Tensor& row_keys, const torch::Tensor& step);

}  // namespace aha

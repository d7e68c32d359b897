// The fused CUDA sampling kernel's entry point (rollout/cuda_sampler.cu, compiled only in a
// CUDA build; sampler.cpp calls it through sample_tokens_fused()). No LibTorch here: the kernel
// takes raw device pointers so that the .cu file needs only the CUDA runtime.
//
// Contract: one pass over each row's logits computes, online, the maximum and the log-sum-exp
// of x = logit / temperature and the Gumbel-max sample argmax_i(x_i + g_i), where g_i is a
// Gumbel variate from Philox4x32-10 keyed by the row's stream key with counter
// (i / 4, step, 0x5a4d): a row's draw depends only on (row key, step, logits), never on the
// other rows. tokens[r] is the sample (greedy, temperature 0: the first maximal logit) and
// logprobs[r] = x[token] - logsumexp(x) (greedy: at temperature 1). `step` is read on the
// device, so a captured CUDA graph samples at the current step.
#pragma once
#include <cstdint>

namespace aha::cuda {

enum class LogitsType { kFloat32, kBFloat16, kFloat16 };

// logits: rows x vocab, row r starting at logits + r * row_stride elements. row_keys [rows],
// step, tokens [rows], logprobs [rows] are device pointers; row r's step is step[r * step_stride]
// (stride 0: one step for every row; 1: each row's own); stream is a cudaStream_t.
// Returns null when the launch succeeded, else CUDA's error string.
const char* launch_fused_sample(const void* logits, LogitsType type, int64_t rows, int64_t vocab, int64_t row_stride,
                                float temperature, const int64_t* row_keys, const int64_t* step, int64_t step_stride,
                                int64_t* tokens, float* logprobs, void* stream);

}  // namespace aha::cuda

// Per-token log-probabilities of chosen tokens, computed in chunks so that the [N, V] float32
// logits never exist all at once (with V = 151,936 and N = 64k tokens that would be 40 GB).
//
// This is the learner's function: it is differentiable in `hidden` and `weight`. For its
// backward pass it either keeps the forward's logits in the model dtype ([N, V], the product's
// own output, so nothing is lost) and turns them into their gradient in place, which saves a
// second product with the LM head; or it keeps nothing and recomputes each chunk's logits, so
// that memory stays at one chunk of [chunk, V] floats in both directions.
#pragma once
#include <torch/types.h>

namespace aha {

struct TokenLogprobs {
  torch::Tensor logprobs;  // [N] float32, differentiable
  torch::Tensor entropy;   // [N] float32 without gradient; empty unless asked for
};

// What backward works from (only a forward whose inputs require grad keeps anything):
//   keep       the [N, V] logits in the model dtype, kept from the forward
//   recompute  each chunk's logits again (one chunk of memory)
//   automatic  keep when the logits take at most a third of the device's free memory (at most
//              1 GiB on the CPU), else recompute
enum class LogitsMemory { automatic, keep, recompute };

// hidden [N, H] (the final-norm output), weight [V, H] (the LM head), targets [N] int64.
// logprobs[i] = log_softmax(hidden[i] @ weight^T / temperature)[targets[i]], in float32.
// chunk_tokens = 0 picks a chunk whose float32 logits take about chunk_bytes.
TokenLogprobs chunked_token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                     const torch::Tensor& targets, double temperature = 1.0,
                                     bool want_entropy = false, int64_t chunk_tokens = 0,
                                     int64_t chunk_bytes = 512ll << 20,
                                     LogitsMemory logits_memory = LogitsMemory::automatic);

}  // namespace aha

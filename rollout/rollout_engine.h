// RolloutEngine: turns a batch of tokenized prompts into G sampled completions each, with the
// per-token behaviour log-probs the GRPO learner needs (see sampler.h for what they are).
//
// How: the prompts are left-padded to the longest and prefilled once each (in chunks of
// EngineOptions::prefill_tokens); each prompt's KV cache is copied to its G rows, which then
// decode together, one token per step, against a cache preallocated for prompt + max_new
// tokens (DecodeBatch). Finished rows stop costing compute: when the live rows fit in half
// the current batch, they are compacted to the front and the step runs on the smaller batch.
// On CUDA every step of a given (batch, span) shape is a CUDA graph replay.
// The next step is queued before the host reads the current one's tokens back, so the GPU
// never waits for the host's stop checks. The price is that a finished row is computed one
// step too many, and compaction lags one step.
//
// The engine reads the model's weights directly (the learner's live tensors, no copy), and
// checks the memory plan against free device memory before allocating (memory_plan.h).
//
// Reproducibility: a completion depends only on the request's seed, its prompt and its
// (prompt index, sample index) -- not on the other prompts in the batch or when rows finish --
// up to floating-point differences between kernels for different batch shapes (bit-identical
// on the CPU in our tests; on GPUs a near-tie between two tokens can resolve differently).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rollout/memory_plan.h"
#include "rollout/sampler.h"
#include "rollout/stop_conditions.h"

namespace aha {

class Transformer;
class DecodeBatch;

struct GenerationSettings {
  SamplerSettings sampler;
  StopSettings stop;
  uint64_t seed = 0;
};

struct RolloutRequest {
  std::vector<std::vector<int64_t>> prompts;  // token ids, no padding
  int64_t group_size = 1;                     // G completions per prompt
  GenerationSettings settings;
};

struct Completion {
  int64_t prompt_index = 0;
  int64_t sample_index = 0;
  std::vector<int64_t> tokens;  // generated tokens (including the final EOS id when it ended so)
  std::vector<float> logprobs;  // one per token
  std::string text;             // decoded tokens without a final EOS; empty without a decoder
  FinishReason finish_reason = FinishReason::kNone;
};

struct RolloutStats {
  double prefill_seconds = 0, decode_seconds = 0;
  int64_t prefilled_prompts = 0;  // prompts run through prefill (each once, whatever G)
  int64_t decode_steps = 0;       // forward passes after prefill (incl. one queued ahead and unused)
  int64_t generated_tokens = 0;   // kept tokens over all completions
  int64_t row_steps = 0;          // sum over steps of the batch rows computed (incl. finished ones)
  int64_t compactions = 0;
  int64_t graphs_captured = 0;    // CUDA graphs held after the request
  int64_t cache_capacity = 0;
};

struct RolloutResult {
  std::vector<Completion> completions;  // prompt-major: prompt i's sample j is at i * G + j
  RolloutStats stats;
  MemoryPlan memory;
};

struct EngineOptions {
  bool use_cuda_graphs = true;
  // Decode with concatenated copies of each layer's q/k/v and gate/up weights: one matrix
  // product per group instead of three and two (same results), for the memory of those copies
  // (counted in the memory plan). The copies are refreshed from the live weights every call.
  bool fuse_projections = true;
  // On CUDA, sample untruncated distributions with the fused kernel (sampler.h sample_rows);
  // off: the ATen path (softmax, inverse CDF), for comparison.
  bool fused_sampler = true;
  int64_t prefill_tokens = 16384;   // padded prompt tokens per prefill chunk
  int64_t span_bucket = 128;        // attention spans (and the cache capacity) round up to this
  double memory_headroom = 0.9;     // the plan may use this fraction of the free device memory
};

// How the engine sees text (the tokenizer lives in policy/): each token's bytes for stop
// strings, and whole-sequence decoding for Completion::text. Either may be empty.
struct TextDecoder {
  TokenBytesFn token_bytes;
  std::function<std::string(const std::vector<int64_t>&)> decode;
};

// Called after the prefill and after every decode step.
using ProgressFn = std::function<void(int64_t finished, int64_t total, int64_t generated_tokens)>;

class RolloutEngine {
 public:
  RolloutEngine(const Transformer& model, EngineOptions options = {}, TextDecoder decoder = {});
  ~RolloutEngine();

  RolloutResult generate(const RolloutRequest& request, const ProgressFn& progress = {});

 private:
  void prepare_batch(int64_t rows, int64_t capacity, const RolloutShape& shape, MemoryPlan& plan);
  std::vector<Completion> run(const RolloutRequest& request, int64_t prompt_len, int64_t rows,
                              RolloutStats& stats, const ProgressFn& progress);

  const Transformer& model_;
  EngineOptions options_;
  TextDecoder decoder_;
  std::unique_ptr<DecodeBatch> batch_;  // kept between requests: its cache and CUDA graphs
  std::vector<const void*> weight_addresses_;  // what the graphs were captured against
};

}  // namespace aha

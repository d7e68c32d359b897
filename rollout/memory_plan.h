// Memory planning for one rollout, before anything is allocated: the KV cache for every
// decode row (all N*G sequences, or the rows a continuous batch keeps live) at full capacity, the sampling workspace over the vocabulary, and the prefill
// activations, compared with the free device memory. When it does not fit, the error says
// how much is needed and available and which knob to lower (group size, rows decoding at
// once, max_new_tokens), instead of an allocator failure halfway through generation.
//
// The policy weights are not part of the plan: the engine reads the live weights that are
// already resident (they are reported for information).
#pragma once
#include <cstdint>
#include <string>

#include "policy/model/model_config.h"
#include "policy/model/model_sizes.h"  // kv_cache_bytes_per_token

namespace aha {

struct RolloutShape {
  int64_t prompts = 0;         // N
  int64_t group_size = 1;      // G
  int64_t rows = 0;            // decode rows live at once (continuous batching); 0: N * G
  int64_t prompt_tokens = 0;   // the longest prompt (prompts are left-padded to it)
  int64_t max_new_tokens = 0;
  int64_t cache_capacity = 0;  // slots per row (>= prompt_tokens + max_new_tokens; the engine
                               // takes more when it refills rows, rollout_engine.h)
  int64_t decode_rows() const { return rows > 0 ? rows : prompts * group_size; }
  int64_t prefill_rows = 0;    // prompts prefilled at once
  int64_t element_size = 2;    // bytes per cache / activation element (bf16: 2, fp32: 4)
  bool top_p = false;          // nucleus sampling sorts the vocabulary
  bool fused_projections = false;  // the engine keeps concatenated projection copies
};

struct MemoryPlan {
  int64_t weight_bytes = 0;     // for information: every weight, all experts of MoE layers included
  int64_t kv_cache_bytes = 0;   // decode rows x capacity x kv_cache_bytes_per_token
  int64_t sampling_bytes = 0;   // logits and their float32 transforms over [decode rows, V]
  int64_t prefill_bytes = 0;    // activations and the temporary cache of one prefill chunk
  int64_t fused_weight_bytes = 0;  // the q/k/v and gate/up weight copies of fused projections
  int64_t needed_bytes() const {  // saturates rather than wrapping around
    const double sum = double(kv_cache_bytes) + double(sampling_bytes) + double(prefill_bytes) + double(fused_weight_bytes);
    return sum >= 9.0e18 ? INT64_MAX : kv_cache_bytes + sampling_bytes + prefill_bytes + fused_weight_bytes;
  }
  std::string describe() const;  // one line, GiB
};

MemoryPlan plan_rollout_memory(const ModelConfig& config, const RolloutShape& shape);

// The cache slots per row the engine allocates: the longest prompt + max_new_tokens, and
// max_new_tokens - 1 more when finished rows are refilled (rows < N * G, rollout_engine.h),
// rounded up to span_bucket.
int64_t rollout_cache_capacity(int64_t longest_prompt, int64_t max_new_tokens, bool refills, int64_t span_bucket);

// Throws aha::Error when plan.needed_bytes() > available_bytes, saying what to lower.
void require_fits(const MemoryPlan& plan, const RolloutShape& shape, int64_t available_bytes,
                  const std::string& device_name);

}  // namespace aha

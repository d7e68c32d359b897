// The decode loop's device state and its one step: every live sequence advances by one token
// per step, all rows together, against a KV cache allocated once for the whole rollout.
//
// Layout: `rows` preallocated rows; a step runs over the first `b` of them (a batch bucket:
// the full batch, then halves as sequences finish, after compact() moved the live rows to the
// front), and attends over the first `span` cache slots (the slots written so far, rounded up
// to a bucket length) so that early steps do not read the empty tail of the cache.
// Every row writes its input at the same slot (`slot`, shared, one further each step), but a
// row's earlier tokens may lie anywhere below it: each row has its own positions, key mask
// and sampling step, so a sequence placed into a free row while others run (continuous
// batching: its prompt's cache ending just below the shared slot) computes what it would
// alone. shift_slots() moves every row's slots down when the shared slot nears the capacity.
// Each row also has a first slot (first_slot, the cache's KVCache::first_slots): the step never
// attends below it, and the CUDA decode attention kernel does not read below it, so a row placed
// late costs its own context rather than the oldest row's. The caller sets it where it places a
// row; shift_slots() and compact() keep it with the row's slots.
// Inputs, the step counters and outputs are device tensors updated in place by the step
// itself, so that on CUDA the step for each (b, span) is captured once in a CUDA graph and
// then replayed (graphs share one memory pool; they are replayed one at a time and keep no
// output of their own alive, every result is copied into the state's tensors).
//
// Graphs hold the addresses of the model's weights: they stay valid while the learner updates
// the weights in place (as optimizers do); drop_graphs() when tensors are replaced.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "policy/model/transformer.h"
#include "rollout/sampler.h"

namespace aha {

struct DecodeState {
  KVCache cache;            // [rows, kv_heads, capacity, head_dim] per layer
  torch::Tensor ids;        // [rows, 1] int64: each row's last sampled token, the next input
  torch::Tensor positions;  // [rows, 1] int64: its position
  torch::Tensor key_mask;   // [rows, capacity] bool: the slots each row attends to
  torch::Tensor first_slot;  // [rows] int64: no slot below it is attended to (KVCache::first_slots)
  torch::Tensor row_keys;   // [rows] int64: each row's random stream (sampler.h)
  torch::Tensor slot;       // [1] int64: the cache slot the next input takes (every row's)
  torch::Tensor step;       // [rows] int64: each row's sampling step (its tokens sampled so far)
  torch::Tensor tokens;     // [rows] int64: the tokens sampled by the last step
  torch::Tensor logprobs;   // [rows] float32: their behaviour log-probs
};

class DecodeBatch {
 public:
  // fuse_projections: decode with concatenated copies of the q/k/v and gate/up weights
  // (FusedProjections); refresh_weights() must then run after every weight change.
  // fused_sampler: sample with sample_rows' fused CUDA kernel where it applies.
  DecodeBatch(const Transformer& model, int64_t rows, int64_t capacity, bool use_cuda_graphs,
              bool fuse_projections = false, bool fused_sampler = true);
  ~DecodeBatch();

  int64_t rows() const { return rows_; }
  int64_t capacity() const { return capacity_; }
  DecodeState& state() { return state_; }
  bool uses_graphs() const { return use_graphs_; }
  int64_t graph_count() const;

  // The fused projection copies the steps read (null when not fusing), and their refresh from
  // the model's current weights (in place: captured graphs stay valid).
  const FusedProjections* fused() const { return fused_.empty() ? nullptr : &fused_; }
  void refresh_weights();

  // Sampling settings are baked into captured graphs: a change drops them.
  void set_sampler(const SamplerSettings& settings);
  void drop_graphs();

  // One step over rows [0, b) attending to slots [0, span): marks the input's slot in
  // key_mask, runs the model, samples, writes tokens/logprobs, and advances ids, positions,
  // slot and the rows' steps. Replays (or first runs, then captures) a CUDA graph when enabled.
  void step(int64_t b, int64_t span);

  // Moves rows `keep` (increasing indices) to rows [0, keep.size()) of every state tensor.
  void compact(const std::vector<int64_t>& keep);

  // Moves cache slots [shift, used) of every row, and their key_mask, to [0, used - shift),
  // clears the key_mask from used - shift on, and moves the shared slot and every row's first
  // slot down by `shift` (not below 0).
  // Positions are untouched (attention does not depend on where a key sits), so live rows
  // continue exactly; it makes room above for rows placed later.
  void shift_slots(int64_t shift, int64_t used);

 private:
  void run_step(int64_t b, int64_t span);  // the eager step (also what graphs capture)

  const Transformer& model_;
  int64_t rows_, capacity_;
  bool use_graphs_;
  bool fused_sampler_;
  SamplerSettings sampler_;
  DecodeState state_;
  FusedProjections fused_;
  struct Graphs;  // CUDA-only members
  std::unique_ptr<Graphs> graphs_;
};

}  // namespace aha

// RolloutEngine: turns tokenized prompts into G sampled completions each, with the per-token
// behaviour log-probs the GRPO learner needs (see sampler.h for what they are).
//
// How: a request may hold any number of prompts. The engine keeps up to `rows` decode rows
// (RolloutRequest::max_rows, else EngineOptions::max_rows, rounded down to whole groups but at
// least one; all N*G rows when 0 or larger) in
// one DecodeBatch whose KV cache is preallocated, and decodes them together, one token per
// step. A prompt and its G samples stay together: the prompt is prefilled once (prefills run
// in chunks of EngineOptions::prefill_tokens, each prompt left-padded to its chunk's longest)
// and its KV cache copied to its G rows. Groups enter in prompt order. When the request has
// more rows than fit, free rows are refilled (continuous batching). A row is free when its
// completion needs no further step: finished, or every token up to its own limit already
// queued (the last may still be in flight). Once at least EngineOptions::refill_fraction of the
// rows (and at least G) are free, or when no live row needs another step, every waiting group
// that fits the free rows is placed in one refill event, their prompts prefilled together (one
// prefill per prefill_tokens chunk, not one per group), so the
// batch stays full across the whole request instead of waiting for its longest completion
// (EngineOptions::continuous_batching; without it, or when its longer cache, below, does not fit
// the free device memory but windows do, the request runs as consecutive windows of `rows`,
// each waiting for its longest completion: the same completions, more slowly).
// Every row writes its next token at the same cache slot, one further per step; a group placed
// later gets its prompt's cache just below that slot and its own positions, key mask and
// sampling step (decode_batch.h), so it computes what it would alone. Because a row placed at
// slot S still needs max_new_tokens slots above it while the oldest live row's tokens lie below,
// a refilling batch's cache holds longest prompt + 2 * max_new_tokens - 1 slots per row (rounded
// up to span_bucket), and when the shared slot nears the end every row's slots move down to the
// bottom (DecodeBatch::shift_slots). Once no group waits, finished rows stop costing compute:
// when the live rows fit in half the current batch, they are compacted to the front and the
// step runs on the smaller batch. Each row's attention starts at its own first slot (where its
// prompt begins; DecodeBatch's first_slot), which the CUDA decode attention kernel skips to
// without reading the slots below, so a row refilled late costs its own context, not the oldest
// row's; a row with no live completion (finished, waiting for a refill or a compaction) has its
// first slot moved up to the step's slot, so it reads almost nothing.
// On CUDA every step of a given (batch, span) shape is a CUDA graph replay.
// The next step is queued before the host reads the current one's tokens back, so the GPU
// never waits for the host's stop checks. The price is that a finished row is computed one
// step too many, and compaction and refills after a stop (EOS, stop string) lag one step. A
// refill does not wait for the device either: its prefill and placement are queued behind the
// step in flight, the new rows join the next step, and their first tokens come back to the host
// with that step's tokens (a completion's first token is still accepted before its later ones).
//
// The engine reads the model's weights directly (the learner's live tensors, no copy), and
// checks the memory plan (rows x cache capacity, memory_plan.h) against free device memory
// before allocating.
//
// Reproducibility: a completion depends only on the request's seed, its prompt and its
// (first_prompt_index + prompt index, sample index) -- not on the other prompts in the request, the number of
// rows, when its group entered the batch or when other rows finish -- up to floating-point
// differences between kernels for different batch shapes and cache layouts (on the CPU our
// tests find the same tokens, and log-probs equal to float32 rounding, ~1e-6: a row's attention
// sums over other slots in another order; on GPUs a near-tie between two tokens can resolve
// differently).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
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
  // Empty, or one token limit per completion (prompt-major, N * G of them, each in
  // [1, settings.stop.max_new_tokens]): a completion that reaches its own limit ends with
  // kLength there. For benchmarks and tests of uneven lengths; memory is planned for
  // settings.stop.max_new_tokens.
  std::vector<int64_t> max_new_tokens_each;
  // The index of prompts[0] in the random streams (sample_stream_key): a caller that splits a
  // data set into several requests passes each window's start, and every completion is then
  // the one a single request over the whole set gives. Completion::prompt_index stays the
  // index within this request.
  int64_t first_prompt_index = 0;
  // Decode rows live at once for this request; 0: EngineOptions::max_rows.
  int64_t max_rows = 0;
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
  // prefill: the first fill (host time until its first tokens are on the host) and every refill
  // (host time queueing its prefill and placement: refills do not wait for the device, so their
  // device time shows in decode); decode: the rest of the decode loop.
  double prefill_seconds = 0, decode_seconds = 0;
  int64_t prefilled_prompts = 0;  // prompts run through prefill (each once, whatever G)
  int64_t prefill_calls = 0;      // prefill forward passes (chunks of prefill_tokens), first fill included
  int64_t refills = 0;            // groups placed into rows an earlier group had used
  int64_t refill_events = 0;      // times such groups were placed (all placed at once share prefills)
  int64_t slot_shifts = 0;        // times every row's cache slots moved down (DecodeBatch::shift_slots)
  int64_t windows = 1;            // consecutive windows the request ran as (1: one batch, refilled or not)
  int64_t decode_steps = 0;       // forward passes after prefill (incl. one queued ahead and unused)
  int64_t generated_tokens = 0;   // kept tokens over all completions
  int64_t row_steps = 0;          // sum over steps of the batch rows computed (incl. finished ones)
  // Sum over steps and this request's rows computed of the cache slots the row's attention
  // covers (from its first slot to the step's slot): attended_slots / row_steps is the mean
  // context a step reads per row.
  int64_t attended_slots = 0;
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
  // Decode rows live at once (continuous batching, see above); 0: every row of the request.
  int64_t max_rows = 0;
  // Refill once this fraction of the rows is free (at least one group's G rows): fewer,
  // larger prefills against a few idle rows per step. A refill costs the device one prefill
  // (its launches and its prompts' tokens), not a host wait; the idle rows cost about half this
  // fraction of the decode throughput while they accumulate.
  double refill_fraction = 1.0 / 16;
  // Refill free rows (above); false: windows of max_rows rows, one after the other.
  bool continuous_batching = true;
  int64_t span_bucket = 128;        // attention spans (and the cache capacity) round up to this
  double memory_headroom = 0.9;     // the plan may use this fraction of the free device memory
};

// How the engine sees text (the tokenizer lives in policy/): each token's bytes for stop
// strings, and whole-sequence decoding for Completion::text. Either may be empty.
struct TextDecoder {
  TokenBytesFn token_bytes;
  std::function<std::string(const std::vector<int64_t>&)> decode;
};

// Called after the first fill and after every decode step; `total` is the request's N * G.
using ProgressFn = std::function<void(int64_t finished, int64_t total, int64_t generated_tokens)>;

class RolloutEngine {
 public:
  RolloutEngine(const Transformer& model, EngineOptions options = {}, TextDecoder decoder = {});
  ~RolloutEngine();

  RolloutResult generate(const RolloutRequest& request, const ProgressFn& progress = {});

 private:
  void prepare_batch(int64_t rows, int64_t capacity, const RolloutShape& shape, MemoryPlan& plan);
  // Whether `plan` (rows x capacity) fits the free device memory, counting what the current
  // batch holds (always true where the free memory is not known).
  bool fits(const MemoryPlan& plan, int64_t rows, int64_t capacity) const;
  // The request as consecutive requests of `prompts` prompts each, results joined.
  RolloutResult generate_in_windows(const RolloutRequest& request, int64_t prompts, const ProgressFn& progress);
  std::vector<Completion> run(const RolloutRequest& request, int64_t prompt_len, int64_t rows,
                              RolloutStats& stats, const ProgressFn& progress);
  // Prefills groups [first, first + count) (in as few chunks of EngineOptions::prefill_tokens as
  // the memory plan allows) and places them into `free_rows` (G each, in order) with their
  // prompt caches ending just below `slot`; returns each row's first token and log-prob, row by
  // row, still on the device: nothing here waits for the device.
  SampledTokens place_groups(const RolloutRequest& request, int64_t first, int64_t count,
                             const std::vector<int64_t>& free_rows, int64_t slot, int64_t prompt_len,
                             RolloutStats& stats);

  const Transformer& model_;
  EngineOptions options_;
  TextDecoder decoder_;
  std::unique_ptr<DecodeBatch> batch_;  // kept between requests: its cache and CUDA graphs
  std::vector<const void*> weight_addresses_;  // what the graphs were captured against
};

}  // namespace aha

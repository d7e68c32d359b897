#include "rollout/rollout_engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <optional>

#ifdef AHA_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "core/error.h"
#include "policy/model/device_memory.h"
#include "policy/model/transformer.h"
#include "rollout/decode_batch.h"

namespace aha {
namespace {

void synchronize(torch::Device device) {
#ifdef AHA_WITH_CUDA
  if (device.is_cuda()) c10::cuda::device_synchronize();
#endif
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// The host's copy of one decode step's sampled tokens and log-probs. On CUDA the copy is queued
// on the stream behind the step, into pinned memory, with an event after it: the host can queue
// the next step before it waits for this one.
class StepReadback {
 public:
  StepReadback(int64_t rows, torch::Device device) : cuda_(device.is_cuda()) {
    auto host = torch::TensorOptions().pinned_memory(cuda_);
    tokens_ = torch::empty({rows}, host.dtype(torch::kInt64));
    logprobs_ = torch::empty({rows}, host.dtype(torch::kFloat32));
  }
  // tokens [b] int64, logprobs [b] float32 on the model's device.
  void queue(const torch::Tensor& tokens, const torch::Tensor& logprobs) {
    const int64_t b = tokens.size(0);
    tokens_.narrow(0, 0, b).copy_(tokens, /*non_blocking=*/cuda_);
    logprobs_.narrow(0, 0, b).copy_(logprobs, /*non_blocking=*/cuda_);
#ifdef AHA_WITH_CUDA
    if (cuda_) copied_.record();
#endif
  }
  // Blocks until the queued copy has landed.
  void wait() {
#ifdef AHA_WITH_CUDA
    if (cuda_) copied_.synchronize();
#endif
  }
  const int64_t* tokens() const { return tokens_.data_ptr<int64_t>(); }
  const float* logprobs() const { return logprobs_.data_ptr<float>(); }

 private:
  bool cuda_;
  torch::Tensor tokens_, logprobs_;
#ifdef AHA_WITH_CUDA
  at::cuda::CUDAEvent copied_;
#endif
};

void validate_request(const RolloutRequest& request, const ModelConfig& config) {
  require(!request.prompts.empty(), "rollout: the request has no prompts");
  require(request.group_size >= 1, "rollout: group_size must be >= 1, got " + std::to_string(request.group_size));
  validate(request.settings.sampler);
  require(request.settings.stop.max_new_tokens >= 1, "rollout: max_new_tokens must be >= 1, got " +
                                                         std::to_string(request.settings.stop.max_new_tokens));
  const int64_t max_new = request.settings.stop.max_new_tokens, context = config.max_position_embeddings;
  require(max_new < context, "rollout: max_new_tokens " + std::to_string(max_new) +
                                 " leaves no room for a prompt in the model's context of " + std::to_string(context) +
                                 " positions (max_position_embeddings in config.json)");
  for (size_t i = 0; i < request.prompts.size(); ++i) {
    require(!request.prompts[i].empty(), "rollout: prompt " + std::to_string(i) + " is empty");
    const int64_t length = static_cast<int64_t>(request.prompts[i].size());
    require(length + max_new <= context,
            "rollout: prompt " + std::to_string(i) + " has " + std::to_string(length) + " tokens; with max_new_tokens " +
                std::to_string(max_new) + " that is " + std::to_string(length + max_new) +
                " positions, more than the model's context of " + std::to_string(context) +
                " (max_position_embeddings in config.json): lower max_new_tokens or shorten the prompt");
    for (int64_t id : request.prompts[i]) {
      require(id >= 0 && id < config.vocab_size, "rollout: prompt " + std::to_string(i) + " has token id " +
                                                     std::to_string(id) + ", outside the vocabulary [0, " +
                                                     std::to_string(config.vocab_size) + ")");
    }
  }
}

}  // namespace

RolloutEngine::RolloutEngine(const Transformer& model, EngineOptions options, TextDecoder decoder)
    : model_(model), options_(options), decoder_(std::move(decoder)) {
  require(options_.prefill_tokens >= 1, "rollout: prefill_tokens must be >= 1");
  require(options_.span_bucket >= 1, "rollout: span_bucket must be >= 1");
}

RolloutEngine::~RolloutEngine() = default;

void RolloutEngine::prepare_batch(int64_t rows, int64_t capacity, const RolloutShape& shape, MemoryPlan& plan) {
  const bool reuse = batch_ && batch_->rows() >= rows && batch_->capacity() >= capacity;
  if (!reuse) batch_.reset();  // its memory returns to the allocator before the check
  if (auto available = allocatable_bytes(model_.device())) {
    MemoryPlan still_needed = plan;
    if (reuse) still_needed.kv_cache_bytes = still_needed.fused_weight_bytes = 0;
    require_fits(still_needed, shape, static_cast<int64_t>(double(*available) * options_.memory_headroom),
                 model_.device().str());
  }
  if (!reuse) {
    batch_ = std::make_unique<DecodeBatch>(model_, rows, capacity, options_.use_cuda_graphs, options_.fuse_projections,
                                           options_.fused_sampler);
  } else {
    batch_->refresh_weights();  // a new batch made its copies from the current weights already
  }
  // Graphs hold weight addresses: if the model's tensors were replaced, recapture.
  std::vector<const void*> addresses;
  for (const auto& p : model_.parameters()) addresses.push_back(p.data_ptr());
  if (addresses != weight_addresses_) batch_->drop_graphs();
  weight_addresses_ = std::move(addresses);
}

RolloutResult RolloutEngine::generate(const RolloutRequest& request, const ProgressFn& progress) {
  const auto& config = model_.config();
  validate_request(request, config);
  for (const auto& s : request.settings.stop.stop_strings) {
    require(!s.empty(), "rollout: stop strings must not be empty");
  }
  require(request.settings.stop.stop_strings.empty() || static_cast<bool>(decoder_.token_bytes),
          "rollout: stop strings need a tokenizer (the engine was made without a TextDecoder)");
  c10::InferenceMode inference;
  const int64_t N = static_cast<int64_t>(request.prompts.size()), G = request.group_size;
  int64_t prompt_len = 0;
  for (const auto& p : request.prompts) prompt_len = std::max<int64_t>(prompt_len, p.size());
  const int64_t rows = N * G;
  const int64_t capacity = round_up(prompt_len + request.settings.stop.max_new_tokens, options_.span_bucket);

  RolloutResult result;
  RolloutShape shape;
  shape.prompts = N;
  shape.group_size = G;
  shape.prompt_tokens = prompt_len;
  shape.max_new_tokens = request.settings.stop.max_new_tokens;
  shape.cache_capacity = capacity;
  shape.prefill_rows = std::min(N, std::max<int64_t>(1, options_.prefill_tokens / prompt_len));
  shape.element_size = static_cast<int64_t>(c10::elementSize(model_.dtype()));
  shape.top_p = request.settings.sampler.top_p < 1.0;
  shape.fused_projections = options_.fuse_projections;
  result.memory = plan_rollout_memory(config, shape);

#ifdef AHA_WITH_CUDA
  // Work runs on a stream of its own (CUDA graphs cannot be captured on the default stream),
  // after whatever the caller queued (e.g. the learner's last weight update).
  std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
  if (model_.device().is_cuda()) {
    synchronize(model_.device());
    const auto device = model_.device();
    stream_guard.emplace(c10::cuda::getStreamFromPool(false, device.has_index() ? device.index() : c10::cuda::current_device()));
  }
#endif
  prepare_batch(rows, capacity, shape, result.memory);
  batch_->set_sampler(request.settings.sampler);
  result.completions = run(request, prompt_len, rows, result.stats, progress);
  synchronize(model_.device());
  result.stats.cache_capacity = batch_->capacity();
  result.stats.graphs_captured = batch_->graph_count();
  return result;
}

std::vector<Completion> RolloutEngine::run(const RolloutRequest& request, int64_t P, int64_t R, RolloutStats& stats,
                                           const ProgressFn& progress) {
  const auto device = model_.device();
  const auto& settings = request.settings;
  const int64_t N = static_cast<int64_t>(request.prompts.size()), G = request.group_size;
  auto& state = batch_->state();
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);

  std::vector<Completion> completions(R);
  std::vector<StopChecker> checkers;
  checkers.reserve(R);
  std::vector<int64_t> keys(R);
  for (int64_t r = 0; r < R; ++r) {
    completions[r].prompt_index = r / G;
    completions[r].sample_index = r % G;
    keys[r] = sample_stream_key(settings.seed, r / G, r % G);
    checkers.emplace_back(settings.stop, decoder_.token_bytes);
  }
  int64_t finished = 0;
  auto accept = [&](int64_t r, int64_t token, float logprob) {
    auto& c = completions[r];
    c.tokens.push_back(token);
    c.logprobs.push_back(logprob);
    c.finish_reason = checkers[r].push(token);
    if (c.finish_reason != FinishReason::kNone) ++finished;
    ++stats.generated_tokens;
  };

  // Prefill: each prompt once, its cache and its last logits copied to its G rows.
  auto start = std::chrono::steady_clock::now();
  state.key_mask.zero_();
  state.row_keys.narrow(0, 0, R).copy_(torch::tensor(keys, i64));
  const int64_t chunk = std::max<int64_t>(1, options_.prefill_tokens / P);
  for (int64_t i0 = 0; i0 < N; i0 += chunk) {
    const int64_t c = std::min(chunk, N - i0), r0 = i0 * G, cg = c * G;
    auto ids = torch::zeros({c, P}, i64);
    auto mask = torch::zeros({c, P}, i64);
    std::vector<int64_t> lengths;
    for (int64_t i = 0; i < c; ++i) {
      const auto& prompt = request.prompts[i0 + i];
      const int64_t len = static_cast<int64_t>(prompt.size());
      ids[i].narrow(0, P - len, len).copy_(torch::tensor(prompt, i64));
      mask[i].narrow(0, P - len, len).fill_(1);
      for (int64_t g = 0; g < G; ++g) lengths.push_back(len);
    }
    ids = ids.to(device);
    auto prompt_keys = mask.to(device, torch::kBool);
    auto positions = positions_from_mask(mask).to(device);
    auto cache = KVCache::allocate(model_.config(), c, P, model_.dtype(), device);
    stats.prefilled_prompts += c;
    auto hidden = model_.hidden_states_cached(ids, positions, torch::arange(P, i64.device(device)), prompt_keys, cache,
                                              batch_->fused());
    auto logits = model_.logits(hidden.select(1, P - 1));  // [c, V]; left padding: every prompt ends at P - 1
    auto expand = torch::arange(c, i64.device(device)).repeat_interleave(G);
    auto sampled = sample_rows(logits.index_select(0, expand), settings.sampler, state.row_keys.narrow(0, r0, cg),
                               torch::zeros({1}, i64.device(device)), options_.fused_sampler);
    for (size_t l = 0; l < cache.keys.size(); ++l) {
      state.cache.keys[l].narrow(0, r0, cg).narrow(2, 0, P).copy_(cache.keys[l].index_select(0, expand));
      state.cache.values[l].narrow(0, r0, cg).narrow(2, 0, P).copy_(cache.values[l].index_select(0, expand));
    }
    state.key_mask.narrow(0, r0, cg).narrow(1, 0, P).copy_(prompt_keys.index_select(0, expand));
    state.positions.narrow(0, r0, cg).copy_(torch::tensor(lengths, i64).view({cg, 1}));
    state.ids.narrow(0, r0, cg).copy_(sampled.tokens.view({cg, 1}));
    auto tokens = sampled.tokens.cpu();
    auto logprobs = sampled.logprobs.cpu();
    for (int64_t k = 0; k < cg; ++k) accept(r0 + k, tokens[k].item<int64_t>(), logprobs[k].item<float>());
  }
  state.slot.fill_(P);
  state.step.fill_(1);
  synchronize(device);
  stats.prefill_seconds = seconds_since(start);
  if (progress) progress(finished, R, stats.generated_tokens);

  // Decode. row_at[p]: the completion in batch row p. One step is always queued ahead of the
  // host: step s + 1 is launched before step s's tokens are read back (its input tokens are
  // already on the device), so the GPU never waits for the host's bookkeeping. A row that
  // finishes at step s is computed once more in step s + 1, whose token for it is dropped, and
  // compaction, decided from what the host has read, lags one step behind.
  start = std::chrono::steady_clock::now();
  std::vector<int64_t> row_at(R);
  for (int64_t r = 0; r < R; ++r) row_at[r] = r;
  auto bucket_for = [&](int64_t live) {
    int64_t b = batch_->rows();
    while (b > 1 && (b + 1) / 2 >= live) b = (b + 1) / 2;
    return b;
  };
  int64_t b = bucket_for(R);
  StepReadback readback[2] = {StepReadback(batch_->rows(), device), StepReadback(batch_->rows(), device)};
  struct Launched {
    int64_t step, rows;
    std::vector<int64_t> row_at;  // the completion in each of its rows
  };
  auto launch = [&](int64_t step) {
    const int64_t want = bucket_for(R - finished);
    if (want < b) {
      std::vector<int64_t> keep, moved;
      for (int64_t p = 0; p < b && p < static_cast<int64_t>(row_at.size()); ++p) {
        if (completions[row_at[p]].finish_reason == FinishReason::kNone) {
          keep.push_back(p);
          moved.push_back(row_at[p]);
        }
      }
      batch_->compact(keep);
      row_at = std::move(moved);
      b = want;
      ++stats.compactions;
    }
    const int64_t slot = P + step - 1;  // where this step's input token goes
    const int64_t span = std::min(batch_->capacity(), round_up(slot + 1, options_.span_bucket));
    batch_->step(b, span);
    readback[step % 2].queue(state.tokens.narrow(0, 0, b), state.logprobs.narrow(0, 0, b));
    ++stats.decode_steps;
    stats.row_steps += b;
    return Launched{step, b, row_at};
  };
  // The prefill sampled each row's first token, so no row needs more steps than this.
  const int64_t last_step = settings.stop.max_new_tokens - 1;
  std::optional<Launched> next;
  if (finished < R) next = launch(1);
  while (next && finished < R) {
    const Launched current = std::move(*next);
    next.reset();
    if (current.step < last_step) next = launch(current.step + 1);
    auto& done = readback[current.step % 2];
    done.wait();
    const int64_t* t = done.tokens();
    const float* lp = done.logprobs();
    for (int64_t p = 0; p < static_cast<int64_t>(current.row_at.size()) && p < current.rows; ++p) {
      const int64_t r = current.row_at[p];
      if (completions[r].finish_reason == FinishReason::kNone) accept(r, t[p], lp[p]);
    }
    if (progress) progress(finished, R, stats.generated_tokens);
  }
  require(finished == R, "rollout: internal error: rows still unfinished after max_new_tokens");
  synchronize(device);
  stats.decode_seconds = seconds_since(start);

  if (decoder_.decode) {
    for (auto& c : completions) {
      std::vector<int64_t> shown = c.tokens;
      if (c.finish_reason == FinishReason::kEos && !shown.empty()) shown.pop_back();
      c.text = decoder_.decode(shown);
    }
  }
  return completions;
}

}  // namespace aha

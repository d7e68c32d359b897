#include "rollout/rollout_engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
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

// A host tensor copied to `device` without waiting for the work queued there: a copy from
// pageable memory to a CUDA device first waits for the stream (the decode step in flight), one
// from pinned memory is queued behind it, so the host goes on queueing (a refill's prefill)
// while the step runs. LibTorch's pinned allocator does not reuse the block before the copy ran.
torch::Tensor upload(const torch::Tensor& host, torch::Device device) {
  if (!device.is_cuda()) return host.to(device);
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

// The host's copy of one decode step's sampled tokens and log-probs (or of a refill's first
// tokens). On CUDA the copy is queued on the stream behind the step, into pinned memory, with an
// event after it: the host can queue the next step before it waits for this one.
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
  require(request.max_rows >= 0, "rollout: max_rows must be >= 0 (0: the engine's), got " +
                                     std::to_string(request.max_rows));
  require(request.first_prompt_index >= 0, "rollout: first_prompt_index must be >= 0, got " +
                                               std::to_string(request.first_prompt_index));
  const auto& each = request.max_new_tokens_each;
  const int64_t completions = static_cast<int64_t>(request.prompts.size()) * request.group_size;
  require(each.empty() || static_cast<int64_t>(each.size()) == completions,
          "rollout: max_new_tokens_each has " + std::to_string(each.size()) + " limits; expected none or one per completion (" +
              std::to_string(completions) + " = prompts x group_size)");
  for (size_t i = 0; i < each.size(); ++i) {
    require(each[i] >= 1 && each[i] <= max_new, "rollout: max_new_tokens_each[" + std::to_string(i) + "] is " +
                                                    std::to_string(each[i]) + "; it must be in [1, max_new_tokens " +
                                                    std::to_string(max_new) + "]");
  }
}

}  // namespace

RolloutEngine::RolloutEngine(const Transformer& model, EngineOptions options, TextDecoder decoder)
    : model_(model), options_(options), decoder_(std::move(decoder)) {
  require(options_.prefill_tokens >= 1, "rollout: prefill_tokens must be >= 1");
  require(options_.span_bucket >= 1, "rollout: span_bucket must be >= 1");
  require(options_.max_rows >= 0, "rollout: max_rows must be >= 0 (0: every row of the request)");
  require(options_.refill_fraction >= 0 && options_.refill_fraction <= 1, "rollout: refill_fraction must be in [0, 1]");
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

bool RolloutEngine::fits(const MemoryPlan& plan, int64_t rows, int64_t capacity) const {
  if (batch_ && batch_->rows() >= rows && batch_->capacity() >= capacity) return true;
  const auto available = allocatable_bytes(model_.device());
  if (!available) return true;
  const auto& config = model_.config();
  const double held = batch_ ? double(batch_->rows()) * double(batch_->capacity()) *
                                   double(kv_cache_bytes_per_token(config, c10::elementSize(model_.dtype())))
                             : 0.0;
  return double(plan.needed_bytes()) <= (double(*available) + held) * options_.memory_headroom;
}

RolloutResult RolloutEngine::generate_in_windows(const RolloutRequest& request, int64_t prompts,
                                                 const ProgressFn& progress) {
  const int64_t N = static_cast<int64_t>(request.prompts.size()), G = request.group_size;
  RolloutResult all;
  all.stats.windows = 0;
  int64_t finished_before = 0, tokens_before = 0;
  for (int64_t first = 0; first < N; first += prompts) {
    const int64_t count = std::min(prompts, N - first);
    RolloutRequest window;
    window.prompts.assign(request.prompts.begin() + first, request.prompts.begin() + first + count);
    window.group_size = G;
    window.settings = request.settings;
    if (!request.max_new_tokens_each.empty())
      window.max_new_tokens_each.assign(request.max_new_tokens_each.begin() + first * G,
                                        request.max_new_tokens_each.begin() + (first + count) * G);
    window.first_prompt_index = request.first_prompt_index + first;
    window.max_rows = count * G;  // all at once: no refills
    auto result = generate(window, [&](int64_t finished, int64_t, int64_t tokens) {
      if (progress) progress(finished_before + finished, N * G, tokens_before + tokens);
    });
    for (auto& c : result.completions) {
      c.prompt_index += first;
      all.completions.push_back(std::move(c));
    }
    auto& s = all.stats;
    const auto& w = result.stats;
    s.prefill_seconds += w.prefill_seconds;
    s.decode_seconds += w.decode_seconds;
    s.prefilled_prompts += w.prefilled_prompts;
    s.prefill_calls += w.prefill_calls;
    s.decode_steps += w.decode_steps;
    s.generated_tokens += w.generated_tokens;
    s.row_steps += w.row_steps;
    s.attended_slots += w.attended_slots;
    s.compactions += w.compactions;
    s.graphs_captured = w.graphs_captured;
    s.cache_capacity = w.cache_capacity;
    ++s.windows;
    if (first == 0) all.memory = result.memory;
    finished_before += count * G;
    tokens_before += w.generated_tokens;
  }
  return all;
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
  // Whole groups only; refilling rows needs room for a new row's max_new_tokens above the
  // shared slot while the oldest row's tokens lie below it (rollout_engine.h).
  const int64_t max_new = request.settings.stop.max_new_tokens;
  const int64_t max_rows = request.max_rows > 0 ? request.max_rows : options_.max_rows;
  const int64_t rows = max_rows > 0 ? std::min(N * G, std::max<int64_t>(1, max_rows / G) * G) : N * G;
  const bool refills = rows < N * G;
  if (refills && !options_.continuous_batching) return generate_in_windows(request, rows / G, progress);
  const int64_t capacity = rollout_cache_capacity(prompt_len, max_new, refills, options_.span_bucket);

  RolloutResult result;
  RolloutShape shape;
  shape.prompts = N;
  shape.group_size = G;
  shape.rows = rows;
  shape.prompt_tokens = prompt_len;
  shape.max_new_tokens = request.settings.stop.max_new_tokens;
  shape.cache_capacity = capacity;
  // Groups are prefilled at most rows / G at a time (the first fill), in chunks of prefill_tokens.
  shape.prefill_rows = std::min(rows / G, std::max<int64_t>(1, options_.prefill_tokens / prompt_len));
  shape.element_size = static_cast<int64_t>(c10::elementSize(model_.dtype()));
  shape.top_p = request.settings.sampler.top_p < 1.0;
  shape.fused_projections = options_.fuse_projections;
  result.memory = plan_rollout_memory(config, shape);
  if (refills && !fits(result.memory, rows, capacity)) {
    // The refilling cache does not fit where windows of the same rows would: run those.
    RolloutShape window = shape;
    window.prompts = rows / G;
    window.rows = 0;
    window.cache_capacity = rollout_cache_capacity(prompt_len, max_new, false, options_.span_bucket);
    if (fits(plan_rollout_memory(config, window), rows, window.cache_capacity))
      return generate_in_windows(request, rows / G, progress);
  }

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

SampledTokens RolloutEngine::place_groups(
    const RolloutRequest& request, int64_t first, int64_t count, const std::vector<int64_t>& free_rows, int64_t slot,
    int64_t P, RolloutStats& stats) {
  const auto device = model_.device();
  const auto& settings = request.settings;
  const int64_t G = request.group_size;
  auto& state = batch_->state();
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  std::vector<torch::Tensor> first_tokens, first_logprobs;  // per chunk, on the device
  const int64_t chunk = std::max<int64_t>(1, options_.prefill_tokens / P);
  for (int64_t i0 = 0; i0 < count; i0 += chunk) {
    const int64_t c = std::min(chunk, count - i0), cg = c * G;
    int64_t width = 0;  // this chunk's longest prompt: the others are left-padded to it
    for (int64_t i = 0; i < c; ++i) width = std::max<int64_t>(width, request.prompts[first + i0 + i].size());
    auto ids = torch::zeros({c, width}, i64);
    auto mask = torch::zeros({c, width}, i64);
    std::vector<int64_t> lengths, rows, keys;
    for (int64_t i = 0; i < c; ++i) {
      const int64_t prompt_index = first + i0 + i;
      const auto& prompt = request.prompts[prompt_index];
      const int64_t len = static_cast<int64_t>(prompt.size());
      ids[i].narrow(0, width - len, len).copy_(torch::tensor(prompt, i64));
      mask[i].narrow(0, width - len, len).fill_(1);
      for (int64_t g = 0; g < G; ++g) {
        lengths.push_back(len);
        rows.push_back(free_rows[(i0 + i) * G + g]);
        keys.push_back(sample_stream_key(settings.seed, request.first_prompt_index + prompt_index, g));
      }
    }
    ids = upload(ids, device);
    auto prompt_keys = upload(mask.to(torch::kBool), device);
    auto positions = upload(positions_from_mask(mask), device);
    auto cache = KVCache::allocate(model_.config(), c, width, model_.dtype(), device);
    stats.prefilled_prompts += c;
    ++stats.prefill_calls;
    auto hidden = model_.hidden_states_cached(ids, positions, torch::arange(width, i64.device(device)), prompt_keys,
                                              cache, batch_->fused());
    auto logits = model_.logits(hidden.select(1, width - 1));  // [c, V]; left padding: every prompt ends last
    auto expand = torch::arange(c, i64.device(device)).repeat_interleave(G);
    auto dst = upload(torch::tensor(rows, i64), device);
    auto row_keys = upload(torch::tensor(keys, i64), device);
    auto sampled = sample_rows(logits.index_select(0, expand), settings.sampler, row_keys,
                               torch::zeros({1}, i64.device(device)), options_.fused_sampler);
    // The prompt's slots end just below `slot`, where the row's first decode step writes.
    for (size_t l = 0; l < cache.keys.size(); ++l) {
      state.cache.keys[l].narrow(2, slot - width, width).index_copy_(0, dst, cache.keys[l].index_select(0, expand));
      state.cache.values[l].narrow(2, slot - width, width).index_copy_(0, dst, cache.values[l].index_select(0, expand));
    }
    state.key_mask.index_fill_(0, dst, false);
    state.key_mask.narrow(1, slot - width, width).index_copy_(0, dst, prompt_keys.index_select(0, expand));
    // The row's own slots begin where its prompt does (left padding below it is not read).
    state.first_slot.index_copy_(0, dst, upload(slot - torch::tensor(lengths, i64), device));
    state.positions.index_copy_(0, dst, upload(torch::tensor(lengths, i64).view({cg, 1}), device));
    state.ids.index_copy_(0, dst, sampled.tokens.view({cg, 1}));
    state.row_keys.index_copy_(0, dst, row_keys);
    state.step.index_fill_(0, dst, 1);
    first_tokens.push_back(sampled.tokens);
    first_logprobs.push_back(sampled.logprobs);
  }
  // Left on the device: the caller reads them back with a later step's tokens, not waiting now.
  if (first_tokens.size() == 1) return {first_tokens[0], first_logprobs[0]};
  return {torch::cat(first_tokens), torch::cat(first_logprobs)};
}

std::vector<Completion> RolloutEngine::run(const RolloutRequest& request, int64_t P, int64_t rows, RolloutStats& stats,
                                           const ProgressFn& progress) {
  const auto device = model_.device();
  const auto& settings = request.settings;
  const int64_t N = static_cast<int64_t>(request.prompts.size()), G = request.group_size, R = N * G;
  const int64_t C = batch_->capacity(), max_new = settings.stop.max_new_tokens;
  auto& state = batch_->state();

  std::vector<Completion> completions(R);
  std::vector<StopChecker> checkers;
  checkers.reserve(R);
  // limit: each completion's token budget; launched: its tokens once every step queued so far
  // has run (the host's view lags one step: a row may finish in the step in flight).
  std::vector<int64_t> limit(R), launched(R, 0);
  for (int64_t r = 0; r < R; ++r) {
    completions[r].prompt_index = r / G;
    completions[r].sample_index = r % G;
    checkers.emplace_back(settings.stop, decoder_.token_bytes);
    limit[r] = request.max_new_tokens_each.empty() ? max_new : request.max_new_tokens_each[r];
  }
  int64_t finished = 0;
  auto accept = [&](int64_t r, int64_t token, float logprob) {
    auto& c = completions[r];
    c.tokens.push_back(token);
    c.logprobs.push_back(logprob);
    c.finish_reason = checkers[r].push(token);
    if (c.finish_reason == FinishReason::kNone && static_cast<int64_t>(c.tokens.size()) >= limit[r])
      c.finish_reason = FinishReason::kLength;
    if (c.finish_reason != FinishReason::kNone) ++finished;
    ++stats.generated_tokens;
  };

  // row_at[p]: the completion in batch row p (-1: none yet); start[p]: its first cache slot (the
  // host's copy of the batch's first_slot). S: the cache slot the next decode step writes, the
  // same for every row. A row is idle when its completion wants no further step: finished as
  // far as the host has read, or every token up to its limit already queued (the last may still
  // be in flight: its readback is queued, and what a refill queues into the row runs after it).
  // retired[p]: row p is idle and its first slot was moved up to a step's slot, so that its
  // attention (computed, its result dropped) reads only the slots it writes itself from then on
  // instead of the whole context below.
  std::vector<int64_t> row_at(rows, -1), start(rows, 0);
  std::vector<char> retired(rows, 0);
  int64_t next_group = 0;  // groups [next_group, N) wait for rows
  int64_t S = P;
  auto live = [&](int64_t r) { return r >= 0 && completions[r].finish_reason == FinishReason::kNone; };
  auto wants_step = [&](int64_t r) { return live(r) && launched[r] < limit[r]; };
  auto any_wants_step = [&] { return std::any_of(row_at.begin(), row_at.end(), wants_step); };
  const int64_t refill_at = std::max<int64_t>(G, static_cast<int64_t>(std::ceil(double(rows) * options_.refill_fraction)));
  // Placed groups' first tokens on their way to the host: placing does not wait for the device.
  // They are accepted before the tokens of the first step launched after them (`before_step`),
  // whose readback the stream queues behind them.
  struct FirstTokens {
    int64_t before_step, first_completion, count;  // completions [first, first + count)
    StepReadback readback;
  };
  std::deque<FirstTokens> in_flight;
  int64_t step = 1;  // the next decode step to launch
  auto accept_first_tokens = [&](int64_t up_to_step) {  // those placed before step up_to_step
    while (!in_flight.empty() && in_flight.front().before_step <= up_to_step) {
      auto& f = in_flight.front();
      f.readback.wait();
      for (int64_t k = 0; k < f.count; ++k) accept(f.first_completion + k, f.readback.tokens()[k], f.readback.logprobs()[k]);
      in_flight.pop_front();
    }
  };
  // Places waiting groups into idle rows: all that fit when enough rows are idle, or whenever
  // no live row would step otherwise. Queued behind the step in flight, no host wait.
  auto top_up = [&] {
    while (next_group < N) {
      std::vector<int64_t> free_rows;
      for (int64_t p = 0; p < rows; ++p)
        if (!wants_step(row_at[p])) free_rows.push_back(p);
      const int64_t count = std::min<int64_t>(N - next_group, static_cast<int64_t>(free_rows.size()) / G);
      if (count == 0 || (static_cast<int64_t>(free_rows.size()) < refill_at && any_wants_step())) return;
      const auto began = std::chrono::steady_clock::now();
      // A row placed at slot S writes up to slot S + max_new - 2: when that passes the end,
      // move every row's slots down as far as the oldest live row (and the longest prompt) allow.
      if (S + max_new - 1 > C) {
        int64_t need = P;
        for (int64_t p = 0; p < rows; ++p)
          if (wants_step(row_at[p])) need = std::max(need, S - start[p]);
        batch_->shift_slots(S - need, S);
        for (auto& s0 : start) s0 = std::max<int64_t>(0, s0 - (S - need));  // as shift_slots clamps
        std::fill(retired.begin(), retired.end(), 0);  // idle rows clamped to 0: retire them again
        S = need;
        // Rows past this request's (a larger batch kept from an earlier one) likewise.
        if (batch_->rows() > rows) state.first_slot.narrow(0, rows, batch_->rows() - rows).fill_(S);
        ++stats.slot_shifts;
        require(S + max_new - 1 <= C, "rollout: internal error: no cache room for a refill");
      }
      free_rows.resize(count * G);
      int64_t refilled = 0;
      for (int64_t i = 0; i < count; ++i) refilled += row_at[free_rows[i * G]] >= 0;  // a row used before
      stats.refills += refilled;
      stats.refill_events += refilled > 0;
      auto first = place_groups(request, next_group, count, free_rows, S, P, stats);
      in_flight.push_back({step, next_group * G, count * G, StepReadback(count * G, device)});
      in_flight.back().readback.queue(first.tokens, first.logprobs);
      for (int64_t k = 0; k < count * G; ++k) {
        const int64_t p = free_rows[k], r = next_group * G + k;
        row_at[p] = r;
        start[p] = S - static_cast<int64_t>(request.prompts[r / G].size());
        retired[p] = 0;
        launched[r] = 1;
      }
      next_group += count;
      stats.prefill_seconds += seconds_since(began);
    }
  };

  // The first fill. Rows not placed (the batch may have more than this request's) attend only
  // to what they write from S on.
  const auto began = std::chrono::steady_clock::now();
  state.key_mask.zero_();
  state.first_slot.fill_(S);
  state.slot.fill_(S);
  top_up();
  synchronize(device);
  accept_first_tokens(step);
  stats.prefill_seconds = seconds_since(began);  // the first fill until its tokens are on the host
  if (progress) progress(finished, R, stats.generated_tokens);

  // Decode. row_at[p]: the completion in batch row p. One step is always queued ahead of the
  // host: step s + 1 is launched before step s's tokens are read back (its input tokens are
  // already on the device), so the GPU never waits for the host's bookkeeping. A row that
  // finishes at step s is computed once more in step s + 1, whose token for it is dropped, and
  // compaction and refills, decided from what the host has read, lag one step behind.
  auto bucket_for = [&](int64_t live_rows) {
    int64_t b = batch_->rows();
    while (b > 1 && (b + 1) / 2 >= live_rows) b = (b + 1) / 2;
    return b;
  };
  int64_t b = bucket_for(rows);
  StepReadback readback[2] = {StepReadback(batch_->rows(), device), StepReadback(batch_->rows(), device)};
  struct Launched {
    int64_t step, rows;
    std::vector<int64_t> row_at;  // the completion in each of its rows
  };
  // Moves the first slot of idle rows (idle, or never placed) of the next step's batch up
  // to the slot that step writes (the row indices uploaded without waiting for the step in
  // flight).
  auto retire_idle = [&](int64_t b) {
    std::vector<int64_t> idle;
    for (int64_t p = 0; p < b && p < rows; ++p) {
      if (wants_step(row_at[p]) || retired[p]) continue;
      idle.push_back(p);
      retired[p] = 1;
      start[p] = S;
    }
    if (idle.empty()) return;
    state.first_slot.index_fill_(0, upload(torch::tensor(idle, torch::kInt64), device), S);
  };
  auto launch = [&](int64_t number) {
    const int64_t want = bucket_for(R - finished);
    if (next_group == N && want < b) {  // no group waits: shrink the batch
      std::vector<int64_t> keep, moved(rows, -1), moved_start(rows, 0);
      for (int64_t p = 0; p < b && p < rows; ++p) {
        if (live(row_at[p])) {
          moved[keep.size()] = row_at[p];
          moved_start[keep.size()] = start[p];
          keep.push_back(p);
        }
      }
      batch_->compact(keep);
      row_at = std::move(moved);
      start = std::move(moved_start);
      std::fill(retired.begin(), retired.end(), 0);  // rows past the live ones hold stale copies
      b = want;
      ++stats.compactions;
    }
    retire_idle(b);
    const int64_t span = std::min(C, round_up(S + 1, options_.span_bucket));
    for (int64_t p = 0; p < b && p < rows; ++p) stats.attended_slots += S + 1 - start[p];
    batch_->step(b, span);
    ++S;
    readback[number % 2].queue(state.tokens.narrow(0, 0, b), state.logprobs.narrow(0, 0, b));
    ++stats.decode_steps;
    stats.row_steps += b;
    for (int64_t p = 0; p < b && p < rows; ++p)
      if (wants_step(row_at[p])) ++launched[row_at[p]];
    return Launched{number, b, row_at};
  };
  std::optional<Launched> next;
  while (true) {
    if (!next) {
      top_up();
      if (!any_wants_step()) break;
      next = launch(step++);
    }
    const Launched current = std::move(*next);
    next.reset();
    top_up();
    if (any_wants_step()) next = launch(step++);
    auto& done = readback[current.step % 2];
    done.wait();
    accept_first_tokens(current.step);  // a row's first token before its later ones
    const int64_t* t = done.tokens();
    const float* lp = done.logprobs();
    for (int64_t p = 0; p < static_cast<int64_t>(current.row_at.size()) && p < current.rows; ++p) {
      const int64_t r = current.row_at[p];
      if (live(r)) accept(r, t[p], lp[p]);
    }
    if (progress) progress(finished, R, stats.generated_tokens);
  }
  accept_first_tokens(step);  // of rows placed with no step after them (limit 1)
  require(finished == R && next_group == N, "rollout: internal error: rows still unfinished after max_new_tokens");
  synchronize(device);
  stats.decode_seconds = std::max(0.0, seconds_since(began) - stats.prefill_seconds);

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

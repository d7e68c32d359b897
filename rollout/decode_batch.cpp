#include "rollout/decode_batch.h"

#ifdef AHA_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#endif

#include <algorithm>
#include <optional>

#include "core/error.h"
#include "policy/model/moe.h"

namespace aha {

struct DecodeBatch::Graphs {
#ifdef AHA_WITH_CUDA
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<at::cuda::CUDAGraph>> by_shape;  // (b, span)
  std::optional<at::cuda::MempoolId_t> pool;  // made at the first capture (CPU models never need one)
#endif
};

DecodeBatch::DecodeBatch(const Transformer& model, int64_t rows, int64_t capacity, bool use_cuda_graphs,
                         bool fuse_projections, bool fused_sampler)
    : model_(model), rows_(rows), capacity_(capacity), fused_sampler_(fused_sampler), graphs_(std::make_unique<Graphs>()) {
  if (fuse_projections) fused_ = model.fuse_projections();
  const auto device = model.device();
  // Dynamic rotary scaling reads the largest position on the host each step: not capturable.
  use_graphs_ = use_cuda_graphs && device.is_cuda() && model.config().rope_scaling.type != "dynamic";
  // Routed experts: the loop path reads its token counts on the host, which a graph cannot
  // capture; the grouped GEMM path (moe.h: bf16 on Hopper) has no host sync and is captured
  // (tests/rollout/deepseek_v3_rollout_test.cpp compares it with eager decoding on a GPU).
  const auto& config = model.config();
  if (config.is_moe() &&
      !grouped_experts_apply(device, model.dtype(), config.hidden_size, config.moe_intermediate_size))
    use_graphs_ = false;
#ifndef AHA_WITH_CUDA
  use_graphs_ = false;
#endif
  auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  state_.cache = KVCache::allocate(model.config(), rows, capacity, model.dtype(), device);
  state_.ids = torch::zeros({rows, 1}, i64);
  state_.positions = torch::zeros({rows, 1}, i64);
  state_.key_mask = torch::zeros({rows, capacity}, i64.dtype(torch::kBool));
  state_.first_slot = torch::zeros({rows}, i64);
  state_.row_keys = torch::zeros({rows}, i64);
  state_.slot = torch::zeros({1}, i64);
  state_.step = torch::zeros({rows}, i64);
  state_.tokens = torch::zeros({rows}, i64);
  state_.logprobs = torch::zeros({rows}, i64.dtype(torch::kFloat32));
}

DecodeBatch::~DecodeBatch() = default;

int64_t DecodeBatch::graph_count() const {
#ifdef AHA_WITH_CUDA
  return static_cast<int64_t>(graphs_->by_shape.size());
#else
  return 0;
#endif
}

void DecodeBatch::drop_graphs() {
#ifdef AHA_WITH_CUDA
  graphs_->by_shape.clear();
  // The pool dies with its last graph: capturing into its id again is an allocator assert
  // (create_or_incref_pool), so the next capture takes a new pool.
  graphs_->pool.reset();
#endif
}

void DecodeBatch::refresh_weights() {
  if (!fused_.empty()) model_.refresh(fused_);
}

void DecodeBatch::set_sampler(const SamplerSettings& s) {
  if (s.temperature != sampler_.temperature || s.top_k != sampler_.top_k || s.top_p != sampler_.top_p) drop_graphs();
  sampler_ = s;
}

void DecodeBatch::run_step(int64_t b, int64_t span) {
  auto& s = state_;
  auto key_mask = s.key_mask.narrow(0, 0, b);
  key_mask.index_fill_(1, s.slot, true);
  KVCache rows;
  for (size_t l = 0; l < s.cache.keys.size(); ++l) {
    rows.keys.push_back(s.cache.keys[l].narrow(0, 0, b));
    rows.values.push_back(s.cache.values[l].narrow(0, 0, b));
  }
  rows.first_slots = s.first_slot.narrow(0, 0, b);
  auto ids = s.ids.narrow(0, 0, b);
  auto positions = s.positions.narrow(0, 0, b);
  auto hidden = model_.hidden_states_cached(ids, positions, s.slot, key_mask.narrow(1, 0, span), rows, fused());
  auto logits = model_.logits(hidden.squeeze(1));  // [b, V]
  auto steps = s.step.narrow(0, 0, b);
  auto sampled = sample_rows(logits, sampler_, s.row_keys.narrow(0, 0, b), steps, fused_sampler_);
  s.tokens.narrow(0, 0, b).copy_(sampled.tokens);
  s.logprobs.narrow(0, 0, b).copy_(sampled.logprobs);
  ids.copy_(sampled.tokens.view({b, 1}));
  positions.add_(1);
  s.slot.add_(1);
  steps.add_(1);
}

void DecodeBatch::step(int64_t b, int64_t span) {
  TORCH_CHECK(b >= 1 && b <= rows_ && span >= 1 && span <= capacity_, "DecodeBatch::step: bad shape");
  if (!use_graphs_) {
    run_step(b, span);
    return;
  }
#ifdef AHA_WITH_CUDA
  auto& graph = graphs_->by_shape[{b, span}];
  if (graph) {
    graph->replay();
    return;
  }
  // The first step of a shape runs eagerly (it is a real step, and it warms up cuBLAS and the
  // allocator on this stream); capturing records the same work without running it.
  run_step(b, span);
  auto captured = std::make_unique<at::cuda::CUDAGraph>();
  // Thread-local capture: other threads of a training process (rewards, the dashboard) may
  // keep using CUDA while this thread captures.
  if (!graphs_->pool) graphs_->pool = at::cuda::graph_pool_handle();
  captured->capture_begin(*graphs_->pool, cudaStreamCaptureModeThreadLocal);
  run_step(b, span);
  captured->capture_end();
  graph = std::move(captured);
#endif
}

void DecodeBatch::compact(const std::vector<int64_t>& keep) {
  const int64_t n = static_cast<int64_t>(keep.size());
  if (n == 0) return;
  auto index = torch::tensor(keep, torch::kInt64).to(model_.device());
  // index_select makes a copy first, so moving rows forward never reads an overwritten row.
  auto move = [&](torch::Tensor& t) { t.narrow(0, 0, n).copy_(t.index_select(0, index)); };
  for (size_t l = 0; l < state_.cache.keys.size(); ++l) {
    move(state_.cache.keys[l]);
    move(state_.cache.values[l]);
  }
  move(state_.ids);
  move(state_.positions);
  move(state_.key_mask);
  move(state_.first_slot);
  move(state_.row_keys);
  move(state_.step);
}

void DecodeBatch::shift_slots(int64_t shift, int64_t used) {
  TORCH_CHECK(shift >= 0 && shift <= used && used <= capacity_, "DecodeBatch::shift_slots: bad range");
  if (shift == 0) return;
  const int64_t n = used - shift;
  // Slots move down in ascending chunks. A chunk of at most `shift` slots overlaps neither its
  // own source nor a later chunk's, so it is copied directly: the cache is read and written once,
  // with no temporary. A smaller shift would take too many chunks; it goes through a copy of each
  // chunk of kStaged slots instead: a bounded temporary, where copying the whole range out first
  // would take one the size of a layer's cache, which the memory plan does not count.
  constexpr int64_t kStaged = 256;
  const bool direct = shift >= kStaged;
  const int64_t chunk = direct ? shift : kStaged;
  auto move_down = [&](torch::Tensor& t, int64_t dim) {
    for (int64_t i = 0; i < n; i += chunk) {
      const int64_t k = std::min(chunk, n - i);
      auto source = t.narrow(dim, shift + i, k);
      t.narrow(dim, i, k).copy_(direct ? source : source.clone());
    }
  };
  for (size_t l = 0; l < state_.cache.keys.size(); ++l) {
    move_down(state_.cache.keys[l], 2);
    move_down(state_.cache.values[l], 2);
  }
  move_down(state_.key_mask, 1);
  state_.key_mask.narrow(1, n, capacity_ - n).fill_(false);
  state_.first_slot.sub_(shift).clamp_min_(0);
  state_.slot.sub_(shift);
}

}  // namespace aha

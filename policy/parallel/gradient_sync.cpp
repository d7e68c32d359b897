#include "policy/parallel/gradient_sync.h"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>

#include "core/error.h"

namespace aha::parallel {

GradientSync::GradientSync(std::shared_ptr<Communicator> comm, std::vector<torch::Tensor> params,
                           GradientReduction reduction, int64_t bucket_bytes)
    : comm_(std::move(comm)), params_(std::move(params)), reduction_(reduction) {
  require(comm_ != nullptr, "GradientSync: no communicator");
  require(bucket_bytes > 0, "GradientSync: bucket size must be > 0");
  bucket_of_.resize(params_.size());
  param_ready_.assign(params_.size(), false);
  // Reverse order; a bucket holds one dtype and one device only (it is flattened with cat, and
  // reduced in that dtype: see the header).
  int64_t used = 0;  // bytes in the open (last) bucket
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    require(p.requires_grad() && p.is_leaf(), "GradientSync: every parameter must be a leaf that requires grad");
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    bool fits = !buckets_.empty();
    if (fits) {
      const auto& last = params_[buckets_.back().params.front()];
      fits = last.scalar_type() == p.scalar_type() && last.device() == p.device() && used + bytes <= bucket_bytes;
    }
    if (!fits) {
      buckets_.emplace_back();
      used = 0;
    }
    buckets_.back().params.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    used += bytes;
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    require(acc != nullptr, "GradientSync: a parameter has no gradient accumulator");
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          on_ready(k);
          return outputs;
        })));
    accumulators_.push_back(std::move(acc));
  }
}

GradientSync::~GradientSync() {
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
}

void GradientSync::arm() {
  std::lock_guard<std::mutex> lock(mutex_);
  require(!armed_, "GradientSync::arm: already armed (finish() was not called)");
  armed_ = true;
  next_launch_ = 0;
  launched_in_backward_ = 0;
  param_ready_.assign(params_.size(), false);
  for (auto& b : buckets_) {
    b.ready = 0;
    b.work.reset();
    b.reduces.clear();
    b.flat = torch::Tensor();
  }
}

void GradientSync::on_ready(size_t k) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_ || param_ready_[k]) return;
  param_ready_[k] = true;
  ++buckets_[bucket_of_[k]].ready;
  launch_ready_in_order();
}

void GradientSync::reduce_to_shard(const ShardLayout& layout) {
  require(layout.world_size() == comm_->size() && layout.param_count() == params_.size(),
          "GradientSync: the shard layout is for " + std::to_string(layout.param_count()) + " parameters over " +
              std::to_string(layout.world_size()) + " ranks, the gradients are " + std::to_string(params_.size()) +
              " parameters over " + std::to_string(comm_->size()));
  for (size_t k = 0; k < params_.size(); ++k)
    require(layout.numel(k) == params_[k].numel(),
            "GradientSync: the shard layout's parameter " + std::to_string(k) + " has another size");
  shards_ = std::make_unique<ShardLayout>(layout);
}

torch::Tensor GradientSync::take_shard_grad() { return std::move(shard_grad_); }

void GradientSync::launch(Bucket& b) {
  // Increasing index order: a bucket's parameters are consecutive, so its flat vector is one
  // contiguous range of the shard layout's flattened parameters.
  std::vector<torch::Tensor> parts;
  for (auto it = b.params.rbegin(); it != b.params.rend(); ++it) {
    const auto& p = params_[*it];
    auto g = p.grad();
    parts.push_back(g.defined() ? g.detach().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
  }
  auto flat = torch::cat(parts).to(comm_->device());
  b.flat = flat;
  if (shards_) {
    const int64_t begin = shards_->param_start(b.params.back()), end = begin + flat.numel();
    for (int r = 0; r < comm_->size(); ++r) {
      const auto [rb, re] = shards_->range(r);
      const int64_t ob = std::max(begin, rb), oe = std::min(end, re);
      if (oe <= ob) continue;
      auto slice = flat.narrow(0, ob - begin, oe - ob);
      b.reduces.push_back(comm_->reduce_async(slice, r));
      reduced_bytes_ += slice.numel() * static_cast<int64_t>(slice.element_size());
    }
  } else {
    std::vector<torch::Tensor> tensors = {flat};
    b.work = comm_->all_reduce_async(tensors, c10d::ReduceOp::SUM);
    reduced_bytes_ += flat.numel() * static_cast<int64_t>(flat.element_size());
  }
  if (!in_finish_) ++launched_in_backward_;
}

void GradientSync::launch_ready_in_order() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].params.size())
    launch(buckets_[next_launch_++]);
}

void GradientSync::finish(const std::string& what) {
  std::lock_guard<std::mutex> lock(mutex_);
  require(armed_, "GradientSync::finish: arm() was not called before backward");
  in_finish_ = true;
  // Parameters that got no gradient in the armed backward still take part, with what they hold.
  for (; next_launch_ < buckets_.size(); ++next_launch_) launch(buckets_[next_launch_]);
  torch::NoGradGuard no_grad;
  const double scale = reduction_ == GradientReduction::average ? 1.0 / comm_->size() : 1.0;
  if (shards_) {
    const auto [mine_begin, mine_end] = shards_->range(comm_->rank());
    // In the widest of the gradients' dtypes (a bf16 model's float32 router gate keeps its own):
    // each bucket was reduced in its own dtype, and widening it here is exact.
    auto dtype = params_.front().scalar_type();
    for (const auto& p : params_) dtype = c10::promoteTypes(dtype, p.scalar_type());
    shard_grad_ = torch::zeros({mine_end - mine_begin}, params_.front().options().dtype(dtype));
    for (auto& b : buckets_) {
      for (auto& w : b.reduces) comm_->wait(w, what);
      const int64_t begin = shards_->param_start(b.params.back()), end = begin + b.flat.numel();
      const int64_t ob = std::max(begin, mine_begin), oe = std::min(end, mine_end);
      if (oe > ob) {
        auto part = b.flat.narrow(0, ob - begin, oe - ob).to(shard_grad_.device());
        if (scale != 1.0) part = part * scale;
        shard_grad_.narrow(0, ob - mine_begin, oe - ob).copy_(part);
      }
      b.reduces.clear();
      b.flat = torch::Tensor();
    }
    // Only the shard outlives the reduction.
    for (auto& p : params_) p.mutable_grad().reset();
  } else {
    for (auto& b : buckets_) {
      comm_->wait(b.work, what);
      int64_t offset = 0;
      for (auto it = b.params.rbegin(); it != b.params.rend(); ++it) {
        auto& p = params_[*it];
        auto part = b.flat.narrow(0, offset, p.numel()).view(p.sizes()).to(p.device());
        if (scale != 1.0) part = part * scale;
        offset += p.numel();
        if (p.grad().defined())
          p.mutable_grad().copy_(part);
        else
          p.mutable_grad() = part.clone();
      }
      b.work.reset();
      b.flat = torch::Tensor();
    }
  }
  in_finish_ = false;
  armed_ = false;
}

}  // namespace aha::parallel

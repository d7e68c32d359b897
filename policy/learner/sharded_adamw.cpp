#include "policy/learner/sharded_adamw.h"

#include <ATen/ops/_fused_adamw.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "core/error.h"
#include "policy/learner/optimizer_shards.h"

namespace aha::policy {
namespace {

std::vector<int64_t> numels_of(const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  std::vector<int64_t> out;
  for (const auto& [_, p] : named) out.push_back(p.numel());
  return out;
}

int64_t bytes_of(const torch::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; }

}  // namespace

ShardedAdamW::ShardedAdamW(std::shared_ptr<parallel::Communicator> comm, Sharding mode,
                           std::vector<std::pair<std::string, torch::Tensor>> named, std::vector<size_t> group_of,
                           const std::vector<ParamGroup>& groups, const OptimizerOptions& options,
                           torch::Tensor master)
    : comm_(std::move(comm)),
      mode_(mode),
      named_(std::move(named)),
      layout_(numels_of(named_), comm_ ? comm_->size() : 1),
      options_(options) {
  require(comm_ != nullptr, "sharded optimizer: no communicator");
  require(mode_ != Sharding::none, "sharded optimizer: sharding 'none' shards nothing");
  require(!named_.empty() && group_of.size() == named_.size(), "sharded optimizer: no parameters");
  const auto& first = named_.front().second;
  for (const auto& [name, p] : named_) {
    // With float32 masters every piece steps in float32, whatever its weights' dtype (a bf16
    // model's float32 router gate); without, the moments are in the weights' one dtype.
    require((master.defined() || p.scalar_type() == first.scalar_type()) && p.device() == first.device(),
            "sharding " + sharding_name(mode_) + " needs every parameter in one dtype (unless with float32 masters) "
                "on one device: " + name + " is " +
                c10::toString(p.scalar_type()) + " on " + p.device().str() + ", " + named_.front().first + " is " +
                c10::toString(first.scalar_type()) + " on " + first.device().str());
    require(p.is_contiguous(), "sharding " + sharding_name(mode_) + ": parameter " + name + " is not contiguous");
    flat_.push_back(p.detach().view({-1}));
  }
  for (const auto& g : groups) weight_decays_.push_back(g.weight_decay);
  std::tie(range_begin_, range_end_) = layout_.range(comm_->rank());
  require(mode_ != Sharding::zero3 || master.defined(), "sharding zero3 needs the float32 master shard");
  if (master.defined())
    require(master.dim() == 1 && master.numel() == range_end_ - range_begin_ && master.scalar_type() == torch::kFloat32,
            "sharding " + sharding_name(mode_) + ": the master shard must be float32 [" +
                std::to_string(range_end_ - range_begin_) + "]");
  writes_back_masters_ = master.defined() && mode_ != Sharding::zero3;
  // ZeRO-3, and ZeRO-1/2 with float32 masters, step the float32 master range; else the
  // parameters themselves.
  const auto state_options = master.defined() ? master.options() : first.options();
  for (const auto& where : layout_.pieces(range_begin_, range_end_)) {
    Piece piece;
    piece.where = where;
    piece.group = group_of[where.param];
    piece.param = master.defined() ? master.narrow(0, where.flat_offset - range_begin_, where.length)
                                   : flat_[where.param].narrow(0, where.offset, where.length);
    piece.exp_avg = torch::zeros({where.length}, state_options);
    piece.exp_avg_sq = torch::zeros({where.length}, state_options);
    pieces_.push_back(std::move(piece));
  }
  if (mode_ != Sharding::zero3) plan_gathers();
}

void ShardedAdamW::plan_gathers() {
  const int world = comm_->size();
  auto gather = [&](torch::ScalarType dtype) {
    return Gather{dtype, std::vector<std::vector<parallel::ShardPiece>>(world), std::vector<int64_t>(world, 0), 0};
  };
  auto add = [](Gather& g, int rank, parallel::ShardPiece piece) {
    piece.flat_offset = g.elements[rank];
    g.elements[rank] += piece.length;
    g.pieces[rank].push_back(piece);
  };
  auto bytes = [](const std::vector<Gather>& gathers) {
    int64_t sum = 0;
    for (const auto& g : gathers) sum += g.longest * int64_t(c10::elementSize(g.dtype));
    return sum;
  };
  // One gather per dtype, in the order the dtypes first appear; and one of everything in the
  // widest dtype.
  std::vector<Gather> per_dtype;
  std::map<torch::ScalarType, size_t> gather_of;  // dtype -> index in per_dtype
  auto widest = named_.front().second.scalar_type();
  for (const auto& [_, p] : named_) {
    if (gather_of.emplace(p.scalar_type(), per_dtype.size()).second) per_dtype.push_back(gather(p.scalar_type()));
    widest = c10::promoteTypes(widest, p.scalar_type());
  }
  std::vector<Gather> one = {gather(widest)};
  for (int r = 0; r < world; ++r)
    for (const auto& piece : layout_.pieces_of(r)) {
      add(per_dtype[gather_of.at(named_[piece.param].second.scalar_type())], r, piece);
      add(one.front(), r, piece);
    }
  for (auto* gathers : {&per_dtype, &one})
    for (auto& g : *gathers) g.longest = *std::max_element(g.elements.begin(), g.elements.end());
  // Per dtype unless that moves no fewer bytes: each dtype's contribution is padded to the rank
  // with the most of its elements, so float32 weights massed in some ranks' ranges (more than
  // half a range) would cost more than widening everything.
  gathers_ = bytes(per_dtype) < bytes(one) ? std::move(per_dtype) : std::move(one);
}

torch::Tensor ShardedAdamW::grad_of(const Piece& piece) const {
  if (mode_ == Sharding::zero2 || mode_ == Sharding::zero3) {
    if (!shard_grad_.defined()) return {};
    return shard_grad_.narrow(0, piece.where.flat_offset - range_begin_, piece.where.length);
  }
  const auto& g = named_[piece.where.param].second.grad();
  if (!g.defined()) return {};
  return g.reshape({-1}).narrow(0, piece.where.offset, piece.where.length);
}

OptimizerStepResult ShardedAdamW::step(const torch::Tensor& loss, const std::vector<double>& group_lrs,
                                       double max_grad_norm, double other_squared_norm) {
  std::vector<torch::Tensor> grads;
  std::vector<size_t> with_grad;
  for (size_t i = 0; i < pieces_.size(); ++i) {
    auto g = grad_of(pieces_[i]);
    if (!g.defined()) continue;
    grads.push_back(g);
    with_grad.push_back(i);
  }
  // This range's squared norm, summed over the ranks: the global norm of optimizer.h.
  auto squared = torch::zeros({1}, torch::kFloat64);
  if (!grads.empty()) {
    auto norms = at::_foreach_norm(grads, 2, torch::kFloat32);
    for (auto& n : norms) n = n.to(grads.front().device());
    squared = torch::stack(norms).to(torch::kFloat64).pow(2).sum().reshape({1}).cpu();
  }
  squared += other_squared_norm;  // before the all-reduce: still one collective
  comm_->all_reduce(squared, c10d::ReduceOp::SUM, "all-reduce of the squared gradient norms");
  OptimizerStepResult result;
  result.grad_norm = std::sqrt(squared.item<double>());
  const double loss_host = loss.defined() ? loss.detach().to(torch::kCPU, torch::kFloat64).item<double>() : 0.0;
  result.skip_reason = non_finite_skip_reason(loss_host, result.grad_norm);
  if (result.skip_reason.empty()) {
    torch::NoGradGuard no_grad;
    // The same float32 coefficient as optimizer.h computes from its float32 norm.
    const double coef = clip_coefficient(max_grad_norm, result.grad_norm);
    // Float32 masters of bf16 weights: the range's gradient in float32 (a copy, as optimizer.h
    // casts the gradients for its masters), clipped there.
    for (auto& g : grads)
      if (g.scalar_type() != pieces_.front().param.scalar_type()) g = g.to(pieces_.front().param.scalar_type());
    if (coef < 1.0) {
      // Scaled copies: a ZeRO-1 gradient view belongs to the whole parameter's .grad.
      for (auto& g : grads) g = g * coef;
    }
    // One fused launch per group and step count (the kernel's step is one scalar per tensor).
    std::map<std::pair<size_t, int64_t>, std::vector<size_t>> launches;
    for (size_t k = 0; k < with_grad.size(); ++k) {
      auto& piece = pieces_[with_grad[k]];
      ++piece.step;
      launches[{piece.group, piece.step}].push_back(k);
    }
    for (const auto& [key, members] : launches) {
      std::vector<torch::Tensor> params, g, avg, avg_sq, steps;
      auto step_tensor = torch::full({}, double(key.second), pieces_.front().param.options().dtype(torch::kFloat32));
      for (size_t k : members) {
        auto& piece = pieces_[with_grad[k]];
        params.push_back(piece.param);
        g.push_back(grads[k]);
        avg.push_back(piece.exp_avg);
        avg_sq.push_back(piece.exp_avg_sq);
        steps.push_back(step_tensor);
      }
      at::_fused_adamw_(params, g, avg, avg_sq, /*max_exp_avg_sqs=*/{}, steps, group_lrs.at(key.first),
                        options_.beta1, options_.beta2, weight_decays_.at(key.first), options_.eps,
                        /*amsgrad=*/false, /*maximize=*/false);
    }
    if (mode_ != Sharding::zero3) {
      // This rank's range of the weights becomes its masters' rounding, which the gather then
      // spreads, so every rank holds the same weights.
      if (writes_back_masters_)
        for (const auto& piece : pieces_)
          flat_[piece.where.param].narrow(0, piece.where.offset, piece.where.length).copy_(piece.param);
      all_gather_parameters();
    }
    result.applied = true;
  }
  clear_grads();
  return result;
}

namespace {

// Each of `pieces` (by flat_offset, which counts their elements one after another) that overlaps
// elements [begin, end): visit(piece, first, length), the overlap's first element within the
// piece and its length.
template <class Visit>
void for_each_overlap(const std::vector<parallel::ShardPiece>& pieces, int64_t begin, int64_t end, Visit visit) {
  auto it = std::partition_point(pieces.begin(), pieces.end(),
                                 [&](const parallel::ShardPiece& p) { return p.flat_offset + p.length <= begin; });
  for (; it != pieces.end() && it->flat_offset < end; ++it) {
    const int64_t b = std::max(begin, it->flat_offset), e = std::min(end, it->flat_offset + it->length);
    visit(*it, b - it->flat_offset, e - b);
  }
}

}  // namespace

void ShardedAdamW::all_gather_parameters() {
  torch::NoGradGuard no_grad;
  const int world = comm_->size(), rank = comm_->rank();
  // Each gather in its dtype (the weights' own, or the widest): every value is exact in it.
  for (const auto& g : gathers_) {
    const auto options = named_.front().second.options().dtype(g.dtype);
    const int64_t element = int64_t(c10::elementSize(g.dtype));
    int64_t round = gather_round_;
    if (round <= 0) round = std::max<int64_t>(1, (comm_->options().bucket_megabytes << 20) / (element * world));
    // Round k: every rank contributes elements [k, k + n) of its elements in this gather (padded to n).
    for (int64_t k = 0; k < g.longest; k += round) {
      const int64_t n = std::min(round, g.longest - k);
      auto mine = torch::zeros({n}, options);
      for_each_overlap(g.pieces[rank], k, k + n, [&](const parallel::ShardPiece& p, int64_t first, int64_t length) {
        mine.narrow(0, p.flat_offset + first - k, length).copy_(flat_[p.param].narrow(0, p.offset + first, length));
      });
      auto all = comm_->all_gather(mine, "all-gather of the updated parameters");
      gathered_bytes_ += n * element;
      for (int r = 0; r < world; ++r) {
        if (r == rank) continue;
        for_each_overlap(g.pieces[r], k, k + n, [&](const parallel::ShardPiece& p, int64_t first, int64_t length) {
          flat_[p.param].narrow(0, p.offset + first, length).copy_(all[r].narrow(0, p.flat_offset + first - k, length));
        });
      }
    }
  }
}

void ShardedAdamW::clear_grads() {
  for (auto& [_, p] : named_) p.mutable_grad().reset();
  shard_grad_ = torch::Tensor();
}

int64_t ShardedAdamW::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& p : pieces_) bytes += bytes_of(p.exp_avg) + bytes_of(p.exp_avg_sq);
  return bytes;
}

int64_t ShardedAdamW::gradient_bytes() const {
  int64_t bytes = bytes_of(shard_grad_);
  for (const auto& [_, p] : named_) bytes += bytes_of(p.grad());
  return bytes;
}

std::vector<ShardPieceState> ShardedAdamW::piece_states() const {
  std::vector<ShardPieceState> out;
  for (const auto& p : pieces_)
    out.push_back({named_[p.where.param].first, p.where.offset, p.exp_avg, p.exp_avg_sq, p.step,
                   writes_back_masters_ ? p.param : torch::Tensor()});
  return out;
}

void ShardedAdamW::load(OptimizerShardReader& reader) {
  torch::NoGradGuard no_grad;
  std::vector<OptimizerShardReader::Range> ranges;  // all read before any is applied
  for (const auto& p : pieces_)
    ranges.push_back(reader.read(reader.param_index(named_[p.where.param].first), p.where.offset, p.where.length));
  for (size_t i = 0; i < pieces_.size(); ++i) {
    pieces_[i].exp_avg.copy_(ranges[i].exp_avg);
    pieces_[i].exp_avg_sq.copy_(ranges[i].exp_avg_sq);
    pieces_[i].step = ranges[i].step;
  }
}

void ShardedAdamW::load_from_full(const torch::optim::AdamW& full) {
  torch::NoGradGuard no_grad;
  for (auto& piece : pieces_) {
    const auto& p = named_[piece.where.param].second;
    auto it = full.state().find(p.unsafeGetTensorImpl());
    if (it == full.state().end()) {  // never updated
      piece.exp_avg.zero_();
      piece.exp_avg_sq.zero_();
      piece.step = 0;
      continue;
    }
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    piece.exp_avg.copy_(s.exp_avg().reshape({-1}).narrow(0, piece.where.offset, piece.where.length));
    piece.exp_avg_sq.copy_(s.exp_avg_sq().reshape({-1}).narrow(0, piece.where.offset, piece.where.length));
    piece.step = s.step();
  }
}

}  // namespace aha::policy

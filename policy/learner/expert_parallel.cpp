#include "policy/learner/expert_parallel.h"

#include <torch/csrc/autograd/custom_function.h>

#include "core/error.h"

namespace aha::policy {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The all-to-all of rows as an autograd function: the gradient of what a rank received goes
// back to where it came from, which is the same all-to-all with the counts swapped. The
// communicator is passed as an address (saved_data holds IValues only); ExpertParallel, which
// owns it, outlives every graph built through it.
struct AllToAllRows : public torch::autograd::Function<AllToAllRows> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input, int64_t comm_address,
                               std::vector<int64_t> send_rows, std::vector<int64_t> recv_rows) {
    ctx->saved_data["comm"] = comm_address;
    ctx->saved_data["send"] = send_rows;
    ctx->saved_data["recv"] = recv_rows;
    auto* comm = reinterpret_cast<parallel::Communicator*>(comm_address);
    return comm->all_to_all(input, send_rows, recv_rows, "all-to-all of tokens to their experts").to(input.device());
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto* comm = reinterpret_cast<parallel::Communicator*>(ctx->saved_data["comm"].toInt());
    const auto send_rows = ctx->saved_data["send"].toIntVector(), recv_rows = ctx->saved_data["recv"].toIntVector();
    // grads[0] is materialised (zeros where the output was unused), so every rank takes part.
    auto grad = comm->all_to_all(grads[0], recv_rows, send_rows, "all-to-all of gradients back from the experts")
                    .to(grads[0].device());
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

std::vector<int64_t> block_sums(const torch::Tensor& counts, int64_t blocks) {  // counts [blocks * n] int64 CPU
  auto sums = counts.view({blocks, -1}).sum(1);
  return std::vector<int64_t>(sums.data_ptr<int64_t>(), sums.data_ptr<int64_t>() + blocks);
}

}  // namespace

bool is_routed_expert_parameter(const std::string& name) {
  return ends_with(name, ".experts.gate_up_proj") || ends_with(name, ".experts.down_proj");
}

void check_expert_parallel(const ModelConfig& config, int world_size) {
  require(config.is_moe(), "parallel.expert_parallel needs a mixture-of-experts model (Qwen3-MoE or DeepSeek-V3); "
                           "model type " + config.model_type + " has no routed experts");
  require(world_size >= 1 && config.num_experts % world_size == 0,
          "parallel.expert_parallel: the model's " + std::to_string(config.num_experts) +
              " routed experts cannot be split evenly over " + std::to_string(world_size) +
              " ranks (n_routed_experts must be divisible by the world size)");
}

ExpertParallel::ExpertParallel(std::shared_ptr<parallel::Communicator> comm, Transformer& model)
    : comm_(std::move(comm)), model_(model) {
  require(comm_ != nullptr, "expert parallelism needs a communicator");
  check_expert_parallel(model_.config(), comm_->size());
  experts_ = model_.config().num_experts;
  local_ = experts_ / comm_->size();
  for (auto& [name, p] : model_.named_parameters())
    if (is_routed_expert_parameter(name)) expert_params_.push_back(p);
  scatter_back();
}

ExpertParallel::~ExpertParallel() {
  if (model_.expert_dispatch() == this) model_.set_expert_dispatch(nullptr);
}

std::vector<std::pair<std::string, torch::Tensor>> ExpertParallel::replicated_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [name, p] : model_.named_parameters())
    if (!is_routed_expert_parameter(name)) out.emplace_back(name, p);
  return out;
}

namespace {

// The AdamW state of `p` (of its float32 master, `master` when defined), or null; every rank must
// agree whether there is one (each step gives every expert tensor a gradient on every rank, so
// the states appear together).
torch::optim::AdamWParamState* adam_state(Optimizer* optimizer, const torch::Tensor& p, const torch::Tensor& master,
                                          parallel::Communicator& comm) {
  if (!optimizer) return nullptr;
  auto& state = optimizer->adamw().state();
  auto it = state.find((master.defined() ? master : p).unsafeGetTensorImpl());
  const double mine = it == state.end() ? 0.0 : 1.0;
  const double ranks = comm.all_reduce({mine}, c10d::ReduceOp::SUM, "all-reduce of the experts' optimizer state")[0];
  require(ranks == 0 || ranks == comm.size(), "expert parallelism: some ranks have optimizer state for an expert "
                                              "tensor and others none");
  return mine > 0 ? static_cast<torch::optim::AdamWParamState*>(it->second.get()) : nullptr;
}

}  // namespace

void ExpertParallel::scatter_back(Optimizer* optimizer) {
  torch::NoGradGuard no_grad;
  auto slice = [&](const torch::Tensor& t) { return t.narrow(0, first_expert(), local_).clone(); };
  for (auto& p : expert_params_) {
    if (p.size(0) == local_) continue;
    // fp32_master: the expert's float32 master follows it (set_data: AdamW's tensor stays).
    const auto master = optimizer ? optimizer->master_of(p) : torch::Tensor();
    if (master.defined()) master.set_data(slice(master.detach()));
    if (auto* s = adam_state(optimizer, p, master, *comm_)) {
      s->exp_avg(slice(s->exp_avg()));
      s->exp_avg_sq(slice(s->exp_avg_sq()));
      if (s->max_exp_avg_sq().defined() && s->max_exp_avg_sq().dim() > 0) s->max_exp_avg_sq(slice(s->max_exp_avg_sq()));
    }
    // set_data keeps the tensor (its autograd identity, the optimizer's reference) and replaces
    // its data by this rank's slice; the rest is freed.
    p.mutable_grad() = torch::Tensor();
    p.set_data(slice(p.detach()));
  }
  model_.set_expert_dispatch(this);
}

void ExpertParallel::gather_whole(Optimizer* optimizer) {
  torch::NoGradGuard no_grad;
  auto whole = [&](const torch::Tensor& t) {
    return torch::cat(comm_->all_gather(t, "all-gather of the routed experts")).to(t.device());
  };
  for (auto& p : expert_params_) {
    if (p.size(0) == experts_) continue;
    const auto master = optimizer ? optimizer->master_of(p) : torch::Tensor();
    if (master.defined()) master.set_data(whole(master.detach()));
    if (auto* s = adam_state(optimizer, p, master, *comm_)) {
      s->exp_avg(whole(s->exp_avg()));
      s->exp_avg_sq(whole(s->exp_avg_sq()));
      if (s->max_exp_avg_sq().defined() && s->max_exp_avg_sq().dim() > 0) s->max_exp_avg_sq(whole(s->max_exp_avg_sq()));
    }
    p.mutable_grad() = torch::Tensor();
    p.set_data(whole(p.detach()));
  }
  model_.set_expert_dispatch(nullptr);
}

void ExpertParallel::gather_experts_into(Transformer& to) const {
  torch::NoGradGuard no_grad;
  auto from = model_.named_parameters();
  auto dest = to.named_parameters();
  require(from.size() == dest.size(), "expert parallelism: the copy's parameters differ from the policy's");
  for (size_t i = 0; i < from.size(); ++i) {
    auto& [name, p] = from[i];
    if (!is_routed_expert_parameter(name)) continue;
    auto& t = dest[i].second;
    if (p.size(0) != t.size(0)) {
      // In the copy's dtype (the rollout's compute dtype): half the bytes on the wire for bf16.
      auto pieces = comm_->all_gather(p.detach().to(t.scalar_type()), "all-gather of the routed experts");
      t.copy_(torch::cat(pieces));
    } else {
      t.copy_(p);
    }
  }
}

void ExpertParallel::gather_into(Transformer& to) const {
  torch::NoGradGuard no_grad;
  auto from = model_.named_parameters();
  auto dest = to.named_parameters();
  require(from.size() == dest.size(), "expert parallelism: the copy's parameters differ from the policy's");
  for (size_t i = 0; i < from.size(); ++i)
    if (!is_routed_expert_parameter(from[i].first)) dest[i].second.copy_(from[i].second);
  gather_experts_into(to);
  auto from_buffers = model_.named_buffers();
  auto dest_buffers = to.named_buffers();
  for (size_t i = 0; i < from_buffers.size() && i < dest_buffers.size(); ++i)
    dest_buffers[i].second.copy_(from_buffers[i].second);
}

torch::Tensor ExpertParallel::routed_experts(const torch::Tensor& x, const torch::Tensor& experts,
                                             const torch::Tensor& weights, const torch::Tensor& gate_up,
                                             const torch::Tensor& down) const {
  require(x.dim() == 2 && experts.dim() == 2 && experts.size(0) == x.size(0) && weights.sizes() == experts.sizes(),
          "expert parallelism: x must be [N, H], experts and weights [N, k]");
  require(gate_up.size(0) == local_ && down.size(0) == local_,
          "expert parallelism: the layer holds " + std::to_string(gate_up.size(0)) + " experts, not this rank's " +
              std::to_string(local_));
  const int64_t W = comm_->size();
  // The token permutation of moe.h: pairs ordered by expert, hence by owner rank.
  const auto permutation = TokenPermutation::of(experts);
  auto flat = experts.reshape({-1});        // [N*k]
  auto sorted_x = permutation.dispatch(x);  // [N*k, H]
  auto counts = torch::zeros({experts_}, flat.options()).scatter_add_(0, flat, torch::ones_like(flat)).cpu();

  // From each rank, how many rows for each of this rank's experts: [W * local] (source-major).
  const std::vector<int64_t> per_rank(W, local_);
  auto received_counts =
      comm_->all_to_all(counts, per_rank, per_rank, "all-to-all of the expert counts").cpu().contiguous();
  const auto send_rows = block_sums(counts, W), recv_rows = block_sums(received_counts, W);

  const auto address = reinterpret_cast<int64_t>(comm_.get());
  auto received = AllToAllRows::apply(sorted_x, address, send_rows, recv_rows);  // [M, H]
  // The local expert of each received row: rank s's block holds its rows for expert 0, 1, ...
  auto local_ids = torch::repeat_interleave(torch::arange(local_, torch::kInt64).repeat({W}), received_counts)
                       .to(x.device())
                       .unsqueeze(1);  // [M, 1]
  // Weight 1: the routing weights are applied where the tokens live, in the same order and
  // precision as routed_experts applies them.
  auto ones = torch::ones({received.size(0), 1}, x.options());
  // With no rows here, still a node of the graph: backward must reach the first all-to-all on
  // every rank, or the others would wait for this one.
  // The experts' tensors too, with a zero gradient: as in plain data parallelism (where the
  // stacked tensor always has one) AdamW then steps them, weight decay included.
  auto computed = received.size(0) == 0
                      ? received * 0 + (gate_up.sum() + down.sum()).to(received.scalar_type()) * 0
                      : aha::routed_experts(received, local_ids, ones, gate_up, down);  // [M, H]
  auto returned = AllToAllRows::apply(computed, address, recv_rows, send_rows);  // [N*k, H], order's rows

  auto scale = weights.reshape({-1}).index_select(0, permutation.order).unsqueeze(1);  // [N*k, 1]
  return permutation.combine((returned * scale).to(x.scalar_type()));
}

}  // namespace aha::policy

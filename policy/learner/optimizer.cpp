#include "policy/learner/optimizer.h"

#include <ATen/ops/_fused_adamw.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "policy/learner/optimizer_shards.h"
#include "policy/learner/sharded_adamw.h"
#include "policy/parallel/communicator.h"

namespace aha::policy {

std::string non_finite_skip_reason(double loss, double grad_norm) {
  if (!std::isfinite(loss)) return "loss is not finite";
  if (!std::isfinite(grad_norm)) return "gradient norm is not finite";
  return {};
}

double clip_coefficient(double max_grad_norm, double grad_norm) {
  if (max_grad_norm <= 0.0) return 1.0;
  const double norm32 = static_cast<double>(static_cast<float>(grad_norm));
  return std::min(1.0, max_grad_norm / (norm32 + 1e-6));
}

namespace {

void validate(const std::vector<ParamGroup>& groups, const OptimizerOptions& o) {
  require(!groups.empty(), "optimizer: no parameter groups");
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& group = groups[g];
    std::string where = "optimizer: group " + std::to_string(g) + " '" + group.name + "'";
    require(!group.params.empty(), where + " has no parameters");
    require(group.weight_decay >= 0.0, where + ": weight_decay must be >= 0");
    require(group.lr_scale >= 0.0, where + ": lr_scale must be >= 0");
    for (size_t i = 0; i < group.params.size(); ++i) {
      const auto& p = group.params[i];
      require(p.defined() && p.requires_grad() && p.is_leaf(),
              where + ": parameter " + std::to_string(i) +
                  " must be a defined leaf tensor that requires grad");
      require(p.is_floating_point(),
              where + ": parameter " + std::to_string(i) + " must be floating-point");
    }
  }
  require(o.lr >= 0.0, "optimizer: lr must be >= 0, got " + std::to_string(o.lr));
  require(o.beta1 >= 0.0 && o.beta1 < 1.0, "optimizer: beta1 must be in [0, 1)");
  require(o.beta2 >= 0.0 && o.beta2 < 1.0, "optimizer: beta2 must be in [0, 1)");
  require(o.eps > 0.0, "optimizer: eps must be > 0");
}

int64_t bytes_of(const torch::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; }

// Squared L2 norm of gradients: float32 norms (_foreach_norm), squared and summed in float64.
double squared_norm(const std::vector<torch::Tensor>& grads) {
  if (grads.empty()) return 0.0;
  auto norms = at::_foreach_norm(grads, 2, torch::kFloat32);
  for (auto& n : norms) n = n.to(grads.front().device());
  const auto host = torch::stack(norms).to(torch::kCPU, torch::kFloat64);  // one transfer
  const auto* v = host.data_ptr<double>();
  double sum = 0.0;
  for (int64_t i = 0; i < host.numel(); ++i) sum += v[i] * v[i];
  return sum;
}

// A parameter's AdamW state from sharded checkpoint pieces: of `p`'s elements, which are the
// saved parameter's from `offset` on (0: p is the whole parameter; a rank-local slice: where the
// slice starts), or null when it was never updated (AdamW keeps no state then).
std::unique_ptr<torch::optim::AdamWParamState> state_of(OptimizerShardReader& reader, size_t param,
                                                        const torch::Tensor& p, int64_t offset = 0) {
  auto range = reader.read(param, offset, p.numel());
  if (range.step == 0) return nullptr;
  auto s = std::make_unique<torch::optim::AdamWParamState>();
  s->step(range.step);
  s->exp_avg(range.exp_avg.to(p.device(), p.scalar_type()).view(p.sizes()).clone());
  s->exp_avg_sq(range.exp_avg_sq.to(p.device(), p.scalar_type()).view(p.sizes()).clone());
  return s;
}

}  // namespace

Sharding parse_sharding(const std::string& name) {
  if (name == "none") return Sharding::none;
  if (name == "zero1") return Sharding::zero1;
  if (name == "zero2") return Sharding::zero2;
  if (name == "zero3") return Sharding::zero3;
  throw Error("sharding '" + name + "' is not one of none, zero1, zero2, zero3");
}

std::string sharding_name(Sharding sharding) {
  switch (sharding) {
    case Sharding::none: return "none";
    case Sharding::zero1: return "zero1";
    case Sharding::zero2: return "zero2";
    case Sharding::zero3: return "zero3";
  }
  return "?";
}

Optimizer::~Optimizer() = default;

Optimizer::Optimizer(std::vector<ParamGroup> groups, const OptimizerOptions& options)
    : groups_(std::move(groups)), options_(options), schedule_(options.schedule) {
  validate(groups_, options_);
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& g : groups_) {
    // What AdamW updates: the parameter itself, or (fp32_master) its float32 master copy.
    std::vector<torch::Tensor> updated;
    for (const auto& p : g.params) {
      if (options_.fp32_master && (p.scalar_type() == torch::kBFloat16 || p.scalar_type() == torch::kHalf)) {
        // Empty until first needed (seed_master): a run that shards its optimizer keeps only its
        // range of the masters, so no rank ever holds a whole float32 copy of the model.
        auto master = torch::empty({0}, p.options().dtype(torch::kFloat32));
        masters_.push_back({p, master, -1, p._version()});
        master_params_.push_back(p);
        updated.push_back(master);
      } else {
        updated.push_back(p);
      }
    }
    auto group_options = std::make_unique<torch::optim::AdamWOptions>(options_.lr * g.lr_scale);
    group_options->betas({options_.beta1, options_.beta2})
        .eps(options_.eps)
        .weight_decay(g.weight_decay);
    torch_groups.emplace_back(updated, std::move(group_options));
  }
  require(!options_.fp32_master || !masters_.empty(),
          "optimizer: fp32_master keeps float32 masters of bf16/fp16 parameters, and every parameter is float32 "
          "already (load the model in bf16, or leave fp32_master off)");
  adamw_ = std::make_unique<torch::optim::AdamW>(
      torch_groups, torch::optim::AdamWOptions(options_.lr).weight_decay(0.0));
  index_masters();
}

double Optimizer::lr_at(int64_t step) const { return options_.lr * schedule_.lr_factor(step); }

OptimizerStepResult Optimizer::step(const torch::Tensor& loss) {
  reseed_written_masters();
  if (sharded_) {
    const double factor = schedule_.lr_factor(step_count_);
    std::vector<double> lrs;
    for (const auto& g : groups_) lrs.push_back(options_.lr * g.lr_scale * factor);
    // Rank-local parameters are outside the shards: their squared norm joins the shards' in the
    // one all-reduce, so the global norm (and the skip and clip decisions) covers them too.
    std::vector<torch::Tensor> local_grads;
    for (const auto& l : local_)
      if (l.param.grad().defined()) local_grads.push_back(l.param.grad());
    auto result = sharded_->step(loss, lrs, options_.max_grad_norm, squared_norm(local_grads));
    // The sharded step cleared the other gradients: only the rank-local parameters step here.
    if (result.applied && !local_grads.empty())
      update_adamw_parameters(clip_coefficient(options_.max_grad_norm, result.grad_norm), factor);
    clear_gradients();
    result.lr = lr_at(step_count_);
    if (!result.applied) ++skipped_steps_;
    ++step_count_;
    return result;
  }
  std::vector<torch::Tensor> grads, local_grads;
  for (const auto& g : groups_)
    for (const auto& p : g.params) {
      if (!p.grad().defined()) continue;
      grads.push_back(p.grad());
      if (is_rank_local(p)) local_grads.push_back(p.grad());
    }

  // One host transfer for both checks: [global norm, loss].
  torch::Tensor norm;
  if (grads.empty()) {
    norm = torch::zeros({}, torch::kFloat32);
  } else {
    auto norms = at::_foreach_norm(grads, 2, torch::kFloat32);
    for (auto& n : norms) n = n.to(grads.front().device());
    norm = torch::linalg_vector_norm(torch::stack(norms), 2);
  }
  if (local_comm_) {
    // Rank-local parameters: every rank's squared norms of them summed (the same on every rank),
    // plus the replicated parameters' (already the same everywhere).
    const double all = squared_norm(grads), local = squared_norm(local_grads);
    const double local_sum =
        local_comm_->all_reduce({local}, c10d::ReduceOp::SUM, "all-reduce of the experts' gradient norms")[0];
    const auto device = grads.empty() ? torch::Device(torch::kCPU) : grads.front().device();
    norm = torch::tensor(std::sqrt(std::max(0.0, all - local) + local_sum), torch::kFloat32).to(device);
  }
  auto loss_value = loss.defined() ? loss.detach().reshape({}).to(norm.device(), torch::kFloat32)
                                   : torch::zeros({}, norm.options());
  auto host = torch::stack({norm, loss_value}).cpu();
  OptimizerStepResult result;
  result.grad_norm = host[0].item<double>();
  double loss_host = host[1].item<double>();
  result.lr = lr_at(step_count_);

  result.skip_reason = non_finite_skip_reason(loss_host, result.grad_norm);
  if (result.skip_reason.empty()) {
    update_adamw_parameters(clip_coefficient(options_.max_grad_norm, result.grad_norm),
                            schedule_.lr_factor(step_count_));
    result.applied = true;
  } else {
    ++skipped_steps_;
  }
  ++step_count_;
  clear_gradients();
  return result;
}

void Optimizer::update_adamw_parameters(double coef, double factor) {
  torch::NoGradGuard no_grad;
  auto update = gradients_for_update();
  if (coef < 1.0) at::_foreach_mul_(update, coef);
  set_group_lrs(factor);
  fused_adamw_step();
  refresh_parameters_from_masters();
}

void Optimizer::clear_gradients() {
  adamw_->zero_grad(/*set_to_none=*/true);
  for (auto& l : local_) l.param.mutable_grad().reset();
  for (auto& m : masters_) {
    m.param.mutable_grad().reset();
    // Whatever wrote the weights in this step (the refresh, the shards' gather) wrote the
    // masters' rounding: only a later write re-seeds.
    m.version = m.param._version();
  }
}

void Optimizer::set_group_lrs(double factor) {
  auto& torch_groups = adamw_->param_groups();
  for (size_t g = 0; g < groups_.size(); ++g)
    torch_groups[g].options().set_lr(options_.lr * groups_[g].lr_scale * factor);
}

const Optimizer::RankLocal* Optimizer::rank_local(const void* impl) const {
  const auto it = local_of_.find(impl);
  return it == local_of_.end() ? nullptr : &local_[it->second];
}

torch::Tensor Optimizer::Master::weights() const {
  return offset < 0 ? param : param.detach().view({-1}).narrow(0, offset, master.numel());
}

torch::Tensor Optimizer::master_of(const torch::Tensor& param) const {
  allocate_masters();
  const auto it = whole_master_of_.find(param.unsafeGetTensorImpl());
  return it == whole_master_of_.end() ? torch::Tensor() : masters_[it->second].master;
}

void Optimizer::index_masters() {
  whole_master_of_.clear();
  for (size_t i = 0; i < masters_.size(); ++i)
    if (masters_[i].offset < 0) whole_master_of_.emplace(masters_[i].param.unsafeGetTensorImpl(), i);  // the first stays
}

// Writes source into m's master, allocating it on first use (set_data: AdamW's groups hold the
// same tensor).
void Optimizer::seed_master(Master& m, const torch::Tensor& source) {
  torch::NoGradGuard no_grad;
  if (m.allocated) {
    m.master.copy_(source.reshape(m.master.sizes()));
  } else {
    m.master.set_data(source.detach().to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true));
    m.allocated = true;
  }
  m.version = m.param._version();
}

void Optimizer::reset_masters(const std::vector<torch::Tensor>& saved) {
  for (size_t i = 0; i < masters_.size(); ++i) {
    auto& m = masters_[i];
    seed_master(m, i < saved.size() && saved[i].defined() ? saved[i] : m.weights());
  }
}

std::vector<torch::Tensor> Optimizer::masters_of_whole(const std::map<const void*, torch::Tensor>& whole) const {
  std::vector<torch::Tensor> out;
  for (const auto& m : masters_) {
    const auto it = whole.find(m.param.unsafeGetTensorImpl());
    if (it == whole.end()) {
      out.emplace_back();
    } else {
      out.push_back(m.offset < 0 ? it->second : it->second.reshape({-1}).narrow(0, m.offset, m.master.numel()));
    }
  }
  return out;
}

void Optimizer::reseed_written_masters() const {
  for (auto& m : masters_)  // written since, or never allocated
    if (!m.allocated || m.param._version() != m.version) seed_master(m, m.weights());
}

void Optimizer::allocate_masters() const {
  if (masters_allocated_) return;
  for (auto& m : masters_)
    if (!m.allocated) seed_master(m, m.weights());
  masters_allocated_ = true;
}

std::vector<torch::Tensor> Optimizer::gradients_for_update() {
  for (auto& m : masters_) {
    // A sharded piece's gradient is the shard's (sharded_adamw.h casts it).
    if (m.offset >= 0 || !m.param.grad().defined()) continue;
    m.master.mutable_grad() = m.param.grad().to(torch::kFloat32);
    m.param.mutable_grad().reset();  // freed before the update needs its memory
  }
  // The gradients of what AdamW updates: the masters and the float32 parameters.
  std::vector<torch::Tensor> update;
  for (const auto& group : adamw_->param_groups())
    for (const auto& p : group.params())
      if (p.grad().defined()) update.push_back(p.grad());
  return update;
}

void Optimizer::refresh_parameters_from_masters() {
  std::vector<torch::Tensor> params, masters;
  for (const auto& m : masters_)
    if (m.master.grad().defined()) {
      params.push_back(m.param);
      masters.push_back(m.master);
    }
  if (params.empty()) return;
  torch::NoGradGuard no_grad;
  at::_foreach_copy_(params, masters);  // rounds each master to its parameter's dtype
}

void Optimizer::fused_adamw_step() {
  torch::NoGradGuard no_grad;
  auto& state = adamw_->state();
  for (auto& group : adamw_->param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    // One launch per device and dtype (the kernel's requirement). The kernel reads each
    // parameter's step count (already advanced) from a device scalar; parameters with the same
    // count share one.
    struct Launch {
      std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
      std::map<int64_t, torch::Tensor> step_tensors;
    };
    std::map<std::string, Launch> launches;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state[p.unsafeGetTensorImpl()];
      if (!slot) {  // as LibTorch's AdamW creates it
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*slot);
      s.step(s.step() + 1);
      auto& launch = launches[p.device().str() + "/" + c10::toString(p.scalar_type())];
      auto& step = launch.step_tensors[s.step()];
      if (!step.defined()) step = torch::full({}, double(s.step()), p.options().dtype(torch::kFloat32));
      launch.params.push_back(p);
      launch.grads.push_back(p.grad());
      launch.exp_avgs.push_back(s.exp_avg());
      launch.exp_avg_sqs.push_back(s.exp_avg_sq());
      launch.steps.push_back(step);
    }
    const auto [beta1, beta2] = o.betas();
    for (auto& [_, l] : launches) {
      at::_fused_adamw_(l.params, l.grads, l.exp_avgs, l.exp_avg_sqs, /*max_exp_avg_sqs=*/{}, l.steps, o.lr(), beta1,
                        beta2, o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
    }
  }
}

void Optimizer::save(const std::filesystem::path& path) const {
  require(!sharded_, "optimizer state " + path.string() + ": a sharded optimizer is saved with save_shards");
  // A parameter written since the last step (a weight load) is what the masters must hold.
  reseed_written_masters();
  torch::serialize::OutputArchive archive;
  adamw_->save(archive);
  if (!masters_.empty()) {
    archive.write("aha_master_count", torch::tensor(static_cast<int64_t>(masters_.size()), torch::kInt64));
    for (size_t i = 0; i < masters_.size(); ++i) archive.write("aha_master_" + std::to_string(i), masters_[i].master);
  }
  archive.write("aha_step_count", torch::tensor(step_count_, torch::kInt64));
  archive.write("aha_skipped_steps", torch::tensor(skipped_steps_, torch::kInt64));
  // Streamed into the atomic writer: the state of a real model (12 GB of AdamW moments for 1.5B
  // parameters) is never copied whole in memory.
  AtomicFileWriter writer(path);
  archive.save_to([&writer](const void* data, size_t size) {
    writer.write(data, size);
    return size;
  });
  writer.commit();
}

void Optimizer::load(const std::filesystem::path& path) {
  // Mapped, not read: the state of a real model is larger than read_file's limit for one file.
  const MappedFile data(path);
  // Check the saved state against these parameters first: LibTorch would otherwise accept
  // moments of another model's shapes and fail (or corrupt) on the next step.
  allocate_masters();  // AdamW's parameters, whose shapes the check reads
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(reinterpret_cast<const char*>(data.data()), data.size());
    torch::optim::AdamW probe(adamw_->param_groups(), torch::optim::AdamWOptions(options_.lr));
    probe.load(archive);
    const auto& groups = probe.param_groups();
    require(groups.size() == groups_.size(),
            "optimizer state " + path.string() + ": " + std::to_string(groups.size()) +
                " parameter groups, expected " + std::to_string(groups_.size()));
    for (size_t g = 0; g < groups.size(); ++g) {
      for (size_t i = 0; i < groups[g].params().size(); ++i) {
        const auto& p = groups[g].params()[i];
        auto it = probe.state().find(p.unsafeGetTensorImpl());
        if (it == probe.state().end()) continue;  // never updated: no moments saved
        auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
        require(s.exp_avg().sizes() == p.sizes(),
                "optimizer state " + path.string() + ": group '" + groups_[g].name +
                    "' parameter " + std::to_string(i) + " has moments of shape " +
                    c10::str(s.exp_avg().sizes()) + ", the parameter is " + c10::str(p.sizes()));
      }
    }
    torch::Tensor steps, skipped;
    archive.read("aha_step_count", steps);
    archive.read("aha_skipped_steps", skipped);
    // Read and checked before anything changes, so a bad file leaves this optimizer as it was.
    const auto saved_masters = masters_of_whole(read_masters(archive, path));
    adamw_->load(archive);
    step_count_ = steps.item<int64_t>();
    skipped_steps_ = skipped.item<int64_t>();
    if (sharded_) {  // an unsharded checkpoint resumed sharded: keep this rank's ranges only
      // As saved (float32 moments of masters stay float32 in the shards' float32 moments).
      sharded_->load_from_full(*adamw_);
      // The rank-local parameters' state stays here (whole while the caller has them gathered).
      auto& state = adamw_->state();
      const auto local_keys = rank_local_keys();
      for (auto it = state.begin(); it != state.end();) {
        it = local_keys.count(it->first) ? std::next(it) : state.erase(it);
      }
    }
    match_moment_dtypes();
    // Saved without masters (a bf16 run resumed with fp32_master): they start from the weights.
    reset_masters(saved_masters);
  } catch (const c10::Error& e) {
    throw Error("optimizer state " + path.string() +
                " cannot be loaded: " + e.what_without_backtrace());
  }
}

std::map<const void*, torch::Tensor> Optimizer::read_masters(torch::serialize::InputArchive& archive,
                                                            const std::filesystem::path& path) const {
  torch::Tensor count;
  // Saved with masters and resumed without: the weights as loaded (their masters rounded) stand.
  if (!archive.try_read("aha_master_count", count) || master_params_.empty()) return {};
  require(count.item<int64_t>() == static_cast<int64_t>(master_params_.size()),
          "optimizer state " + path.string() + ": " + std::to_string(count.item<int64_t>()) +
              " float32 master weights, expected " + std::to_string(master_params_.size()));
  std::map<const void*, torch::Tensor> saved;
  for (size_t i = 0; i < master_params_.size(); ++i) {
    const auto& p = master_params_[i];  // whole here (under expert parallelism gathered for the load)
    torch::Tensor t;
    archive.read("aha_master_" + std::to_string(i), t);
    require(t.sizes() == p.sizes() && t.scalar_type() == torch::kFloat32,
            "optimizer state " + path.string() + ": master weight " + std::to_string(i) + " is " +
                c10::toString(t.scalar_type()) + " " + c10::str(t.sizes()) + ", expected Float " + c10::str(p.sizes()));
    saved[p.unsafeGetTensorImpl()] = t.to(p.device());
  }
  return saved;
}

void Optimizer::match_moment_dtypes() {
  // A checkpoint of another precision (bf16 moments resumed with float32 masters, or the
  // reverse): the fused kernel needs the moments in the dtype of what it updates.
  auto& state = adamw_->state();
  for (const auto& group : adamw_->param_groups())
    for (const auto& p : group.params()) {
      auto it = state.find(p.unsafeGetTensorImpl());
      if (it == state.end()) continue;
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      if (s.exp_avg().scalar_type() != p.scalar_type() || s.exp_avg().device() != p.device()) {
        s.exp_avg(s.exp_avg().to(p.device(), p.scalar_type()));
        s.exp_avg_sq(s.exp_avg_sq().to(p.device(), p.scalar_type()));
      }
    }
}

void Optimizer::shard(std::shared_ptr<parallel::Communicator> comm, Sharding mode,
                      const std::vector<std::pair<std::string, torch::Tensor>>& named, torch::Tensor master) {
  require(step_count_ == 0 && adamw_->state().empty(), "optimizer: shard() must come before the first step");
  sharded_.reset();
  if (mode == Sharding::none || !comm || comm->size() == 1) return;
  require(masters_.empty() || mode != Sharding::zero3,
          "optimizer: fp32_master does not combine with sharding zero3, which keeps float32 master ranges itself "
          "(load the model in float32 with autocast_bf16 for bf16 compute)");
  require((mode == Sharding::zero3) == master.defined(),
          "optimizer: sharding zero3 needs the master shard of the fully sharded parameters, and only zero3 takes one");
  std::map<const void*, size_t> group_of_param;
  size_t count = 0;
  for (size_t g = 0; g < groups_.size(); ++g)
    for (const auto& p : groups_[g].params) {
      group_of_param[p.unsafeGetTensorImpl()] = g;
      ++count;
    }
  std::vector<size_t> group_of;
  std::set<const void*> seen;
  for (const auto& [name, p] : named) {
    auto it = group_of_param.find(p.unsafeGetTensorImpl());
    require(it != group_of_param.end(), "optimizer: parameter " + name + " is in no parameter group");
    require(!is_rank_local(p), "optimizer: parameter " + name +
                                   " is rank-local (set_rank_local): its state stays on its rank, it is not sharded");
    require(seen.insert(p.unsafeGetTensorImpl()).second, "optimizer: parameter " + name + " is named twice");
    group_of.push_back(it->second);
  }
  // Exactly the groups' parameters less the rank-local ones (each of which is in a group).
  size_t local_in_groups = 0;
  for (const auto& l : local_) local_in_groups += group_of_param.count(l.param.unsafeGetTensorImpl());
  require(local_in_groups == local_.size(), "optimizer: a rank-local parameter is in no parameter group");
  require(named.size() + local_.size() == count,
          "optimizer: " + std::to_string(named.size()) + " named parameters" +
              (local_.empty() ? "" : " and " + std::to_string(local_.size()) + " rank-local ones") +
              ", the groups have " + std::to_string(count));
  // float32 masters (zero1/zero2): this rank's range of them, which the shards' AdamW steps.
  if (!masters_.empty()) {
    std::vector<int64_t> numels;
    for (const auto& [_, p] : named) numels.push_back(p.numel());
    const auto [begin, end] = parallel::ShardLayout(numels, comm->size()).range(comm->rank());
    master = torch::empty({end - begin}, named.front().second.options().dtype(torch::kFloat32));
  }
  sharded_ = std::make_unique<ShardedAdamW>(std::move(comm), mode, named, std::move(group_of), groups_, options_,
                                            master);
  if (!masters_.empty()) shard_masters(master);
}

void Optimizer::shard_masters(const torch::Tensor& range) {
  // The sharded parameters' whole masters go (rank-local ones stay): in AdamW's groups the
  // parameter itself takes each one's place, never stepped there (the shards step it), so that
  // an unsharded optimizer.pt's moments still load by position (load()).
  std::map<const void*, torch::Tensor> param_of_master;
  std::vector<Master> kept;
  for (auto& m : masters_) {
    if (is_rank_local(m.param))
      kept.push_back(std::move(m));
    else
      param_of_master[m.master.unsafeGetTensorImpl()] = m.param;
  }
  for (auto& group : adamw_->param_groups())
    for (auto& t : group.params())
      if (auto it = param_of_master.find(t.unsafeGetTensorImpl()); it != param_of_master.end()) t = it->second;
  // Then the masters of this rank's pieces, views of the range.
  const auto& named = sharded_->named();
  const auto [begin, end] = sharded_->layout().range(sharded_->comm().rank());
  for (const auto& piece : sharded_->layout().pieces(begin, end))
    kept.push_back({named[piece.param].second, range.narrow(0, piece.flat_offset - begin, piece.length), piece.offset, 0,
                    /*allocated=*/true});
  masters_ = std::move(kept);
  index_masters();
  reset_masters();  // from the weights (every rank's are rank 0's by now)
}

void Optimizer::set_rank_local(std::shared_ptr<parallel::Communicator> comm, const std::vector<torch::Tensor>& local) {
  require(!sharded_, "optimizer: set_rank_local must come before shard()");
  local_comm_ = std::move(comm);
  local_.clear();
  local_of_.clear();
  for (const auto& p : local) {
    local_of_.emplace(p.unsafeGetTensorImpl(), local_.size());  // the first stays, as a scan would find it
    local_.push_back({p, p.numel()});
  }
  // fp32_master: built over the whole tensors, a rank-local parameter's master becomes a copy of
  // this rank's slice (set_data keeps the tensor AdamW's groups hold).
  for (auto& m : masters_)
    if (is_rank_local(m.param) && m.master.sizes() != m.param.sizes()) {
      m.allocated = false;  // the whole tensor's master, or none yet: allocated anew for the slice
      seed_master(m, m.param);
    }
}

const void* Optimizer::adamw_key(const torch::Tensor& p) const {
  const auto master = master_of(p);
  return (master.defined() ? master : p).unsafeGetTensorImpl();
}

std::unordered_set<const void*> Optimizer::rank_local_keys() const {
  std::unordered_set<const void*> keys;
  for (const auto& l : local_) keys.insert(adamw_key(l.param));
  return keys;
}

Sharding Optimizer::sharding() const { return sharded_ ? sharded_->mode() : Sharding::none; }

std::vector<ShardPieceState> Optimizer::local_piece_states(
    const std::vector<std::pair<std::string, torch::Tensor>>& named) const {
  std::vector<ShardPieceState> out;
  if (local_.empty()) return out;
  const int rank = local_comm_->rank();
  for (const auto& [name, p] : named) {
    const auto* local = rank_local(p.unsafeGetTensorImpl());
    if (!local) continue;
    const int64_t n = local->slice_numel;
    ShardPieceState piece{name, rank * n, {}, {}, 0, {}};
    const auto master = master_of(p);  // fp32_master: AdamW's tensor, saved beside the moments
    if (master.defined()) piece.master = master.reshape({-1});
    const auto state = adamw_->state().find(const_cast<void*>(adamw_key(p)));
    if (state != adamw_->state().end()) {
      const auto& s = static_cast<const torch::optim::AdamWParamState&>(*state->second);
      piece.exp_avg = s.exp_avg().reshape({-1});
      piece.exp_avg_sq = s.exp_avg_sq().reshape({-1});
      piece.step = s.step();
      require(piece.exp_avg.numel() == n, "optimizer: the state of rank-local parameter " + name + " has " +
                                              std::to_string(piece.exp_avg.numel()) + " elements, its slice " +
                                              std::to_string(n));
    } else {  // never updated: zeros at step 0, as a shard's piece without state is written
      const auto options = master.defined() ? master.options() : p.options();
      piece.exp_avg = torch::zeros({n}, options);
      piece.exp_avg_sq = torch::zeros({n}, options);
    }
    out.push_back(std::move(piece));
  }
  require(out.size() == local_.size(), "optimizer: save_shards: a rank-local parameter is not among `named`");
  return out;
}

void Optimizer::save_shards(const std::filesystem::path& dir,
                            const std::vector<std::pair<std::string, torch::Tensor>>& named) const {
  require(sharded_ != nullptr, "optimizer: save_shards needs a sharded optimizer");
  // As save(): a parameter written since the last step is what its master must hold.
  reseed_written_masters();
  auto& comm = sharded_->comm();
  comm.set_activity("writing optimizer shard " + std::to_string(comm.rank()));
  auto pieces = sharded_->piece_states();
  for (auto& piece : local_piece_states(named)) pieces.push_back(std::move(piece));
  const auto mine = write_optimizer_shard(dir, comm.rank(), pieces);
  // Every rank's size and CRC to rank 0, for the index (exact in float64: < 2^53).
  std::vector<double> info(2 * comm.size(), 0.0);
  info[2 * comm.rank()] = double(mine.bytes);
  info[2 * comm.rank() + 1] = double(mine.crc32);
  info = comm.all_reduce(info, c10d::ReduceOp::SUM, "all-reduce of the optimizer shards' sizes");
  if (comm.rank() != 0) return;
  ShardIndex index;
  index.sharding = sharding_name(sharded_->mode());
  index.world_size = comm.size();
  index.step_count = step_count_;
  index.skipped_steps = skipped_steps_;
  // The whole model's parameters: a rank-local one at its whole size (equal slices, see
  // set_rank_local), the sharded ones as the sharded optimizer has them, in the model's order.
  std::map<std::string, int64_t> local_numel;  // each rank's slice of a rank-local parameter
  for (const auto& [name, p] : named)
    if (const auto* local = rank_local(p.unsafeGetTensorImpl())) local_numel[name] = local->slice_numel;
  const auto& shard_named = sharded_->named();
  size_t next_sharded = 0;
  for (const auto& [name, p] : named) {
    if (auto it = local_numel.find(name); it != local_numel.end()) {
      index.parameters.emplace_back(name, it->second * comm.size());
      continue;
    }
    require(next_sharded < shard_named.size() && shard_named[next_sharded].first == name,
            "optimizer: save_shards: parameter " + name + " is not the sharded optimizer's next one");
    index.parameters.emplace_back(name, shard_named[next_sharded++].second.numel());
  }
  require(next_sharded == shard_named.size(), "optimizer: save_shards: `named` lacks sharded parameters");
  // Rank r's pieces: its range of the sharded parameters, then its slice of each rank-local one.
  for (int r = 0; r < comm.size(); ++r) {
    ShardFileInfo shard{r, {}, static_cast<int64_t>(info[2 * r]), static_cast<uint32_t>(info[2 * r + 1])};
    for (const auto& p : sharded_->layout().pieces_of(r)) shard.pieces.push_back({shard_named[p.param].first, p.offset, p.length});
    for (const auto& [name, p] : named)
      if (auto it = local_numel.find(name); it != local_numel.end())
        shard.pieces.push_back({name, r * it->second, it->second});
    index.shards.push_back(std::move(shard));
  }
  write_shard_index(dir, index);
}

int64_t Optimizer::slice_offset(const torch::Tensor& p) const {
  const auto* local = rank_local(p.unsafeGetTensorImpl());
  if (!local || local_comm_->size() == 1 || p.numel() != local->slice_numel) return -1;
  return local_comm_->rank() * local->slice_numel;
}

void Optimizer::load_shards(const std::filesystem::path& dir,
                            const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  // The index lists every parameter whole: a rank-local slice stands for world of its size.
  std::vector<std::pair<std::string, int64_t>> sizes;
  for (const auto& [name, p] : named) sizes.emplace_back(name, p.numel() * (slice_offset(p) >= 0 ? local_comm_->size() : 1));
  OptimizerShardReader reader(dir, sizes);
  torch::NoGradGuard no_grad;
  allocate_masters();
  // Everything is read before anything changes: the masters first (none saved: from the weights).
  const auto saved_masters = read_masters(reader, named);
  if (sharded_) {
    // Rank-local parameters get their state here: whole when the caller gathered them whole,
    // else (ZeRO-3 with expert parallelism) their slice's, read straight from the pieces.
    std::vector<std::pair<const void*, std::unique_ptr<torch::optim::AdamWParamState>>> local;
    for (size_t i = 0; i < named.size(); ++i) {
      const auto& p = named[i].second;
      if (!is_rank_local(p)) continue;
      const auto master = master_of(p);  // fp32_master: AdamW's tensor
      if (auto s = state_of(reader, i, master.defined() ? master : p, std::max<int64_t>(0, slice_offset(p))))
        local.emplace_back(adamw_key(p), std::move(s));
    }
    sharded_->load(reader);
    auto& state = adamw_->state();
    state.clear();  // sharded, it holds the rank-local parameters' state only
    for (auto& [key, s] : local) state[const_cast<void*>(key)] = std::move(s);
  } else {
    // Sharded -> unsharded: each parameter's whole state, assembled from the pieces.
    std::vector<std::pair<const void*, std::unique_ptr<torch::optim::AdamWParamState>>> states;
    for (size_t i = 0; i < named.size(); ++i) {
      auto p = named[i].second;
      if (auto master = master_of(p); master.defined()) p = master;  // fp32_master: AdamW's tensor
      if (auto s = state_of(reader, i, p)) states.emplace_back(p.unsafeGetTensorImpl(), std::move(s));
    }
    auto& state = adamw_->state();
    state.clear();
    for (auto& [key, s] : states) state[const_cast<void*>(key)] = std::move(s);
  }
  reset_masters(saved_masters);
  step_count_ = reader.index().step_count;
  skipped_steps_ = reader.index().skipped_steps;
}

std::vector<torch::Tensor> Optimizer::read_masters(OptimizerShardReader& reader,
                                                  const std::vector<std::pair<std::string, torch::Tensor>>& named) const {
  std::map<const void*, size_t> index_of;
  for (size_t i = 0; i < named.size(); ++i) index_of[named[i].second.unsafeGetTensorImpl()] = i;
  std::vector<torch::Tensor> saved;
  for (const auto& m : masters_) {
    const auto it = index_of.find(m.param.unsafeGetTensorImpl());
    require(it != index_of.end(), "optimizer: load_shards: a parameter with a float32 master is not among `named`");
    // A sharded piece at its offset; a whole master from 0, or from its slice's start.
    const int64_t at = m.offset >= 0 ? m.offset : std::max<int64_t>(0, slice_offset(m.param));
    auto t = reader.read_master(it->second, at, m.master.numel());
    saved.push_back(t.defined() ? t.to(m.master.device()).view(m.master.sizes()) : t);
  }
  return saved;
}

int64_t Optimizer::state_bytes() const {
  // Sharded: the shards' moments plus what AdamW holds here (the rank-local parameters' only).
  int64_t bytes = sharded_ ? sharded_->state_bytes() : 0;
  for (const auto& [_, slot] : adamw_->state()) {
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*slot);
    bytes += bytes_of(s.exp_avg()) + bytes_of(s.exp_avg_sq());
  }
  for (const auto& m : masters_) bytes += bytes_of(m.master);
  return bytes;
}

int64_t Optimizer::gradient_bytes() const {
  int64_t bytes = 0;
  if (sharded_) {
    bytes = sharded_->gradient_bytes();
    for (const auto& l : local_) bytes += bytes_of(l.param.grad());
    return bytes;
  }
  for (const auto& g : groups_)
    for (const auto& p : g.params) bytes += bytes_of(p.grad());
  return bytes;
}

std::vector<ParamGroup> weight_decay_groups(const std::vector<torch::Tensor>& params, double weight_decay) {
  ParamGroup decay{"decay", {}, weight_decay, 1.0};
  ParamGroup no_decay{"no_decay", {}, 0.0, 1.0};
  for (auto p : params) {
    p.requires_grad_(true);
    (p.dim() >= 2 ? decay : no_decay).params.push_back(p);
  }
  std::vector<ParamGroup> groups;
  for (auto* g : {&decay, &no_decay})
    if (!g->params.empty()) groups.push_back(std::move(*g));
  return groups;
}

}  // namespace aha::policy

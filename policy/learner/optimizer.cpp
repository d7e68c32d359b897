#include "policy/learner/optimizer.h"

#include <ATen/ops/_fused_adamw.h>

#include <cmath>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/files.h"

namespace aha::policy {
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

}  // namespace

Optimizer::Optimizer(std::vector<ParamGroup> groups, const OptimizerOptions& options)
    : groups_(std::move(groups)), options_(options), schedule_(options.schedule) {
  validate(groups_, options_);
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& g : groups_) {
    auto group_options = std::make_unique<torch::optim::AdamWOptions>(options_.lr * g.lr_scale);
    group_options->betas({options_.beta1, options_.beta2})
        .eps(options_.eps)
        .weight_decay(g.weight_decay);
    torch_groups.emplace_back(g.params, std::move(group_options));
  }
  adamw_ = std::make_unique<torch::optim::AdamW>(
      torch_groups, torch::optim::AdamWOptions(options_.lr).weight_decay(0.0));
}

double Optimizer::lr_at(int64_t step) const { return options_.lr * schedule_.lr_factor(step); }

OptimizerStepResult Optimizer::step(const torch::Tensor& loss) {
  std::vector<torch::Tensor> grads;
  for (const auto& g : groups_)
    for (const auto& p : g.params)
      if (p.grad().defined()) grads.push_back(p.grad());

  // One host transfer for both checks: [global norm, loss].
  torch::Tensor norm;
  if (grads.empty()) {
    norm = torch::zeros({}, torch::kFloat32);
  } else {
    auto norms = at::_foreach_norm(grads, 2, torch::kFloat32);
    for (auto& n : norms) n = n.to(grads.front().device());
    norm = torch::linalg_vector_norm(torch::stack(norms), 2);
  }
  auto loss_value = loss.defined() ? loss.detach().reshape({}).to(norm.device(), torch::kFloat32)
                                   : torch::zeros({}, norm.options());
  auto host = torch::stack({norm, loss_value}).cpu();
  OptimizerStepResult result;
  result.grad_norm = host[0].item<double>();
  double loss_host = host[1].item<double>();
  result.lr = lr_at(step_count_);

  if (!std::isfinite(loss_host)) {
    result.skip_reason = "loss is not finite";
  } else if (!std::isfinite(result.grad_norm)) {
    result.skip_reason = "gradient norm is not finite";
  }
  if (result.skip_reason.empty()) {
    torch::NoGradGuard no_grad;
    if (options_.max_grad_norm > 0.0) {
      double coef = options_.max_grad_norm / (result.grad_norm + 1e-6);
      if (coef < 1.0) at::_foreach_mul_(grads, coef);
    }
    double factor = schedule_.lr_factor(step_count_);
    auto& torch_groups = adamw_->param_groups();
    for (size_t g = 0; g < groups_.size(); ++g)
      torch_groups[g].options().set_lr(options_.lr * groups_[g].lr_scale * factor);
    fused_adamw_step();
    result.applied = true;
  } else {
    ++skipped_steps_;
  }
  ++step_count_;
  adamw_->zero_grad(/*set_to_none=*/true);
  return result;
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
  torch::serialize::OutputArchive archive;
  adamw_->save(archive);
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
    adamw_->load(archive);
    step_count_ = steps.item<int64_t>();
    skipped_steps_ = skipped.item<int64_t>();
  } catch (const c10::Error& e) {
    throw Error("optimizer state " + path.string() +
                " cannot be loaded: " + e.what_without_backtrace());
  }
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

#include "policy/learner/fully_sharded.h"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <c10/core/DeviceGuard.h>

#include <algorithm>
#include <map>

#include "core/error.h"
#include "policy/learner/expert_parallel.h"
#include "policy/model/model_io.h"
#include "policy/model/safetensors.h"
#include "policy/model/weight_memory.h"

namespace aha::policy {
namespace {

std::vector<int64_t> numels_of(const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  std::vector<int64_t> out;
  for (const auto& [_, p] : named) out.push_back(p.numel());
  return out;
}

c10::StorageImpl& storage_of(const torch::Tensor& p) { return *p.unsafeGetTensorImpl()->storage().unsafeGetStorageImpl(); }

int64_t param_bytes(const torch::Tensor& p) { return p.numel() * static_cast<int64_t>(p.element_size()); }

// Frees the parameter's memory, keeping the tensor (shape, dtype, autograd identity): what
// FSDP does with storage().resize_(0).
void free_storage(const torch::Tensor& p) {
  auto& s = storage_of(p);
  const auto device = s.device();
  s.set_data_ptr_noswap(at::DataPtr(nullptr, device));
  s.set_nbytes(0);
}

void allocate_storage(const torch::Tensor& p) {
  auto& s = storage_of(p);
  const auto bytes = static_cast<size_t>(param_bytes(p));
  if (s.nbytes() >= bytes) return;
  // The allocator allocates on the current device, which nothing else here sets (ATen's
  // operators guard their tensors' device; this raw allocation must do it itself).
  const c10::DeviceGuard on_device(p.device());
  s.set_data_ptr_noswap(s.allocator()->allocate(bytes));
  s.set_nbytes(bytes);
}

// A tensor over the parameter's memory with a version counter of its own: writing the gathered
// weights through it does not count as an in-place change of the parameter, which autograd
// would refuse in backward (the forward saved the parameter for it).
torch::Tensor raw_view(const torch::Tensor& p) {
  return torch::from_blob(p.data_ptr(), {p.numel()}, p.options().requires_grad(false));
}

// Identity on a block's output whose backward makes the block present before the block's own
// backward runs.
struct GatherOnBackward : torch::autograd::Function<GatherOnBackward> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor y, int64_t owner, int64_t block) {
    ctx->saved_data["owner"] = owner;
    ctx->saved_data["block"] = block;
    return y;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list g) {
    auto* self = reinterpret_cast<FullyShardedParameters*>(ctx->saved_data["owner"].toInt());
    const auto block = static_cast<size_t>(ctx->saved_data["block"].toInt());
    self->gather(block, self->gather_dtype());
    self->prefetch_after_backward_of(block);
    return {g[0], torch::Tensor(), torch::Tensor()};
  }
};

// Identity on a block's input whose backward (the input's gradient complete: the block's
// backward is done) frees the block.
struct ReleaseOnBackward : torch::autograd::Function<ReleaseOnBackward> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, int64_t owner, int64_t block) {
    ctx->saved_data["owner"] = owner;
    ctx->saved_data["block"] = block;
    return x;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list g) {
    auto* self = reinterpret_cast<FullyShardedParameters*>(ctx->saved_data["owner"].toInt());
    self->release(static_cast<size_t>(ctx->saved_data["block"].toInt()));
    return {g[0], torch::Tensor(), torch::Tensor()};
  }
};

// Each parameter's first element in the whole model's parameters flattened in
// named_parameters() order, the numbering ModelCheckpoint::read_parameters reads by. `whole`
// has the whole shapes (its experts unsliced; it may hold no memory).
std::map<std::string, int64_t> flat_starts(const Transformer& whole) {
  std::map<std::string, int64_t> starts;
  int64_t at = 0;
  for (const auto& [name, p] : whole.named_parameters()) {
    starts[name] = at;
    at += p.numel();
  }
  return starts;
}

// `master` gets the elements [begin, begin + master.numel()) of `layout` (over `named`) from the
// files. A piece is read where it lies in the whole model; pieces that follow each other there
// too are read at once (without expert parallelism the range is one read).
void read_master(const ModelCheckpoint& checkpoint, const std::map<std::string, int64_t>& starts,
                 const std::vector<std::pair<std::string, torch::Tensor>>& named, const parallel::ShardLayout& layout,
                 int64_t begin, const torch::Tensor& master) {
  int64_t run_at = 0, run_out = 0, run_length = 0;  // the read being extended
  auto flush = [&] {
    if (run_length > 0) checkpoint.read_parameters(run_at, master.narrow(0, run_out, run_length));
    run_length = 0;
  };
  for (const auto& piece : layout.pieces(begin, begin + master.numel())) {
    const int64_t at = starts.at(named[piece.param].first) + piece.offset;
    if (run_length > 0 && at == run_at + run_length) {
      run_length += piece.length;
      continue;
    }
    flush();
    run_at = at;
    run_out = piece.flat_offset - begin;
    run_length = piece.length;
  }
  flush();
}

// A rank-local expert tensor `p` from the files: this rank's slice (rank r's experts are the
// r-th of world equal parts of the stacked tensor, contiguous when flattened) when p has the
// slice's size, the whole tensor when it has the whole one (gathered for a whole-state resume).
void read_rank_local(const ModelCheckpoint& checkpoint, const std::map<std::string, int64_t>& starts,
                     const std::string& name, const torch::Tensor& p, int64_t whole_numel, int rank, int world) {
  require(p.numel() == whole_numel || p.numel() * world == whole_numel,
          "sharding zero3: expert tensor " + name + " has " + std::to_string(p.numel()) +
              " elements, neither the whole tensor's " + std::to_string(whole_numel) + " nor 1/" +
              std::to_string(world) + " of it");
  const int64_t offset = p.numel() == whole_numel ? 0 : rank * p.numel();
  torch::NoGradGuard no_grad;
  checkpoint.read_parameters(starts.at(name) + offset, p.detach().view({-1}));
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> sharded_parameters(const Transformer& model, bool expert_parallel) {
  auto all = model.named_parameters();
  if (!expert_parallel) return all;
  std::vector<std::pair<std::string, torch::Tensor>> replicated;
  for (auto& [name, p] : all)
    if (!is_routed_expert_parameter(name)) replicated.emplace_back(name, p);
  return replicated;
}

size_t block_of_parameter(const Transformer& model, const std::string& name) {
  const size_t layers = static_cast<size_t>(model.config().num_hidden_layers);
  if (name == "model.embed_tokens.weight") return 0;
  if (name == "model.norm.weight") return layers + 1;
  if (name == "lm_head.weight" && !model.tied()) return layers + 2;
  const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) == 0) {
    const auto dot = name.find('.', prefix.size());
    try {
      const size_t layer = std::stoul(name.substr(prefix.size(), dot - prefix.size()));
      if (dot != std::string::npos && layer < layers) return layer + 1;
    } catch (const std::exception&) {
    }
  }
  throw Error("sharding zero3: parameter " + name + " belongs to no block of the " + model.config().architecture +
              " model (embedding, decoder layers, final norm, LM head)");
}

std::unique_ptr<FullyShardedParameters> make_fully_sharded(std::shared_ptr<parallel::Communicator> comm,
                                                           Transformer& model, bool autocast_bf16, bool frozen,
                                                           bool prefetch, bool expert_parallel, torch::Tensor master) {
  FullyShardedOptions o;
  o.gather_dtype = autocast_bf16 ? torch::kBFloat16 : torch::kFloat32;
  o.frozen = frozen;
  o.prefetch = prefetch;
  o.expert_parallel = expert_parallel;
  return std::make_unique<FullyShardedParameters>(std::move(comm), model, o, std::move(master));
}

ShardedModel load_model_sharded(const std::filesystem::path& dir, int rank, int world_size, torch::Device device,
                                bool expert_parallel) {
  ShardedModel out;
  out.expert_parallel = expert_parallel;
  // Parameters with their shapes but no memory: only this rank's range is ever read.
  out.model = std::make_unique<Transformer>(read_model_config(dir), torch::kFloat32, device, WeightMemory::none);
  if (expert_parallel) check_expert_parallel(out.model->config(), world_size);
  out.checkpoint = std::make_shared<const ModelCheckpoint>(dir, *out.model);  // load_model's checks, before any read
  const ModelCheckpoint& checkpoint = *out.checkpoint;
  const auto named = sharded_parameters(*out.model, expert_parallel);
  const parallel::ShardLayout layout(numels_of(named), world_size);
  require(rank >= 0 && rank < world_size, "sharded load: rank " + std::to_string(rank) + " is outside a world of " +
                                              std::to_string(world_size));
  const auto [begin, end] = layout.range(rank);
  const auto starts = flat_starts(*out.model);
  out.master = torch::empty({end - begin}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  read_master(checkpoint, starts, named, layout, begin, out.master);
  if (expert_parallel) {
    // This rank's experts only, whole and float32, into the tensors themselves (set_data keeps
    // their identity): what ExpertParallel holds once it has sliced a whole model.
    const int64_t local = out.model->config().num_experts / world_size;
    for (auto& [name, p] : out.model->named_parameters()) {
      if (!is_routed_expert_parameter(name)) continue;
      const int64_t whole_numel = p.numel();
      auto sizes = p.sizes().vec();
      sizes[0] = local;
      auto slice = torch::empty(sizes, torch::TensorOptions().dtype(torch::kFloat32).device(device));
      read_rank_local(checkpoint, starts, name, slice, whole_numel, rank, world_size);
      p.set_data(slice);
    }
  }
  checkpoint.load_buffers(*out.model);
  return out;
}

FullyShardedParameters::FullyShardedParameters(std::shared_ptr<parallel::Communicator> comm, Transformer& model,
                                               const FullyShardedOptions& options)
    : FullyShardedParameters(std::move(comm), model, options, torch::Tensor()) {}

FullyShardedParameters::FullyShardedParameters(std::shared_ptr<parallel::Communicator> comm, Transformer& model,
                                               const FullyShardedOptions& options, torch::Tensor master)
    : comm_(std::move(comm)),
      model_(model),
      named_(sharded_parameters(model, options.expert_parallel)),
      layout_(numels_of(named_), comm_ ? comm_->size() : 1),
      options_(options) {
  require(comm_ != nullptr, "sharding zero3: no communicator");
  require(!named_.empty(), "sharding zero3: the model has no parameters");
  if (options_.expert_parallel) {
    for (auto& [name, p] : model_.named_parameters())
      if (is_routed_expert_parameter(name)) {
        require(p.scalar_type() == torch::kFloat32, "sharding zero3: expert tensor " + name + " is " +
                                                        c10::toString(p.scalar_type()) + "; the weights must be float32");
        rank_local_.emplace_back(name, p);
      }
    require(!rank_local_.empty(), "sharding zero3 with expert parallelism: the " + model_.config().architecture +
                                      " model has no routed experts");
  }
  std::tie(range_begin_, range_end_) = layout_.range(comm_->rank());
  // Loaded sharded (load_model_sharded): the master range is given and the parameters hold no
  // memory; else the range is taken from the parameters' whole weights.
  const bool loaded_sharded = master.defined();
  blocks_.resize(model_.block_count());
  for (size_t i = 0; i < named_.size(); ++i) {
    const auto& [name, p] = named_[i];
    require(p.scalar_type() == torch::kFloat32,
            "sharding zero3: parameter " + name + " is " + c10::toString(p.scalar_type()) +
                "; the master weights must be float32 (model.dtype float32, with algorithm.autocast_bf16 for bf16 "
                "compute)");
    const size_t held = loaded_sharded ? 0 : static_cast<size_t>(param_bytes(p));
    require(p.is_contiguous() && p.storage_offset() == 0 && storage_of(p).nbytes() == held &&
                storage_of(p).allocator() != nullptr,
            loaded_sharded ? "sharding zero3: parameter " + name + " holds memory; a sharded load leaves it none"
                           : "sharding zero3: parameter " + name + " does not own its memory (a view or borrowed storage)");
    const size_t b = block_of_parameter(model_, name);
    auto& block = blocks_[b];
    if (block.params.empty()) block.begin = layout_.param_start(i);
    require(block.params.empty() || block.end == layout_.param_start(i),
            "sharding zero3: the parameters of " + name + "'s block are not consecutive");
    block.params.push_back(i);
    block.end = layout_.param_start(i) + p.numel();
    block.present = !loaded_sharded;
    block_of_.push_back(b);
  }
  // Reverse of forward: the order backward completes the blocks in (a tied head is the embedding).
  for (size_t b = blocks_.size(); b-- > 0;)
    if (!blocks_[b].params.empty()) reduce_order_.push_back(b);
  if (loaded_sharded) {
    require(master.scalar_type() == torch::kFloat32 && master.dim() == 1 &&
                master.numel() == range_end_ - range_begin_ && master.device() == named_.front().second.device(),
            "sharding zero3: the loaded master range is not this rank's " + std::to_string(range_end_ - range_begin_) +
                " float32 elements on " + named_.front().second.device().str());
    master_ = std::move(master);
  } else {
    torch::NoGradGuard no_grad;
    const auto device = named_.front().second.device();
    master_ = torch::empty({range_end_ - range_begin_}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
    for (const auto& piece : layout_.pieces(range_begin_, range_end_))
      master_.narrow(0, piece.flat_offset - range_begin_, piece.length)
          .copy_(named_[piece.param].second.detach().reshape({-1}).narrow(0, piece.offset, piece.length));
  }
  // Frozen (the reference model): no gradient ever reaches its parameters.
  for (size_t k = 0; k < (options_.frozen ? 0 : named_.size()); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(named_[k].second);
    require(acc != nullptr, "sharding zero3: parameter " + named_[k].first + " has no gradient accumulator");
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          on_grad_ready(k);
          return outputs;
        })));
    accumulators_.push_back(std::move(acc));
  }
  model_.set_block_hooks(this);
}

FullyShardedParameters::~FullyShardedParameters() {
  if (model_.block_hooks() == this) model_.set_block_hooks(nullptr);
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
}

void FullyShardedParameters::gather(size_t b, torch::ScalarType dtype) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  start_gather(b, dtype);
  finish_gather(blocks_.at(b), b);
}

void FullyShardedParameters::start_gather(size_t b, torch::ScalarType dtype) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto& block = blocks_.at(b);
  if (block.present || !block.works.empty() || block.params.empty()) return;
  torch::NoGradGuard no_grad;
  const auto on_comm = master_.options().dtype(dtype).device(comm_->device());
  for (const auto& [r, ob, oe] : owners_of(block)) {
    // The owner's part is a copy: the master may be updated before a prefetched gather completes.
    block.parts.push_back(r == comm_->rank()
                              ? master_.narrow(0, ob - range_begin_, oe - ob).to(on_comm, /*non_blocking=*/false, /*copy=*/true)
                              : torch::empty({oe - ob}, on_comm));
    block.owners.push_back(r);
    block.works.push_back(comm_->broadcast_async(block.parts.back(), r));
  }
}

std::vector<FullyShardedParameters::OwnedPart> FullyShardedParameters::owners_of(const Block& block) const {
  std::vector<OwnedPart> owners;
  for (int r = 0; r < comm_->size(); ++r) {
    const auto [rb, re] = layout_.range(r);
    const int64_t ob = std::max(rb, block.begin), oe = std::min(re, block.end);
    if (oe > ob) owners.push_back({r, ob, oe});
  }
  return owners;
}

void FullyShardedParameters::finish_gather(Block& block, size_t b) {
  if (block.works.empty()) return;
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < block.works.size(); ++k)
    comm_->wait(block.works[k], "gathering block " + std::to_string(b) + " of the sharded parameters from rank " +
                                    std::to_string(block.owners[k]));
  for (size_t i : block.params) allocate_storage(named_[i].second);
  for (size_t k = 0; k < block.parts.size(); ++k) {
    const int64_t ob = std::max(layout_.range(block.owners[k]).first, block.begin);
    const int64_t oe = ob + block.parts[k].numel();
    for (const auto& piece : layout_.pieces(ob, oe))
      raw_view(named_[piece.param].second)
          .narrow(0, piece.offset, piece.length)
          .copy_(block.parts[k].narrow(0, piece.flat_offset - ob, piece.length));
  }
  block.owners.clear();
  block.parts.clear();
  block.works.clear();
  block.present = true;
}

// A gather that nobody entered: its collectives must still complete (every rank issued them).
void FullyShardedParameters::drop_in_flight(Block& block, size_t b) {
  for (size_t k = 0; k < block.works.size(); ++k)
    comm_->wait(block.works[k], "gathering block " + std::to_string(b) + " of the sharded parameters from rank " +
                                    std::to_string(block.owners[k]));
  block.owners.clear();
  block.parts.clear();
  block.works.clear();
}

void FullyShardedParameters::release(size_t b) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto& block = blocks_.at(b);
  drop_in_flight(block, b);
  if (!block.present) return;
  for (size_t i : block.params) free_storage(named_[i].second);
  block.present = false;
}

torch::Tensor FullyShardedParameters::enter(size_t b, const torch::Tensor& x) {
  gather(b, options_.gather_dtype);
  if (options_.prefetch) {
    // The block the forward enters next: embedding (entered without an input; a tied head is
    // block 0 too, with one), decoder layers, final norm, LM head, then none.
    const size_t final_norm = blocks_.size() - (model_.tied() ? 1 : 2);
    if (b == 0 && !x.defined())
      start_gather(1, options_.gather_dtype);
    else if (b >= 1 && b < final_norm)
      start_gather(b + 1, options_.gather_dtype);
    else if (b == final_norm)
      start_gather(model_.head_block(), options_.gather_dtype);
  }
  if (!options_.frozen && x.defined() && x.requires_grad() && torch::GradMode::is_enabled())
    return ReleaseOnBackward::apply(x, reinterpret_cast<int64_t>(this), static_cast<int64_t>(b));
  return x;
}

torch::Tensor FullyShardedParameters::leave(size_t b, const torch::Tensor& y, bool backward_needs_weights) {
  release(b);
  if (!options_.frozen && backward_needs_weights && y.defined() && y.requires_grad() && torch::GradMode::is_enabled())
    return GatherOnBackward::apply(y, reinterpret_cast<int64_t>(this), static_cast<int64_t>(b));
  return y;
}

void FullyShardedParameters::prefetch_after_backward_of(size_t b) {
  if (!options_.prefetch) return;
  // Backward re-gathers the LM head, the final norm, then the layers down to the first.
  const size_t final_norm = blocks_.size() - (model_.tied() ? 1 : 2);
  if (b == model_.head_block())
    start_gather(final_norm, options_.gather_dtype);
  else if (b >= 2 && b <= final_norm)
    start_gather(b - 1, options_.gather_dtype);
}

void FullyShardedParameters::on_grad_ready(size_t param) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto& block = blocks_[block_of_[param]];
  ++block.ready;
  // Every use of the block's weights is behind it now.
  if (block.ready == block.params.size()) release(block_of_[param]);
  reduce_in_order(/*flush=*/false);
}

void FullyShardedParameters::reduce_in_order(bool flush) {
  while (next_reduce_ < reduce_order_.size()) {
    auto& block = blocks_[reduce_order_[next_reduce_]];
    if (!flush && block.ready < block.params.size()) return;
    reduce(block);
    ++next_reduce_;
  }
}

void FullyShardedParameters::reduce(Block& block) {
  torch::NoGradGuard no_grad;
  const auto options = master_.options().device(comm_->device());
  auto flat = torch::empty({block.end - block.begin}, options);
  for (size_t i : block.params) {
    auto& p = named_[i].second;
    auto part = flat.narrow(0, layout_.param_start(i) - block.begin, p.numel());
    if (p.grad().defined())
      part.copy_(p.grad().reshape({-1}));
    else
      part.zero_();
    p.mutable_grad().reset();
  }
  // Gloo and NCCL both reduce to a root; each owner gets the sum of its part.
  std::vector<std::pair<int, c10::intrusive_ptr<c10d::Work>>> works;
  std::vector<torch::Tensor> parts;
  for (const auto& [r, ob, oe] : owners_of(block)) {
    parts.push_back(flat.narrow(0, ob - block.begin, oe - ob));
    works.emplace_back(r, comm_->reduce_async(parts.back(), r));
  }
  for (size_t k = 0; k < works.size(); ++k) {
    comm_->wait(works[k].second, "reduce of sharded gradients to rank " + std::to_string(works[k].first));
    if (works[k].first != comm_->rank()) continue;
    if (!grad_shard_.defined()) grad_shard_ = torch::zeros_like(master_);
    const int64_t ob = std::max(range_begin_, block.begin);
    grad_shard_.narrow(0, ob - range_begin_, parts[k].numel()).add_(parts[k].to(grad_shard_.device()));
  }
  block.reduced = true;
}

void FullyShardedParameters::after_backward() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  reduce_in_order(/*flush=*/true);
  next_reduce_ = 0;
  for (auto& block : blocks_) {
    block.ready = 0;
    block.reduced = false;
  }
  release_all();
}

torch::Tensor FullyShardedParameters::take_grad_shard() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  return std::move(grad_shard_);
}

void FullyShardedParameters::gather_all() {
  for (size_t b = 0; b < blocks_.size(); ++b) gather(b, torch::kFloat32);
}

std::vector<SafetensorsTensorSpec> FullyShardedParameters::checkpoint_specs() const {
  // A model of the same config with the whole shapes and no memory: this one's experts may be a
  // slice (expert parallelism).
  const Transformer whole(model_.config(), torch::kFloat32, model_.device(), WeightMemory::none);
  auto tensors = whole.named_parameters();
  for (auto& b : model_.named_buffers()) tensors.push_back(std::move(b));
  std::vector<SafetensorsTensorSpec> out;
  for (const auto& slot : whole.checkpoint_layout())
    out.push_back({slot.name, tensors.at(slot.tensor).second.scalar_type(), slot.shape});
  return out;
}

void FullyShardedParameters::stream_checkpoint(const CheckpointSink& sink, CheckpointBuffers* buffers) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  torch::NoGradGuard no_grad;
  release_all();  // nothing of this model present beside the block being saved
  const Transformer whole(model_.config(), torch::kFloat32, model_.device(), WeightMemory::none);
  const auto whole_params = whole.named_parameters();
  const auto model_buffers = model_.named_buffers();
  const size_t params = whole_params.size();
  // Per parameter of the model's order: its index in named_ (sharded) or rank_local_ (experts).
  std::map<std::string, size_t> sharded_index, local_index;
  for (size_t i = 0; i < named_.size(); ++i) sharded_index[named_[i].first] = i;
  for (size_t i = 0; i < rank_local_.size(); ++i) local_index[rank_local_[i].first] = i;
  const auto on_comm = master_.options().dtype(torch::kFloat32).device(comm_->device());

  std::exception_ptr failed;
  auto give = [&](const std::string& name, const torch::Tensor& t) {
    if (!sink || failed) return;
    try {
      sink(name, t);
    } catch (...) {
      failed = std::current_exception();
    }
  };
  // One buffer of the largest block's size, and one of the largest expert piece's, reused for
  // every block and piece: the peak is one of each whatever the backend does with a finished
  // collective's tensors (Gloo's worker may hold them a moment after wait()).
  const auto slots = whole.checkpoint_layout();
  int64_t largest_block = 0, largest_piece = 0;
  for (const auto& block : blocks_) largest_block = std::max(largest_block, block.end - block.begin);
  for (const auto& slot : slots)
    if (slot.tensor < params && local_index.count(whole_params[slot.tensor].first))
      largest_piece = std::max(largest_piece, c10::multiply_integers(slot.shape));
  CheckpointBuffers own;
  if (!buffers) buffers = &own;
  auto buffer = [&](torch::Tensor& t, int64_t numel) -> torch::Tensor& {
    if (!t.defined() || t.numel() < numel || t.device() != on_comm.device()) {
      t = torch::Tensor();  // freed before the larger one is made
      t = torch::empty({numel}, on_comm);
    }
    return t;
  };
  // The block held: its flat float32 elements [begin, end), gathered from their owners.
  size_t held = SIZE_MAX;
  torch::Tensor block_values;
  auto hold = [&](size_t b) {
    if (held == b) return;
    held = b;
    const auto& block = blocks_.at(b);
    block_values = buffer(buffers->block, largest_block).narrow(0, 0, block.end - block.begin);
    std::vector<std::pair<int, c10::intrusive_ptr<c10d::Work>>> works;
    std::vector<torch::Tensor> parts;
    for (const auto& [r, ob, oe] : owners_of(block)) {
      parts.push_back(block_values.narrow(0, ob - block.begin, oe - ob));
      if (r == comm_->rank()) parts.back().copy_(master_.narrow(0, ob - range_begin_, oe - ob));
      works.emplace_back(r, comm_->broadcast_async(parts.back(), r));
    }
    for (const auto& [r, work] : works)
      comm_->wait(work, "gathering block " + std::to_string(b) + " of the sharded parameters from rank " +
                            std::to_string(r) + " for a checkpoint");
  };
  for (const auto& slot : slots) {
    const int64_t numel = c10::multiply_integers(slot.shape);
    if (slot.tensor >= params) {  // a buffer (the routing bias): present on every rank
      give(slot.name, model_buffers.at(slot.tensor - params).second.detach().reshape({-1}).narrow(0, slot.offset, numel).view(slot.shape));
      continue;
    }
    const std::string& name = whole_params[slot.tensor].first;
    if (auto it = sharded_index.find(name); it != sharded_index.end()) {
      const size_t i = it->second;
      hold(block_of_[i]);
      const int64_t at = layout_.param_start(i) - blocks_[block_of_[i]].begin + slot.offset;
      give(slot.name, block_values.narrow(0, at, numel).view(slot.shape));
      continue;
    }
    // A routed expert's piece (expert parallelism): broadcast from the rank whose slice holds it.
    const auto& local = rank_local_.at(local_index.at(name)).second;
    const int64_t slice = local.numel(), owner = slot.offset / slice, offset = slot.offset - owner * slice;
    require(owner < comm_->size() && offset + numel <= slice,
            "sharding zero3: checkpoint tensor " + slot.name + " lies across two ranks' experts");
    auto piece = buffer(buffers->piece, largest_piece).narrow(0, 0, numel);
    if (owner == comm_->rank()) piece.copy_(local.detach().reshape({-1}).narrow(0, offset, numel));
    comm_->wait(comm_->broadcast_async(piece, static_cast<int>(owner)),
                "broadcast of expert tensor " + slot.name + " from rank " + std::to_string(owner) + " for a checkpoint");
    give(slot.name, piece.view(slot.shape));
  }
  if (failed) std::rethrow_exception(failed);
}

void FullyShardedParameters::load(const std::filesystem::path& dir) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  // Opened for a model of the same config with the whole shapes and no memory: this one's
  // experts may be a slice (expert parallelism). Validated before anything is touched.
  const Transformer whole(model_.config(), torch::kFloat32, model_.device(), WeightMemory::none);
  const ModelCheckpoint checkpoint(dir, whole);
  release_all();
  const auto starts = flat_starts(whole);
  read_master(checkpoint, starts, named_, layout_, range_begin_, master_);
  if (!rank_local_.empty()) {
    std::map<std::string, int64_t> whole_numel;
    for (const auto& [name, p] : whole.named_parameters()) whole_numel[name] = p.numel();
    for (const auto& [name, p] : rank_local_)
      read_rank_local(checkpoint, starts, name, p, whole_numel.at(name), comm_->rank(), comm_->size());
  }
  checkpoint.load_buffers(model_);
}

void FullyShardedParameters::release_all() {
  for (size_t b = 0; b < blocks_.size(); ++b) release(b);
}

void FullyShardedParameters::copy_into(Transformer& dst) {
  auto to = sharded_parameters(dst, options_.expert_parallel);
  require(to.size() == named_.size(), "sharding zero3: the rollout model has other parameters than the policy");
  torch::NoGradGuard no_grad;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    if (blocks_[b].params.empty()) continue;
    gather(b, dst.dtype());
    for (size_t i : blocks_[b].params) {
      require(to[i].first == named_[i].first && to[i].second.sizes() == named_[i].second.sizes(),
              "sharding zero3: rollout parameter " + to[i].first + " does not match the policy's " + named_[i].first);
      to[i].second.copy_(raw_view(named_[i].second).view(named_[i].second.sizes()));
    }
    release(b);
  }
  auto from_buffers = model_.named_buffers();
  auto to_buffers = dst.named_buffers();
  require(from_buffers.size() == to_buffers.size(), "sharding zero3: the rollout model has other buffers than the policy");
  for (size_t i = 0; i < from_buffers.size(); ++i) to_buffers[i].second.copy_(from_buffers[i].second);
}

void FullyShardedParameters::copy_master_from(const FullyShardedParameters& from) {
  require(from.range_begin_ == range_begin_ && from.range_end_ == range_end_ && from.named_.size() == named_.size(),
          "sharding zero3: the reference's shard layout differs from the policy's");
  require(from.rank_local_.size() == rank_local_.size(),
          "sharding zero3: the reference's expert parallelism differs from the policy's");
  torch::NoGradGuard no_grad;
  master_.copy_(from.master_);
  // Expert parallelism: both hold this rank's experts, so they are copied here too.
  for (size_t i = 0; i < rank_local_.size(); ++i) rank_local_[i].second.detach().copy_(from.rank_local_[i].second.detach());
  auto src = from.model_.named_buffers();
  auto dst = model_.named_buffers();
  require(src.size() == dst.size(), "sharding zero3: the reference has other buffers than the policy");
  for (size_t i = 0; i < src.size(); ++i) dst[i].second.copy_(src[i].second);
}

int64_t FullyShardedParameters::parameter_storage_bytes() const {
  int64_t bytes = 0;
  for (const auto& [_, p] : named_) bytes += static_cast<int64_t>(storage_of(p).nbytes());
  return bytes;
}

int64_t FullyShardedParameters::master_bytes() const {
  return static_cast<int64_t>(master_.storage().nbytes());
}

int64_t FullyShardedParameters::gradient_bytes() const {
  int64_t bytes = grad_shard_.defined() ? static_cast<int64_t>(grad_shard_.storage().nbytes()) : 0;
  for (const auto& [_, p] : named_)
    if (p.grad().defined()) bytes += static_cast<int64_t>(p.grad().storage().nbytes());
  return bytes;
}

}  // namespace aha::policy

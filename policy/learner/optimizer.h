// The learner's optimizer: AdamW over parameter groups (LibTorch's AdamW holds the options and
// the state, the update is ATen's fused multi-tensor AdamW kernel, one launch per device and
// dtype instead of a dozen per parameter), driven by an LR schedule,
// with gradient clipping by global norm and a guard that skips any step whose loss or
// gradients are not finite, so a NaN/Inf never reaches the weights or the optimizer state.
//
// Contract:
// - The caller accumulates gradients (loss.backward() per micro-batch), then calls step().
//   step() reads the gradients, decides, and leaves every gradient cleared (set to undefined)
//   whether it updated or skipped, so the next step starts from zero.
// - Global norm: sqrt(sum over all parameters of ||grad||_2^2), computed in float32 before any
//   clipping and returned as OptimizerStepResult::grad_norm. With max_grad_norm > 0, gradients are
//   scaled by min(1, max_grad_norm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_.
// - Skip rule: the step is skipped (no update to weights or AdamW state; they stay
//   bit-identical) when the global norm or the given loss is NaN or +-Inf. Skips are counted
//   (skipped_steps()); the caller logs them, e.g. as a run-store event.
// - Schedule: the learning rate of step k (k = step_count() before the call, counting skipped
//   steps too, so the LR of a step never depends on earlier skips) is
//   lr * group.lr_scale * schedule.lr_factor(k).
// - save()/load() write and read AdamW's state (moments, per-parameter step counts) and this
//   class's counters; loading into an optimizer built over parameters of the same groups and
//   shapes continues bit-identically. A mismatch or unreadable file throws aha::Error.
// Parameters stay in their own dtype (fp32 master weights under bf16 autocast) and device.
// - float32 master weights (OptimizerOptions::fp32_master): each parameter of a lower precision
//   (bf16, fp16) gets a float32 master copy, which AdamW updates with float32 moments; the
//   parameter is then refreshed from it (rounded), so small updates accumulate in the master
//   instead of being rounded away, while forward and backward run at the parameter's precision
//   (as fast as the pure bf16 path). Gradients are accumulated at that precision too, and cast
//   to float32 for clipping and the update. A parameter written elsewhere since the last step
//   (its version counter moved: a weight load, a sync) re-seeds its master from the new value.
//   save()/load() carry the masters, so a resume continues bit-identically; a state saved
//   without masters starts them from the weights. Sharded (zero1/zero2; zero3 is refused, its
//   float32 master ranges are that layout) each rank keeps the masters of its range only, as
//   pieces of the shards' float32 master range (sharded_adamw.h), with the same re-seed rule;
//   save_shards() writes them beside the moments and load_shards() reads them under any layout
//   (shards without masters: from the weights), as load() reads an unsharded file's into a
//   sharded optimizer. Rank-local parameters keep whole masters of their slice. A master is
//   allocated when first needed (the first step, save, load or master_of), so a sharded run
//   never holds a whole float32 copy of the model, not even between construction and shard().
// - Sharded (shard(): ZeRO-1/2/3 over data-parallel ranks, sharded_adamw.h): each rank holds the
//   state of its range of the parameters only; step() keeps the contract above (the norm is
//   global, every rank decides alike) and ends with every rank holding the updated weights.
//   Its state is saved per rank with save_shards() (optimizer_shards.h), which load_shards()
//   reads under any world size, sharded or not; load() of an unsharded file also works sharded.
// - Rank-local parameters (set_rank_local, expert parallelism) keep their AdamW state here on
//   their rank, sharded or not: zero1/zero2/zero3 then shard the other (replicated) parameters
//   only (zero3: the master range of FullyShardedParameters, which leaves the experts out too),
//   and the global norm still covers every parameter, with no collective beyond the shards' one.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "policy/learner/lr_schedule.h"

namespace aha::parallel {
class Communicator;
}

namespace aha::policy {

class ShardedAdamW;
class OptimizerShardReader;
struct ShardPieceState;

// How the learner state is split over data-parallel ranks (sharded_adamw.h; zero3 also shards
// the parameters themselves, fully_sharded.h).
enum class Sharding { none, zero1, zero2, zero3 };
// "none", "zero1", "zero2" or "zero3"; anything else is an aha::Error naming the choices.
Sharding parse_sharding(const std::string& name);
std::string sharding_name(Sharding sharding);

struct ParamGroup {
  std::string name;                   // for messages, e.g. "decay" / "no_decay"
  std::vector<torch::Tensor> params;  // leaf tensors with requires_grad
  double weight_decay = 0.0;          // decoupled (AdamW) weight decay
  double lr_scale = 1.0;              // this group's LR = options.lr * lr_scale * factor
};

// The two groups every trainer uses: matrices and embeddings ("decay", with weight_decay) and
// norms and biases ("no_decay"); empty groups are left out. Makes every parameter require grad.
std::vector<ParamGroup> weight_decay_groups(const std::vector<torch::Tensor>& params, double weight_decay);

struct OptimizerOptions {
  double lr = 1e-6;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double max_grad_norm = 1.0;  // <= 0: no clipping (the norm is still computed and checked)
  bool fp32_master = false;    // float32 master weights for bf16/fp16 parameters (see above)
  LrScheduleOptions schedule;
};

struct OptimizerStepResult {
  bool applied = false;     // false: skipped because loss or gradients were not finite
  double grad_norm = 0;     // global norm before clipping (NaN/Inf when that caused the skip)
  double lr = 0;            // base learning rate of this step (options.lr * schedule factor)
  std::string skip_reason;  // empty when applied, else which value was not finite
};

// The skip rule, shared by the whole and the sharded optimizer so both decide alike: empty when
// the step may apply, else which of the loss and the global gradient norm is not finite.
std::string non_finite_skip_reason(double loss, double grad_norm);
// The clipping factor, shared alike: min(1, max_grad_norm / (norm + 1e-6)) with the norm rounded
// to float32 (as the whole optimizer computes it); 1 when max_grad_norm <= 0 (no clipping).
double clip_coefficient(double max_grad_norm, double grad_norm);

class Optimizer {
 public:
  // Throws aha::Error naming the group or option at fault (empty groups, a parameter that
  // does not require grad, negative lr, betas outside [0, 1), ...).
  Optimizer(std::vector<ParamGroup> groups, const OptimizerOptions& options);
  ~Optimizer();

  // One optimizer step from the accumulated gradients. `loss` (optional, any device, scalar)
  // is checked for finiteness with the gradients in the same host transfer.
  OptimizerStepResult step(const torch::Tensor& loss = {});

  int64_t step_count() const { return step_count_; }        // steps attempted so far
  int64_t skipped_steps() const { return skipped_steps_; }  // of which skipped
  double lr_at(int64_t step) const;                         // base LR at a step

  void save(const std::filesystem::path& path) const;  // atomic (temp file + rename); unsharded only
  void load(const std::filesystem::path& path);

  // ZeRO-1/2/3 from now on, before the first step, over `named`: the model's parameters in order,
  // which must be the groups' parameters less the rank-local ones (set_rank_local, which comes
  // first; with zero3 FullyShardedParameters::named(), the experts left out alike), each once.
  // A world of one rank or Sharding::none change nothing.
  // ZeRO-3 takes `master`: this rank's float32 range of the flattened parameters
  // (FullyShardedParameters::master()), which the steps update instead of the parameters.
  void shard(std::shared_ptr<parallel::Communicator> comm, Sharding mode,
             const std::vector<std::pair<std::string, torch::Tensor>>& named, torch::Tensor master = {});
  Sharding sharding() const;
  // Expert parallelism (expert_parallel.h), before shard(): `local` (among the groups'
  // parameters) live on this rank alone, each the rank's contiguous 1/world slice (in rank
  // order, of equal size on every rank) of a whole tensor (fp32_master: their masters, built
  // over the whole tensors, become copies of the slices). Their state stays local, sharded or
  // not; the global norm adds their squared gradient norms summed over the ranks (unsharded: an
  // all-reduce in every step(), so every rank calls it; sharded: within the shards' all-reduce),
  // so every rank clips and skips alike. Sharded checkpoints hold their state as pieces of the
  // whole tensors (save_shards).
  void set_rank_local(std::shared_ptr<parallel::Communicator> comm, const std::vector<torch::Tensor>& local);
  ShardedAdamW* sharded() const { return sharded_.get(); }
  // Every rank calls it (collective): writes its shard into `dir` (which must exist and be
  // the same directory for every rank), rank 0 the index. `named`: the model's parameters in
  // order, rank-local ones included (whose pieces are named after them, at this rank's offset
  // of the whole tensor); the index lists every parameter at its whole size.
  void save_shards(const std::filesystem::path& dir, const std::vector<std::pair<std::string, torch::Tensor>>& named) const;
  // Reads a save_shards directory written under any world size, sharding or expert layout into
  // this optimizer, sharded or not, with the masters of its pieces (fp32_master; none saved:
  // from the weights), everything read and checked before anything changes (a master that is
  // not float32 of its piece's length is an error naming it). `named`: the model's parameters in
  // order, at their whole size, but for rank-local ones: gathered whole they get their whole
  // state, which the caller slices (expert_parallel.h's scatter_back); left as this rank's slice
  // (ZeRO-3 with expert parallelism, which never gathers them) they get the slice's state only.
  // Throws aha::Error naming the file at fault.
  void load_shards(const std::filesystem::path& dir, const std::vector<std::pair<std::string, torch::Tensor>>& named);
  // Bytes of AdamW state this rank holds (moments, and fp32_master's masters), and of gradients
  // it holds now.
  int64_t state_bytes() const;
  int64_t gradient_bytes() const;

  torch::optim::AdamW& adamw() { return *adamw_; }
  // With fp32_master: the whole float32 master of a parameter (the tensor AdamW updates:
  // unsharded, or a rank-local parameter), else an undefined tensor (a sharded parameter's
  // masters are pieces of the shards' range). For tests and checkpoint tools.
  torch::Tensor master_of(const torch::Tensor& param) const;

 private:
  void fused_adamw_step();  // AdamW's update of every parameter with a gradient
  // fp32_master: re-seed the masters of parameters written since the last refresh; move the
  // parameters' gradients onto their masters as float32 (returns the gradients to update with:
  // the masters' and those of float32 parameters); copy the updated masters back.
  void reseed_written_masters() const;  // the masters are mutable: save() keeps them current too
  void allocate_masters() const;        // those never allocated, from the weights (see Master)
  void index_masters();                 // whole_master_of_ from masters_, after masters_ changed
  // Each master from saved[i] (aligned with masters_; undefined or missing: from the weights).
  void reset_masters(const std::vector<torch::Tensor>& saved = {});
  std::vector<torch::Tensor> gradients_for_update();
  void refresh_parameters_from_masters();
  // AdamW's update of what it holds gradients for (every parameter unsharded; sharded, the
  // rank-local ones): fp32_master's float32 gradients, clipped by `coef`, at the LR factor, and
  // the weights refreshed from the masters. Then every gradient cleared.
  void update_adamw_parameters(double coef, double factor);
  void clear_gradients();
  // load(): the masters saved in `archive` by parameter (checked against master_params_; none
  // when it has none or this optimizer keeps none); masters_of_whole() cuts them to masters_.
  std::map<const void*, torch::Tensor> read_masters(torch::serialize::InputArchive& archive,
                                                    const std::filesystem::path& path) const;
  std::vector<torch::Tensor> masters_of_whole(const std::map<const void*, torch::Tensor>& whole) const;
  // load_shards(): each of masters_'s elements from the checkpoint's pieces (undefined: none saved).
  std::vector<torch::Tensor> read_masters(OptimizerShardReader& reader,
                                          const std::vector<std::pair<std::string, torch::Tensor>>& named) const;
  void match_moment_dtypes();
  // zero1/zero2 with fp32_master: the sharded parameters' masters become this rank's pieces of
  // `range` (the shards' float32 master range).
  void shard_masters(const torch::Tensor& range);

  struct Master {
    torch::Tensor param;   // the model's bf16/fp16 parameter
    // Its float32 copy: whole (AdamW's parameter; unsharded, and rank-local parameters), or
    // sharded (zero1/zero2) this rank's piece of it, [length], a view of the shards' master range.
    torch::Tensor master;
    int64_t offset = -1;   // sharded: the piece's first element in param (flattened); -1: whole
    int64_t version = 0;   // param's version counter when the two last agreed
    // False until first needed (seed_master): master is then empty, so a run that shards its
    // optimizer never holds the whole float32 copy, not even before shard().
    bool allocated = false;
    torch::Tensor weights() const;  // the elements of param that master copies
  };
  static void seed_master(Master& m, const torch::Tensor& source);  // allocates it on first use

  std::vector<ParamGroup> groups_;
  OptimizerOptions options_;
  LrSchedule schedule_;
  std::unique_ptr<torch::optim::AdamW> adamw_;
  int64_t step_count_ = 0;
  int64_t skipped_steps_ = 0;
  std::unique_ptr<ShardedAdamW> sharded_;
  // The rank-local record of a parameter (by its TensorImpl), or null.
  struct RankLocal {
    torch::Tensor param;
    int64_t slice_numel = 0;  // its size when set: this rank's slice (the tensor may be gathered whole since)
  };
  const RankLocal* rank_local(const void* impl) const;
  // A rank-local parameter held as its slice (not gathered whole), with 2 ranks or more: the
  // slice's first element in the whole tensor; anything else -1.
  int64_t slice_offset(const torch::Tensor& p) const;
  bool is_rank_local(const torch::Tensor& p) const { return rank_local(p.unsafeGetTensorImpl()) != nullptr; }
  // The key of p's AdamW state: its whole master's (fp32_master), else its own.
  const void* adamw_key(const torch::Tensor& p) const;
  std::unordered_set<const void*> rank_local_keys() const;  // the AdamW state keys of the rank-local parameters
  void set_group_lrs(double factor);  // AdamW's LR of each group for a step at this schedule factor
  // Sharded with rank-local parameters: their state as pieces of the whole tensors, and loaded
  // back whole (`named` at whole size); see save_shards / load_shards.
  std::vector<ShardPieceState> local_piece_states(const std::vector<std::pair<std::string, torch::Tensor>>& named) const;

  std::shared_ptr<parallel::Communicator> local_comm_;  // expert parallelism: see set_rank_local
  std::vector<RankLocal> local_;                         // the rank-local parameters, in the order given
  std::unordered_map<const void*, size_t> local_of_;     // a rank-local parameter's TensorImpl -> its index in local_
  mutable std::vector<Master> masters_;                  // fp32_master: see Master
  // A parameter's TensorImpl -> the index in masters_ of its whole master (offset -1; the first
  // when a parameter is given twice), so that master_of and adamw_key cost one look-up, not a
  // scan of every master (loading a model of tens of thousands of tensors stays linear).
  std::unordered_map<const void*, size_t> whole_master_of_;
  // True once allocate_masters() has allocated every master: none is ever unallocated again
  // (set_rank_local re-allocates at once, shard_masters' pieces come allocated), so later calls
  // (master_of, for each parameter of a load) return at once instead of visiting every master.
  mutable bool masters_allocated_ = false;
  std::vector<torch::Tensor> master_params_;  // the parameters with masters, in order (optimizer.pt's aha_master_<i>)
};

}  // namespace aha::policy

// ZeRO-1 and ZeRO-2 for the learner's AdamW (optimizer.h): the optimizer state is split over
// the data-parallel ranks instead of held whole by each.
//
// Contract:
// - The parameters, flattened one after another in the model's order, are split into one
//   contiguous range per rank, balanced by element count (parallel/shard_layout.h). Each rank
//   holds AdamW's moments (and step counts) for its range only, as pieces keyed by parameter
//   name and element offset, and updates only those elements; then the updated parameters are
//   all-gathered (in rounds of about the communicator's bucket size), so every rank again holds
//   the whole, identical policy for rollout and the next forward.
// - Float32 parameters are their own master weights (under autocast the forward casts them;
//   nothing else holds a second copy). A bf16/fp16 model with float32 masters (optimizer.h's
//   fp32_master) gives the optimizer this rank's float32 master range (as ZeRO-3 does): AdamW's
//   moments are float32 too, the range's gradient is cast to float32 before clipping and the
//   update, and after the update the rank's range of the weights is set to the masters' rounding
//   and all-gathered in the weights' dtype, so every rank holds the same bf16 weights. Optimizer
//   owns the masters' seeding (from the weights, re-seeded when a weight was written elsewhere)
//   and reading from checkpoints; piece_states() carries them.
// - ZeRO-1: gradients are all-reduced as without sharding (parallel/gradient_sync.h) and each
//   rank reads its range of them. ZeRO-2: each bucket's gradient is reduced only to the ranks
//   that own part of it; the rank then holds its range's gradient alone (set_shard_grad), and
//   every parameter's .grad is gone. Either way each gradient is summed in its parameter's dtype
//   (a bf16 model's float32 router gate in float32, the rest in bf16); ZeRO-2's range comes in
//   the widest of them, each value exact.
// - ZeRO-3 (fully_sharded.h): the parameters themselves are sharded. The optimizer is given
//   this rank's float32 master range of the flattened parameters and updates it in place
//   (nothing is all-gathered after the step: the blocks gather their weights when used); its
//   gradient comes as for ZeRO-2 (set_shard_grad, reduced block by block during backward).
// - step() keeps Optimizer::step's contract exactly: the global norm is the square root of the
//   all-reduced sum of the ranks' squared range norms (float32 norms, summed in float64), the
//   skip rule and clipping are the same, so every rank decides alike and the weights equal
//   those of the unsharded optimizer (up to float rounding of the norm's summation order).
// - With expert parallelism the parameters are the replicated ones only (the routed experts
//   keep their state on their rank, optimizer.h's set_rank_local); their squared norm comes in
//   through step()'s other_squared_norm, within the same all-reduce.
// - Every parameter must be contiguous, of one dtype and on one device (an error names the
//   first one that is not); with float32 masters the dtypes may differ (a bf16 model's float32
//   router gate: its masters are its weights' values). The weights are then all-gathered per
//   dtype, each in its own (in the order the dtypes first appear among the parameters, so every
//   rank gathers alike): rank r contributes the elements of that dtype in its range, in order,
//   padded to the longest rank's count; so a bf16 weight crosses the wire in bf16 and a float32
//   one in float32, not widened. Only where that would move no fewer bytes than one gather of
//   everything in the widest dtype (float32 weights massed in some ranks' ranges: more than
//   half a range) is everything gathered in the widest instead. The weights are the same either
//   way, bit for bit: each value is exact in its own dtype and in the widest.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "policy/learner/optimizer.h"
#include "policy/parallel/communicator.h"
#include "policy/parallel/shard_layout.h"

namespace aha::policy {

class OptimizerShardReader;
struct ShardPieceState;

class ShardedAdamW {
 public:
  // `named`: the model's parameters in order; `group_of[i]`: the index into `groups` of
  // named[i] (its weight decay; the LR comes with each step).
  ShardedAdamW(std::shared_ptr<parallel::Communicator> comm, Sharding mode,
               std::vector<std::pair<std::string, torch::Tensor>> named, std::vector<size_t> group_of,
               const std::vector<ParamGroup>& groups, const OptimizerOptions& options,
               torch::Tensor master = {});  // ZeRO-3, or ZeRO-1/2 with masters: [this rank's range] float32

  Sharding mode() const { return mode_; }
  parallel::Communicator& comm() const { return *comm_; }
  const parallel::ShardLayout& layout() const { return layout_; }
  const std::vector<std::pair<std::string, torch::Tensor>>& named() const { return named_; }

  // ZeRO-2/3: this rank's range of the reduced gradient [range size] for the next step.
  void set_shard_grad(torch::Tensor grad) { shard_grad_ = std::move(grad); }

  // Optimizer::step's decision and update (see above); `group_lrs[g]` is group g's LR. Leaves
  // every gradient of its parameters cleared. Fills grad_norm and skip_reason; `applied` says
  // whether it updated. `other_squared_norm`: this rank's squared norm of gradients outside the
  // shards (rank-local parameters, expert parallelism), added to the range's before the
  // all-reduce, so the norm covers them with no further collective; the caller updates those
  // parameters itself, with clip_coefficient(max_grad_norm, grad_norm).
  OptimizerStepResult step(const torch::Tensor& loss, const std::vector<double>& group_lrs, double max_grad_norm,
                           double other_squared_norm = 0.0);

  // Bytes of optimizer state this rank holds (the moments of its range; the masters are Optimizer's).
  int64_t state_bytes() const;
  // Bytes of gradient this rank holds now (parameters' .grad and the ZeRO-2 range).
  int64_t gradient_bytes() const;
  // Elements per rank in each all-gather round (0: from the communicator's bucket size and the
  // dtype's element size).
  void set_gather_round_elements(int64_t n) { gather_round_ = n; }
  // Bytes this rank has contributed to the weights' all-gathers so far (each round's buffer,
  // padding included): per step, for each gather (see above), the longest rank's count of its
  // elements times its element size.
  int64_t gathered_bytes() const { return gathered_bytes_; }

  // Checkpoints (optimizer_shards.h): this rank's pieces, and loading them back from any layout
  // (parameters looked up by name: the reader's list may be the whole model's, a superset).
  std::vector<ShardPieceState> piece_states() const;
  void load(OptimizerShardReader& reader);
  // From a whole AdamW state (an unsharded optimizer.pt loaded into `full`): this rank's ranges.
  void load_from_full(const torch::optim::AdamW& full);

 private:
  struct Piece {
    parallel::ShardPiece where;
    size_t group = 0;
    torch::Tensor param;  // 1-D view into the parameter's elements
    torch::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  torch::Tensor grad_of(const Piece& piece) const;  // undefined when there is none
  // One all-gather of the weights (see above): the elements of one dtype (or all, in the widest),
  // each rank's in order.
  struct Gather {
    torch::ScalarType dtype;
    // By rank: its pieces of the parameters gathered here, each piece's flat_offset its place
    // among the rank's elements gathered here; and how many those are.
    std::vector<std::vector<parallel::ShardPiece>> pieces;
    std::vector<int64_t> elements;
    int64_t longest = 0;  // the largest of elements: each rank's contribution, padded
  };
  void plan_gathers();
  void all_gather_parameters();
  void clear_grads();

  std::shared_ptr<parallel::Communicator> comm_;
  Sharding mode_;
  std::vector<std::pair<std::string, torch::Tensor>> named_;
  std::vector<torch::Tensor> flat_;  // each parameter viewed as 1-D
  parallel::ShardLayout layout_;
  std::vector<double> weight_decays_;
  OptimizerOptions options_;
  std::vector<Piece> pieces_;
  int64_t range_begin_ = 0, range_end_ = 0;
  torch::Tensor shard_grad_;
  bool writes_back_masters_ = false;  // ZeRO-1/2 with float32 masters: the weights follow them
  std::vector<Gather> gathers_;       // ZeRO-1/2: one per dtype, or one in the widest (see above)
  int64_t gather_round_ = 0;
  int64_t gathered_bytes_ = 0;
};

}  // namespace aha::policy

// ZeRO-3 (FSDP-style) fully sharded parameters of the learner's policy (recipe
// parallel.sharding "zero3", data parallelism of 2 ranks or more).
//
// Contract:
// - Layout: the policy's parameters, flattened in the model's order, are split as ZeRO-1/2 split
//   them (parallel/shard_layout.h: one contiguous range per rank, balanced by element count), so
//   the optimizer's per-rank checkpoint files (optimizer_shards.h) are the same and resume under
//   any world size or sharding. Each rank keeps its range, in float32, as the master shard
//   (master()); the optimizer (sharded_adamw.h, Sharding::zero3) updates it in place.
// - The Transformer keeps its parameter tensors (names, shapes, autograd identity), but their
//   storage is freed (zero bytes) whenever their block is not in use.
// - Blocks are Transformer's (BlockHooks, transformer.h): the embedding, each decoder layer, the
//   final norm, the untied LM head. Forward: enter() gathers the block's elements from their
//   owners, in the gather dtype (bfloat16 when the learner computes in bf16, i.e. autocast: the
//   master rounded as autocast would round it; else the parameters' own float32), into the
//   parameters' storage; leave() frees it. Backward: an autograd node on the block's output
//   gathers the block again before the block's backward runs; it is freed again once the
//   gradient of the block's input is complete or all its parameters have their gradient.
// - Gradients: once every parameter of a block has its gradient from a backward, the block's
//   gradient (float32) is summed over the ranks into the owners of its elements and added to
//   the owner's float32 gradient shard, and the parameters' .grad are dropped: in every backward
//   (each micro-batch), so a rank holds at most a few blocks' gradients beside its shard. The
//   blocks are reduced in one fixed order (reverse of forward) on every rank; after_backward()
//   reduces, with zeros, those that got no gradient, so every rank makes the same collectives.
// - Collectives: with the contiguous layout a block's elements belong to one or a few
//   consecutive ranks, so the gather is one broadcast per owner of exactly its part, and the
//   reduce-scatter one reduce (sum) per owner, as ZeRO-2's buckets (gradient_sync.h). On a ring
//   (NCCL) a broadcast or reduce of n bytes moves about n bytes through each rank, as the
//   all-gather or reduce-scatter of n bytes of an evenly split block would; an all_gather here
//   would have to pad every rank's part to the largest (world x the bytes). Gloo has all of
//   them. Collectives are called from the autograd thread, in the same order on every rank.
// - Loading, never the whole float32 model on a device: load_model_sharded() (below) makes the
//   Transformer with parameters that hold no memory and reads only this rank's master range
//   from the safetensors files, converted to float32, straight into the master (a bounded host
//   buffer at a time); load_model's checks and messages come first. The rollout's whole copy
//   (the GRPO stage's, in the compute dtype) is load_model()'s in that dtype from the same
//   files, which equals the gather of the masters bit for bit (a float32 master rounded to
//   bf16 is the file's value rounded to bf16; a bf16 or fp16 file converts exactly to float32).
//   Resuming, load() reads the master range of the checkpoint's model directory the same way.
// - Whole weights, never a second full float32 copy for the rollout: copy_into() fills another
//   Transformer (the rollout's, in the compute dtype) block by block, gathering in its dtype
//   (the refresh after every update). Checkpoints: stream_checkpoint() hands rank 0's writer
//   the Hugging Face tensors block by block in float32 (a block's buffer at a time, freed before
//   the next), so a save never holds the whole model either (checkpoint.h).
// - Prefetch (options.prefetch, recipe parallel.prefetch): when a block is gathered for its use,
//   the gather of the block used next is started too (the broadcasts issued asynchronously into
//   buffers of their own, c10d work handles kept), and waited for when that block is entered, so
//   its communication overlaps this block's compute. Forward: embedding, layers, final norm, LM
//   head; backward's re-gathers: LM head, final norm, layers down to the first (the embedding's
//   backward needs no weights). The same bytes land in the same parameters as without it, so
//   results are bit-identical; a block gathered ahead and never entered is waited for and freed
//   by release() (after_backward, release_all). At most two blocks are present or in flight.
// - Frozen (options.frozen): the reference model of GRPO (beta > 0), sharded as the policy is:
//   the same layout, a float32 master range per rank that nothing updates, no gradient hooks and
//   no gradient shard; its blocks are gathered for its no-grad forwards and freed after each.
//   copy_master_from() refreshes it from the policy's master ranges (the same layout: no
//   communication).
// - Expert parallelism (options.expert_parallel, expert_parallel.h): the routed experts are left
//   out of everything above. They are split world-ways already (each rank holds its own
//   n_routed_experts / world, whole, never all-reduced: their gradient is the world's by the
//   all-to-all's backward), so sharding them again would only gather every rank's experts with
//   each block and undo the split. The layout, master range, gathers, frees and gradient
//   reductions cover the other (replicated) parameters only, in the model's order; a decoder
//   layer's block is its replicated parameters (attention, router, shared experts, norms) while
//   its experts keep their storage and their .grad for the optimizer (optimizer.h's rank-local
//   parameters). Loading reads each rank's slice of them (rank r's experts [r E/W, (r+1) E/W))
//   beside its master range; copy_into() and gather_all() leave them to ExpertParallel, while
//   stream_checkpoint() broadcasts them expert by expert from their ranks.
// - A parameter must own its storage (not a view of another tensor's), contiguous: an error
//   names the first that does not.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "policy/model/transformer.h"
#include "policy/parallel/communicator.h"
#include "policy/parallel/shard_layout.h"

namespace aha {
class ModelCheckpoint;         // policy/model/model_io.h
struct SafetensorsTensorSpec;  // policy/model/safetensors.h
}

namespace aha::policy {

struct FullyShardedOptions {
  torch::ScalarType gather_dtype = torch::kFloat32;  // the dtype blocks are gathered in for use (see above)
  bool frozen = false;    // no gradients: a reference model (see above)
  bool prefetch = false;  // gather the next block while this one computes (see above)
  bool expert_parallel = false;  // the routed experts are rank-local, left out (see above)
};

// The parameters FullyShardedParameters shards, in the model's order: all of them, or with
// expert parallelism all but the routed experts (see above).
std::vector<std::pair<std::string, torch::Tensor>> sharded_parameters(const Transformer& model, bool expert_parallel);

class FullyShardedParameters : public BlockHooks {
 public:
  // Takes this rank's master range from `model`'s current weights (the same on every rank) and
  // installs itself as the model's block hooks; the parameters stay present until release_all().
  FullyShardedParameters(std::shared_ptr<parallel::Communicator> comm, Transformer& model,
                         const FullyShardedOptions& options);
  // Loaded sharded (load_model_sharded below): `model`'s parameters hold no memory and `master`
  // ([range] float32 on the model's device) is this rank's range; an error says which is not so.
  FullyShardedParameters(std::shared_ptr<parallel::Communicator> comm, Transformer& model,
                         const FullyShardedOptions& options, torch::Tensor master);
  ~FullyShardedParameters() override;
  FullyShardedParameters(const FullyShardedParameters&) = delete;
  FullyShardedParameters& operator=(const FullyShardedParameters&) = delete;

  const parallel::ShardLayout& layout() const { return layout_; }
  // The parameters sharded (sharded_parameters): the layout's, in order; the optimizer's.
  const std::vector<std::pair<std::string, torch::Tensor>>& named() const { return named_; }
  torch::Tensor master() const { return master_; }  // [range] float32, on the model's device
  torch::ScalarType gather_dtype() const { return options_.gather_dtype; }
  bool frozen() const { return options_.frozen; }
  bool prefetch() const { return options_.prefetch; }
  void set_prefetch(bool on) { options_.prefetch = on; }

  // BlockHooks.
  torch::Tensor enter(size_t block, const torch::Tensor& x) override;
  torch::Tensor leave(size_t block, const torch::Tensor& y, bool backward_needs_weights) override;

  // After every backward through the model, on every rank: reduces the blocks not yet reduced
  // (in order, zeros where a parameter got no gradient) and frees every block.
  void after_backward();
  // The gradient shard [range] float32 summed since the last take (undefined if no backward
  // ran), moved out.
  torch::Tensor take_grad_shard();

  // Collective: every sharded parameter present, gathered in float32 (whole master precision).
  // Tests and tools only: a checkpoint streams instead (stream_checkpoint).
  void gather_all();
  // The tensors a Hugging Face checkpoint of this model holds (save_model's: Transformer::
  // checkpoint_layout, experts per expert and whole, the buffers last), in order, with their
  // dtypes (the parameters' float32, the buffers' own) and shapes: from the config alone.
  std::vector<SafetensorsTensorSpec> checkpoint_specs() const;
  // Collective, for a checkpoint: those tensors, in that order, handed to `sink` (rank 0's
  // ModelWriter; null on the other ranks, which take part in the collectives only), one block at
  // a time: each block's float32 elements are broadcast from their owners into one buffer of
  // the largest block's size, reused for each block in turn (no parameter's storage is used),
  // and the block's tensors are views of it, valid until `sink` returns; with expert parallelism
  // each expert's piece of a checkpoint tensor (one expert's gate, up or down matrix) is
  // broadcast from the rank that holds it into a second such buffer while its layer's block is
  // held. So a rank holds at most one block and one expert matrix beyond its shard, never the
  // whole model. An exception from `sink` does not stop the collectives (every rank makes the
  // same ones): the stream runs to its end, without `sink`, and then rethrows it.
  // `buffers` (optional) are those two buffers, kept by the caller for another stream (the
  // policy's, then the reference's: one block's memory for both, not one per model while a
  // backend may still hold a finished collective's tensors for a moment); grown when too small.
  using CheckpointSink = std::function<void(const std::string& name, const torch::Tensor& tensor)>;
  struct CheckpointBuffers {
    torch::Tensor block, piece;
  };
  void stream_checkpoint(const CheckpointSink& sink, CheckpointBuffers* buffers = nullptr);
  // The master range (and the model's buffers) read from the model directory `dir` in place,
  // as load_model_sharded reads it (resuming a checkpoint): only this rank's range, never the
  // whole weights; validated (load_model's checks) before the master is changed. With expert
  // parallelism the experts too: each expert tensor of its slice's size gets this rank's slice,
  // one gathered whole (expert_parallel.h's gather_whole) the whole tensor.
  void load(const std::filesystem::path& dir);
  void release_all();
  // Collective: `dst` (the same config; any dtype and device) gets the whole sharded weights and
  // the buffers, block by block, gathered in dst's dtype; no block of this model stays present.
  // With expert parallelism dst's experts are left as they are (ExpertParallel gathers them).
  void copy_into(Transformer& dst);
  // `from`'s master range, its rank-local experts (expert parallelism) and the model's buffers
  // (the routing bias) copied into this one's: the reference refreshed from the policy. Same
  // layout (model config, world size and rank) required.
  void copy_master_from(const FullyShardedParameters& from);

  // Bytes this rank holds now: the parameters' storage, the master shard, the gradient shard
  // (measured from the tensors' storage, not from the layout).
  int64_t parameter_storage_bytes() const;
  int64_t master_bytes() const;
  int64_t gradient_bytes() const;

  // For the autograd nodes (.cpp): the block's weights present, or freed (a gather in flight is
  // waited for and dropped). start_gather() issues the broadcasts only; gather() also waits.
  void gather(size_t block, torch::ScalarType dtype);
  void start_gather(size_t block, torch::ScalarType dtype);
  void release(size_t block);
  // With prefetch, the block backward re-gathers after `block` (none after the first layer).
  void prefetch_after_backward_of(size_t block);

 private:
  struct Block {
    std::vector<size_t> params;  // indices into params_, in order
    int64_t begin = 0, end = 0;  // flat range
    bool present = false;
    size_t ready = 0;            // parameters with their gradient in this backward
    bool reduced = false;
    // A gather in flight (start_gather): per owner, its rank and the buffer being broadcast into.
    std::vector<int> owners;
    std::vector<torch::Tensor> parts;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
  };
  // The ranks that own part of `block`'s flat range [begin, end), in rank order, each with its
  // part [begin, end) of the flat elements: whom a gather broadcasts from and a reduction reduces to.
  struct OwnedPart {
    int rank;
    int64_t begin, end;
  };
  std::vector<OwnedPart> owners_of(const Block& block) const;
  void finish_gather(Block& block, size_t b);
  void drop_in_flight(Block& block, size_t b);
  void on_grad_ready(size_t param);  // from the autograd engine's thread
  void reduce_in_order(bool flush);
  void reduce(Block& block);

  std::shared_ptr<parallel::Communicator> comm_;
  Transformer& model_;
  std::vector<std::pair<std::string, torch::Tensor>> named_;       // sharded, in order
  std::vector<std::pair<std::string, torch::Tensor>> rank_local_;  // expert parallelism: this rank's experts
  parallel::ShardLayout layout_;
  FullyShardedOptions options_;
  int64_t range_begin_ = 0, range_end_ = 0;
  torch::Tensor master_, grad_shard_;
  std::vector<Block> blocks_;
  std::vector<size_t> block_of_;     // per parameter
  std::vector<size_t> reduce_order_;  // block indices, reverse of forward
  size_t next_reduce_ = 0;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  std::recursive_mutex mutex_;
};

// The trainer's ZeRO-3 (grpo_trainer.h), for the policy or (frozen) its reference model:
// gathers in bfloat16 with autocast_bf16, else in the parameters' float32. Throws aha::Error for
// parameters that are not float32 (the master weights are float32: load the model in float32
// and compute in bf16 with autocast).
// `master` (optional): the policy loaded sharded (see the constructors).
// `expert_parallel`: the routed experts left out, this rank's slice already in place (see above).
std::unique_ptr<FullyShardedParameters> make_fully_sharded(std::shared_ptr<parallel::Communicator> comm,
                                                           Transformer& model, bool autocast_bf16, bool frozen,
                                                           bool prefetch, bool expert_parallel = false,
                                                           torch::Tensor master = {});

// ZeRO-3's sharded load of the model directory `dir` for rank `rank` of `world_size`: the model
// in float32 on `device` with parameters that hold no memory (weight_memory.h) and its buffers
// loaded, and the master range of `rank` (shard_layout.h's, over named_parameters()) read from
// the safetensors files straight into a float32 tensor on `device` (ModelCheckpoint::
// read_parameters: only that range's bytes, a bounded host buffer at a time). load_model's checks
// and messages (tensors present, floating dtype, exact shape) come first, so a bad directory is
// the same aha::Error on every rank before anything is read. Needs no communicator: every rank
// computes the same layout. The whole model never exists, in any dtype, on any device.
// `expert_parallel`: the master range is over the replicated parameters (sharded_parameters) and
// each routed-expert tensor of the model holds this rank's slice of the experts in float32
// (only those bytes read), as ExpertParallel keeps it; a model without routed experts, or
// whose experts do not divide by the world size, is check_expert_parallel's error.
struct ShardedModel {
  std::unique_ptr<Transformer> model;
  torch::Tensor master;  // [range] float32
  bool expert_parallel = false;  // the model's experts are this rank's slice (see above)
  // The files as opened and checked for the load: a whole copy of the weights (the rollout's,
  // in its own dtype) loads from it (load_into) without opening and checking them again.
  std::shared_ptr<const ModelCheckpoint> checkpoint;
};
ShardedModel load_model_sharded(const std::filesystem::path& dir, int rank, int world_size, torch::Device device,
                                bool expert_parallel = false);

// Which block (BlockHooks numbering) the parameter `name` of `model` belongs to; throws
// aha::Error for a name that is none of the model's.
size_t block_of_parameter(const Transformer& model, const std::string& name);

}  // namespace aha::policy

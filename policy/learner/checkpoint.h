// Training checkpoints: everything a stage needs to continue exactly where it stopped.
//
// Layout, under <run>/checkpoints/<stage>/step-<n>/:
//   model/        the policy in Hugging Face format (save_model), loadable by transformers
//   reference/    the reference model, HF format, only when the trainer has one
//   optimizer.pt  AdamW moments and step counters (Optimizer::save; the LR schedule is a pure
//                 function of the optimizer's step count, so that is the scheduler state)
//   rng.pt        the default torch generator states: CPU and each visible CUDA device
//   optimizer/   instead of optimizer.pt when the optimizer is sharded (ZeRO-1/2/3): index.json
//                 and one file per rank, keyed by parameter name and element offset
//                 (optimizer_shards.h), readable under any world size, sharded or not
//   rng/rank-<r>.pt  with sharding: each rank's generator states (rank 0's is also rng.pt); on
//                 resume a rank takes its own, or rank 0's when the saving world had no such rank
//   state.json    {"format": 1, "step": n, "data_cursor": c, "trainer_steps": k}
// Atomicity: the directory is written under a temporary sibling name ("step-<n>.tmp-...") and
// renamed into place only when complete, so a crash or kill mid-write leaves the earlier
// checkpoints untouched; an exception while writing removes the temporary directory.
// latest_checkpoint() only considers complete "step-<n>" directories (with state.json).
// Sharded: save_checkpoint is called by every rank (a collective); each writes its shard and
// RNG state into rank 0's temporary directory (the run directory is shared, as for resuming),
// rank 0 the rest and the swap, and all return once the checkpoint is in place.
// ZeRO-3 (fully_sharded.h): the policy's weights (and the reference's with beta > 0) are
// streamed, never gathered whole: rank 0 writes the model directory tensor by tensor
// (model_io.h's ModelWriter, the bytes save_model writes) while every rank takes part in each
// block's gather, in float32, one block at a time, freed before the next
// (FullyShardedParameters::stream_checkpoint), so a save holds at most one block beyond each
// rank's shard. A failure of rank 0's writer removes its temporary directory and is rethrown
// once the streams are done (the other ranks stay in step); a lost rank fails the gather and
// the write alike. Loading reads only each rank's master range from the files
// (FullyShardedParameters::load), never the whole weights.
// Expert parallelism (expert_parallel.h): save_checkpoint is collective too; every rank
// gathers the routed experts whole for rank 0's model write and keeps its slice again after.
// Unsharded, their AdamW moments (and float32 masters) are gathered too and rank 0 writes exactly
// what plain data parallelism writes (optimizer.pt); with zero1/zero2 every rank writes its
// shard, its experts' moments (and masters) as pieces of the whole expert tensors
// (optimizer_shards.h), which every layout reads.
// Loading reads the experts (and their moments) whole and slices them, so a checkpoint resumes
// with or without expert parallelism, under any sharding. With zero3 the experts are gathered for
// the save expert by expert instead (stream_checkpoint: each expert's matrices broadcast from the
// rank that holds them while their layer is written, the reference's too), never all at once;
// loading reads only the rank's slice of them
// (FullyShardedParameters::load) and, from sharded optimizer files, of their moments
// (Optimizer::load_shards), never every expert; an optimizer.pt is read whole and sliced.
// Loading copies the weights into the trainer's existing tensors (the optimizer keeps its
// parameters) and restores optimizer, counters and RNG: continuing then is bit-identical to
// never having stopped, on the same device and build.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace aha::policy {

class GrpoTrainer;
class LmTrainer;

struct CheckpointState {
  int64_t step = 0;         // the stage's step count when saved (the directory's <n>)
  int64_t data_cursor = 0;  // the data loader's position, opaque to the checkpoint
};

// <run_dir>/checkpoints/<stage>/step-<step>
std::filesystem::path checkpoint_path(const std::filesystem::path& run_dir, const std::string& stage,
                                      int64_t step);

// Writes the checkpoint of `trainer` as <stage_dir>/step-<state.step> (replacing one of the
// same step) and returns its path. `copy_extras_from` names a model directory whose tokenizer
// and generation files are copied beside the policy's weights. `on_part_written` (optional) is
// called with "model", "reference", "optimizer", "rng" after each part: for progress
// reporting, and for tests that interrupt a write.
std::filesystem::path save_checkpoint(const std::filesystem::path& stage_dir, const CheckpointState& state,
                                      GrpoTrainer& trainer,
                                      const std::filesystem::path& copy_extras_from = {},
                                      const std::function<void(const std::string&)>& on_part_written = {});

// The same for the next-token (SFT) trainer: model, optimizer and RNG (no reference).
std::filesystem::path save_checkpoint(const std::filesystem::path& stage_dir, const CheckpointState& state,
                                      LmTrainer& trainer, const std::filesystem::path& copy_extras_from = {});
// The complete checkpoint with the highest step under stage_dir, if any.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& stage_dir);

// Restores `trainer` (built with the same model config and options) and the RNG states from a
// checkpoint directory; returns its state. Throws aha::Error naming the file at fault.
CheckpointState load_checkpoint(const std::filesystem::path& checkpoint_dir, GrpoTrainer& trainer);
CheckpointState load_checkpoint(const std::filesystem::path& checkpoint_dir, LmTrainer& trainer);

}  // namespace aha::policy

#include "policy/learner/checkpoint.h"

#include <fcntl.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/output_dir.h"
#include "policy/learner/grpo_trainer.h"
#include "policy/learner/lm_trainer.h"
#include "policy/model/model_io.h"
#include "policy/parallel/communicator.h"

namespace aha::policy {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kFormat = 1;

bool parse_step_name(const std::string& name, int64_t& step) {
  const std::string prefix = "step-";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string digits = name.substr(prefix.size());
  if (digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  step = std::stoll(digits);
  return true;
}

void save_rng(const fs::path& path) {
  torch::serialize::OutputArchive archive;
  archive.write("cpu", at::detail::getDefaultCPUGenerator().get_state());
  const int64_t cuda_devices = torch::cuda::is_available() ? int64_t(torch::cuda::device_count()) : 0;
  archive.write("cuda_devices", torch::tensor(cuda_devices));
  for (int64_t d = 0; d < cuda_devices; ++d) {
    auto gen = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, d));
    archive.write("cuda_" + std::to_string(d), gen.get_state());
  }
  std::ostringstream out;
  archive.save_to(out);
  write_file_atomic(path, out.str());
}

void load_rng(const fs::path& path) {
  std::string data = read_file(path);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(data.data(), data.size());
    torch::Tensor cpu, saved_devices;
    archive.read("cpu", cpu);
    archive.read("cuda_devices", saved_devices);
    at::Generator cpu_generator = at::detail::getDefaultCPUGenerator();
    cpu_generator.set_state(cpu);
    const int64_t present = torch::cuda::is_available() ? int64_t(torch::cuda::device_count()) : 0;
    // Devices present both then and now get their state back; a resume on other hardware
    // continues with fresh CUDA generators (CPU draws still match).
    for (int64_t d = 0; d < std::min(present, saved_devices.item<int64_t>()); ++d) {
      torch::Tensor state;
      archive.read("cuda_" + std::to_string(d), state);
      auto gen = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, d));
      gen.set_state(state);
    }
  } catch (const c10::Error& e) {
    throw Error("checkpoint RNG state " + path.string() + " cannot be loaded: " + e.what_without_backtrace());
  }
}

std::string state_json(const CheckpointState& s, int64_t trainer_steps) {
  return "{\"format\": " + std::to_string(kFormat) + ", \"step\": " + std::to_string(s.step) +
         ", \"data_cursor\": " + std::to_string(s.data_cursor) +
         ", \"trainer_steps\": " + std::to_string(trainer_steps) + "}\n";
}

void load_weights(const fs::path& dir, Transformer& into) {
  auto loaded = load_model(dir, {into.device(), into.dtype()});
  copy_weights(*loaded, into);
}

}  // namespace

fs::path checkpoint_path(const fs::path& run_dir, const std::string& stage, int64_t step) {
  return run_dir / "checkpoints" / stage / ("step-" + std::to_string(step));
}

namespace {

// What a checkpoint holds, whichever trainer it comes from.
struct TrainerParts {
  Transformer& policy;
  Transformer* reference;
  Optimizer& optimizer;
  int64_t steps_done;
  parallel::Communicator* comm;  // data parallel, else null
  // ZeRO-3: the policy's and the reference's sharded parameters, loaded range by range.
  FullyShardedParameters* sharded = nullptr;
  FullyShardedParameters* reference_sharded = nullptr;
};

std::string rank_rng_name(int rank) { return "rank-" + std::to_string(rank) + ".pt"; }

// Rank 0's temporary checkpoint directory, for the others to write their shards into (the
// run directory is shared by the ranks, as for loading).
fs::path broadcast_path(parallel::Communicator& comm, const fs::path& path) {
  const std::string text = path.string();
  auto size = torch::tensor({static_cast<int64_t>(text.size())}, torch::kInt64);
  comm.broadcast(size, 0, "broadcast of the checkpoint directory");
  auto bytes = torch::zeros({size.item<int64_t>()}, torch::kUInt8);
  if (comm.rank() == 0) std::memcpy(bytes.data_ptr(), text.data(), text.size());
  comm.broadcast(bytes, 0, "broadcast of the checkpoint directory");
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel()));
}

// The policy's or the reference's model directory. ZeRO-3 (`sharded`): every rank streams the
// weights block by block (collective) and rank 0 writes them (ModelWriter); a failure of rank 0's
// writer is kept in `failed` and the stream goes on without it, so the ranks stay in step (the
// caller rethrows it once every stream is done); the temporary directory is removed at once.
// An error of the collectives themselves (a rank lost) is thrown as it comes.
void save_weights(const Transformer& model, FullyShardedParameters* sharded, bool writer, const fs::path& dir,
                  const SaveModelOptions& options, std::exception_ptr& failed,
                  FullyShardedParameters::CheckpointBuffers& buffers) {
  if (!sharded) {
    if (writer) save_model(model, dir, options);
    return;
  }
  std::unique_ptr<ModelWriter> out;
  auto attempt = [&](auto&& f) {
    if (failed) return;
    try {
      f();
    } catch (...) {
      failed = std::current_exception();
      out.reset();
    }
  };
  if (writer) attempt([&] { out = std::make_unique<ModelWriter>(model.config(), model.dtype(), sharded->checkpoint_specs(), dir, options); });
  FullyShardedParameters::CheckpointSink sink;
  if (writer)
    sink = [&](const std::string& name, const torch::Tensor& tensor) {
      if (out) attempt([&] { out->write(name, tensor); });
    };
  sharded->stream_checkpoint(sink, &buffers);
  if (out) attempt([&] { out->finish(); });
}

fs::path save_parts(const fs::path& stage_dir, const CheckpointState& state, const TrainerParts& trainer,
                    const fs::path& copy_extras_from, const std::function<void(const std::string&)>& on_part_written) {
  require(state.step >= 0, "checkpoint: step must be >= 0");
  // Sharded optimizer state: every rank calls this and writes its own shard and RNG state into
  // rank 0's temporary directory; rank 0 writes the rest and swaps the whole into place.
  parallel::Communicator* comm = trainer.optimizer.sharded() ? trainer.comm : nullptr;
  require(!trainer.optimizer.sharded() || comm != nullptr, "checkpoint: a sharded optimizer without a communicator");
  const bool writer = comm == nullptr || comm->rank() == 0;
  const fs::path target = stage_dir / ("step-" + std::to_string(state.step));
  fs::path tmp;
  auto done = [&](const char* part) {
    if (on_part_written) on_part_written(part);
  };
  try {
    if (writer) {
      fs::create_directories(stage_dir);
      tmp = fresh_build_dir(target);
      fs::create_directories(tmp);
      if (comm) {
        fs::create_directories(tmp / "optimizer");
        fs::create_directories(tmp / "rng");
      }
    }
    if (comm) {
      tmp = broadcast_path(*comm, tmp);
      // The RNG first: the shards' all-reduce in save_shards then says every rank's files are written.
      save_rng(tmp / "rng" / rank_rng_name(comm->rank()));
      trainer.optimizer.save_shards(tmp / "optimizer", trainer.policy.named_parameters());
      done("optimizer");
    }
    // ZeRO-3: every rank takes part in the model's (and the reference's) streamed save.
    std::exception_ptr failed;
    {
      FullyShardedParameters::CheckpointBuffers buffers;  // one block's, for both models
      save_weights(trainer.policy, trainer.sharded, writer, tmp / "model",
                   {.copy_extras_from = copy_extras_from, .made_by = "train"}, failed, buffers);
      if (writer && !failed) done("model");
      if (trainer.reference) {
        save_weights(*trainer.reference, trainer.reference_sharded, writer, tmp / "reference", {.made_by = "train"},
                     failed, buffers);
        if (writer && !failed) done("reference");
      }
    }
    if (failed) std::rethrow_exception(failed);
    if (writer) {
      if (!comm) {
        trainer.optimizer.save(tmp / "optimizer.pt");
        done("optimizer");
      }
      save_rng(tmp / "rng.pt");
      done("rng");
      write_file_atomic(tmp / "state.json", state_json(state, trainer.steps_done));
      swap_in_dir(tmp, target);  // an earlier checkpoint of this step is replaced only once this one is whole
    }
  } catch (const fs::filesystem_error& e) {
    if (writer && !tmp.empty()) remove_tree(tmp);
    throw Error("checkpoint " + target.string() + " could not be written: " + e.what());
  } catch (...) {
    if (writer && !tmp.empty()) remove_tree(tmp);
    throw;
  }
  if (comm) comm->patient_barrier("rank 0 writing checkpoint " + target.string());
  return target;
}

}  // namespace

std::optional<fs::path> latest_checkpoint(const fs::path& stage_dir) {
  std::error_code ec;
  if (!fs::is_directory(stage_dir, ec)) return std::nullopt;
  std::optional<fs::path> best;
  int64_t best_step = -1;
  for (const auto& entry : fs::directory_iterator(stage_dir, ec)) {
    int64_t step = 0;
    if (!entry.is_directory() || !parse_step_name(entry.path().filename().string(), step)) continue;
    if (!fs::exists(entry.path() / "state.json")) continue;
    if (step > best_step) best_step = step, best = entry.path();
  }
  return best;
}

namespace {

// Returns the state and the saved trainer step count.
std::pair<CheckpointState, int64_t> load_parts(const fs::path& dir, const TrainerParts& trainer) {
  const fs::path state_path = dir / "state.json";
  auto doc = json::parse(read_file(state_path), state_path.string());
  json::ObjectReader reader(doc, state_path.string());
  reader.reject_unknown({"format", "step", "data_cursor", "trainer_steps"});
  require(reader.get_int("format") == kFormat,
          state_path.string() + ": field 'format' must be " + std::to_string(kFormat));
  CheckpointState state{reader.get_int("step"), reader.get_int("data_cursor")};
  const int64_t trainer_steps = reader.get_int("trainer_steps");

  // ZeRO-3: this rank's master range straight from the files, never the whole weights.
  if (trainer.sharded)
    trainer.sharded->load(dir / "model");
  else
    load_weights(dir / "model", trainer.policy);
  const bool saved_reference = fs::exists(dir / "reference");
  require(saved_reference == (trainer.reference != nullptr),
          "checkpoint " + dir.string() +
              (saved_reference ? " has a reference model but the trainer has none (beta = 0)"
                               : " has no reference model but the trainer needs one"));
  if (saved_reference && trainer.reference_sharded)
    trainer.reference_sharded->load(dir / "reference");
  else if (saved_reference)
    load_weights(dir / "reference", *trainer.reference);
  // Sharded state (optimizer/index.json) is read under any world size, sharded or not.
  if (fs::exists(dir / "optimizer" / "index.json"))
    trainer.optimizer.load_shards(dir / "optimizer", trainer.policy.named_parameters());
  else
    trainer.optimizer.load(dir / "optimizer.pt");
  // This rank's own generator state where the checkpoint has one, else rank 0's.
  const fs::path own_rng = dir / "rng" / rank_rng_name(trainer.comm ? trainer.comm->rank() : 0);
  load_rng(fs::exists(own_rng) ? own_rng : dir / "rng.pt");
  return {state, trainer_steps};
}

}  // namespace

fs::path save_checkpoint(const fs::path& stage_dir, const CheckpointState& state, GrpoTrainer& trainer,
                         const fs::path& copy_extras_from,
                         const std::function<void(const std::string&)>& on_part_written) {
  // ZeRO-3: the model (and the reference, beta > 0) is streamed block by block to rank 0's
  // writer (save_parts, FullyShardedParameters::stream_checkpoint), its routed experts (expert
  // parallelism) expert by expert: nothing is gathered whole here.
  FullyShardedParameters* sharded = trainer.fully_sharded();
  // Expert parallelism: the experts (and, unsharded, their AdamW moments) are gathered whole on
  // every rank (collective), and each rank keeps its slice again after, also when the write
  // fails. Unsharded, rank 0 writes what plain data parallelism writes; sharded (zero1/zero2),
  // rank 0 writes the model and every rank its shard, its experts' moments as pieces of the
  // whole expert tensors (optimizer.h's save_shards), so no rank gathers the moments.
  struct Slice {
    ExpertParallel* e = nullptr;
    Optimizer* o = nullptr;
    ~Slice() {
      if (e) e->scatter_back(o);
    }
  } slice;
  ExpertParallel* experts = sharded ? nullptr : trainer.expert_parallel();
  if (experts) {
    Optimizer* moments = trainer.optimizer().sharded() ? nullptr : &trainer.optimizer();
    experts->gather_whole(moments);
    slice.e = experts;
    slice.o = moments;
    if (moments) {  // unsharded: rank 0 alone writes, as plain data parallelism's one process
      auto* comm = trainer.communicator();
      fs::path path;
      if (comm->rank() == 0)
        path = save_parts(stage_dir, state, {trainer.policy(), trainer.reference(), trainer.optimizer(),
                                             trainer.steps_done(), nullptr},
                          copy_extras_from, on_part_written);
      comm->patient_barrier("rank 0 writing a checkpoint");
      return path;
    }
  }
  return save_parts(stage_dir, state,
                    {trainer.policy(), trainer.reference(), trainer.optimizer(), trainer.steps_done(),
                     trainer.communicator(), sharded, trainer.reference_sharded()},
                    copy_extras_from, on_part_written);
}

fs::path save_checkpoint(const fs::path& stage_dir, const CheckpointState& state, LmTrainer& trainer,
                         const fs::path& copy_extras_from) {
  return save_parts(stage_dir, state, {trainer.model(), nullptr, trainer.optimizer(), 0, nullptr}, copy_extras_from, {});
}

CheckpointState load_checkpoint(const fs::path& dir, GrpoTrainer& trainer) {
  // ZeRO-3: each rank reads its master ranges of the model (and the reference, beta > 0) from
  // the checkpoint's files (FullyShardedParameters::load), as a sharded start loads them.
  // Expert parallelism: the checkpoint is whole (see save_checkpoint; a sharded one lists the
  // experts whole too); it is read into whole expert tensors and optimizer state, of which each
  // rank then keeps its slice.
  // ZeRO-3 with expert parallelism reads only this rank's experts (FullyShardedParameters::load)
  // and their state (Optimizer::load_shards) when the checkpoint's optimizer state is sharded,
  // so no rank ever holds every expert; a whole optimizer.pt still needs them whole (the
  // reference's, not in the optimizer, are read as their slice either way).
  ExpertParallel* experts = trainer.expert_parallel();
  if (experts && trainer.fully_sharded() && fs::exists(dir / "optimizer" / "index.json")) experts = nullptr;
  if (experts) experts->gather_whole(&trainer.optimizer());
  std::pair<CheckpointState, int64_t> loaded;
  try {
    loaded = load_parts(dir, {trainer.policy(), trainer.reference(), trainer.optimizer(), 0, trainer.communicator(),
                              trainer.fully_sharded(), trainer.reference_sharded()});
  } catch (...) {
    if (experts) experts->scatter_back(&trainer.optimizer());
    throw;
  }
  if (experts) experts->scatter_back(&trainer.optimizer());
  auto& [state, steps] = loaded;
  trainer.set_steps_done(steps);
  return state;
}

CheckpointState load_checkpoint(const fs::path& dir, LmTrainer& trainer) {
  return load_parts(dir, {trainer.model(), nullptr, trainer.optimizer(), 0, nullptr}).first;
}

}  // namespace aha::policy

// zero3_save_test.cpp's streamed saves of one model (FullyShardedParameters::stream_checkpoint
// into rank 0's ModelWriter, as save_checkpoint writes a ZeRO-3 model), as one rank of a world.
// Every rank loads the model AHA_TEST_MODEL_DIR whole in float32 and shards it (its parameters
// freed), then under AHA_TEST_SCRATCH (a directory every rank sees):
//   streamed/  the streamed save, files of at most AHA_TEST_MAX_SHARD_BYTES; the CPU memory the
//              stream allocates at its peak is written to the result file ("peak <bytes>")
//   whole/     the same model saved as before the save streamed: gather_all and save_model
//   failed/    rank 0's writer fails (an exception) after AHA_TEST_FAIL_AFTER tensors: the stream
//              still runs to its end on every rank (an all-reduce after it shows the ranks in
//              step), rank 0 gets the exception once it is done, and no failed/ nor any
//              temporary beside it is left ("writer_failure <caught> <in step> <left>")
// With AHA_TEST_LOSE_RANK=1 only the last: rank 1 dies (SIGKILL) in the middle of the stream,
// and rank 0's stream fails with an error; no lost/ nor a temporary beside it is left ("lost
// <caught> <left>", written by rank 0, which then exits at once).
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "core/error.h"
#include "policy/learner/fully_sharded.h"
#include "policy/model/model_io.h"
#include "policy/parallel/communicator.h"
#include "tests/policy/learner/trainer_test_util.h"
#include "tests/policy/parallel/cpu_peak.h"
#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {
namespace fs = std::filesystem;
namespace {

// Entries of `dir` whose name starts with `prefix` (the target and its temporaries).
int left_beside(const fs::path& dir, const std::string& prefix) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) ++n;
  return n;
}

}  // namespace

int zero3_save_scenario() {
  policy::testing::one_thread();
  auto comm = connect_scenario_rank();
  const fs::path scratch = std::getenv("AHA_TEST_SCRATCH");
  const std::string out_file =
      std::string(std::getenv("AHA_PARALLEL_OUT")) + ".rank" + std::to_string(comm->rank());
  count_cpu_allocations();  // the parameters' storage too
  auto model = load_model(std::getenv("AHA_TEST_MODEL_DIR"), {torch::kCPU, torch::kFloat32});
  policy::FullyShardedParameters sharded(comm, *model, {.frozen = true});  // no gradients here
  sharded.release_all();
  const bool writer = comm->rank() == 0;

  if (std::getenv("AHA_TEST_LOSE_RANK")) {
    int written = 0;
    std::unique_ptr<ModelWriter> out;
    if (writer) out = std::make_unique<ModelWriter>(model->config(), model->dtype(), sharded.checkpoint_specs(), scratch / "lost");
    bool caught = false;
    try {
      sharded.stream_checkpoint([&](const std::string& name, const torch::Tensor& t) {
        if (out) out->write(name, t);
        if (comm->rank() == 1 && ++written == 3) ::raise(SIGKILL);
      });
      if (out) out->finish();
    } catch (const Error& e) {
      std::fprintf(stderr, "rank 0's stream failed: %s\n", e.what());
      caught = true;
    }
    out.reset();  // as save_checkpoint's writer is, by the exception
    std::ofstream(out_file) << "lost " << caught << " " << left_beside(scratch, "lost") << std::endl;
    std::_Exit(0);  // the peer is gone: no orderly finish
  }

  const uint64_t max_shard = std::stoull(std::getenv("AHA_TEST_MAX_SHARD_BYTES"));
  std::ofstream result(out_file);
  const int64_t peak = peak_cpu_bytes([&] {
    std::unique_ptr<ModelWriter> out;
    if (writer)
      out = std::make_unique<ModelWriter>(model->config(), model->dtype(), sharded.checkpoint_specs(), scratch / "streamed",
                                          SaveModelOptions{.max_shard_bytes = max_shard});
    policy::FullyShardedParameters::CheckpointSink sink;
    if (out) sink = [&](const std::string& name, const torch::Tensor& t) { out->write(name, t); };
    sharded.stream_checkpoint(sink);
    if (out) out->finish();
  });
  result << "peak " << peak << "\n";

  sharded.gather_all();
  if (writer) save_model(*model, scratch / "whole", {.max_shard_bytes = max_shard});
  sharded.release_all();
  comm->patient_barrier("rank 0 saving the whole model");

  const int fail_after = std::atoi(std::getenv("AHA_TEST_FAIL_AFTER"));
  bool caught = false;
  {
    std::unique_ptr<ModelWriter> out;
    if (writer) out = std::make_unique<ModelWriter>(model->config(), model->dtype(), sharded.checkpoint_specs(), scratch / "failed");
    int written = 0;
    policy::FullyShardedParameters::CheckpointSink sink;
    if (out)
      sink = [&](const std::string& name, const torch::Tensor& t) {
        if (written++ == fail_after) throw Error("injected failure at " + name);
        out->write(name, t);
      };
    try {
      sharded.stream_checkpoint(sink);
      if (out) out->finish();
    } catch (const Error& e) {
      caught = std::string(e.what()).find("injected failure") != std::string::npos;
    }
  }
  const double in_step = comm->all_reduce({1.0}, c10d::ReduceOp::SUM, "all-reduce after the failed stream")[0];
  result << "writer_failure " << caught << " " << in_step << " " << (writer ? left_beside(scratch, "failed") : 0) << "\n";
  result << "parameter_bytes " << sharded.parameter_storage_bytes() << "\n";
  result.close();
  comm->finish();
  return 0;
}

}  // namespace aha::parallel::testing

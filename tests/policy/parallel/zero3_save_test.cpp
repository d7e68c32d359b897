// ZeRO-3's streamed checkpoint save (FullyShardedParameters::stream_checkpoint into rank 0's
// ModelWriter, policy/learner/checkpoint.h), on 2 and 3 Gloo ranks (zero3_save_scenario.cpp):
// the files are those of the whole save it replaces (gather_all, then save_model), byte for
// byte, in one file and in many with an index, for a tied and an untied Qwen2 and an MoE model
// whose stacked experts are written per expert; the CPU memory a rank allocates while streaming
// is at most one block in float32 (plus a few small tables), never the whole model; a failure
// of rank 0's writer mid-stream leaves no directory nor temporary and the ranks in step; a rank
// that dies mid-stream fails rank 0's save, which leaves nothing either.
// The save through the trainer (save_checkpoint, with the optimizer shards and a reference
// model; with expert parallelism too) is zero3_test.cpp's and expert_parallel_zero3_test.cpp's.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "core/files.h"
#include "policy/learner/fully_sharded.h"
#include "policy/model/model_io.h"
#include "tests/policy/learner/trainer_test_util.h"
#include "tests/policy/parallel/same_files.h"
#include "tests/policy/parallel/world_runner.h"
#include "tests/policy/parallel/zero3_load_models.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

// Elements of the whole model and of its largest block (fully_sharded.h's blocks).
struct Sizes {
  int64_t total = 0, largest_block = 0;
};
Sizes sizes_of(const std::string& dir) {
  auto model = load_model(dir, {torch::kCPU, torch::kFloat32});
  std::map<size_t, int64_t> blocks;
  Sizes s;
  for (const auto& [name, p] : model->named_parameters()) {
    blocks[policy::block_of_parameter(*model, name)] += p.numel();
    s.total += p.numel();
  }
  for (const auto& [_, n] : blocks) s.largest_block = std::max(s.largest_block, n);
  return s;
}

struct RankSave {
  int64_t peak = -1, parameter_bytes = -1;
  int caught = -1, left = -1;
  double in_step = 0;
};

TEST(Zero3Save, StreamsTheWholeSavesBytesHoldingOneBlockAtATime) {
  policy::testing::one_thread();
  struct Case {
    std::string model;
    int world;
    uint64_t max_shard_bytes;
  };
  // The untied Qwen2 cut into files of at most 64 KiB (a layer's tensors spread over several),
  // the MoE model's experts stacked in its parameters, cut mid-tensor by 3 ranks.
  for (const auto& c : {Case{kTied, 2, 5ull << 30}, Case{kSplit, 3, 64 << 10}, Case{kMoe, 3, 5ull << 30},
                        Case{kMoe, 2, 8 << 10}}) {
    const std::string what = c.model + " on " + std::to_string(c.world) + " ranks, files of " +
                             std::to_string(c.max_shard_bytes) + " bytes";
    const fs::path scratch = fs::temp_directory_path() / ("aha-zero3-save-" + std::to_string(::getpid()));
    remove_tree(scratch);
    fs::create_directories(scratch);
    const auto results = run_world_results<RankSave>(
        "zero3_save", c.world,
        {{"AHA_TEST_MODEL_DIR", c.model},
         {"AHA_TEST_SCRATCH", scratch.string()},
         {"AHA_TEST_MAX_SHARD_BYTES", std::to_string(c.max_shard_bytes)},
         {"AHA_TEST_FAIL_AFTER", "3"}},
        [](const RankFiles& files, RankSave& x) {
          auto in = files.numbers();
          std::string word;
          in >> word >> x.peak >> word >> x.caught >> x.in_step >> x.left >> word >> x.parameter_bytes;
        });
    ASSERT_EQ(results.size(), size_t(c.world)) << what;
    expect_same_files(scratch / "streamed", scratch / "whole", what);
    EXPECT_EQ(fs::exists(scratch / "streamed" / "model.safetensors.index.json"), c.max_shard_bytes < (1 << 20)) << what;

    // At most the largest block in float32, and small tables (a model without memory's buffers
    // and rotary frequencies): the whole float32 model would not fit that bound.
    const auto s = sizes_of(c.model);
    constexpr int64_t kSlack = 16 << 10;
    const int64_t bound = 4 * s.largest_block + kSlack;
    ASSERT_GT(4 * s.total, bound) << what << ": the test could not tell the whole model from a block";
    for (int r = 0; r < c.world; ++r) {
      const std::string rank = what + ", rank " + std::to_string(r);
      EXPECT_LE(results[r].peak, bound) << rank << ": the largest block is " << 4 * s.largest_block
                                        << " bytes, the whole model " << 4 * s.total;
      EXPECT_GE(results[r].peak, 4 * s.largest_block) << rank << ": a block is gathered whole";
      EXPECT_EQ(results[r].parameter_bytes, 0) << rank << ": no parameter holds memory after the save";
      EXPECT_EQ(results[r].in_step, double(c.world)) << rank << ": every rank ran the failed stream to its end";
    }
    EXPECT_EQ(results[0].caught, 1) << what << ": rank 0 gets its writer's exception";
    EXPECT_EQ(results[0].left, 0) << what << ": a failed save leaves no directory nor temporary";
    remove_tree(scratch);
  }
}

TEST(Zero3Save, ARankLostMidStreamFailsTheSaveAndLeavesNothing) {
  policy::testing::one_thread();
  const fs::path scratch = fs::temp_directory_path() / ("aha-zero3-save-lost-" + std::to_string(::getpid()));
  remove_tree(scratch);
  fs::create_directories(scratch);
  const std::string out = (scratch / "result").string();
  auto ranks = run_world("zero3_save", 2,
                         {{"AHA_TEST_MODEL_DIR", kSplit},
                          {"AHA_TEST_SCRATCH", scratch.string()},
                          {"AHA_TEST_LOSE_RANK", "1"},
                          {"AHA_PARALLEL_OUT", out}},
                         {}, /*limit_seconds=*/60, /*end_when_rank0_exits=*/true);
  EXPECT_EQ(ranks[1].signal, SIGKILL) << ranks[1].stderr_text;
  EXPECT_EQ(ranks[0].exit_code, 0) << ranks[0].stderr_text;
  std::ifstream in(out + ".rank0");
  std::string word;
  int caught = -1, left = -1;
  in >> word >> caught >> left;
  EXPECT_EQ(word, "lost") << ranks[0].stderr_text;
  EXPECT_EQ(caught, 1) << "rank 0's save fails: " << ranks[0].stderr_text;
  EXPECT_EQ(left, 0) << "no model directory nor temporary is left";
  remove_tree(scratch);
}

}  // namespace
}  // namespace aha::parallel::testing

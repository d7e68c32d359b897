// The sharded optimizer state's directory format (policy/learner/optimizer_shards.h), by hand on
// two parameters: format 2's explicit pieces read back across files (as expert parallelism
// writes them, not one flat range per rank), pieces that leave a gap or overlap refused naming
// the parameter and the files, a piece of an unknown parameter refused, an unknown name asked
// for refused, and format 1 (flat ranges) still read.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "policy/learner/optimizer_shards.h"

namespace aha::policy {
namespace {
namespace fs = std::filesystem;

// Parameter "a" has 6 elements, "b" 4; element i of a parameter's exp_avg holds 100 * p + i
// (p = 0 for a, 1 for b), its exp_avg_sq the negative.
const std::vector<std::pair<std::string, int64_t>> kParams = {{"a", 6}, {"b", 4}};

ShardPieceState piece(const std::string& name, int64_t offset, int64_t length, int64_t step = 3) {
  const double base = name == "a" ? 0 : 100;
  auto avg = torch::arange(offset, offset + length, torch::kFloat32) + base;
  return {name, offset, avg, -avg, step};
}

class OptimizerShards : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha-optimizer-shards-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes one file per rank with these pieces and a format-2 index listing them.
  void write(const std::vector<std::vector<ShardPieceState>>& ranks) {
    ShardIndex index;
    index.sharding = "zero2";
    index.world_size = static_cast<int>(ranks.size());
    index.step_count = 3;
    index.parameters = kParams;
    for (size_t r = 0; r < ranks.size(); ++r) index.shards.push_back(write_optimizer_shard(dir_, int(r), ranks[r]));
    write_shard_index(dir_, index);
  }

  std::string error_of_reading() {
    try {
      OptimizerShardReader reader(dir_, kParams);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(OptimizerShards, PiecesAnywhereInAnyFileAreReadAcrossFiles) {
  // Rank 0 holds a's front and b's back, rank 1 the rest: no flat range per rank could say so.
  write({{piece("a", 0, 4), piece("b", 2, 2)}, {piece("b", 0, 2), piece("a", 4, 2)}});
  EXPECT_NE(read_file(dir_ / "index.json").find("\"format\":2"), std::string::npos);
  OptimizerShardReader reader(dir_, kParams);
  EXPECT_EQ(reader.param_index("b"), 1u);
  auto a = reader.read(0, 0, 6);
  EXPECT_TRUE(torch::equal(a.exp_avg, torch::arange(6, torch::kFloat32))) << a.exp_avg;
  EXPECT_TRUE(torch::equal(a.exp_avg_sq, -torch::arange(6, torch::kFloat32)));
  EXPECT_EQ(a.step, 3);
  auto middle = reader.read(reader.param_index("b"), 1, 2);  // one element from each file
  EXPECT_TRUE(torch::equal(middle.exp_avg, torch::tensor({101.f, 102.f}))) << middle.exp_avg;
  try {
    reader.param_index("c");
    FAIL() << "an unknown parameter was found";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no parameter 'c'"), std::string::npos) << e.what();
  }
}

TEST_F(OptimizerShards, PiecesThatLeaveAGapOrOverlapAreRefusedNamingTheParameterAndFiles) {
  write({{piece("a", 0, 4), piece("b", 0, 4)}, {piece("a", 5, 1)}});  // a's element 4 in no file
  auto gap = error_of_reading();
  EXPECT_NE(gap.find("parameter 'a' has a gap: elements [4, 5)"), std::string::npos) << gap;
  EXPECT_NE(gap.find("rank-1.safetensors"), std::string::npos) << gap;

  write({{piece("a", 0, 4), piece("b", 0, 4)}, {piece("a", 3, 3)}});  // element 3 twice
  auto overlap = error_of_reading();
  EXPECT_NE(overlap.find("parameter 'a' has overlapping pieces"), std::string::npos) << overlap;
  EXPECT_NE(overlap.find("rank-0.safetensors"), std::string::npos) << overlap;
  EXPECT_NE(overlap.find("rank-1.safetensors"), std::string::npos) << overlap;

  write({{piece("a", 0, 6), piece("b", 0, 3)}, {}});  // b's tail missing
  auto tail = error_of_reading();
  EXPECT_NE(tail.find("parameter 'b' has a gap: elements [3, 4)"), std::string::npos) << tail;

  write({{piece("a", 0, 6), piece("b", 0, 4)}, {piece("c", 0, 1)}});
  auto unknown = error_of_reading();
  EXPECT_NE(unknown.find("rank-1.safetensors holds a piece of 'c', which is no parameter"), std::string::npos)
      << unknown;
}

// Format 1 gave each rank a flat range of the parameters in order: [0, 7) and [7, 10) here, so
// rank 0 holds a and b's first element, rank 1 the rest of b.
TEST_F(OptimizerShards, FormatOneFlatRangesStillLoad) {
  const auto zero = write_optimizer_shard(dir_, 0, {piece("a", 0, 6), piece("b", 0, 1)});
  const auto one = write_optimizer_shard(dir_, 1, {piece("b", 1, 3)});
  auto shard = [](const ShardFileInfo& f, int64_t begin, int64_t end) {
    return "{\"rank\":" + std::to_string(f.rank) + ",\"file\":\"rank-" + std::to_string(f.rank) +
           ".safetensors\",\"begin\":" + std::to_string(begin) + ",\"end\":" + std::to_string(end) +
           ",\"bytes\":" + std::to_string(f.bytes) + ",\"crc32\":" + std::to_string(f.crc32) + "}";
  };
  write_file_atomic(dir_ / "index.json",
                    "{\"format\":1,\"sharding\":\"zero1\",\"world_size\":2,\"step_count\":3,\"skipped_steps\":0,"
                    "\"parameters\":[{\"name\":\"a\",\"numel\":6},{\"name\":\"b\",\"numel\":4}],\"shards\":[" +
                        shard(zero, 0, 7) + "," + shard(one, 7, 10) + "]}\n");
  OptimizerShardReader reader(dir_, kParams);
  EXPECT_EQ(reader.index().step_count, 3);
  auto b = reader.read(1, 0, 4);
  EXPECT_TRUE(torch::equal(b.exp_avg, torch::tensor({100.f, 101.f, 102.f, 103.f}))) << b.exp_avg;
  EXPECT_TRUE(torch::equal(reader.read(0, 2, 3).exp_avg, torch::tensor({2.f, 3.f, 4.f})));
}

}  // namespace
}  // namespace aha::policy

// The on-disk layout of sharded optimizer state (ZeRO-1/2, sharded_adamw.h): a directory with
//   index.json              {"format": 1, "sharding": "zero2", "world_size": W,
//                            "step_count": n, "skipped_steps": k,
//                            "parameters": [{"name": ..., "numel": ...}, ...],
//                            "shards": [{"rank": r, "file": "rank-<r>.safetensors", "begin": b,
//                                        "end": e, "bytes": ..., "crc32": ...}, ...]}
//   rank-<r>.safetensors    rank r's pieces: "<name>@<offset>/exp_avg", "<name>@<offset>/exp_avg_sq"
//                           ([length] each) and metadata "<name>@<offset>/step"
// Ranges [begin, end) are of the parameters flattened in the model's order; a piece's offset is
// its first element within the parameter. Because everything is keyed by name and offset, a
// reader under another world size (or unsharded) takes from each file the part that overlaps
// the range it needs.
//
// Each file is written atomically (temporary + rename); the caller makes the directory part
// of a checkpoint that appears only when whole (checkpoint.h). The reader checks the index
// against the model (names and sizes, in order), that the shards tile the parameters, that
// every shard file exists with its recorded size, and each file it reads against its CRC-32;
// any failure is an aha::Error naming the file.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace aha {
class SafetensorsFile;
}

namespace aha::policy {

struct ShardPieceState {
  std::string name;
  int64_t offset = 0;
  torch::Tensor exp_avg, exp_avg_sq;  // [length]
  int64_t step = 0;                   // AdamW's step count of the parameter (0: never updated)
};

struct ShardFileInfo {
  int rank = 0;
  int64_t begin = 0, end = 0;
  int64_t bytes = 0;
  uint32_t crc32 = 0;
};

struct ShardIndex {
  std::string sharding;
  int world_size = 0;
  int64_t step_count = 0, skipped_steps = 0;
  std::vector<std::pair<std::string, int64_t>> parameters;  // name, numel
  std::vector<ShardFileInfo> shards;                        // by rank
};

std::string shard_file_name(int rank);  // "rank-<r>.safetensors"

// Writes <dir>/shard_file_name(rank) and returns its size and CRC-32.
ShardFileInfo write_optimizer_shard(const std::filesystem::path& dir, int rank, int64_t begin, int64_t end,
                                    const std::vector<ShardPieceState>& pieces);
void write_shard_index(const std::filesystem::path& dir, const ShardIndex& index);

class OptimizerShardReader {
 public:
  // `parameters`: the model's (name, numel) in order, which the index must list identically.
  OptimizerShardReader(const std::filesystem::path& dir, const std::vector<std::pair<std::string, int64_t>>& parameters);
  ~OptimizerShardReader();

  const ShardIndex& index() const { return index_; }

  struct Range {
    torch::Tensor exp_avg, exp_avg_sq;  // [length], CPU, as saved
    int64_t step = 0;
  };
  // Elements [offset, offset + length) of parameter `param`'s state, from whichever files hold them.
  Range read(size_t param, int64_t offset, int64_t length);

 private:
  const SafetensorsFile& open(size_t shard);

  std::filesystem::path dir_;
  ShardIndex index_;
  std::vector<int64_t> starts_;  // flat start of each parameter
  std::vector<std::unique_ptr<SafetensorsFile>> files_;  // opened on first use
};

}  // namespace aha::policy

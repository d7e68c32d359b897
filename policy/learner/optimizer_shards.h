// The on-disk layout of sharded optimizer state (ZeRO-1/2, sharded_adamw.h; with expert
// parallelism also each rank's slice of the routed experts, expert_parallel.h): a directory with
//   index.json              {"format": 2, "sharding": "zero2", "world_size": W,
//                            "step_count": n, "skipped_steps": k,
//                            "parameters": [{"name": ..., "numel": ...}, ...],
//                            "shards": [{"rank": r, "file": "rank-<r>.safetensors",
//                                        "pieces": [{"name": ..., "offset": o, "length": l}, ...],
//                                        "bytes": ..., "crc32": ...}, ...]}
//   rank-<r>.safetensors    rank r's pieces: "<name>@<offset>/exp_avg", "<name>@<offset>/exp_avg_sq"
//                           ([length] each) and metadata "<name>@<offset>/step"; with float32
//                           master weights of a bf16/fp16 parameter (optimizer.h's fp32_master)
//                           also "<name>@<offset>/master" (float32 [length]). Files without
//                           masters (written before they were sharded, or without fp32_master)
//                           are the same format: a reader that keeps masters takes them from the
//                           weights then, as optimizer.h's load() does for a state without them.
// "parameters" is the whole model's, in its order (an expert tensor at its whole size, even
// when each rank held a slice). A piece is the elements [offset, offset + length) of one
// parameter; the pieces of all shards tile every parameter exactly (no gap, no overlap), so a
// reader under another world size, sharding or expert layout (or unsharded) takes from each
// file the part that overlaps the range it needs. Format 1 (still read) gave each shard a flat
// range [begin, end) of the parameters concatenated in order instead of its pieces; its pieces
// are derived from that.
//
// Each file is written atomically (temporary + rename); the caller makes the directory part
// of a checkpoint that appears only when whole (checkpoint.h). The reader checks the index
// against the model (names and sizes, in order), that the pieces tile the parameters, that
// every shard file exists with its recorded size, and each file it reads against its CRC-32;
// any failure is an aha::Error naming the file (and the parameter, for pieces that do not tile).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
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
  torch::Tensor master;               // [length] float32 master weights (fp32_master), or undefined: none
};

// Where a piece lies: elements [offset, offset + length) of parameter `name`.
struct ShardPieceInfo {
  std::string name;
  int64_t offset = 0, length = 0;
};

struct ShardFileInfo {
  int rank = 0;
  std::vector<ShardPieceInfo> pieces;
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

// Writes <dir>/shard_file_name(rank) and returns its pieces, size and CRC-32.
ShardFileInfo write_optimizer_shard(const std::filesystem::path& dir, int rank,
                                    const std::vector<ShardPieceState>& pieces);
// Writes index.json in the current format (2).
void write_shard_index(const std::filesystem::path& dir, const ShardIndex& index);

class OptimizerShardReader {
 public:
  // `parameters`: the model's (name, numel) in order, which the index must list identically.
  OptimizerShardReader(const std::filesystem::path& dir, const std::vector<std::pair<std::string, int64_t>>& parameters);
  ~OptimizerShardReader();

  const ShardIndex& index() const { return index_; }
  // The index of parameter `name` in parameters(); an aha::Error for a name the index lacks.
  size_t param_index(const std::string& name) const;

  struct Range {
    torch::Tensor exp_avg, exp_avg_sq;  // [length], CPU, as saved
    int64_t step = 0;
  };
  // Elements [offset, offset + length) of parameter `param`'s state, from whichever files hold them.
  Range read(size_t param, int64_t offset, int64_t length);
  // The float32 master weights of the same elements ([length], CPU), or an undefined tensor when
  // the checkpoint has none for them. An aha::Error naming the piece when a master is not float32
  // of its piece's length, or when some of the pieces have one and others none.
  torch::Tensor read_master(size_t param, int64_t offset, int64_t length);

 private:
  const SafetensorsFile& open(size_t shard);
  // Each held piece overlapping elements [offset, offset + length) of `param`, by offset: its
  // file, key ("<name>@<offset>"), a description for messages, its length, and the overlap
  // [begin, begin + length) within the piece.
  struct Overlap {
    const SafetensorsFile& file;
    std::string key, where;
    int64_t held_length, begin, length;
  };
  void for_each_held(size_t param, int64_t offset, int64_t length, const std::function<void(const Overlap&)>& visit);
  // Format 1: each shard's pieces from its flat range.
  void derive_pieces(size_t shard, int64_t begin, int64_t end);
  // Every parameter's pieces, sorted by offset, must tile it: else an error naming it.
  void check_tiling(const std::string& what);

  struct Held {  // a piece of a parameter, in the shard file that holds it
    size_t shard = 0;
    int64_t offset = 0, length = 0;
  };
  std::filesystem::path dir_;
  ShardIndex index_;
  std::map<std::string, size_t> param_of_;  // name -> index in index_.parameters
  std::vector<std::vector<Held>> held_;     // per parameter, by offset
  std::vector<std::unique_ptr<SafetensorsFile>> files_;  // opened on first use
};

}  // namespace aha::policy

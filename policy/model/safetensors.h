// Reading and writing the safetensors format (Hugging Face), single files and sharded
// checkpoints (model.safetensors.index.json).
//
// Reading memory-maps the file and validates the whole header before any tensor is used:
// header length within the file, JSON well-formed, every dtype known, every shape
// non-negative, every data_offsets pair inside the data section, its size equal to
// numel * element size, and no two tensors overlapping. Any violation throws aha::Error
// naming the file and the tensor. Writing goes through a temporary file and a rename.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/files.h"

namespace aha {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as written: F32, BF16, F16, I64, ...
  torch::ScalarType scalar_type;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets within the data section
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return map_.path(); }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsEntry* find(const std::string& name) const;
  // Where the data section starts in the file (entries' offsets are relative to it).
  uint64_t data_start() const { return data_start_; }
  const MappedFile& mapped() const { return map_; }

  // A CPU tensor viewing the mapped bytes (no copy). Valid while this object lives.
  torch::Tensor view(const std::string& name) const;
  // A fresh copy on `device`, converted to `dtype` when given.
  torch::Tensor load(const std::string& name, std::optional<torch::ScalarType> dtype = std::nullopt,
                     torch::Device device = torch::kCPU) const;

 private:
  const SafetensorsEntry& require(const std::string& name) const;
  MappedFile map_;
  uint64_t data_start_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (any device, contiguous or not) to one safetensors file, in the given order.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// The tensors of a checkpoint directory: model.safetensors, or the shards listed by
// model.safetensors.index.json. Every shard is opened and validated up front.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::filesystem::path& dir);

  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  std::vector<std::string> names() const;
  // Throws naming the checkpoint and the tensor when absent.
  const SafetensorsEntry& entry(const std::string& name) const;
  const SafetensorsFile& file_of(const std::string& name) const;
  torch::Tensor load(const std::string& name, std::optional<torch::ScalarType> dtype = std::nullopt,
                     torch::Device device = torch::kCPU) const;

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

// Writes a checkpoint: one model.safetensors, or shards of at most max_shard_bytes each plus
// model.safetensors.index.json (the layout transformers writes and reads).
void save_checkpoint_tensors(const std::filesystem::path& dir,
                             const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                             uint64_t max_shard_bytes = 5ull << 30);

// safetensors dtype name <-> LibTorch scalar type. Throws on names aha does not know.
torch::ScalarType safetensors_scalar_type(const std::string& dtype, const std::string& context);
std::string safetensors_dtype_name(torch::ScalarType type);

}  // namespace aha

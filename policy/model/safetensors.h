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

// A tensor as a safetensors header lists it: what a streaming writer needs before any data.
struct SafetensorsTensorSpec {
  std::string name;
  torch::ScalarType dtype = torch::kFloat32;
  std::vector<int64_t> shape;
  uint64_t nbytes() const;
};
// The specs of `tensors` (their names, dtypes and shapes; no data is read).
std::vector<SafetensorsTensorSpec> safetensors_specs(const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

// Writes one safetensors file tensor by tensor: the header (every offset, computed from the
// specs) is written when it is created, then each tensor's bytes as write() is given them, in
// the specs' order, so the tensors never need to exist all at once (ZeRO-3's streamed save). The
// file is written under a temporary name and renamed into place by commit(), once every tensor
// was written; destroyed before (an exception), the temporary is removed and `path` left as it
// was. The bytes are those save_safetensors writes for the same tensors.
class SafetensorsWriter {
 public:
  // The most bytes of a tensor off the CPU copied to the host at once (write()'s buffer).
  static constexpr int64_t kWriteChunkBytes = 64ll << 20;

  SafetensorsWriter(const std::filesystem::path& path, std::vector<SafetensorsTensorSpec> tensors,
                    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
  // The next tensor (any device, contiguous or not): its name, dtype and shape must be the next
  // spec's, else aha::Error naming both. A contiguous CPU tensor is written from its own memory;
  // another is copied to the host kWriteChunkBytes at a time.
  void write(const std::string& name, const torch::Tensor& tensor);
  // Every tensor written (else aha::Error naming the first missing one): fsync and rename.
  void commit();
  size_t written() const { return next_; }

 private:
  std::filesystem::path path_;
  std::vector<SafetensorsTensorSpec> tensors_;
  size_t next_ = 0;
  AtomicFileWriter out_;
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

// save_checkpoint_tensors tensor by tensor: the split into files is made from the specs when it
// is created (the same split), each file is opened (SafetensorsWriter) when its first tensor
// comes and committed after its last, and commit() writes the index (several files) or removes
// a stale one, as save_checkpoint_tensors does. Destroyed before commit(), the file being
// written is removed; files already complete stay (the caller builds `dir` as a temporary, as
// save_model does, and removes it). The bytes are save_checkpoint_tensors'.
class CheckpointWriter {
 public:
  CheckpointWriter(const std::filesystem::path& dir, std::vector<SafetensorsTensorSpec> tensors,
                   uint64_t max_shard_bytes = 5ull << 30);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;
  // The next tensor, as SafetensorsWriter::write.
  void write(const std::string& name, const torch::Tensor& tensor);
  void commit();

 private:
  void open_file();  // out_ for files_[file_], under its name (model.safetensors when it is the only one)
  std::filesystem::path dir_;
  std::vector<std::vector<SafetensorsTensorSpec>> files_;  // the tensors of each file, in order
  size_t file_ = 0;                                         // the file being written
  std::unique_ptr<SafetensorsWriter> out_;
  uint64_t total_ = 0;
};

// safetensors dtype name <-> LibTorch scalar type. Throws on names aha does not know.
torch::ScalarType safetensors_scalar_type(const std::string& dtype, const std::string& context);
std::string safetensors_dtype_name(torch::ScalarType type);

}  // namespace aha

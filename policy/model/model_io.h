// Loading, saving and initialising models in the Hugging Face directory format:
// config.json + model.safetensors (or shards + model.safetensors.index.json).
//
// MoE experts are read per expert (mlp.experts.{e}.gate_proj/up_proj/down_proj.weight, the hub
// layout) or stacked (mlp.experts.gate_up_proj / down_proj, transformers 5's parameters), and
// saved per expert, as transformers' save_pretrained writes them.
//
// load_model checks every tensor the config implies against the checkpoint (present, floating
// dtype F32/BF16/F16, exact shape) before the model is returned; a problem throws aha::Error
// naming the directory, the tensor and what was expected. save_model writes the whole
// directory under a temporary name and swaps it in, so a crash never leaves half a model, and
// it never replaces a directory aha did not write (core/output_dir.h).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "policy/model/safetensors.h"
#include "policy/model/transformer.h"

namespace aha {

// Where load time goes (seconds), for benchmarks and `aha model info`.
struct LoadTimings {
  double open = 0;      // config.json and every safetensors header read and validated
  double allocate = 0;  // weights allocated on the device
  double upload = 0;    // bytes moved into the weights (device synchronised)
};

struct LoadOptions {
  torch::Device device = torch::kCPU;
  std::optional<torch::ScalarType> dtype;  // default: the config's torch_dtype
  LoadTimings* timings = nullptr;          // filled when given
};

std::unique_ptr<Transformer> load_model(const std::filesystem::path& dir, const LoadOptions& options = {});

// The most bytes loading `dir`'s weights stages at once on `device` beside the weights: on CUDA
// the largest safetensors file's data (upload_weights reads a file into one device buffer), on
// the CPU ModelCheckpoint::kReadChunkBytes (the sharded read's host buffer; load_model copies
// from the mapped files). Throws aha::Error as CheckpointReader does for a bad directory.
int64_t load_staging_bytes(const std::filesystem::path& dir, torch::Device device);

// A model directory's config.json; throws aha::Error when dir is not a directory.
ModelConfig read_model_config(const std::filesystem::path& dir);

class CheckpointReader;

// A model directory's weights opened for a model of its shape: load_model's checks (every
// tensor the model needs present, floating dtype, exact shape; MoE experts per expert or
// stacked, the first MoE layer tells which; a tied embedding's lm_head ignored) are made when
// it is opened, with load_model's messages, and the unused and multi-token-prediction tensors
// noted on stderr. `model` may hold no memory (WeightMemory::none): only its shapes are read.
class ModelCheckpoint {
 public:
  // Bytes of the file read at once by read_parameters (the host buffer it needs, at most).
  static constexpr int64_t kReadChunkBytes = 64ll << 20;

  ModelCheckpoint(const std::filesystem::path& dir, const Transformer& model);
  ~ModelCheckpoint();

  // Every weight and buffer of `model` (with memory, the shape it was opened for), converted to
  // its dtype: load_model's copy.
  void load_into(Transformer& model) const;
  // The buffers only (DeepSeek-V3's routing bias), into `model`'s.
  void load_buffers(Transformer& model) const;
  // `out` (1-D, any dtype and device) gets the elements [begin, begin + out.numel()) of the
  // model's parameters flattened one after another in named_parameters() order, converted to
  // its dtype. Only those bytes of the files are read, kReadChunkBytes at a time (pread into a
  // host buffer), so no whole tensor is read unless the range holds it.
  void read_parameters(int64_t begin, torch::Tensor out) const;

 private:
  std::filesystem::path dir_;
  std::unique_ptr<CheckpointReader> reader_;
  std::vector<Transformer::CheckpointSlot> slots_;  // the model's checkpoint layout
  std::vector<int64_t> starts_;                     // per parameter: its first flat element
  size_t parameters_ = 0;                           // slots with tensor < this are parameters
  bool fused_experts_ = false;                      // stacked experts in the files
};

struct SaveModelOptions {
  // Files that describe the tokenizer and generation (tokenizer.json, vocab.json, merges.txt,
  // tokenizer_config.json, special_tokens_map.json, generation_config.json, chat_template.jinja)
  // are copied from here when given.
  std::filesystem::path copy_extras_from = {};
  uint64_t max_shard_bytes = 5ull << 30;
  std::string made_by = "model save";  // the command named in the directory's output marker
  bool overwrite = false;  // replace an earlier output of the same made_by at dir
};

// Writes config.json (with torch_dtype = the model's dtype), the weights and aha's output
// marker. dir must be absent or empty, or (with options.overwrite) hold an earlier output of
// options.made_by; anything else throws aha::Error and is left untouched (check_output_dir).
void save_model(const Transformer& model, const std::filesystem::path& dir, const SaveModelOptions& options = {});

// save_model tensor by tensor, for weights that never exist whole at once (ZeRO-3's streamed
// checkpoint, fully_sharded.h): created with the config, the dtype config.json names and the
// checkpoint tensors' names, dtypes and shapes in order (Transformer::checkpoint_layout's),
// it checks `dir` and writes config.json into a temporary directory beside it; write() takes
// each tensor in that order (CheckpointWriter: the same files, split and index); finish() adds
// the tokenizer extras and the output marker and swaps the directory into place. Destroyed
// before finish() (an exception, a failed peer), the temporary directory is removed and `dir`
// left as it was. save_model is this with the model's checkpoint_tensors(): the bytes are the same.
class ModelWriter {
 public:
  ModelWriter(const ModelConfig& config, torch::ScalarType dtype, std::vector<SafetensorsTensorSpec> tensors,
              const std::filesystem::path& dir, const SaveModelOptions& options = {});
  ~ModelWriter();
  ModelWriter(const ModelWriter&) = delete;
  ModelWriter& operator=(const ModelWriter&) = delete;
  void write(const std::string& name, const torch::Tensor& tensor);
  void finish();

 private:
  template <class F>
  void guarded(F&& f);  // filesystem errors as save_model's, the temporary removed on any
  void abandon();       // the file being written and the temporary directory removed
  std::filesystem::path target_, tmp_;
  SaveModelOptions options_;
  std::unique_ptr<CheckpointWriter> tensors_;
  bool finished_ = false;
};

// A randomly initialised model as transformers initialises one: linear and embedding weights
// ~ N(0, initializer_range), biases 0, norms 1. Drawn on the CPU in float32 from `seed`, so
// the same seed gives the same model on any device and dtype.
std::unique_ptr<Transformer> init_model(const ModelConfig& config, uint64_t seed,
                                        std::optional<torch::ScalarType> dtype = std::nullopt,
                                        torch::Device device = torch::kCPU);

// "float32" | "bfloat16" | "float16" (also "fp32", "bf16", "fp16") -> scalar type.
torch::ScalarType parse_dtype(const std::string& name);
std::string dtype_name(torch::ScalarType type);

// "cpu" | "cuda" | "cuda:N" -> device; CUDA must be available.
torch::Device parse_device(const std::string& name);

}  // namespace aha

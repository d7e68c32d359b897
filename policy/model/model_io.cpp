#include "policy/model/model_io.h"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <set>

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"
#include "core/files.h"
#include "core/output_dir.h"
#include "policy/model/safetensors.h"
#include "policy/model/weight_upload.h"

namespace aha {
namespace fs = std::filesystem;

torch::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16") return torch::kFloat16;
  throw Error("unknown dtype '" + name + "' (expected float32, bfloat16 or float16)");
}

std::string dtype_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: throw Error(std::string("models are float32, bfloat16 or float16, not ") + c10::toString(type));
  }
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) throw Error("device " + name + ": no CUDA device is available");
    return torch::Device(name);
  }
  throw Error("device must be cpu or cuda[:N], got '" + name + "'");
}

ModelCheckpoint::ModelCheckpoint(const fs::path& dir, const Transformer& model)
    : dir_(dir), reader_(std::make_unique<CheckpointReader>(dir)) {
  const auto& config = model.config();
  const CheckpointReader& checkpoint = *reader_;
  // MoE experts: per expert as on the hub (and as transformers saves), or stacked under
  // transformers 5's parameter names; the first MoE layer tells which.
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    if (!config.is_moe_layer(l)) continue;
    fused_experts_ = checkpoint.contains("model.layers." + std::to_string(l) + ".mlp.experts.gate_up_proj");
    break;
  }
  slots_ = model.checkpoint_layout(fused_experts_);  // with the buffers (DeepSeek-V3's routing bias)
  const auto params = model.named_parameters();
  parameters_ = params.size();
  starts_.push_back(0);
  for (const auto& [_, p] : params) starts_.push_back(starts_.back() + p.numel());

  // Validate everything before copying anything.
  std::set<std::string> expected;
  for (const auto& slot : slots_) {
    const auto& name = slot.name;
    expected.insert(name);
    if (!checkpoint.contains(name)) {
      throw Error(dir.string() + ": checkpoint is missing tensor '" + name + "'" +
                  (name == "lm_head.weight" ? " (config.json says tie_word_embeddings is false)" : ""));
    }
    const auto& e = checkpoint.entry(name);
    if (e.scalar_type != torch::kFloat32 && e.scalar_type != torch::kBFloat16 && e.scalar_type != torch::kFloat16) {
      throw Error(checkpoint.file_of(name).path().string() + ": tensor '" + name + "' has dtype " + e.dtype +
                  "; model weights must be F32, BF16 or F16");
    }
    if (e.shape != slot.shape) {
      throw Error(checkpoint.file_of(name).path().string() + ": tensor '" + name + "' has shape " +
                  c10::str(torch::IntArrayRef(e.shape)) + " but config.json implies " +
                  c10::str(torch::IntArrayRef(slot.shape)));
    }
  }
  std::vector<std::string> unused;
  // DeepSeek-V3 checkpoints carry their multi-token-prediction module as layers
  // num_hidden_layers.. : read past, said once.
  const auto& moe = config.deepseek_moe;
  int64_t mtp_tensors = 0;
  auto is_mtp = [&](const std::string& name) {
    for (int64_t i = 0; i < moe.num_nextn_predict_layers; ++i) {
      if (name.rfind("model.layers." + std::to_string(config.num_hidden_layers + i) + ".", 0) == 0) return true;
    }
    return false;
  };
  for (const auto& name : checkpoint.names()) {
    if (is_mtp(name)) {
      ++mtp_tensors;
    } else if (!expected.count(name) && !(name == "lm_head.weight" && model.tied()) &&
               name.find("rotary_emb.inv_freq") == std::string::npos) {
      unused.push_back(name);
    }
  }
  if (mtp_tensors > 0) {
    std::cerr << "note: " << dir.string() << ": ignoring the multi-token-prediction layer (" << mtp_tensors
              << " tensors of model.layers." << config.num_hidden_layers
              << "): aha runs and trains the main model only\n";
  }
  if (!unused.empty()) {
    std::cerr << "warning: " << dir.string() << ": " << unused.size() << " checkpoint tensor(s) not used by "
              << config.architecture << ", e.g. '" << unused.front() << "'\n";
  }
}

ModelCheckpoint::~ModelCheckpoint() = default;

void ModelCheckpoint::load_into(Transformer& model) const {
  const auto tensors = model.checkpoint_tensors(fused_experts_);  // in slots_' order
  require(tensors.size() == slots_.size(), dir_.string() + ": the model is not the one the checkpoint was opened for");
  std::vector<WeightCopy> copies;
  for (const auto& [name, tensor] : tensors) copies.push_back({tensor, &reader_->file_of(name), &reader_->entry(name)});
  upload_weights(copies);  // returns once every copy has finished
}

void ModelCheckpoint::load_buffers(Transformer& model) const {
  auto buffers = model.named_buffers();
  torch::NoGradGuard no_grad;
  for (const auto& slot : slots_)
    if (slot.tensor >= parameters_) buffers.at(slot.tensor - parameters_).second.copy_(reader_->load(slot.name));
}

void ModelCheckpoint::read_parameters(int64_t begin, torch::Tensor out) const {
  const int64_t end = begin + out.numel();
  require(begin >= 0 && end <= starts_.back(),
          dir_.string() + ": elements [" + std::to_string(begin) + ", " + std::to_string(end) +
              ") are outside the model's " + std::to_string(starts_.back()) + " parameters");
  torch::NoGradGuard no_grad;
  for (const auto& slot : slots_) {
    if (slot.tensor >= parameters_) continue;
    // The slot's flat range, cut to [begin, end).
    const int64_t first = starts_[slot.tensor] + slot.offset, numel = c10::multiply_integers(slot.shape);
    const int64_t from = std::max(begin, first), to = std::min(end, first + numel);
    if (from >= to) continue;
    const auto& file = reader_->file_of(slot.name);
    const auto& e = reader_->entry(slot.name);
    const int64_t element = static_cast<int64_t>(c10::elementSize(e.scalar_type));
    const int64_t chunk = std::max<int64_t>(1, kReadChunkBytes / element);
    for (int64_t at = from; at < to; at += chunk) {
      const int64_t n = std::min(chunk, to - at);
      // A fresh buffer: aligned for its dtype, which the file's offsets need not be.
      auto host = torch::empty({n}, torch::TensorOptions().dtype(e.scalar_type));
      file.mapped().read_at(file.data_start() + e.begin + static_cast<uint64_t>((at - first) * element),
                            host.data_ptr(), static_cast<size_t>(n * element));
      out.narrow(0, at - begin, n).copy_(host);
    }
  }
}

int64_t load_staging_bytes(const fs::path& dir, torch::Device device) {
  if (!device.is_cuda()) return ModelCheckpoint::kReadChunkBytes;
  const CheckpointReader reader(dir);
  std::map<std::string, int64_t> data_bytes;  // per file
  for (const auto& name : reader.names()) {
    const auto& file = reader.file_of(name);
    data_bytes[file.path().string()] = static_cast<int64_t>(file.mapped().size() - file.data_start());
  }
  int64_t largest = 0;
  for (const auto& [_, bytes] : data_bytes) largest = std::max(largest, bytes);
  return largest;
}

ModelConfig read_model_config(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw Error(dir.string() + ": not a model directory");
  return ModelConfig::from_file(dir / "config.json");
}

std::unique_ptr<Transformer> load_model(const fs::path& dir, const LoadOptions& options) {
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto start = Clock::now();
  const auto config = read_model_config(dir);
  const auto dtype = options.dtype.value_or(parse_dtype(config.torch_dtype));
  // Opened (and validated) against a model of the config's shapes that holds no memory yet.
  const Transformer shape(config, dtype, options.device, WeightMemory::none);
  ModelCheckpoint checkpoint(dir, shape);
  if (options.timings) options.timings->open = seconds_since(start);
  start = Clock::now();
  auto model = std::make_unique<Transformer>(config, dtype, options.device);
  if (options.timings) options.timings->allocate = seconds_since(start);
  start = Clock::now();
  checkpoint.load_into(*model);
  if (options.timings) options.timings->upload = seconds_since(start);
  return model;
}

ModelWriter::ModelWriter(const ModelConfig& config, torch::ScalarType dtype, std::vector<SafetensorsTensorSpec> tensors,
                         const fs::path& dir, const SaveModelOptions& options)
    : options_(options) {
  target_ = fs::absolute(dir);
  if (target_.filename().empty()) target_ = target_.parent_path();
  check_output_dir(target_, "model directory", options_.made_by, options_.overwrite);
  guarded([&] {
    fs::create_directories(target_.parent_path());
    tmp_ = fresh_build_dir(target_);
    fs::create_directories(tmp_);
    write_file_atomic(tmp_ / "config.json", config.to_json(dtype_name(dtype)));
    tensors_ = std::make_unique<CheckpointWriter>(tmp_, std::move(tensors), options_.max_shard_bytes);
  });
}

ModelWriter::~ModelWriter() {
  if (!finished_) abandon();
}

void ModelWriter::abandon() {
  tensors_.reset();  // the file being written removed first
  if (!tmp_.empty()) aha::remove_tree(tmp_);
  tmp_.clear();
}

template <class F>
void ModelWriter::guarded(F&& f) {
  require(!finished_, "model directory " + target_.string() + ": already written");
  try {
    f();
  } catch (const fs::filesystem_error& e) {
    abandon();
    throw Error("cannot save model to " + target_.string() + ": " + e.what());
  } catch (...) {
    abandon();
    throw;
  }
}

void ModelWriter::write(const std::string& name, const torch::Tensor& tensor) {
  require(tensors_ != nullptr, "model directory " + target_.string() + ": written after a failure");
  guarded([&] { tensors_->write(name, tensor); });
}

void ModelWriter::finish() {
  require(tensors_ != nullptr, "model directory " + target_.string() + ": finished after a failure");
  guarded([&] {
    tensors_->commit();
    tensors_.reset();
    const auto& extras = options_.copy_extras_from;
    if (!extras.empty()) {
      for (const char* name : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                               "special_tokens_map.json", "generation_config.json", "chat_template.jinja"}) {
        if (fs::exists(extras / name)) fs::copy_file(extras / name, tmp_ / name);
      }
    }
    mark_output_dir(tmp_, options_.made_by);
    swap_in_dir(tmp_, target_);
  });
  finished_ = true;
}

void save_model(const Transformer& model, const fs::path& dir, const SaveModelOptions& options) {
  const auto tensors = model.checkpoint_tensors();
  ModelWriter out(model.config(), model.dtype(), safetensors_specs(tensors), dir, options);
  for (const auto& [name, tensor] : tensors) out.write(name, tensor);
  out.finish();
}

std::unique_ptr<Transformer> init_model(const ModelConfig& config, uint64_t seed,
                                        std::optional<torch::ScalarType> dtype, torch::Device device) {
  const auto type = dtype.value_or(parse_dtype(config.torch_dtype));
  auto model = std::make_unique<Transformer>(config, type, device);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : model->named_buffers()) tensor.zero_();  // the routing bias starts at 0
  for (auto& [name, tensor] : model->named_parameters()) {
    auto values = torch::empty(tensor.sizes(), torch::kFloat32);
    const bool is_norm = name.find("norm.weight") != std::string::npos;
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) values.fill_(1.0);
    else if (is_bias) values.zero_();
    else values.normal_(0.0, config.initializer_range, generator);
    if (name == "model.embed_tokens.weight" && config.pad_token_id >= 0 && config.pad_token_id < config.vocab_size) {
      values[config.pad_token_id].zero_();
    }
    tensor.copy_(values);
  }
  return model;
}

}  // namespace aha

#include "policy/model/model_io.h"

#include <unistd.h>

#include <chrono>
#include <iostream>
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

std::unique_ptr<Transformer> load_model(const fs::path& dir, const LoadOptions& options) {
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto start = Clock::now();
  if (!fs::is_directory(dir)) throw Error(dir.string() + ": not a model directory");
  auto config = ModelConfig::from_file(dir / "config.json");
  const auto dtype = options.dtype.value_or(parse_dtype(config.torch_dtype));
  CheckpointReader checkpoint(dir);
  if (options.timings) options.timings->open = seconds_since(start);
  start = Clock::now();
  auto model = std::make_unique<Transformer>(config, dtype, options.device);
  if (options.timings) options.timings->allocate = seconds_since(start);
  // MoE experts: per expert as on the hub (and as transformers saves), or stacked under
  // transformers 5's parameter names; the first MoE layer tells which.
  bool fused_experts = false;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    if (!config.is_moe_layer(l)) continue;
    fused_experts = checkpoint.contains("model.layers." + std::to_string(l) + ".mlp.experts.gate_up_proj");
    break;
  }
  auto params = model->checkpoint_tensors(fused_experts);  // with the buffers (DeepSeek-V3's routing bias)

  // Validate everything before copying anything.
  std::set<std::string> expected;
  for (const auto& [name, tensor] : params) {
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
    if (torch::IntArrayRef(e.shape) != tensor.sizes()) {
      throw Error(checkpoint.file_of(name).path().string() + ": tensor '" + name + "' has shape " +
                  c10::str(torch::IntArrayRef(e.shape)) + " but config.json implies " + c10::str(tensor.sizes()));
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
    } else if (!expected.count(name) && !(name == "lm_head.weight" && model->tied()) &&
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
  std::vector<WeightCopy> copies;
  for (auto& [name, tensor] : params) copies.push_back({tensor, &checkpoint.file_of(name), &checkpoint.entry(name)});
  start = Clock::now();
  upload_weights(copies);  // returns once every copy has finished
  if (options.timings) options.timings->upload = seconds_since(start);
  return model;
}

void save_model(const Transformer& model, const fs::path& dir, const SaveModelOptions& options) {
  fs::path target = fs::absolute(dir);
  if (target.filename().empty()) target = target.parent_path();
  check_output_dir(target, "model directory", options.made_by, options.overwrite);
  fs::create_directories(target.parent_path());
  const fs::path tmp = fresh_build_dir(target);
  fs::create_directories(tmp);
  try {
    write_file_atomic(tmp / "config.json", model.config().to_json(dtype_name(model.dtype())));
    save_checkpoint_tensors(tmp, model.checkpoint_tensors(), options.max_shard_bytes);
    const auto& extras = options.copy_extras_from;
    if (!extras.empty()) {
      for (const char* name : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                               "special_tokens_map.json", "generation_config.json", "chat_template.jinja"}) {
        if (fs::exists(extras / name)) fs::copy_file(extras / name, tmp / name);
      }
    }
    mark_output_dir(tmp, options.made_by);
    swap_in_dir(tmp, target);
  } catch (const fs::filesystem_error& e) {
    aha::remove_tree(tmp);
    throw Error("cannot save model to " + target.string() + ": " + e.what());
  } catch (...) {
    aha::remove_tree(tmp);
    throw;
  }
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

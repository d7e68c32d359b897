#include "reward/model/sequence_classifier.h"

#include <torch/torch.h>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "policy/model/safetensors.h"

namespace aha::reward {
namespace fs = std::filesystem;

std::string causal_architecture_of(const std::string& classification_architecture) {
  const std::string suffix = "ForSequenceClassification";
  const auto& a = classification_architecture;
  if (a.size() <= suffix.size() || a.compare(a.size() - suffix.size(), suffix.size(), suffix) != 0) return "";
  return a.substr(0, a.size() - suffix.size()) + "ForCausalLM";
}

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// config.json read as the causal model's config: the architecture renamed and the embedding
// tied, so that the decoder expects exactly the tensors a classification checkpoint has (no
// lm_head). Also returns the label count config.json states (id2label), or 0.
ModelConfig decoder_config(const fs::path& dir, int64_t& stated_labels) {
  const fs::path file = dir / "config.json";
  require(fs::is_regular_file(file), dir.string() + ": no config.json (expected a Hugging Face model folder)");
  auto doc = json::parse(read_file(file), file.string());
  require(doc.IsObject() && doc.HasMember("architectures") && doc["architectures"].IsArray() &&
              doc["architectures"].Size() == 1 && doc["architectures"][0].IsString(),
          file.string() + ": 'architectures' must name one architecture");
  const std::string architecture = doc["architectures"][0].GetString();
  const std::string causal = causal_architecture_of(architecture);
  require(!causal.empty(), file.string() + ": architecture '" + architecture +
                               "' is not a sequence classifier (expected e.g. Qwen2ForSequenceClassification or "
                               "LlamaForSequenceClassification)");
  stated_labels = 0;
  if (doc.HasMember("id2label") && doc["id2label"].IsObject()) stated_labels = doc["id2label"].MemberCount();
  if (doc.HasMember("num_labels") && doc["num_labels"].IsInt64()) stated_labels = doc["num_labels"].GetInt64();
  auto& a = doc.GetAllocator();
  doc["architectures"][0].SetString(causal.c_str(), static_cast<rapidjson::SizeType>(causal.size()), a);
  if (doc.HasMember("tie_word_embeddings"))
    doc["tie_word_embeddings"].SetBool(true);
  else
    doc.AddMember("tie_word_embeddings", true, a);
  return ModelConfig::from_json(json::to_string(doc), file.string() + " (read as " + causal + ")");
}

}  // namespace

std::unique_ptr<SequenceClassifier> SequenceClassifier::load(const fs::path& dir,
                                                             std::optional<torch::ScalarType> dtype,
                                                             torch::Device device) {
  int64_t stated_labels = 0;
  ModelConfig config = decoder_config(dir, stated_labels);
  CheckpointReader checkpoint(dir);
  const torch::ScalarType type = dtype.value_or(torch::kFloat32);
  auto decoder = std::make_unique<Transformer>(config, type, device);
  torch::NoGradGuard no_grad;
  for (auto& [name, weight] : decoder->named_parameters()) {
    require(checkpoint.contains(name), dir.string() + ": the checkpoint has no tensor '" + name + "'");
    const auto& entry = checkpoint.entry(name);
    require(entry.shape == weight.sizes().vec(), dir.string() + ": tensor '" + name + "' has shape " +
                                                    shape_text(entry.shape) + ", expected " +
                                                    shape_text(weight.sizes().vec()));
    weight.copy_(checkpoint.load(name, type, device));
  }
  require(checkpoint.contains("score.weight"), dir.string() + ": the checkpoint has no tensor 'score.weight' (the head)");
  const auto& head = checkpoint.entry("score.weight");
  require(head.shape.size() == 2 && head.shape[0] >= 1 && head.shape[1] == config.hidden_size,
          dir.string() + ": tensor 'score.weight' has shape " + shape_text(head.shape) + ", expected [num_labels, " +
              std::to_string(config.hidden_size) + "]");
  require(stated_labels == 0 || stated_labels == head.shape[0],
          dir.string() + ": config.json states " + std::to_string(stated_labels) + " labels but 'score.weight' has " +
              std::to_string(head.shape[0]));
  torch::Tensor score = checkpoint.load("score.weight", type, device);
  torch::Tensor bias;
  if (checkpoint.contains("score.bias")) {
    require(checkpoint.entry("score.bias").shape == std::vector<int64_t>{head.shape[0]},
            dir.string() + ": tensor 'score.bias' must have shape [" + std::to_string(head.shape[0]) + "]");
    bias = checkpoint.load("score.bias", type, device);
  }
  return std::unique_ptr<SequenceClassifier>(new SequenceClassifier(std::move(decoder), score, bias));
}

torch::Tensor SequenceClassifier::scores(const std::vector<std::vector<int64_t>>& sequences) const {
  require(!sequences.empty(), "sequence classifier: no sequences to score");
  const int64_t pad = config().pad_token_id;
  int64_t longest = 0;
  for (size_t i = 0; i < sequences.size(); ++i) {
    require(!sequences[i].empty(), "sequence classifier: sequence " + std::to_string(i) + " is empty");
    for (int64_t id : sequences[i])
      require(id >= 0 && id < config().vocab_size, "sequence classifier: token id " + std::to_string(id) +
                                                       " is outside the vocabulary of " +
                                                       std::to_string(config().vocab_size));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(sequences[i].size()));
  }
  const int64_t rows = static_cast<int64_t>(sequences.size());
  auto ids = torch::zeros({rows, longest}, torch::kInt64);
  auto mask = torch::zeros({rows, longest}, torch::kInt64);
  auto pooled_at = torch::zeros({rows}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  auto pooled_a = pooled_at.accessor<int64_t, 1>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto& seq = sequences[static_cast<size_t>(r)];
    const int64_t offset = longest - static_cast<int64_t>(seq.size());
    int64_t last = 0;  // transformers: argmax of (index * not_pad), 0 when all are pad
    for (int64_t t = 0; t < static_cast<int64_t>(seq.size()); ++t) {
      ids_a[r][offset + t] = seq[static_cast<size_t>(t)];
      mask_a[r][offset + t] = 1;
      if (pad < 0 || seq[static_cast<size_t>(t)] != pad) last = t;
    }
    pooled_a[r] = offset + last;
  }
  torch::NoGradGuard no_grad;
  const auto device = decoder_->device();
  auto hidden = decoder_->hidden_states(ids.to(device), mask.to(device));  // [N, T, H]
  auto rows_index = torch::arange(rows, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto last = hidden.index({rows_index, pooled_at.to(device)});  // [N, H]
  auto logits = torch::nn::functional::linear(last, score_, bias_);
  return logits.to(torch::kCPU, torch::kFloat32);
}

}  // namespace aha::reward

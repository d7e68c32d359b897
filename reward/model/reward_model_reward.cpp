#include "reward/model/reward_model_reward.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.h"
#include "datasets/model_chat_template.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "reward/model/sequence_classifier.h"
#include "reward/reward_registry.h"

namespace aha::reward {
namespace {
namespace fs = std::filesystem;

// A loaded checkpoint with what turns text into its input.
struct LoadedRewardModel {
  LoadedRewardModel(std::unique_ptr<SequenceClassifier> c, Tokenizer t) : classifier(std::move(c)), tokenizer(std::move(t)) {}
  std::unique_ptr<SequenceClassifier> classifier;
  Tokenizer tokenizer;
  std::optional<ModelChatTemplate> chat_template;  // when the directory has one
  std::mutex forward;                              // one forward at a time
};

std::shared_ptr<LoadedRewardModel> load_shared(const fs::path& dir, const std::string& device,
                                               const std::string& dtype) {
  static std::mutex mutex;
  static std::map<std::tuple<std::string, std::string, std::string>, std::weak_ptr<LoadedRewardModel>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_tuple(fs::weakly_canonical(dir).string(), device, dtype);
  if (auto existing = cache[key].lock()) return existing;
  require(fs::is_directory(dir), "reward_model: path '" + dir.string() + "' is not a directory");
  auto loaded = std::make_shared<LoadedRewardModel>(SequenceClassifier::load(dir, parse_dtype(dtype), parse_device(device)),
                                                    Tokenizer::from_dir(dir));
  try {
    loaded->chat_template = load_model_chat_template(dir);
  } catch (const Error&) {
    // No chat template: only a pattern template can be used (checked by the reward).
  }
  cache[key] = loaded;
  return loaded;
}

std::string after_last_think(const std::string& text) {
  const std::string close = "</think>";
  size_t at = text.rfind(close);
  return at == std::string::npos ? text : text.substr(at + close.size());
}

std::string replaced(std::string text, const std::string& key, const std::string& value) {
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
    text.replace(at, key.size(), value);
  return text;
}

class RewardModelReward : public Reward {
 public:
  explicit RewardModelReward(const json::ObjectReader& o) {
    o.reject_unknown({"path", "scope", "template", "label", "transform", "device", "dtype", "max_tokens"});
    const std::string path = o.get_string("path");
    scope_ = o.get_string("scope", "answer");
    require(scope_ == "answer" || scope_ == "response",
            o.context() + ": 'scope' must be \"answer\" or \"response\", got \"" + scope_ + "\"");
    template_ = o.get_string("template", "model");
    require(template_ == "model" || template_.find("{response}") != std::string::npos,
            o.context() + ": 'template' must be \"model\" or a pattern holding {response}");
    transform_ = o.get_string("transform", "none");
    require(transform_ == "none" || transform_ == "sigmoid",
            o.context() + ": 'transform' must be \"none\" or \"sigmoid\", got \"" + transform_ + "\"");
    max_tokens_ = o.get_int("max_tokens", 0);
    require(max_tokens_ >= 0, o.context() + ": 'max_tokens' must be >= 0 (0: the model's limit)");
    model_ = load_shared(path, o.get_string("device", "cpu"), o.get_string("dtype", "float32"));
    label_ = o.get_int("label", 0);
    require(label_ >= 0 && label_ < model_->classifier->num_labels(),
            o.context() + ": 'label' " + std::to_string(label_) + " is not an output of " + path + " (it has " +
                std::to_string(model_->classifier->num_labels()) + ")");
    require(template_ != "model" || model_->chat_template,
            o.context() + ": " + path + " has no chat template; give 'template' as a pattern holding {response}");
    if (max_tokens_ == 0) max_tokens_ = model_->classifier->config().max_position_embeddings;
  }

  RewardOutput score(const RewardExample& example, const Completion& completion) const override {
    const std::string text = scope_ == "answer" ? after_last_think(completion.text) : completion.text;
    std::vector<TokenId> ids;
    if (template_ == "model") {
      jinja::List messages;
      messages.push_back(jinja::Value(jinja::Dict{{"role", jinja::Value("user")}, {"content", jinja::Value(example.prompt)}}));
      messages.push_back(jinja::Value(jinja::Dict{{"role", jinja::Value("assistant")}, {"content", jinja::Value(text)}}));
      ids = model_->tokenizer.encode(apply_chat_template(*model_->chat_template, messages, false), false);
    } else {
      ids = model_->tokenizer.encode(replaced(replaced(template_, "{prompt}", example.prompt), "{response}", text));
    }
    RewardOutput out;
    std::vector<int64_t> input(ids.begin(), ids.end());
    if (static_cast<int64_t>(input.size()) > max_tokens_) {
      out.diagnostic = "input of " + std::to_string(input.size()) + " tokens cut to its last " +
                       std::to_string(max_tokens_) + "; ";
      input.erase(input.begin(), input.end() - max_tokens_);
    }
    require(!input.empty(), "reward_model: the input is empty");
    torch::Tensor scores;
    {
      std::lock_guard<std::mutex> lock(model_->forward);
      scores = model_->classifier->scores({input});
    }
    const double logit = scores[0][label_].item<double>();
    out.value = transform_ == "sigmoid" ? 1.0 / (1.0 + std::exp(-logit)) : logit;
    out.components["logit"] = logit;
    out.diagnostic += "logit " + std::to_string(logit);
    return out;
  }

 private:
  std::string scope_, template_, transform_;
  int64_t label_ = 0, max_tokens_ = 0;
  std::shared_ptr<LoadedRewardModel> model_;
};

}  // namespace

void register_reward_model_reward() {
  register_reward_kind("reward_model", [](const json::ObjectReader& options, double) -> std::unique_ptr<Reward> {
    return std::make_unique<RewardModelReward>(options);
  });
}

}  // namespace aha::reward

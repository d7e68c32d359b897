// reward/model/: the sequence classifier against transformers' logits on tiny random
// Qwen2ForSequenceClassification / LlamaForSequenceClassification checkpoints (fixtures made by
// tests/fixtures/make_reward_model_fixtures.py), and the reward_model reward end to end
// (tokenizer, chat template or pattern, scope) against transformers' score of the same case.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "policy/model/safetensors.h"
#include "reward/model/reward_model_reward.h"
#include "reward/model/sequence_classifier.h"
#include "reward/reward_registry.h"

namespace aha::reward {
namespace {
namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/reward_models";

std::vector<int64_t> ids_of(const torch::Tensor& t) {
  auto flat = t.reshape({-1}).to(torch::kInt64).contiguous();
  return std::vector<int64_t>(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
}

class Scratch {
 public:
  Scratch() : dir_(fs::temp_directory_path() / ("aha_rm_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    fs::create_directories(dir_);
  }
  ~Scratch() { aha::remove_tree(dir_); }
  const fs::path& path() const { return dir_; }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
};

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

class ClassifierParity : public ::testing::TestWithParam<std::string> {};

// Each sequence alone, and all four in one left-padded batch, give transformers' logits: the
// pooled token is the last that is not the pad id (sequence 1 ends in pad ids; in the Llama
// fixture the pad id is the eos id 2, so sequence 3's final eos is skipped too).
TEST_P(ClassifierParity, LogitsMatchTransformers) {
  const fs::path dir = kFixtures / GetParam();
  auto classifier = SequenceClassifier::load(dir);
  SafetensorsFile expected(dir / "expected.safetensors");
  std::vector<std::vector<int64_t>> all;
  std::vector<torch::Tensor> want;
  for (int i = 0; i < 4; ++i) {
    all.push_back(ids_of(expected.load("ids_" + std::to_string(i))));
    want.push_back(expected.load("scores_fp32_" + std::to_string(i)).to(torch::kFloat32));
    auto got = classifier->scores({all.back()});
    ASSERT_EQ(got.sizes(), want.back().sizes()) << "sequence " << i;
    EXPECT_TRUE(torch::allclose(got, want.back(), 1e-5, 1e-5)) << "sequence " << i << ": " << got << " vs " << want.back();
  }
  auto batch = classifier->scores(all);
  EXPECT_TRUE(torch::allclose(batch, torch::cat(want, 0), 1e-5, 1e-5)) << batch;
  EXPECT_EQ(classifier->num_labels(), want[0].size(1));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ClassifierParity, ::testing::Values("qwen2_rm_one_label", "llama_rm_two_labels"));

TEST(SequenceClassifier, BadCheckpointsAndInputsAreNamedErrors) {
  auto expect_error = [](const auto& body, const std::string& needle) {
    try {
      body();
      ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // A causal model is not a classifier.
  expect_error([] { SequenceClassifier::load(fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen2_gqa_tied"); },
               "not a sequence classifier");
  // A classifier config over a checkpoint without a head.
  Scratch no_head;
  fs::copy_file(fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen2_gqa_tied/model.safetensors",
                no_head.path() / "model.safetensors");
  auto config = json::parse(read_file(fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen2_gqa_tied/config.json"), "c");
  config["architectures"][0].SetString("Qwen2ForSequenceClassification");
  write_text(no_head.path() / "config.json", json::to_string(config));
  expect_error([&] { SequenceClassifier::load(no_head.path()); }, "'score.weight'");
  // config.json's labels disagree with the head.
  Scratch labels;
  const fs::path good = kFixtures / "qwen2_rm_one_label";
  fs::copy_file(good / "model.safetensors", labels.path() / "model.safetensors");
  auto c = json::parse(read_file(good / "config.json"), "c");
  c.AddMember("num_labels", 3, c.GetAllocator());
  write_text(labels.path() / "config.json", json::to_string(c));
  expect_error([&] { SequenceClassifier::load(labels.path()); }, "states 3 labels");
  // Inputs.
  auto classifier = SequenceClassifier::load(good);
  expect_error([&] { classifier->scores({{1, 2}, {}}); }, "sequence 1 is empty");
  expect_error([&] { classifier->scores({{1, 128}}); }, "token id 128");
  expect_error([&] { classifier->scores({}); }, "no sequences");
}

// The chat fixture with its tokenizer and chat template beside it, as a user's reward model
// directory would be.
fs::path make_chat_model_dir(const fs::path& dir, bool with_template) {
  const fs::path fixture = kFixtures / "qwen2_rm_chat";
  const fs::path tokenizer = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/tokenizers/qwen2_style";
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(fixture / f, dir / f);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(tokenizer / f, dir / f);
  if (with_template) {
    auto expected = json::parse(read_file(fixture / "expected.json"), "expected.json");
    write_text(dir / "chat_template.jinja", expected["chat_template"].GetString());
  }
  return dir;
}

std::string quote(const std::string& text) { return json::to_string(rapidjson::Value(text.c_str(), static_cast<rapidjson::SizeType>(text.size()))); }

std::string options_json(const std::string& path, const std::string& extra) {
  return "{\"path\": " + quote(path) + (extra.empty() ? "" : ", " + extra) + "}";
}

TEST(RewardModelReward, ScoresAsTransformersDoes) {
  register_reward_model_reward();
  Scratch scratch;
  const fs::path dir = make_chat_model_dir(scratch.path(), true);
  auto expected = json::parse(read_file(kFixtures / "qwen2_rm_chat/expected.json"), "expected.json");
  for (const auto& c : expected["cases"].GetArray()) {
    RewardSpec spec;
    spec.name = "rm";
    spec.kind = "reward_model";
    spec.options_json = options_json(dir.string(), "\"template\": " + quote(c["template"].GetString()) +
                                                       ", \"scope\": " + quote(c["scope"].GetString()));
    auto reward = create_reward(spec);
    RewardExample example;
    example.prompt = c["prompt"].GetString();
    auto out = reward->score(example, {c["completion"].GetString(), -1});
    EXPECT_NEAR(out.value, c["score"].GetDouble(), 1e-5) << spec.options_json;
    EXPECT_NEAR(out.components.at("logit"), c["score"].GetDouble(), 1e-5);
  }
  // sigmoid maps the first case's logit into (0, 1).
  const auto& first = expected["cases"][0];
  RewardSpec spec{"rm", "reward_model", 1.0, 10.0, options_json(dir.string(), "\"transform\": \"sigmoid\"")};
  RewardExample example;
  example.prompt = first["prompt"].GetString();
  auto out = create_reward(spec)->score(example, {first["completion"].GetString(), -1});
  EXPECT_NEAR(out.value, 1.0 / (1.0 + std::exp(-first["score"].GetDouble())), 1e-6);
  // A tiny max_tokens cuts the input to its last tokens and says so.
  spec.options_json = options_json(dir.string(), "\"max_tokens\": 4");
  out = create_reward(spec)->score(example, {first["completion"].GetString(), -1});
  EXPECT_NE(out.diagnostic.find("cut to its last 4"), std::string::npos) << out.diagnostic;
}

TEST(RewardModelReward, BadOptionsAreNamedErrors) {
  register_reward_model_reward();
  register_reward_model_reward();  // twice is harmless
  Scratch with, without;
  make_chat_model_dir(with.path(), true);
  make_chat_model_dir(without.path(), false);
  auto error_of = [](const std::string& options) -> std::string {
    try {
      create_reward({"rm", "reward_model", 1.0, 10.0, options});
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of(options_json(with.path().string(), "\"label\": 1")).find("'label' 1 is not an output"), std::string::npos);
  EXPECT_NE(error_of(options_json(with.path().string(), "\"scope\": \"all\"")).find("'scope'"), std::string::npos);
  EXPECT_NE(error_of(options_json(with.path().string(), "\"template\": \"no placeholder\"")).find("{response}"), std::string::npos);
  EXPECT_NE(error_of(options_json(with.path().string(), "\"colour\": 1")).find("colour"), std::string::npos);
  EXPECT_NE(error_of(options_json(without.path().string(), "")).find("has no chat template"), std::string::npos);
  EXPECT_NE(error_of(options_json((with.path() / "nope").string(), "")).find("not a directory"), std::string::npos);
  EXPECT_NE(error_of("{}").find("path"), std::string::npos);
  // The kind is listed among the known ones once registered.
  auto kinds = reward_kinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reward_model"), 1);
}

}  // namespace
}  // namespace aha::reward

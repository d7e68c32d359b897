// Issue 22: `aha generate` and `aha eval` with the model's own chat template (--template model)
// and the model's generation_config.json sampling defaults, as a user meets them: a tiny random
// Qwen2 model with a Qwen2-style tokenizer, Qwen2.5-Instruct's chat template and a
// generation_config.json.
#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/files.h"
#include "core/json.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

using aha::test::CommandOutcome;
using aha::test::run_aha;
using aha::test::shell_quoted;

constexpr int kTimeout = 300;
const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures";

std::string q(const fs::path& p) { return shell_quoted(p.string()); }

std::string json_quoted(const std::string& s) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return b.GetString();
}

// The golden transformers rendering of Qwen2.5-Instruct's template for one user message.
std::string golden_user_only() {
  const auto doc = aha::json::parse(aha::read_file(kFixtures / "chat_templates/cases.json"), "cases.json");
  for (const auto& c : doc["cases"].GetArray())
    if (std::string(c["template"].GetString()) == "qwen2.5-instruct.jinja" &&
        std::string(c["conversation"].GetString()) == "user_only" && c["add_generation_prompt"].GetBool())
      return c["expected"].GetString();
  return "";
}

class ModelTemplateCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("aha_model_template_cli_" + std::to_string(::getpid()));
    aha::remove_tree(dir_);
    fs::create_directories(dir_);
    std::string config = aha::read_file(fs::path(AHA_SOURCE_DIR) / "recipes/models/tiny-qwen2.json");
    config.replace(config.find("\"vocab_size\": 256"), 17, "\"vocab_size\": 3008");  // the tokenizer's 3000 + added
    std::ofstream(dir_ / "config.json") << config;
    const auto init = run_aha("model init --config " + q(dir_ / "config.json") + " --out " + q(dir_ / "m"), true, kTimeout);
    ASSERT_EQ(init.exit_status, 0) << init.out;
    fs::copy_file(kFixtures / "tokenizers/qwen2_style/tokenizer.json", dir_ / "m/tokenizer.json");
    const std::string tokenizer_config = aha::read_file(kFixtures / "tokenizers/qwen2_style/tokenizer_config.json");
    std::string with_template = tokenizer_config.substr(0, tokenizer_config.rfind('}'));
    with_template += ", \"chat_template\": " + json_quoted(aha::read_file(kFixtures / "chat_templates/qwen2.5-instruct.jinja")) + "}";
    std::ofstream(dir_ / "m/tokenizer_config.json") << with_template;
    std::ofstream(dir_ / "m/generation_config.json") << "{\"temperature\": 0.5, \"top_p\": 0.9, \"top_k\": 7, \"eos_token_id\": [2]}";
    // The same model without a chat template.
    const auto copy = run_aha("model convert " + q(dir_ / "m") + " --out " + q(dir_ / "plain"), true, kTimeout);
    ASSERT_EQ(copy.exit_status, 0) << copy.out;
    std::ofstream(dir_ / "plain/tokenizer_config.json") << tokenizer_config;
  }
  static void TearDownTestSuite() { aha::remove_tree(dir_); }
  static fs::path dir_;
  int recipes_ = 0;
};
fs::path ModelTemplateCli::dir_;

TEST_F(ModelTemplateCli, GenerateRendersThePromptWithTheModelsTemplate) {
  const std::string common = " --max-new-tokens 6 --device cpu --temperature 0 ";
  const auto templated = run_aha("generate --model " + q(dir_ / "m") + common + "--template model --prompt 'What is 2+3?' --output " +
                                     q(dir_ / "a.jsonl"), true, kTimeout);
  ASSERT_EQ(templated.exit_status, 0) << templated.out;
  EXPECT_NE(templated.out.find("template model"), std::string::npos) << templated.out;
  // The same prompt given as the ids of transformers' rendering: the same completion and log-probs.
  const auto ids = run_aha("tokenize --model " + q(dir_ / "m") + " --json " + shell_quoted(golden_user_only()), false, kTimeout);
  ASSERT_EQ(ids.exit_status, 0) << ids.out;
  const auto doc = aha::json::parse(ids.out, "tokenize output");
  std::string id_list;
  for (const auto& id : doc["ids"].GetArray()) {
    if (!id_list.empty()) id_list += ',';
    id_list += std::to_string(id.GetInt64());
  }
  const auto by_ids = run_aha("generate --model " + q(dir_ / "m") + common + "--prompt-ids " + id_list + " --output " +
                                  q(dir_ / "b.jsonl"), true, kTimeout);
  ASSERT_EQ(by_ids.exit_status, 0) << by_ids.out;
  auto completion = [](const fs::path& file) {
    const auto line = aha::json::parse(aha::read_file(file), file.string());
    return aha::json::to_string(line["tokens"]) + aha::json::to_string(line["logprobs"]);
  };
  EXPECT_EQ(completion(dir_ / "a.jsonl"), completion(dir_ / "b.jsonl"));
}

TEST_F(ModelTemplateCli, SamplingDefaultsComeFromGenerationConfigAndArePrinted) {
  const std::string base = "generate --model " + q(dir_ / "m") + " --max-new-tokens 2 --device cpu --prompt hi ";
  const auto defaults = run_aha(base, true, kTimeout);
  ASSERT_EQ(defaults.exit_status, 0) << defaults.out;
  EXPECT_NE(defaults.out.find("sampling: temperature 0.5 (generation_config.json), top_p 0.9 (generation_config.json), "
                              "top_k 7 (generation_config.json), eos ids 2"),
            std::string::npos)
      << defaults.out;
  const auto given = run_aha(base + "--temperature 0.7 --top-k 0", true, kTimeout);
  EXPECT_NE(given.out.find("temperature 0.7 (given), top_p 0.9 (generation_config.json), top_k 0 (given)"), std::string::npos)
      << given.out;
  const auto ignored = run_aha(base + "--ignore-generation-config", true, kTimeout);
  EXPECT_NE(ignored.out.find("temperature 1 (default), top_p 1 (default), top_k 0 (default)"), std::string::npos)
      << ignored.out;
}

TEST_F(ModelTemplateCli, EvalUsesTheTemplateAndTheDefaults) {
  const auto eval = run_aha("eval --model " + q(dir_ / "m") + " --template model --system 'Be brief.' --data " +
                                shell_quoted("{\"synthetic\": \"arithmetic\", \"n\": 2, \"seed\": 1}") +
                                " --max-new-tokens 2 --device cpu --run-dir " + q(dir_ / "runs") + " --name t",
                            true, kTimeout);
  ASSERT_EQ(eval.exit_status, 0) << eval.out;
  EXPECT_NE(eval.out.find("sampling: temperature 0.5 (generation_config.json), top_p 0.9 (generation_config.json), "
                          "top_k 7 (generation_config.json), template model"),
            std::string::npos)
      << eval.out;
  EXPECT_TRUE(fs::exists(dir_ / "runs/exports/eval-t/report.json"));
  // A system prompt needs a template that has a place for it.
  const auto r1 = run_aha("eval --model " + q(dir_ / "m") + " --system 'Be brief.' --data " +
                              shell_quoted("{\"synthetic\": \"arithmetic\", \"n\": 2, \"seed\": 1}") + " --device cpu",
                          true, kTimeout);
  EXPECT_EQ(r1.exit_status, 1) << r1.out;
  EXPECT_NE(r1.out.find("'r1_zero': a system prompt needs chatml, deepseek_r1 or model"), std::string::npos) << r1.out;
}

TEST_F(ModelTemplateCli, MissingTemplateAndMisusedOptionsAreClearErrors) {
  const auto none = run_aha("generate --model " + q(dir_ / "plain") + " --template model --prompt hi --device cpu", true, kTimeout);
  EXPECT_EQ(none.exit_status, 1) << none.out;
  EXPECT_NE(none.out.find("has no chat template (looked at"), std::string::npos) << none.out;
  EXPECT_NE(none.out.find("chat_template.jinja"), std::string::npos) << none.out;
  const auto system = run_aha("generate --model " + q(dir_ / "m") + " --system x --prompt hi --device cpu", true, kTimeout);
  EXPECT_EQ(system.exit_status, 1) << system.out;
  EXPECT_NE(system.out.find("--system needs --template"), std::string::npos) << system.out;
  const auto eval = run_aha("eval --model " + q(dir_ / "plain") + " --template model --data " +
                                shell_quoted("{\"synthetic\": \"arithmetic\", \"n\": 2, \"seed\": 1}") + " --device cpu",
                            true, kTimeout);
  EXPECT_EQ(eval.exit_status, 1) << eval.out;
  EXPECT_NE(eval.out.find("has no chat template"), std::string::npos) << eval.out;
}

// A recipe with "template": "model" and rollout.use_model_generation_config trains with them.
TEST_F(ModelTemplateCli, RecipeUsesTheModelsTemplateAndGenerationConfig) {
  auto recipe = [&](const std::string& model, const std::string& extra) {
    const fs::path file = dir_ / ("recipe-" + std::to_string(++recipes_) + ".json");
    std::ofstream(file) << "{\"name\": \"t\", \"model\": {\"path\": " + json_quoted((dir_ / model).string()) +
                               ", \"device\": \"cpu\"}, \"template\": \"model\"" + extra +
                               ", \"data\": {\"train\": {\"synthetic\": \"arithmetic\", \"n\": 8, \"seed\": 1}},"
                               " \"rewards\": [{\"name\": \"accuracy\", \"kind\": \"math_accuracy\", \"weight\": 1.0}],"
                               " \"rollout\": {\"prompts_per_step\": 2, \"group_size\": 2, \"max_new_tokens\": 4,"
                               " \"use_model_generation_config\": true}, \"schedule\": {\"steps\": 1, \"seed\": 1},"
                               " \"eval\": {\"every\": 0}}";
    return file;
  };
  const auto run = run_aha("train " + q(recipe("m", ", \"system_prompt\": \"Be brief.\"")) + " --run-dir " + q(dir_ / "run1"),
                           true, kTimeout);
  ASSERT_EQ(run.exit_status, 0) << run.out;
  EXPECT_NE(run.out.find("sampling: temperature 0.5 (generation_config.json), top_p 0.9 (generation_config.json), top_k 7 "
                         "(generation_config.json)"),
            std::string::npos)
      << run.out;
  const auto missing = run_aha("train " + q(recipe("plain", "")) + " --run-dir " + q(dir_ / "run2"), true, kTimeout);
  EXPECT_EQ(missing.exit_status, 1) << missing.out;
  EXPECT_NE(missing.out.find("has no chat template"), std::string::npos) << missing.out;
  const auto stops = run_aha("train " + q(recipe("m", ", \"stop_strings\": [\"x\"]")) + " --run-dir " + q(dir_ / "run3"),
                             true, kTimeout);
  EXPECT_EQ(stops.exit_status, 1) << stops.out;
  EXPECT_NE(stops.out.find("stop strings can only be given with a custom template"), std::string::npos) << stops.out;
}

}  // namespace

// The reward_model reward as a user meets it in `aha reward score`: a reward model directory
// (a tiny random Qwen2ForSequenceClassification with a Qwen2-style tokenizer and a ChatML
// template) named in a reward spec, and each sample's component equal to transformers' score
// (tests/fixtures/make_reward_model_fixtures.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/files.h"
#include "core/json.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

using aha::test::run_aha;
using aha::test::shell_quoted;

const fs::path kSource = fs::path(AHA_SOURCE_DIR);

std::string json_text(const std::string& s) {
  return aha::json::to_string(rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size())));
}

TEST(RewardModelCli, ScoresSamplesAsTransformersDoes) {
  const fs::path dir = fs::temp_directory_path() / ("aha_rm_cli_" + std::to_string(::getpid()));
  const fs::path model = dir / "rm";
  fs::create_directories(model);
  const fs::path fixture = kSource / "tests/fixtures/reward_models/qwen2_rm_chat";
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(fixture / f, model / f);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(kSource / "tests/fixtures/tokenizers/qwen2_style" / f, model / f);
  auto expected = aha::json::parse(aha::read_file(fixture / "expected.json"), "expected.json");
  std::ofstream(model / "chat_template.jinja") << expected["chat_template"].GetString();

  // The cases of the default template and scope ("model", "answer") as sample lines.
  std::ostringstream samples;
  std::vector<double> want;
  for (const auto& c : expected["cases"].GetArray()) {
    if (std::string(c["template"].GetString()) != "model" || std::string(c["scope"].GetString()) != "answer") continue;
    samples << "{\"prompt\": " << json_text(c["prompt"].GetString()) << ", \"completion\": "
            << json_text(c["completion"].GetString()) << ", \"gold\": \"\", \"task\": \"custom\"}\n";
    want.push_back(c["score"].GetDouble());
  }
  ASSERT_EQ(want.size(), 2u);
  std::ofstream(dir / "samples.jsonl") << samples.str();
  std::ofstream(dir / "rewards.json") << R"([{"name": "helpful", "kind": "reward_model", "options": {"path": )"
                                      << json_text(model.string()) << "}}]";

  auto outcome = run_aha("reward score --rewards " + shell_quoted((dir / "rewards.json").string()) + " --input " +
                             shell_quoted((dir / "samples.jsonl").string()),
                         false, 300);
  ASSERT_EQ(outcome.exit_status, 0) << outcome.out;
  std::istringstream lines(outcome.out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    ASSERT_LT(i, want.size()) << line;
    auto doc = aha::json::parse(line, "output line");
    EXPECT_NEAR(doc["components"]["helpful"].GetDouble(), want[i], 1e-5) << line;
    ++i;
  }
  EXPECT_EQ(i, want.size());
  aha::remove_tree(dir);
}

}  // namespace

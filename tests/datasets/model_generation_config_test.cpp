// generation_config.json's sampling defaults and their order: given > model > aha's default.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "core/files.h"
#include "datasets/model_generation_config.h"
#include "tests/test_util.h"

namespace aha {
namespace {
namespace fs = std::filesystem;

class GenerationConfigDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha-generation-config-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_); }
  void write(const std::string& text) { std::ofstream(dir_ / "generation_config.json") << text; }
  fs::path dir_;
};

const SamplingChoice kAha = {1.0, 1.0, 0, ""};

TEST_F(GenerationConfigDir, NoFileMeansAhasDefaults) {
  const auto model = load_model_generation_config(dir_);
  EXPECT_EQ(model.file, "");
  const auto s = choose_sampling(std::nullopt, std::nullopt, std::nullopt, model, kAha);
  EXPECT_EQ(s.temperature, 1.0);
  EXPECT_EQ(s.summary, "sampling: temperature 1 (default), top_p 1 (default), top_k 0 (default)");
}

TEST_F(GenerationConfigDir, ModelValuesFillWhatTheUserLeftOut) {
  // Qwen2.5-Instruct's generation_config.json.
  write("{\"bos_token_id\": 151643, \"do_sample\": true, \"eos_token_id\": [151645, 151643], \"pad_token_id\": 151643,"
        " \"repetition_penalty\": 1.05, \"temperature\": 0.7, \"top_p\": 0.8, \"top_k\": 20}");
  const auto model = load_model_generation_config(dir_);
  auto s = choose_sampling(std::nullopt, std::nullopt, std::nullopt, model, kAha);
  EXPECT_DOUBLE_EQ(s.temperature, 0.7);
  EXPECT_DOUBLE_EQ(s.top_p, 0.8);
  EXPECT_EQ(s.top_k, 20);
  EXPECT_EQ(s.summary,
            "sampling: temperature 0.7 (generation_config.json), top_p 0.8 (generation_config.json), top_k 20 "
            "(generation_config.json)");
  s = choose_sampling(0.3, std::nullopt, 0, model, kAha);
  EXPECT_DOUBLE_EQ(s.temperature, 0.3);
  EXPECT_DOUBLE_EQ(s.top_p, 0.8);
  EXPECT_EQ(s.top_k, 0);
  EXPECT_EQ(s.summary, "sampling: temperature 0.3 (given), top_p 0.8 (generation_config.json), top_k 0 (given)");
}

TEST_F(GenerationConfigDir, DoSampleFalseIsGreedyUnlessATemperatureIsGiven) {
  write("{\"do_sample\": false, \"temperature\": 0.6}");
  const auto model = load_model_generation_config(dir_);
  auto s = choose_sampling(std::nullopt, std::nullopt, std::nullopt, model, kAha);
  EXPECT_EQ(s.temperature, 0.0);
  EXPECT_NE(s.summary.find("temperature 0 (generation_config.json: do_sample false)"), std::string::npos) << s.summary;
  s = choose_sampling(0.9, std::nullopt, std::nullopt, model, kAha);
  EXPECT_DOUBLE_EQ(s.temperature, 0.9);
}

TEST_F(GenerationConfigDir, BadFieldsAreNamed) {
  write("{\"temperature\": \"hot\"}");
  EXPECT_NE(test::error_of([&] { load_model_generation_config(dir_); }).find("generation_config.json: 'temperature' must be a number"),
            std::string::npos);
  write("{\"top_p\": 1.5}");
  EXPECT_NE(test::error_of([&] { load_model_generation_config(dir_); }).find("'top_p' must be in (0, 1]"), std::string::npos);
  write("{\"top_k\": -1}");
  EXPECT_NE(test::error_of([&] { load_model_generation_config(dir_); }).find("'top_k' must be an integer >= 0"), std::string::npos);
  write("{\"do_sample\": 1}");
  EXPECT_NE(test::error_of([&] { load_model_generation_config(dir_); }).find("'do_sample' must be true or false"), std::string::npos);
  write("[1]");
  EXPECT_NE(test::error_of([&] { load_model_generation_config(dir_); }).find("expected a JSON object"), std::string::npos);
  write("{\"temperature\": ");
  EXPECT_NE(test::error_of([&] { load_model_generation_config(dir_); }).find("generation_config.json"), std::string::npos);
}

}  // namespace
}  // namespace aha

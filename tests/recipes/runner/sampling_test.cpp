// recipes/sampling.h: prompt encoding (BOS handling), example conversion, EOS ids of a model
// directory, and sample_and_score with real tiny models: group sizes and order, alignment of
// scores with completions, determinism by seed, stop strings kept in the text.
#include "recipes/runner/sampling.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "tests/recipes/runner/recipes_test_util.h"
#include "tests/test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;
using test::fixture_tokenizer;
using test::ids_of;

std::vector<Example> examples(int n) {
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    Example e;
    e.id = "ex" + std::to_string(i);
    e.prompt = "What is " + std::to_string(i) + " + " + std::to_string(i) + "?";
    e.gold = std::to_string(2 * i);
    out.push_back(e);
  }
  return out;
}

// Scores a completion with its token count and echoes the prompt and text it was given.
class EchoReward : public reward::Reward {
 public:
  reward::RewardOutput score(const reward::RewardExample& example, const reward::Completion& c) const override {
    reward::RewardOutput out;
    out.value = static_cast<double>(c.num_tokens);
    out.diagnostic = example.prompt + "|" + c.text;
    return out;
  }
};

reward::RewardRunner echo_runner() {
  reward::RewardSpec spec;
  spec.name = "echo";
  spec.kind = "echo";
  return reward::RewardRunner({spec}, {std::make_shared<EchoReward>()}, 2);
}

TEST(EncodePrompt, RendersTheTemplateAndAddsSpecialTokensOnlyWithoutABosInTheText) {
  // The fixture tokenizer with a post-processor that prepends <|im_start|> (id 1), as Llama 3's
  // adds its BOS.
  auto doc = json::parse(read_file(test::tokenizer_dir() / "tokenizer.json"), "tokenizer.json");
  auto post = json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [1], "tokens": ["<|im_start|>"]}}})",
                          "post");
  doc["post_processor"].CopyFrom(post, doc.GetAllocator());
  const Tokenizer with_bos = Tokenizer::from_json(json::to_string(doc), "bos tokenizer");
  Example e = examples(1)[0];

  auto r1 = encode_prompt(with_bos, PromptTemplate::r1_zero(), e);
  ASSERT_FALSE(r1.empty());
  EXPECT_EQ(r1[0], 1);  // the post-processor's BOS
  auto plain = with_bos.encode(PromptTemplate::r1_zero().render(e.prompt), false);
  EXPECT_EQ(std::vector<int64_t>(r1.begin() + 1, r1.end()), std::vector<int64_t>(plain.begin(), plain.end()));

  // deepseek_r1's text begins with its BOS: no second one from the tokenizer.
  const auto ds = PromptTemplate::deepseek_r1();
  ASSERT_TRUE(ds.includes_bos());
  auto ds_ids = encode_prompt(with_bos, ds, e);
  auto expected = with_bos.encode(ds.render(e.prompt), false);
  EXPECT_EQ(ds_ids, std::vector<int64_t>(expected.begin(), expected.end()));
  EXPECT_NE(ds_ids[0], 1);

  // Decoding gives back the rendered text.
  std::vector<TokenId> narrow(r1.begin() + 1, r1.end());
  EXPECT_EQ(with_bos.decode(narrow), PromptTemplate::r1_zero().render(e.prompt));
}

TEST(TextDecoder, IdsPastThePaddedVocabularyStandForNoText) {
  // Qwen2.5 has 151936 embedding rows for 151665 tokens: a sampled padding id must decode to
  // nothing (as Hugging Face tokenizers decode it), not stop the run.
  const Tokenizer tok = fixture_tokenizer();
  const auto decoder = make_text_decoder(tok);
  const auto hello = tok.encode("hello world", false);
  const int64_t past = static_cast<int64_t>(tok.id_limit()) + 5;
  ASSERT_FALSE(tok.has_token(static_cast<TokenId>(past)));
  EXPECT_EQ(decoder.token_bytes(past), "");
  EXPECT_EQ(decoder.token_bytes(-1), "");
  EXPECT_EQ(decoder.token_bytes(int64_t{1} << 40), "");  // beyond TokenId's range
  std::vector<int64_t> ids(hello.begin(), hello.end());
  ids.insert(ids.begin() + 1, past);
  ids.push_back(past + 1);
  EXPECT_EQ(decoder.decode(ids), "hello world");
  EXPECT_EQ(decoder.token_bytes(hello[0]), tok.token_bytes(hello[0]));
  // The tokenizer itself stays strict for ids a user gives it.
  EXPECT_THROW(tok.token_bytes(static_cast<TokenId>(past)), Error);
}

TEST(ToRewardExample, CarriesGoldKindMetadataAndCodeTests) {
  Example math = examples(2)[1];
  math.metadata = R"({"solution": "1 + 1 = 2"})";
  auto r = to_reward_example(math);
  EXPECT_EQ(r.prompt, math.prompt);
  EXPECT_EQ(r.gold, "2");
  EXPECT_EQ(r.task, reward::TaskKind::math);
  EXPECT_EQ(r.metadata_json, math.metadata);
  EXPECT_TRUE(r.tests.empty());

  Example humaneval;
  humaneval.kind = TaskKind::code;
  humaneval.tests.test = "def check(candidate):\n    assert candidate(1) == 2\n";
  humaneval.tests.entry_point = "inc";
  r = to_reward_example(humaneval);
  EXPECT_EQ(r.task, reward::TaskKind::code);
  EXPECT_EQ(r.tests, std::vector<std::string>{humaneval.tests.test});
  EXPECT_EQ(r.entry_point, "inc");
  EXPECT_EQ(r.test_setup, "");

  Example mbpp;
  mbpp.kind = TaskKind::code;
  mbpp.tests.asserts = {"assert f(1) == 1", "assert f(2) == 4"};
  mbpp.tests.imports = {"import math", "import re"};
  r = to_reward_example(mbpp);
  EXPECT_EQ(r.tests, mbpp.tests.asserts);
  EXPECT_EQ(r.test_setup, "import math\nimport re\n");
  EXPECT_EQ(r.entry_point, "");

  Example custom;
  custom.kind = TaskKind::custom;
  EXPECT_EQ(to_reward_example(custom).task, reward::TaskKind::custom);
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_sampling_test_" + std::to_string(getpid()));
    remove_tree(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_); }
  fs::path dir_;
};

using DefaultEosIds = TempDir;

TEST_F(DefaultEosIds, UnitesConfigGenerationConfigAndTokenizer) {
  auto config = test::tiny_config();  // eos 2
  EXPECT_EQ(default_eos_ids(dir_, config, nullptr), (std::vector<int64_t>{2}));
  write_file_atomic(dir_ / "generation_config.json", R"({"eos_token_id": [7, 2, 5]})");
  EXPECT_EQ(default_eos_ids(dir_, config, nullptr), (std::vector<int64_t>{2, 5, 7}));
  config.eos_token_ids = {9};
  // The fixture tokenizer's eos_token is <|im_end|> = 2.
  EXPECT_EQ(default_eos_ids(dir_, config, &fixture_tokenizer()), (std::vector<int64_t>{2, 5, 7, 9}));
  write_file_atomic(dir_ / "generation_config.json", R"({"eos_token_id": null})");
  EXPECT_EQ(default_eos_ids(dir_, config, nullptr), (std::vector<int64_t>{9}));
  write_file_atomic(dir_ / "generation_config.json", R"({"eos_token_id": "two"})");
  auto error = test::error_of([&] { default_eos_ids(dir_, config, nullptr); });
  EXPECT_NE(error.find("generation_config.json"), std::string::npos) << error;
  EXPECT_NE(error.find("eos_token_id"), std::string::npos) << error;
}

SamplingOptions sampled_options(int64_t G, int64_t batch, uint64_t seed) {
  SamplingOptions o;
  o.group_size = G;
  o.prompts_per_batch = batch;
  o.settings.sampler.temperature = 1.0;
  o.settings.stop.max_new_tokens = 6;
  o.settings.stop.eos_token_ids = {2};
  o.settings.seed = seed;
  return o;
}

struct RandomModel : ::testing::Test {
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    model = init_model(test::tiny_config(), 7).release();
  }
  static void TearDownTestSuite() { delete model; }
  static Transformer* model;
};
Transformer* RandomModel::model = nullptr;

TEST_F(RandomModel, GroupsInExampleAndSampleOrderWithAlignedScores) {
  RolloutEngine engine(*model, {}, make_text_decoder(fixture_tokenizer()));
  auto runner = echo_runner();
  const auto data = examples(5);
  const auto tmpl = PromptTemplate::r1_zero();
  int64_t last_finished = -1, last_total = -1, calls = 0;
  bool monotone = true;
  auto out = sample_and_score(engine, fixture_tokenizer(), tmpl, data, sampled_options(3, 2, 11), runner,
                              [&](int64_t finished, int64_t total, int64_t) {
                                monotone = monotone && finished >= last_finished;
                                last_finished = finished;
                                last_total = total;
                                ++calls;
                              });
  ASSERT_EQ(out.size(), 5u);
  EXPECT_GT(calls, 0);
  EXPECT_TRUE(monotone);
  EXPECT_EQ(last_total, 15);
  EXPECT_EQ(last_finished, 15);
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].prompt_ids, encode_prompt(fixture_tokenizer(), tmpl, data[i]));
    ASSERT_EQ(out[i].completions.size(), 3u);
    ASSERT_EQ(out[i].scores.size(), 3u);
    for (int64_t j = 0; j < 3; ++j) {
      const auto& c = out[i].completions[j];
      EXPECT_EQ(c.prompt_index, static_cast<int64_t>(i));
      EXPECT_EQ(c.sample_index, j);
      EXPECT_GE(c.tokens.size(), 1u);
      EXPECT_LE(c.tokens.size(), 6u);
      EXPECT_EQ(out[i].scores[j].diagnostics.at("echo"), data[i].prompt + "|" + c.text);
      EXPECT_EQ(out[i].scores[j].total, static_cast<double>(c.tokens.size()));
      std::vector<int64_t> shown = c.tokens;
      if (c.finish_reason == FinishReason::kEos) shown.pop_back();
      EXPECT_EQ(c.text, fixture_tokenizer().decode(std::vector<TokenId>(shown.begin(), shown.end())));
    }
  }
}

std::vector<std::vector<int64_t>> all_tokens(const std::vector<SampledExample>& out) {
  std::vector<std::vector<int64_t>> tokens;
  for (const auto& e : out)
    for (const auto& c : e.completions) tokens.push_back(c.tokens);
  return tokens;
}

TEST_F(RandomModel, SameSeedSameCompletionsAndBatchesDrawDifferentStreams) {
  RolloutEngine engine(*model, {}, make_text_decoder(fixture_tokenizer()));
  auto runner = echo_runner();
  // The same prompt four times, one per batch: each example's place in the set (its random
  // streams, sampling.h) makes them differ.
  std::vector<Example> same(4, examples(1)[0]);
  const auto tmpl = PromptTemplate::r1_zero();
  auto options = sampled_options(2, 1, 5);
  options.settings.stop.max_new_tokens = 8;
  options.settings.stop.eos_token_ids = {};
  auto a = all_tokens(sample_and_score(engine, fixture_tokenizer(), tmpl, same, options, runner));
  auto b = all_tokens(sample_and_score(engine, fixture_tokenizer(), tmpl, same, options, runner));
  EXPECT_EQ(a, b);
  EXPECT_NE(a[0], a[2]);  // example 0 vs example 1, sample 0
  EXPECT_NE(a[0], a[1]);  // two samples of one example
  options.settings.seed = 6;
  auto c = all_tokens(sample_and_score(engine, fixture_tokenizer(), tmpl, same, options, runner));
  EXPECT_NE(a, c);
}

TEST_F(RandomModel, GreedyDoesNotDependOnTheBatching) {
  RolloutEngine engine(*model, {}, make_text_decoder(fixture_tokenizer()));
  auto runner = echo_runner();
  const auto data = examples(3);
  auto options = sampled_options(1, 1, 0);
  options.settings.sampler.temperature = 0;
  auto one = all_tokens(sample_and_score(engine, fixture_tokenizer(), PromptTemplate::chatml(), data, options, runner));
  options.prompts_per_batch = 3;
  auto all = all_tokens(sample_and_score(engine, fixture_tokenizer(), PromptTemplate::chatml(), data, options, runner));
  EXPECT_EQ(one, all);
}

TEST_F(RandomModel, RejectsBadOptions) {
  RolloutEngine engine(*model, {}, make_text_decoder(fixture_tokenizer()));
  auto runner = echo_runner();
  auto options = sampled_options(0, 1, 0);
  auto error = test::error_of(
      [&] { sample_and_score(engine, fixture_tokenizer(), PromptTemplate::r1_zero(), examples(1), options, runner); });
  EXPECT_NE(error.find("group_size"), std::string::npos) << error;
  options = sampled_options(1, 0, 0);
  error = test::error_of(
      [&] { sample_and_score(engine, fixture_tokenizer(), PromptTemplate::r1_zero(), examples(1), options, runner); });
  EXPECT_NE(error.find("prompts_per_batch"), std::string::npos) << error;
  EXPECT_TRUE(
      sample_and_score(engine, fixture_tokenizer(), PromptTemplate::r1_zero(), {}, sampled_options(1, 1, 0), runner)
          .empty());
}

// The chain model writes "ok</answer> more" and then EOS: the template's stop string ends the
// completion at the token that completes it, and the text keeps it.
TEST(SampleAndScore, KeepsTheTemplatesStopStringInTheText) {
  const auto chain = ids_of("ok</answer> more");  // o, k, </, answer, >, Ġmore
  auto model = test::chain_model(chain, 2);
  RolloutEngine engine(*model, {}, make_text_decoder(fixture_tokenizer()));
  auto runner = echo_runner();
  auto options = sampled_options(2, 4, 3);
  options.settings.stop.max_new_tokens = 16;
  auto out = sample_and_score(engine, fixture_tokenizer(), PromptTemplate::r1_zero(), examples(3), options, runner);
  for (const auto& e : out) {
    for (const auto& c : e.completions) {
      EXPECT_EQ(c.text, "ok</answer>");
      EXPECT_EQ(c.finish_reason, FinishReason::kStop);
      EXPECT_EQ(c.tokens, std::vector<int64_t>(chain.begin(), chain.end() - 1));
    }
  }
  // Without the template's stop string the model runs on to its EOS, which the text drops.
  auto plain = PromptTemplate::custom("{prompt}\nAnswer:", {});
  out = sample_and_score(engine, fixture_tokenizer(), plain, examples(1), options, runner);
  const auto& c = out[0].completions[0];
  EXPECT_EQ(c.text, "ok</answer> more");
  EXPECT_EQ(c.finish_reason, FinishReason::kEos);
  EXPECT_EQ(c.tokens.back(), 2);
  EXPECT_EQ(out[0].scores[0].diagnostics.at("echo"), examples(1)[0].prompt + "|ok</answer> more");
  // A stop string of the caller's own applies beside the template's.
  options.settings.stop.stop_strings = {"k<"};
  out = sample_and_score(engine, fixture_tokenizer(), plain, examples(1), options, runner);
  EXPECT_EQ(out[0].completions[0].text, "ok</");
  EXPECT_EQ(out[0].completions[0].finish_reason, FinishReason::kStop);
}

}  // namespace
}  // namespace aha::recipes

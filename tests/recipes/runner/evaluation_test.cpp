// recipes/evaluation.h: majority vote, pass@1 / maj@k / format rate on hand-made completions
// scored through the verifiers, option checks, evaluate() end to end with a model whose
// answer is known (the chain model), and the metrics it reports.
#include "recipes/runner/evaluation.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/json.h"
#include "tests/recipes/runner/recipes_test_util.h"
#include "tests/test_util.h"

namespace aha::recipes {
namespace {

using test::fixture_tokenizer;
using test::ids_of;
using Answers = std::vector<std::optional<std::string>>;

TEST(MajorityVote, LargestGroupOfEquivalentAnswersWins) {
  auto v = majority_vote({"4", "4", "5"});
  ASSERT_TRUE(v.representative);
  EXPECT_EQ(*v.representative, 0u);
  EXPECT_EQ(v.votes, 2u);

  v = majority_vote({"3", "1/2", "0.5", "\\frac{1}{2}"});  // equivalent forms vote together
  EXPECT_EQ(*v.representative, 1u);
  EXPECT_EQ(v.votes, 3u);

  v = majority_vote({"5", "4", "4", "5"});  // tie: the group whose first answer came first
  EXPECT_EQ(*v.representative, 0u);
  EXPECT_EQ(v.votes, 2u);
  v = majority_vote({"4", "5", "5", "4"});
  EXPECT_EQ(*v.representative, 0u);

  v = majority_vote(Answers{std::nullopt, "7", std::nullopt, "8", "8"});  // no answer, no vote
  EXPECT_EQ(*v.representative, 3u);
  EXPECT_EQ(v.votes, 2u);

  v = majority_vote(Answers{std::nullopt, std::nullopt});
  EXPECT_FALSE(v.representative);
  EXPECT_EQ(v.votes, 0u);
  EXPECT_FALSE(majority_vote({}).representative);
}

Example example(const std::string& id, const std::string& gold) {
  Example e;
  e.id = id;
  e.prompt = "question " + id;
  e.gold = gold;
  return e;
}

struct Made {
  std::string text;
  int64_t tokens;
  FinishReason finish = FinishReason::kStop;
};

// The completions, scored by the verifiers evaluate() would use for these options.
std::vector<SampledExample> score(const std::vector<Example>& examples, const std::vector<std::vector<Made>>& made,
                                  const EvalOptions& options) {
  reward::RewardRunner runner(eval_reward_specs(options), 1);
  std::vector<SampledExample> out(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    std::vector<reward::ScoringInput> inputs;
    for (size_t j = 0; j < made[i].size(); ++j) {
      Completion c;
      c.prompt_index = static_cast<int64_t>(i);
      c.sample_index = static_cast<int64_t>(j);
      c.text = made[i][j].text;
      c.tokens.assign(static_cast<size_t>(made[i][j].tokens), 5);
      c.finish_reason = made[i][j].finish;
      out[i].completions.push_back(c);
      inputs.push_back({to_reward_example(examples[i]), {c.text, made[i][j].tokens}});
    }
    out[i].scores = runner.score(std::move(inputs));
  }
  return out;
}

const std::vector<Example> kExamples = {example("a", "4"), example("b", "1/2"), example("c", "7")};
const std::vector<std::vector<Made>> kMade = {
    {{"<think>2+2</think> <answer>4</answer>", 10},
     {"<think>so</think><answer>\\boxed{4}</answer>", 20},
     {"<think>hmm</think> <answer>5</answer>", 30}},
    {{"<think>a</think> <answer>0.5</answer>", 40},
     {"<think>b</think> <answer>3</answer>", 50},
     {"<answer>1/2</answer>", 60}},
    {{"<think>x</think> <answer>3</answer>", 70},
     {"\\boxed{7}", 80, FinishReason::kLength},
     {"<think>y</think> <answer>3</answer> trailing", 90, FinishReason::kEos}}};

EvalOptions k3(PromptTemplate t) {
  EvalOptions o;
  o.prompt_template = std::move(t);
  o.samples = 3;
  o.temperature = 1;
  return o;
}

// r1_zero: only <answer> content counts, and the format reward is measured.
TEST(PassAtK, UnbiasedEstimatorAgainstHandCountedDraws) {
  // 4 samples, 1 correct: of the C(4,2) = 6 pairs, 3 hold the correct one -> 0.5; of the 4
  // triples, 3 do -> 0.75; j = 1 is the share correct, j = 4 whether any is.
  EXPECT_DOUBLE_EQ(unbiased_pass_at(4, 1, 1), 0.25);
  EXPECT_DOUBLE_EQ(unbiased_pass_at(4, 1, 2), 0.5);
  EXPECT_DOUBLE_EQ(unbiased_pass_at(4, 1, 3), 0.75);
  EXPECT_DOUBLE_EQ(unbiased_pass_at(4, 1, 4), 1.0);
  // 5 samples, 2 correct, pairs: C(3,2)/C(5,2) = 3/10 hold none -> 0.7.
  EXPECT_NEAR(unbiased_pass_at(5, 2, 2), 0.7, 1e-12);
  EXPECT_DOUBLE_EQ(unbiased_pass_at(8, 0, 8), 0.0);
  EXPECT_DOUBLE_EQ(unbiased_pass_at(8, 8, 1), 1.0);
  // Large k: C(1000-1, 500) / C(1000, 500) = 1/2 without overflow.
  EXPECT_NEAR(unbiased_pass_at(1000, 1, 500), 0.5, 1e-9);
  EXPECT_THROW(unbiased_pass_at(4, 1, 5), Error);
  EXPECT_THROW(unbiased_pass_at(4, 5, 1), Error);
  EXPECT_EQ(pass_at_ks(1), (std::vector<int64_t>{1}));
  EXPECT_EQ(pass_at_ks(8), (std::vector<int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(pass_at_ks(6), (std::vector<int64_t>{1, 2, 4, 6}));
}

TEST(SummarizeDataset, PassAtOneMajorityAndFormatOnHandMadeCompletions) {
  const auto options = k3(PromptTemplate::r1_zero());
  auto d = summarize_dataset("hand", kExamples, score(kExamples, kMade, options), options);
  ASSERT_EQ(d.records.size(), 3u);
  EXPECT_EQ(d.records[0].correct, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(d.records[0].answers, (Answers{"4", "4", "5"}));
  EXPECT_EQ(d.records[0].majority_answer, "4");
  EXPECT_TRUE(d.records[0].majority_correct);
  EXPECT_EQ(d.records[1].correct, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(d.records[1].majority_answer, "0.5");  // 0.5 and 1/2 vote together
  EXPECT_TRUE(d.records[1].majority_correct);
  EXPECT_EQ(d.records[1].well_formed, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(d.records[2].answers, (Answers{"3", std::nullopt, "3"}));  // \boxed outside <answer>: none
  EXPECT_EQ(d.records[2].correct, (std::vector<bool>{false, false, false}));
  EXPECT_EQ(d.records[2].well_formed, (std::vector<bool>{true, false, false}));
  EXPECT_EQ(d.records[2].majority_answer, "3");
  EXPECT_FALSE(d.records[2].majority_correct);
  EXPECT_EQ(d.records[2].gold, "7");
  EXPECT_EQ(d.records[2].completions[1], "\\boxed{7}");

  const auto& s = d.summary;
  EXPECT_EQ(s.examples, 3);
  EXPECT_EQ(s.samples, 3);
  EXPECT_NEAR(s.pass_at_1, (2.0 / 3 + 2.0 / 3 + 0) / 3, 1e-12);
  EXPECT_NEAR(s.maj_at_k, 2.0 / 3, 1e-12);
  // pass@j over (2, 2, 0) correct of 3: any pair of 3 with 2 right holds one -> (1 + 1 + 0) / 3.
  ASSERT_EQ(s.pass_at.size(), 3u);
  EXPECT_EQ(s.pass_at[0].first, 1);
  EXPECT_NEAR(s.pass_at[0].second, s.pass_at_1, 1e-12);
  EXPECT_EQ(s.pass_at[1].first, 2);
  EXPECT_NEAR(s.pass_at[1].second, 2.0 / 3, 1e-12);
  EXPECT_EQ(s.pass_at[2].first, 3);
  EXPECT_NEAR(s.pass_at[2].second, 2.0 / 3, 1e-12);
  ASSERT_TRUE(s.format_rate);
  EXPECT_NEAR(*s.format_rate, 6.0 / 9, 1e-12);
  EXPECT_NEAR(s.mean_response_tokens, 50.0, 1e-12);
  EXPECT_EQ(s.max_response_tokens, 90);
  EXPECT_NEAR(s.truncated_rate, 1.0 / 9, 1e-12);
  EXPECT_EQ(s.verifier_errors, 0);
}

// By difficulty: examples grouped by a metadata field ("auto" finds "level" before "steps"),
// numbers in numeric order (2 before 10), each group with its own figures; reflection phrases
// counted per completion as whole words.
TEST(SummarizeDataset, FiguresPerDifficultyAndReflectionRate) {
  std::vector<Example> examples = {example("a", "4"), example("b", "5"), example("c", "6")};
  examples[0].metadata = R"({"level": 10, "steps": 1})";
  examples[1].metadata = R"({"level": 2})";
  examples[2].metadata = R"({"level": 10.0})";
  const std::vector<std::vector<Made>> made = {
      {{"<think>2+2=4</think> <answer>4</answer>", 10}, {"<think>wait, let me check</think> <answer>4</answer>", 30}},
      {{"<think>awaiting</think> <answer>5</answer>", 20}, {"<think>no</think> <answer>1</answer>", 40}},
      {{"<think>Wait. Verify</think> <answer>1</answer>", 50}, {"<think>x</think> <answer>1</answer>", 70}}};
  auto options = k3(PromptTemplate::r1_zero());
  options.samples = 2;
  auto d = summarize_dataset("hand", examples, score(examples, made, options), options);
  EXPECT_EQ(d.group_field, "level");
  EXPECT_EQ(d.records[0].reflection_words, (std::vector<int64_t>{0, 2}));  // "wait", "let me"
  EXPECT_EQ(d.records[1].reflection_words, (std::vector<int64_t>{0, 0}));  // "awaiting" is not "wait"
  EXPECT_EQ(d.records[2].reflection_words, (std::vector<int64_t>{2, 0}));
  EXPECT_NEAR(d.summary.reflection_rate, 2.0 / 6, 1e-12);
  EXPECT_NEAR(d.summary.reflection_words_per_completion, 4.0 / 6, 1e-12);
  ASSERT_EQ(d.groups.size(), 2u);
  EXPECT_EQ(d.groups[0].value, "2");
  EXPECT_EQ(d.groups[0].summary.examples, 1);
  EXPECT_NEAR(d.groups[0].summary.pass_at_1, 0.5, 1e-12);
  EXPECT_NEAR(d.groups[0].summary.mean_response_tokens, 30.0, 1e-12);
  EXPECT_EQ(d.groups[1].value, "10");  // 10 and 10.0 are one group
  EXPECT_EQ(d.groups[1].summary.examples, 2);
  EXPECT_NEAR(d.groups[1].summary.pass_at_1, 0.5, 1e-12);  // (2/2 + 0/2) / 2
  EXPECT_NEAR(d.groups[1].summary.reflection_rate, 0.5, 1e-12);
  EXPECT_NEAR(d.groups[1].summary.mean_response_tokens, 40.0, 1e-12);

  EvalResult result;
  result.datasets.push_back(d);
  result.overall = d.summary;
  bool level_10 = false;
  for (const auto& [name, value] : eval_metrics(result))
    if (name == "eval/hand/level_10/accuracy") level_10 = value == d.groups[1].summary.pass_at_1;
  EXPECT_TRUE(level_10);

  options.group_by = "steps";  // only example a has it
  d = summarize_dataset("hand", examples, score(examples, made, options), options);
  ASSERT_EQ(d.groups.size(), 1u);
  EXPECT_EQ(d.groups[0].value, "1");
  options.group_by = "";
  d = summarize_dataset("hand", examples, score(examples, made, options), options);
  EXPECT_TRUE(d.groups.empty());
  EXPECT_TRUE(d.group_field.empty());
}

// With a language reward: a completion whose reasoning is not (almost) all in the target
// language is language-mixed; the rate is their share, per data set and overall.
TEST(SummarizeDataset, LanguageMixRateCountsReasoningsBelowTheThreshold) {
  auto options = k3(PromptTemplate::r1_zero());
  options.language_reward = R"({"name": "lang", "kind": "language_consistency", "options": {"language": "en", "identifier": "script"}})";
  const std::vector<Example> examples = {example("a", "4")};
  const std::vector<std::vector<Made>> made = {{{"<think>two plus two is four</think> <answer>4</answer>", 10},
                                                {"<think>二加二等于四</think> <answer>4</answer>", 10},
                                                {"<think>two plus two 二加二等于四 is four</think> <answer>4</answer>", 10}}};
  auto d = summarize_dataset("lang", examples, score(examples, made, options), options);
  EXPECT_EQ(d.records[0].language_mixed, (std::vector<bool>{false, true, true}));
  ASSERT_TRUE(d.summary.language_mix_rate);
  EXPECT_NEAR(*d.summary.language_mix_rate, 2.0 / 3, 1e-12);
  EvalResult result;
  result.datasets.push_back(d);
  result.overall = d.summary;
  bool found = false;
  for (const auto& [name, value] : eval_metrics(result)) found = found || name == "eval/language_mix_rate";
  EXPECT_TRUE(found);
  // Without it, nothing is measured.
  auto plain = summarize_dataset("hand", kExamples, score(kExamples, kMade, k3(PromptTemplate::r1_zero())),
                                 k3(PromptTemplate::r1_zero()));
  EXPECT_FALSE(plain.summary.language_mix_rate);
  EXPECT_TRUE(plain.records[0].language_mixed.empty());
}

// chatml: a \boxed{} answer counts without the tag; no format rate.
TEST(SummarizeDataset, WithoutTheR1ZeroTemplateABoxedAnswerCounts) {
  const auto options = k3(PromptTemplate::chatml());
  auto d = summarize_dataset("hand", kExamples, score(kExamples, kMade, options), options);
  EXPECT_EQ(d.records[2].answers, (Answers{"3", "7", "3"}));
  EXPECT_EQ(d.records[2].correct, (std::vector<bool>{false, true, false}));
  EXPECT_FALSE(d.records[2].majority_correct);
  EXPECT_TRUE(d.records[2].well_formed.empty());
  EXPECT_NEAR(d.summary.pass_at_1, (2.0 / 3 + 2.0 / 3 + 1.0 / 3) / 3, 1e-12);
  EXPECT_FALSE(d.summary.format_rate);
  // The option overrides the template's default.
  auto tagged = k3(PromptTemplate::chatml());
  tagged.require_answer_tag = true;
  d = summarize_dataset("hand", kExamples, score(kExamples, kMade, tagged), tagged);
  EXPECT_EQ(d.records[2].answers, (Answers{"3", std::nullopt, "3"}));
  EXPECT_NEAR(d.summary.pass_at_1, 4.0 / 9, 1e-12);
}

// Lenient extraction: answers in prose count for the verifier and the vote; a gold that is a
// worked solution is read for its answer.
TEST(SummarizeDataset, LenientExtractionReadsProseAnswersAndWorkedSolutions) {
  const std::vector<Example> examples = {example("s", "Adding, $3 + 4 = 7$, so the total is $7$.")};
  const std::vector<std::vector<Made>> made = {
      {{"so the final answer is 7.", 10}, {"It is $\\frac{14}{2}$", 10}, {"maybe 8", 10}}};
  auto strict = k3(PromptTemplate::chatml());
  auto d = summarize_dataset("s", examples, score(examples, made, strict), strict);
  EXPECT_EQ(d.records[0].answers, (Answers{std::nullopt, std::nullopt, std::nullopt}));
  EXPECT_EQ(d.records[0].correct, (std::vector<bool>{false, false, false}));
  auto lenient = k3(PromptTemplate::chatml());
  lenient.extraction = "lenient";
  d = summarize_dataset("s", examples, score(examples, made, lenient), lenient);
  EXPECT_EQ(d.records[0].gold, "7");
  EXPECT_EQ(d.records[0].answers, (Answers{"7", "\\frac{14}{2}", "8"}));
  EXPECT_EQ(d.records[0].correct, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(d.records[0].majority_answer, "7");  // 7 and 14/2 vote together
  EXPECT_TRUE(d.records[0].majority_correct);
}

class ThrowingReward : public reward::Reward {
 public:
  reward::RewardOutput score(const reward::RewardExample&, const reward::Completion&) const override {
    throw Error("verifier broke");
  }
};

TEST(SummarizeDataset, CountsVerifierFailuresAsWrong) {
  reward::RewardSpec spec;
  spec.name = kCorrectReward;
  spec.kind = "custom";
  reward::RewardRunner runner({spec}, {std::make_shared<ThrowingReward>()}, 1);
  const auto options = k3(PromptTemplate::chatml());
  SampledExample s;
  std::vector<reward::ScoringInput> inputs;
  for (int j = 0; j < 3; ++j) {
    Completion c;
    c.text = "\\boxed{4}";
    c.tokens = {1, 2};
    s.completions.push_back(c);
    inputs.push_back({to_reward_example(kExamples[0]), {c.text, 2}});
  }
  s.scores = runner.score(std::move(inputs));
  auto d = summarize_dataset("x", {kExamples[0]}, {s}, options);
  EXPECT_EQ(d.summary.verifier_errors, 3);
  EXPECT_EQ(d.summary.pass_at_1, 0.0);
  EXPECT_FALSE(d.records[0].majority_correct);  // the majority answer's completion was not verified
  EXPECT_NE(d.records[0].verifier_errors[0].find("verifier broke"), std::string::npos);

  // Scores without the verifier's component are a caller error.
  s.scores.assign(3, reward::ScoredSample{});
  auto error = test::error_of([&] { summarize_dataset("x", {kExamples[0]}, {s}, options); });
  EXPECT_NE(error.find("correct"), std::string::npos) << error;
}

TEST(EvalOptions, ValidateNamesTheOptionAtFault) {
  auto message = [](const EvalOptions& o) { return test::error_of([&] { validate(o); }); };
  EvalOptions o;
  EXPECT_EQ(message(o), "");
  o.samples = 0;
  EXPECT_NE(message(o).find("samples"), std::string::npos);
  o = EvalOptions();
  o.samples = 4;  // temperature 0
  EXPECT_NE(message(o).find("temperature > 0"), std::string::npos) << message(o);
  o.temperature = 0.6;
  EXPECT_EQ(message(o), "");
  o.top_p = 0;
  EXPECT_NE(message(o).find("top_p"), std::string::npos);
  o = EvalOptions();
  o.max_new_tokens = 0;
  EXPECT_NE(message(o).find("max_new_tokens"), std::string::npos);
  o = EvalOptions();
  o.prompts_per_batch = 0;
  EXPECT_NE(message(o).find("prompts_per_batch"), std::string::npos);
  o = EvalOptions();
  o.correctness_reward = "math_accuracy,format";
  EXPECT_NE(message(o).find("exactly one"), std::string::npos) << message(o);
  o.correctness_reward = "no_such_reward";
  EXPECT_NE(message(o).find("no_such_reward"), std::string::npos) << message(o);
  o.correctness_reward = R"([{"name": "acc", "kind": "math_accuracy", "options": {"bogus": 1}}])";
  EXPECT_NE(message(o).find("bogus"), std::string::npos) << message(o);
}

TEST(EvalOptions, RewardSpecsFollowTheTemplate) {
  EvalOptions o;  // r1_zero
  auto specs = eval_reward_specs(o);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "correct");
  EXPECT_EQ(specs[0].kind, "math_accuracy");
  EXPECT_EQ(json::parse(specs[0].options_json, "o")["require_answer_tag"].GetBool(), true);
  EXPECT_EQ(specs[1].name, "format");
  EXPECT_EQ(specs[1].weight, 0.0);
  o.prompt_template = PromptTemplate::chatml();
  specs = eval_reward_specs(o);
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(json::parse(specs[0].options_json, "o")["require_answer_tag"].GetBool(), false);
  // A spec that sets the option keeps it.
  o.correctness_reward = R"([{"name": "acc", "kind": "math_accuracy", "options": {"require_answer_tag": true}}])";
  specs = eval_reward_specs(o);
  EXPECT_EQ(json::parse(specs[0].options_json, "o")["require_answer_tag"].GetBool(), true);
}

TEST(EvalOptions, ExtractionReachesTheVerifierUnlessItsSpecSetsIt) {
  EvalOptions o;
  EXPECT_FALSE(json::parse(eval_reward_specs(o)[0].options_json, "o").HasMember("extraction"));  // strict
  o.extraction = "lenient";
  EXPECT_STREQ(json::parse(eval_reward_specs(o)[0].options_json, "o")["extraction"].GetString(), "lenient");
  o.correctness_reward = R"([{"name": "acc", "kind": "math_accuracy", "options": {"extraction": "strict"}}])";
  EXPECT_STREQ(json::parse(eval_reward_specs(o)[0].options_json, "o")["extraction"].GetString(), "strict");
  o.extraction = "loose";
  EXPECT_THROW(validate(o), Error);
}

// A model that answers " \boxed{4}" to everything: its accuracy is the share of golds equal to 4.
struct KnownAnswerModel : ::testing::Test {
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    model = test::chain_model(ids_of(" \\boxed{4}"), 2).release();
  }
  static void TearDownTestSuite() { delete model; }
  static Transformer* model;

  EvalOptions options() const {
    EvalOptions o;
    o.prompt_template = PromptTemplate::custom("{prompt}\nAnswer:", {});
    o.eos_token_ids = {2};
    o.max_new_tokens = 16;
    o.reward_threads = 1;
    return o;
  }
};
Transformer* KnownAnswerModel::model = nullptr;

TEST_F(KnownAnswerModel, EvaluateEndToEnd) {
  RolloutEngine engine(*model, {}, make_text_decoder(fixture_tokenizer()));
  std::vector<EvalDataset> data = {{"a", {example("1", "4"), example("2", "5")}},
                                   {"b", {example("3", "4.0"), example("4", "#### 4")}}};
  auto o = options();
  o.samples = 2;
  o.temperature = 1.0;
  o.prompts_per_batch = 3;  // a batch spans both data sets
  auto r = evaluate(engine, fixture_tokenizer(), data, o);
  ASSERT_EQ(r.datasets.size(), 2u);
  EXPECT_EQ(r.datasets[0].name, "a");
  EXPECT_EQ(r.datasets[0].summary.examples, 2);
  EXPECT_DOUBLE_EQ(r.datasets[0].summary.pass_at_1, 0.5);
  EXPECT_DOUBLE_EQ(r.datasets[0].summary.maj_at_k, 0.5);
  EXPECT_DOUBLE_EQ(r.datasets[1].summary.pass_at_1, 1.0);
  EXPECT_DOUBLE_EQ(r.overall.pass_at_1, 0.75);
  EXPECT_DOUBLE_EQ(r.overall.maj_at_k, 0.75);
  EXPECT_DOUBLE_EQ(r.overall.mean_response_tokens, 9.0);  // 8 tokens and the EOS
  EXPECT_EQ(r.overall.truncated_rate, 0.0);
  EXPECT_FALSE(r.overall.format_rate);
  const auto& rec = r.datasets[1].records[1];
  EXPECT_EQ(rec.id, "4");
  EXPECT_EQ(rec.gold, "4");  // GSM8K-style gold, extracted
  EXPECT_EQ(rec.completions, (std::vector<std::string>{" \\boxed{4}", " \\boxed{4}"}));
  EXPECT_EQ(rec.answers, (Answers{"4", "4"}));
  EXPECT_EQ(rec.majority_answer, "4");

  auto metrics = eval_metrics(r);
  std::map<std::string, double> m(metrics.begin(), metrics.end());
  EXPECT_DOUBLE_EQ(m.at("eval/accuracy"), 0.75);
  EXPECT_DOUBLE_EQ(m.at("eval/a/accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("eval/b/accuracy"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("eval/b/maj_accuracy"), 1.0);
  EXPECT_EQ(m.count("eval/format_rate"), 0u);

  // Cut short by max_new_tokens: no answer, all truncated.
  o.max_new_tokens = 3;
  r = evaluate(engine, fixture_tokenizer(), data, o);
  EXPECT_EQ(r.overall.pass_at_1, 0.0);
  EXPECT_EQ(r.overall.truncated_rate, 1.0);
  EXPECT_EQ(r.overall.max_response_tokens, 3);
  EXPECT_FALSE(r.datasets[0].records[0].majority_answer);
}

TEST_F(KnownAnswerModel, R1ZeroTemplateRequiresTheAnswerTagAndMeasuresFormat) {
  RolloutEngine engine(*model, {}, make_text_decoder(fixture_tokenizer()));
  auto o = options();
  o.prompt_template = PromptTemplate::r1_zero();
  auto r = evaluate(engine, fixture_tokenizer(), {{"a", {example("1", "4")}}}, o);
  EXPECT_EQ(r.overall.pass_at_1, 0.0);  // \boxed{4} is not inside <answer>
  ASSERT_TRUE(r.overall.format_rate);
  EXPECT_EQ(*r.overall.format_rate, 0.0);
  o.require_answer_tag = false;
  r = evaluate(engine, fixture_tokenizer(), {{"a", {example("1", "4")}}}, o);
  EXPECT_EQ(r.overall.pass_at_1, 1.0);
}

TEST_F(KnownAnswerModel, RejectsBadDataSets) {
  RolloutEngine engine(*model, {}, make_text_decoder(fixture_tokenizer()));
  auto o = options();
  auto error = test::error_of([&] { evaluate(engine, fixture_tokenizer(), {}, o); });
  EXPECT_NE(error.find("no data sets"), std::string::npos) << error;
  error = test::error_of([&] {
    evaluate(engine, fixture_tokenizer(), {{"a", {example("1", "4")}}, {"a", {example("2", "4")}}}, o);
  });
  EXPECT_NE(error.find("'a'"), std::string::npos) << error;
  error = test::error_of([&] { evaluate(engine, fixture_tokenizer(), {{"empty", {}}}, o); });
  EXPECT_NE(error.find("no examples"), std::string::npos) << error;
  o.samples = 2;
  error = test::error_of([&] { evaluate(engine, fixture_tokenizer(), {{"a", {example("1", "4")}}}, o); });
  EXPECT_NE(error.find("temperature"), std::string::npos) << error;
}

}  // namespace
}  // namespace aha::recipes

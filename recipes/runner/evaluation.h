// Evaluation: how often a policy's completions are right, with the verifiers training uses.
// Used by `aha eval` and by the stage runner (before the first step, every N steps, at the end).
//
// For each example, k completions are sampled (recipes/sampling.h) and scored by the
// verifier, a reward spec naming one reward (math_accuracy by default) and, with an R1-Zero
// template, the format reward. Then, per data set and over all of them:
//   pass@1        mean over examples of the share of its k completions that are correct; a
//                 completion is correct when the verifier gives it full marks (value >= 1).
//   pass@j        for j = 1, 2, 4, ... up to k (and k itself): the chance that at least one of
//                 j completions drawn without replacement from an example's k is correct, by
//                 the unbiased estimator of Chen et al. (2021), 1 - C(k-c, j) / C(k, j) for c
//                 correct, averaged over examples. pass@1 is the mean share correct; pass@k is
//                 the share of examples with any correct completion. Whether RL raised pass@1
//                 only, or pass@k at large k too, is the comparison of these before and after.
//   maj@k         share of examples whose majority answer is correct. Each completion's final
//                 answer is extracted as math_accuracy does (reward/math_answer.h: the <answer>
//                 tag's content when require_answer_tag, else also the last \boxed{}; with
//                 extraction "lenient" also a final-answer phrase, the last math or number).
//                 Answers join groups in sample order: an answer joins the first group whose
//                 first answer is equivalent to it (reward/math_equivalence.h, either way
//                 round), else starts a new group. The largest group wins; a tie goes to the
//                 group whose first answer came first. The example counts as right when that
//                 first answer's completion is correct. Completions without an answer do not
//                 vote; an example with no answer at all counts as wrong.
//   format rate   (r1_zero, r1_zero_think) share of completions the format reward passes
//                 (with think_in_prompt when the template opens <think> itself):
//                 <think>...</think><answer>...</answer> and nothing after.
//   response length (tokens, EOS included) mean and max, and the share truncated (stopped by
//                 max_new_tokens).
// Overall figures weigh every example equally, whichever data set it is in.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "datasets/example.h"
#include "datasets/prompt_template.h"
#include "recipes/runner/sampling.h"
#include "reward/reward_registry.h"

namespace aha::recipes {

struct EvalDataset {
  std::string name;  // in metric names: eval/<name>/accuracy
  std::vector<Example> examples;
};

struct EvalOptions {
  PromptTemplate prompt_template = PromptTemplate::r1_zero();
  int64_t samples = 1;       // k, completions per example
  double temperature = 0.0;  // 0: greedy, which allows only samples = 1
  double top_p = 1.0;
  int64_t top_k = 0;  // 0: off
  int64_t max_new_tokens = 1024;
  uint64_t seed = 0;
  int64_t prompts_per_batch = 64;
  std::vector<int64_t> eos_token_ids;  // e.g. default_eos_ids(model_dir, ...)
  // The verifier: a reward spec (reward/reward_registry.h) naming exactly one reward.
  std::string correctness_reward = "math_accuracy";
  // Only an <answer> tag's content is the final answer: for the majority vote, and for a
  // math_accuracy verifier whose spec does not set require_answer_tag itself.
  // Unset: true with an R1-Zero template (r1_zero, r1_zero_think), else false.
  std::optional<bool> require_answer_tag;
  // How final answers are found (reward/math_answer.h): "strict" or "lenient", for a
  // math_accuracy verifier whose spec does not set "extraction" itself, for the majority vote
  // and for reading each record's gold. Unset: strict.
  std::optional<std::string> extraction;
  size_t reward_threads = 0;  // 0: one per CPU
  // A language_consistency reward spec (one JSON object, reward/reward_registry.h): each
  // completion whose score is below language_mix_threshold counts as language-mixed, and
  // eval/language_mix_rate is their share. Empty: not measured.
  std::string language_reward;
  double language_mix_threshold = 0.95;
};

// Throws aha::Error naming the option at fault: samples < 1, samples > 1 with temperature 0,
// temperature < 0, top_p outside (0, 1], max_new_tokens < 1, prompts_per_batch < 1, a
// verifier spec that does not name exactly one reward, an extraction other than strict or
// lenient.
void validate(const EvalOptions& options);

bool requires_answer_tag(const EvalOptions& options);

// The rewards evaluate() scores with: the verifier named "correct" and, with the r1_zero
// template, the format reward named "format" (weight 0).
std::vector<reward::RewardSpec> eval_reward_specs(const EvalOptions& options);
inline constexpr const char* kCorrectReward = "correct";
inline constexpr const char* kFormatReward = "format";
inline constexpr const char* kLanguageReward = "language";

// One example's evaluation.
struct EvalRecord {
  std::string id, prompt;
  std::string gold;                                 // the reference final answer
  std::vector<std::string> completions;             // k texts
  std::vector<std::optional<std::string>> answers;  // each one's final answer, if any
  std::vector<bool> correct;
  std::vector<bool> well_formed;  // r1_zero only, else empty
  std::vector<bool> language_mixed;  // with EvalOptions::language_reward only, else empty
  std::vector<int64_t> response_tokens;
  std::vector<FinishReason> finish_reasons;
  std::vector<std::string> verifier_errors;  // "" or why the verifier failed (timeout, ...)
  std::optional<std::string> majority_answer;
  bool majority_correct = false;
};

struct EvalSummary {
  int64_t examples = 0;
  int64_t samples = 0;  // k
  double pass_at_1 = 0, maj_at_k = 0;
  std::vector<std::pair<int64_t, double>> pass_at;  // (j, pass@j) for j = 1, 2, 4, ..., k
  std::optional<double> format_rate;  // r1_zero only
  std::optional<double> language_mix_rate;  // with EvalOptions::language_reward only
  double mean_response_tokens = 0;
  int64_t max_response_tokens = 0;
  double truncated_rate = 0;
  int64_t verifier_errors = 0;  // completions whose verifier failed (scored 0)
};

struct DatasetEval {
  std::string name;
  EvalSummary summary;
  std::vector<EvalRecord> records;
};

struct EvalResult {
  EvalSummary overall;
  std::vector<DatasetEval> datasets;
  double seconds = 0;  // sampling and scoring
};

// The unbiased pass@j of one example with `correct` of `samples` completions right (above);
// j must be in [1, samples].
double unbiased_pass_at(int64_t samples, int64_t correct, int64_t j);
// The j of pass@j that evaluation reports for k samples: 1, 2, 4, ... below k, and k.
std::vector<int64_t> pass_at_ks(int64_t samples);

// The majority vote described above over one example's answers: the index of the winning
// group's first answer and the group's size; no index when no completion has an answer.
struct MajorityVote {
  std::optional<size_t> representative;
  size_t votes = 0;
};
MajorityVote majority_vote(const std::vector<std::optional<std::string>>& answers);

// Records and summary of one data set from its sampled completions, scored with
// eval_reward_specs(options) (so their scores hold the "correct" and "format" components).
DatasetEval summarize_dataset(const std::string& name, const std::vector<Example>& examples,
                              const std::vector<SampledExample>& sampled, const EvalOptions& options);

// The summary of several data sets' records together.
EvalSummary summarize_overall(const std::vector<DatasetEval>& datasets, const EvalOptions& options);

// Samples, scores and summarises every data set (one sample_and_score call over all of them,
// in order). Data set names must be unique and non-empty.
EvalResult evaluate(RolloutEngine& engine, const Tokenizer& tokenizer, const std::vector<EvalDataset>& datasets,
                    const EvalOptions& options, const ProgressFn& progress = {});

// Metrics for the run store: eval/accuracy (pass@1), eval/pass@<j> for j > 1 (with k > 1
// samples), eval/maj_accuracy (maj@k),
// eval/format_rate (r1_zero), eval/language_mix_rate (with language_reward), eval/mean_response_tokens, eval/truncated_rate, and the same
// per data set as eval/<name>/accuracy, ...
std::vector<std::pair<std::string, double>> eval_metrics(const EvalResult& result);

}  // namespace aha::recipes

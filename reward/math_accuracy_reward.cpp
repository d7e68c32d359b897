// math_accuracy: 1 when the completion's final answer equals the example's gold answer, else 0.
// Extraction rules (strict / lenient): reward/math_answer.h; equality rules:
// reward/math_equivalence.h. Options: require_answer_tag (false), extraction ("strict"),
// relative_precision (1e-6; 0 for exact decimals only).
#include "core/error.h"
#include "reward/builtin_rewards.h"
#include "reward/math_answer.h"
#include "reward/math_equivalence.h"

namespace aha::reward {
namespace {

class MathAccuracyReward : public Reward {
 public:
  MathAccuracyReward(bool require_answer_tag, ExtractionMode extraction, MathEquivalenceOptions equivalence)
      : require_answer_tag_(require_answer_tag), extraction_(extraction), equivalence_(equivalence) {}

  RewardOutput score(const RewardExample& example, const Completion& completion) const override {
    RewardOutput out;
    std::string gold = extract_gold_answer(example.gold, extraction_);
    std::optional<std::string> answer;
    if (require_answer_tag_) {
      answer = extract_answer_tag(completion.text);
      if (answer) answer = extract_final_answer(*answer, extraction_).value_or(*answer);
    } else {
      answer = extract_final_answer(completion.text, extraction_);
    }
    if (!answer) {
      out.diagnostic =
          require_answer_tag_ ? "no <answer> tag"
          : extraction_ == ExtractionMode::strict
              ? "no final answer (no <answer> tag or \\boxed{})"
              : "no final answer (no <answer> tag, \\boxed{}, final-answer phrase, math or number)";
      return out;
    }
    MathVerdict verdict = check_math_answer(*answer, gold, equivalence_);
    out.value = verdict.equal ? 1.0 : 0.0;
    out.diagnostic = "answer '" + clip_for_diagnostic(*answer) + "' gold '" + clip_for_diagnostic(gold) + "'";
    if (!verdict.refusal.empty()) out.diagnostic += " (refused: " + verdict.refusal + ")";
    return out;
  }

 private:
  bool require_answer_tag_;
  ExtractionMode extraction_;
  MathEquivalenceOptions equivalence_;
};

}  // namespace

std::string clip_for_diagnostic(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
  return std::string(text.substr(0, cut)) + "...";
}

std::unique_ptr<Reward> make_math_accuracy_reward(const json::ObjectReader& options) {
  options.reject_unknown({"require_answer_tag", "extraction", "relative_precision"});
  ExtractionMode extraction =
      parse_extraction_mode(options.get_string("extraction", "strict"), "math_accuracy option \"extraction\"");
  MathEquivalenceOptions equivalence;
  equivalence.relative_precision = options.get_double("relative_precision", equivalence.relative_precision);
  if (!(equivalence.relative_precision >= 0 && equivalence.relative_precision < 1))
    throw Error("math_accuracy option \"relative_precision\" must be in [0, 1), got " +
                std::to_string(equivalence.relative_precision));
  return std::make_unique<MathAccuracyReward>(options.get_bool("require_answer_tag", false), extraction,
                                              equivalence);
}

}  // namespace aha::reward

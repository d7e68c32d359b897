// math_accuracy: 1 when the completion's final answer equals the example's gold answer, else 0.
// Extraction rules: reward/math_answer.h; equality rules: reward/math_equivalence.h.
#include "reward/builtin_rewards.h"
#include "reward/math_answer.h"
#include "reward/math_equivalence.h"

namespace aha::reward {
namespace {

class MathAccuracyReward : public Reward {
 public:
  explicit MathAccuracyReward(bool require_answer_tag) : require_answer_tag_(require_answer_tag) {}

  RewardOutput score(const RewardExample& example, const Completion& completion) const override {
    RewardOutput out;
    std::string gold = extract_gold_answer(example.gold);
    std::optional<std::string> answer;
    if (require_answer_tag_) {
      answer = extract_answer_tag(completion.text);
      if (answer) {
        if (auto boxed = extract_last_boxed(*answer)) answer = std::move(boxed);
      }
    } else {
      answer = extract_final_answer(completion.text);
    }
    if (!answer) {
      out.diagnostic =
          require_answer_tag_ ? "no <answer> tag" : "no final answer (no <answer> tag or \\boxed{})";
      return out;
    }
    MathVerdict verdict = check_math_answer(*answer, gold);
    out.value = verdict.equal ? 1.0 : 0.0;
    out.diagnostic = "answer '" + clip_for_diagnostic(*answer) + "' gold '" + clip_for_diagnostic(gold) + "'";
    if (!verdict.refusal.empty()) out.diagnostic += " (refused: " + verdict.refusal + ")";
    return out;
  }

 private:
  bool require_answer_tag_;
};

}  // namespace

std::string clip_for_diagnostic(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
  return std::string(text.substr(0, cut)) + "...";
}

std::unique_ptr<Reward> make_math_accuracy_reward(const json::ObjectReader& options) {
  options.reject_unknown({"require_answer_tag"});
  return std::make_unique<MathAccuracyReward>(options.get_bool("require_answer_tag", false));
}

}  // namespace aha::reward

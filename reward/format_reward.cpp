// format: the R1-Zero structure. A completion passes when it is exactly one
// <think>...</think> block followed (after optional whitespace) by one non-empty
// <answer>...</answer> block with nothing but whitespace after it. With think_in_prompt the
// prompt already ends in "<think>", so the completion starts inside the reasoning.
// Components (each 0 or 1): think (one well-formed think block), answer (one well-formed,
// non-empty answer block), order (the answer block directly follows the think block),
// nothing_after. The value is 1 when all hold, else 0; with partial_credit, their mean.
#include <string>

#include "reward/builtin_rewards.h"

namespace aha::reward {
namespace {

size_t count(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string_view::npos;
       pos = text.find(needle, pos + needle.size()))
    ++n;
  return n;
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

class FormatReward : public Reward {
 public:
  FormatReward(bool partial_credit, bool think_in_prompt)
      : partial_credit_(partial_credit), think_in_prompt_(think_in_prompt) {}

  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    std::string text = think_in_prompt_ ? "<think>" + completion.text : completion.text;
    std::string_view t = text;
    size_t lead = t.find_first_not_of(" \t\r\n");
    t = lead == std::string_view::npos ? std::string_view() : t.substr(lead);

    size_t think_open = t.find("<think>"), think_close = t.find("</think>");
    size_t answer_open = t.find("<answer>"), answer_close = t.find("</answer>");
    constexpr auto npos = std::string_view::npos;
    bool think = count(t, "<think>") == 1 && count(t, "</think>") == 1 && think_open == 0 &&
                 think_close != npos && think_close > think_open;
    bool answer = count(t, "<answer>") == 1 && count(t, "</answer>") == 1 && answer_open != npos &&
                  answer_close != npos && answer_close > answer_open &&
                  !blank(t.substr(answer_open + 8, answer_close - answer_open - 8));
    bool order = think && answer && answer_open > think_close &&
                 blank(t.substr(think_close + 8, answer_open - think_close - 8));
    bool nothing_after = answer && blank(t.substr(answer_close + 9));

    RewardOutput out;
    out.components = {
        {"think", think}, {"answer", answer}, {"order", order}, {"nothing_after", nothing_after}};
    bool all = think && answer && order && nothing_after;
    out.value = all ? 1.0 : partial_credit_ ? (think + answer + order + nothing_after) / 4.0 : 0.0;
    if (all)
      out.diagnostic = "ok";
    else if (!think)
      out.diagnostic = "not exactly one <think>...</think> block at the start";
    else if (!answer)
      out.diagnostic = "not exactly one non-empty <answer>...</answer> block";
    else if (!order)
      out.diagnostic = "the answer block does not directly follow the think block";
    else
      out.diagnostic = "text after </answer>";
    return out;
  }

 private:
  bool partial_credit_;
  bool think_in_prompt_;
};

}  // namespace

std::unique_ptr<Reward> make_format_reward(const json::ObjectReader& options) {
  options.reject_unknown({"partial_credit", "think_in_prompt"});
  return std::make_unique<FormatReward>(options.get_bool("partial_credit", false),
                                        options.get_bool("think_in_prompt", false));
}

}  // namespace aha::reward

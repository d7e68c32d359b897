// length: DAPO's overlong penalty (Yu et al. 2025, eq. 13). With L the completion's length,
// Lmax = max_length and Lc = buffer:
//   0                        when L <= Lmax - Lc
//   ((Lmax - Lc) - L) / Lc   when Lmax - Lc < L <= Lmax   (from 0 down to -1)
//   -1                       when L > Lmax
// L counts tokens (Completion::num_tokens, which must then be known) or Unicode characters.
#include "core/error.h"
#include "reward/builtin_rewards.h"

namespace aha::reward {
namespace {

int64_t count_code_points(std::string_view text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

class LengthReward : public Reward {
 public:
  LengthReward(int64_t max_length, int64_t buffer, bool tokens)
      : max_(max_length), buffer_(buffer), tokens_(tokens) {}

  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    if (tokens_ && completion.num_tokens < 0) {
      throw Error(
          "length: the completion's token count is unknown (give num_tokens, or set unit \"characters\")");
    }
    int64_t length = tokens_ ? completion.num_tokens : count_code_points(completion.text);
    RewardOutput out;
    int64_t soft_start = max_ - buffer_;
    if (length <= soft_start)
      out.value = 0;
    else if (length <= max_)
      out.value = static_cast<double>(soft_start - length) / static_cast<double>(buffer_);
    else
      out.value = -1;
    out.diagnostic = std::to_string(length) + (tokens_ ? " tokens" : " characters");
    return out;
  }

 private:
  int64_t max_, buffer_;
  bool tokens_;
};

}  // namespace

std::unique_ptr<Reward> make_length_reward(const json::ObjectReader& options) {
  options.reject_unknown({"max_length", "buffer", "unit"});
  int64_t max_length = options.get_int("max_length");
  int64_t buffer = options.get_int("buffer");
  std::string unit = options.get_string("unit", "tokens");
  require(max_length > 0, options.context() + ": option 'max_length' must be positive");
  require(
      buffer > 0 && buffer <= max_length,
      options.context() + ": option 'buffer' must be in 1..max_length (" + std::to_string(max_length) + ")");
  require(unit == "tokens" || unit == "characters",
          options.context() + ": option 'unit' must be \"tokens\" or \"characters\", got \"" + unit + "\"");
  return std::make_unique<LengthReward>(max_length, buffer, unit == "tokens");
}

}  // namespace aha::reward

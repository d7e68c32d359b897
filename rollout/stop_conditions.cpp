#include "rollout/stop_conditions.h"

#include <algorithm>

#include "core/error.h"

namespace aha {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos: return "eos";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kNone: break;
  }
  return "none";
}

StopChecker::StopChecker(const StopSettings& settings, const TokenBytesFn& token_bytes)
    : settings_(&settings), token_bytes_(&token_bytes) {
  require(settings.max_new_tokens >= 1, "generation: max_new_tokens must be >= 1, got " +
                                            std::to_string(settings.max_new_tokens));
  for (const auto& s : settings.stop_strings) {
    require(!s.empty(), "generation: stop strings must not be empty");
    longest_stop_ = std::max(longest_stop_, s.size());
  }
  require(settings.stop_strings.empty() || static_cast<bool>(token_bytes),
          "generation: stop strings need a tokenizer to decode the generated tokens");
}

FinishReason StopChecker::push(int64_t token) {
  ++generated_;
  if (!settings_->ignore_eos) {
    const auto& eos = settings_->eos_token_ids;
    if (std::find(eos.begin(), eos.end(), token) != eos.end()) return FinishReason::kEos;
  }
  if (longest_stop_ > 0) {
    const size_t old = tail_.size();
    const std::string bytes = (*token_bytes_)(token);
    tail_ += bytes;
    for (const auto& stop : settings_->stop_strings) {
      // Only matches that end inside the new bytes are new; earlier ones were checked before.
      const size_t from = old >= stop.size() - 1 ? old - (stop.size() - 1) : 0;
      if (!bytes.empty() && tail_.find(stop, from) != std::string::npos) {
        matched_ = stop;
        return FinishReason::kStop;
      }
    }
    if (tail_.size() > longest_stop_) tail_.erase(0, tail_.size() - (longest_stop_ - 1));
  }
  if (generated_ >= settings_->max_new_tokens) return FinishReason::kLength;
  return FinishReason::kNone;
}

}  // namespace aha

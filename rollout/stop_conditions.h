// When one sequence stops: an end-of-sequence id, a stop string in the generated text, or the
// token budget. One StopChecker per sequence, fed each new token in order.
//
// Stop strings are matched on the bytes the generated tokens stand for (the concatenation of
// each token's bytes is the decoded text, see policy/tokenizer/tokenizer.h), so a stop string split
// across several tokens, or ending inside a token, is found at the token that completes it.
// The prompt's text never matches. The tokens kept are those up to and including the one
// that completes the stop string or is the EOS id (the learner scores exactly these).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace aha {

enum class FinishReason { kNone, kEos, kStop, kLength };
const char* finish_reason_name(FinishReason reason);  // "eos", "stop", "length", "none"

struct StopSettings {
  std::vector<int64_t> eos_token_ids;  // any one of them ends a sequence
  std::vector<std::string> stop_strings;
  int64_t max_new_tokens = 256;
  bool ignore_eos = false;  // for benchmarks: run to max_new_tokens
};

// The bytes one token id stands for; needed only when there are stop strings.
using TokenBytesFn = std::function<std::string(int64_t)>;

class StopChecker {
 public:
  StopChecker(const StopSettings& settings, const TokenBytesFn& token_bytes);
  // Feeds the next generated token; returns the reason the sequence ends with it, or kNone.
  FinishReason push(int64_t token);
  int64_t generated() const { return generated_; }
  // The stop string that ended the sequence (when push returned kStop).
  const std::string& matched_stop() const { return matched_; }

 private:
  const StopSettings* settings_;
  const TokenBytesFn* token_bytes_;
  size_t longest_stop_ = 0;
  std::string tail_;  // the last bytes of the generated text, enough to hold a stop string
  std::string matched_;
  int64_t generated_ = 0;
};

}  // namespace aha

#include "policy/tokenizer/tokenizer_pre_tokenizer.h"

namespace aha {

PreTokenizer::PreTokenizer(const std::vector<PreTokenizerStep>& steps, const std::string& where) {
  for (size_t i = 0; i < steps.size(); ++i) {
    const PreTokenizerStep& s = steps[i];
    std::string at = where + ": pre_tokenizer step " + std::to_string(i);
    Step step;
    if (s.kind == PreTokenizerStep::Kind::kSplit) {
      step.regex = std::make_unique<SplitRegex>(s.pattern, at + " (Split)");
    } else {
      step.add_prefix_space = s.add_prefix_space;
      if (s.use_regex) step.regex = std::make_unique<SplitRegex>(kGpt2SplitPattern, at + " (ByteLevel)");
    }
    steps_.push_back(std::move(step));
  }
}

}  // namespace aha

#include "recipes/runner/sft_data.h"

#include <algorithm>

#include "core/error.h"

namespace aha::recipes {

policy::SftSequence tokenize_conversation(const Tokenizer& tokenizer, const ChatRendering& rendering,
                                          const std::string& where) {
  policy::SftSequence out;
  std::string prefix;
  for (const auto& piece : rendering.pieces) {
    prefix += piece.text;
    const auto ids = tokenizer.encode(prefix, /*add_special_tokens=*/!rendering.includes_bos);
    if (ids.size() < out.ids.size() || !std::equal(out.ids.begin(), out.ids.end(), ids.begin()))
      throw Error(where + ": the tokenizer merges tokens across the boundary before \"" + piece.text.substr(0, 40) +
                  "\", so the trained span cannot be found exactly");
    for (size_t i = out.ids.size(); i < ids.size(); ++i) {
      out.ids.push_back(ids[i]);
      out.trained.push_back(piece.trained ? 1 : 0);
    }
  }
  return out;
}

std::vector<policy::SftSequence> load_sft_examples(const std::vector<std::filesystem::path>& files,
                                                   const ChatRenderer& renderer, const Tokenizer& tokenizer,
                                                   int64_t max_length, BadExamplePolicy policy, ChatDataStats* stats) {
  std::vector<policy::SftSequence> out;
  ChatDataStats local;
  for (const auto& file : files) {
    for (const auto& example : load_chat_jsonl(file, policy, &local)) {
      auto seq = tokenize_conversation(tokenizer, renderer.render(example), example.where);
      if (static_cast<int64_t>(seq.ids.size()) > max_length) {
        if (policy == BadExamplePolicy::kError)
          throw Error(example.where + ": the example has " + std::to_string(seq.ids.size()) +
                      " tokens in template " + renderer.template_name() + ", more than max_length " +
                      std::to_string(max_length) + " (raise max_length, or drop such examples with "
                      "\"on_bad_example\": \"drop\")");
        ++local.dropped["too_long"];
        --local.kept;
        continue;
      }
      if (seq.ids.size() < 2 || std::find(seq.trained.begin() + 1, seq.trained.end(), 1) == seq.trained.end())
        throw Error(example.where + ": no assistant token is trained in template " + renderer.template_name());
      out.push_back(std::move(seq));
    }
  }
  if (stats) stats->add(local);
  return out;
}

}  // namespace aha::recipes

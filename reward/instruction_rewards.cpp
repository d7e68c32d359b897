// Verifiable instruction rewards (IFEval-style rules) for the non-reasoning side of a recipe:
// each is 1 when the final answer (reward/instruction_text.h: after </think>, without the
// <answer> tags) follows the instruction, else 0. An empty final answer follows none of them: a
// model that never answers must not earn an instruction reward for its silence.
//
//   max_words         at most max_words words (instruction_text.h's count_words, IFEval's \w+)
//   include_keywords  every keyword appears as a whole word (not inside another word: "cat" is
//                     not in "category"); a keyword starting or ending in Han/Kana/Hangul needs
//                     no boundary on that side (those scripts have no spaces). Case-insensitive
//                     by Unicode simple case mapping unless case_sensitive. With partial_credit
//                     the value is the share of keywords found.
//   json_keys         the answer is one JSON object (RapidJSON, strict RFC 8259) holding every
//                     key of `keys` at its top level; with allow_code_fence (default) one
//                     ```json ... ``` (or bare ```) fence around the whole answer is accepted,
//                     nothing outside it. Parsed iteratively, so deep nesting cannot overflow the
//                     stack.
//   lowercase         no character whose simple lower-case mapping differs from itself, and at
//                     least one letter (a reply of digits and symbols is not "all lower case").
// Every kind takes think_in_prompt (false): the prompt opened <think>, so a completion without
// </think> never finished its reasoning and has no answer.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/utf8.h"
#include "reward/builtin_rewards.h"
#include "reward/instruction_text.h"

namespace aha::reward {
namespace {

std::vector<std::string> string_list(const json::ObjectReader& options, const char* key, bool allow_empty) {
  const auto& v = options.get(key);
  require(v.IsArray(), options.context() + ": option '" + key + "' must be an array of strings");
  std::vector<std::string> out;
  for (const auto& item : v.GetArray()) {
    require(item.IsString() && item.GetStringLength() > 0,
            options.context() + ": option '" + key + "' must hold non-empty strings");
    out.emplace_back(item.GetString(), item.GetStringLength());
  }
  require(allow_empty || !out.empty(), options.context() + ": option '" + key + "' must not be empty");
  return out;
}

RewardOutput no_answer() {
  RewardOutput out;
  out.diagnostic = "no final answer";
  return out;
}

class MaxWordsReward : public Reward {
 public:
  MaxWordsReward(int64_t max_words, bool think_in_prompt) : max_(max_words), think_in_prompt_(think_in_prompt) {}
  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    std::string answer = final_answer_text(completion.text, think_in_prompt_);
    int64_t words = count_words(answer);
    if (words == 0) return no_answer();
    RewardOutput out;
    out.value = words <= max_ ? 1.0 : 0.0;
    out.components["words"] = static_cast<double>(words);
    out.diagnostic = std::to_string(words) + " words (at most " + std::to_string(max_) + ")";
    return out;
  }

 private:
  int64_t max_;
  bool think_in_prompt_;
};

// The code point before byte offset `pos` of text (-1 at the start), and the one at `pos`.
int32_t code_point_before(std::string_view text, size_t pos) {
  if (pos == 0) return -1;
  size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80 && pos - start < 4) --start;
  size_t length = 0;
  int32_t c = utf8::decode_char(text.data() + start, text.data() + pos, length);
  return start + length == pos ? c : -1;
}
int32_t code_point_at(std::string_view text, size_t pos) {
  if (pos >= text.size()) return -1;
  size_t length = 0;
  return utf8::decode_char(text.data() + pos, text.data() + text.size(), length);
}

bool has_whole_word(std::string_view text, std::string_view word) {
  int32_t first = code_point_at(word, 0), last = code_point_before(word, word.size());
  for (size_t pos = text.find(word); pos != std::string_view::npos; pos = text.find(word, pos + 1)) {
    int32_t before = code_point_before(text, pos), after = code_point_at(text, pos + word.size());
    bool left = before < 0 || !is_word_char(static_cast<uint32_t>(before)) ||
                (first >= 0 && is_unspaced_script(static_cast<uint32_t>(first)));
    bool right = after < 0 || !is_word_char(static_cast<uint32_t>(after)) ||
                 (last >= 0 && is_unspaced_script(static_cast<uint32_t>(last)));
    if (left && right) return true;
  }
  return false;
}

class IncludeKeywordsReward : public Reward {
 public:
  IncludeKeywordsReward(std::vector<std::string> keywords, bool case_sensitive, bool partial_credit,
                        bool think_in_prompt)
      : case_sensitive_(case_sensitive), partial_credit_(partial_credit), think_in_prompt_(think_in_prompt) {
    for (auto& k : keywords) keywords_.push_back(case_sensitive ? k : lowercase_utf8(k));
  }
  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    std::string answer = final_answer_text(completion.text, think_in_prompt_);
    if (answer.empty()) return no_answer();
    if (!case_sensitive_) answer = lowercase_utf8(answer);
    size_t found = 0;
    std::string missing;
    for (const auto& k : keywords_) {
      if (has_whole_word(answer, k))
        ++found;
      else
        missing += (missing.empty() ? "" : ", ") + k;
    }
    RewardOutput out;
    bool all = found == keywords_.size();
    out.value = all ? 1.0 : partial_credit_ ? static_cast<double>(found) / static_cast<double>(keywords_.size()) : 0.0;
    out.components["found"] = static_cast<double>(found);
    out.diagnostic = all ? "all keywords" : clip_for_diagnostic("missing: " + missing);
    return out;
  }

 private:
  std::vector<std::string> keywords_;
  bool case_sensitive_, partial_credit_, think_in_prompt_;
};

// The answer inside one code fence that wraps all of it (```json\n...\n``` or ```\n...\n```),
// or the answer itself when it is not fenced.
std::string_view unfenced(std::string_view answer, bool& fenced) {
  fenced = false;
  if (answer.size() < 6 || answer.substr(0, 3) != "```" || answer.substr(answer.size() - 3) != "```") return answer;
  size_t newline = answer.find('\n');
  if (newline == std::string_view::npos) return answer;
  std::string_view info = answer.substr(3, newline - 3);
  if (info.find_first_not_of(" \t\r") != std::string_view::npos && info.find("json") == std::string_view::npos)
    return answer;
  std::string_view body = answer.substr(newline + 1, answer.size() - 3 - (newline + 1));
  if (body.find("```") != std::string_view::npos) return answer;  // two fences, or text between them
  fenced = true;
  return body;
}

class JsonKeysReward : public Reward {
 public:
  JsonKeysReward(std::vector<std::string> keys, bool allow_fence, bool think_in_prompt)
      : keys_(std::move(keys)), allow_fence_(allow_fence), think_in_prompt_(think_in_prompt) {}
  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    std::string answer = final_answer_text(completion.text, think_in_prompt_);
    if (answer.empty()) return no_answer();
    bool fenced = false;
    std::string_view body = allow_fence_ ? unfenced(answer, fenced) : std::string_view(answer);
    RewardOutput out;
    out.components["fenced"] = fenced;
    rapidjson::Document doc;
    // Without kParseStopWhenDoneFlag, anything but whitespace after the value is an error:
    // text outside the JSON does not follow "reply as JSON".
    doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
    if (doc.HasParseError()) {
      out.diagnostic = std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()) + " at byte " +
                       std::to_string(doc.GetErrorOffset());
      return out;
    }
    if (!doc.IsObject()) {
      out.diagnostic = "the JSON is not an object";
      return out;
    }
    std::string missing;
    for (const auto& k : keys_)
      if (!doc.HasMember(rapidjson::Value(k.data(), static_cast<rapidjson::SizeType>(k.size()))))
        missing += (missing.empty() ? "" : ", ") + k;
    out.value = missing.empty() ? 1.0 : 0.0;
    out.components["parsed"] = 1;
    out.diagnostic = missing.empty() ? "a JSON object with every key" : clip_for_diagnostic("missing keys: " + missing);
    return out;
  }

 private:
  std::vector<std::string> keys_;
  bool allow_fence_, think_in_prompt_;
};

class LowercaseReward : public Reward {
 public:
  explicit LowercaseReward(bool think_in_prompt) : think_in_prompt_(think_in_prompt) {}
  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    std::string answer = final_answer_text(completion.text, think_in_prompt_);
    const char* end = answer.data() + answer.size();
    bool letter = false;
    for (const char* p = answer.data(); p < end;) {
      size_t length = 0;
      int32_t c = utf8::decode_char(p, end, length);
      p += length;
      if (c < 0) continue;
      uint32_t cp = static_cast<uint32_t>(c);
      if (simple_lowercase(cp) != cp) {
        RewardOutput out;
        out.diagnostic = "an upper-case letter";
        return out;
      }
      letter = letter || (is_word_char(cp) && !(cp >= '0' && cp <= '9') && cp != '_');
    }
    if (!letter) return no_answer();
    RewardOutput out;
    out.value = 1;
    out.diagnostic = "all lower case";
    return out;
  }

 private:
  bool think_in_prompt_;
};

}  // namespace

std::unique_ptr<Reward> make_max_words_reward(const json::ObjectReader& options) {
  options.reject_unknown({"max_words", "think_in_prompt"});
  int64_t max_words = options.get_int("max_words");
  require(max_words >= 1, options.context() + ": option 'max_words' must be at least 1");
  return std::make_unique<MaxWordsReward>(max_words, options.get_bool("think_in_prompt", false));
}

std::unique_ptr<Reward> make_include_keywords_reward(const json::ObjectReader& options) {
  options.reject_unknown({"keywords", "case_sensitive", "partial_credit", "think_in_prompt"});
  return std::make_unique<IncludeKeywordsReward>(
      string_list(options, "keywords", false), options.get_bool("case_sensitive", false),
      options.get_bool("partial_credit", false), options.get_bool("think_in_prompt", false));
}

std::unique_ptr<Reward> make_json_keys_reward(const json::ObjectReader& options) {
  options.reject_unknown({"keys", "allow_code_fence", "think_in_prompt"});
  std::vector<std::string> keys = options.has("keys") ? string_list(options, "keys", true) : std::vector<std::string>{};
  return std::make_unique<JsonKeysReward>(std::move(keys), options.get_bool("allow_code_fence", true),
                                          options.get_bool("think_in_prompt", false));
}

std::unique_ptr<Reward> make_lowercase_reward(const json::ObjectReader& options) {
  options.reject_unknown({"think_in_prompt"});
  return std::make_unique<LowercaseReward>(options.get_bool("think_in_prompt", false));
}

}  // namespace aha::reward

// bench_language_id [--set FILE]: the language_consistency reward's identifiers, on the
// labelled set tools/bench/language_id/sentences.tsv (its README says where the text is from).
//
// Figures (one line each):
// - accuracy of CLD2 (reward/language_identifier.h): the largest share is the line's label,
//   over all lines, over the Latin-script languages, and per language;
// - each identifier as the reward: en/zh lines scoring >= 0.5 for their own language, and
//   other Latin-script lines scoring >= 0.5 for "en" (a wrong answer the script path cannot
//   avoid);
// - agreement of the "script" and "cld2" identifiers on English/Chinese mixes (what the script
//   path covers): completions whose reasoning holds k Chinese and n-k English sentences of the
//   set, scored for "en" by both; mean absolute difference and the share of completions both
//   put on the same side of 0.5; and the share of all-English / all-Chinese ones (k = 0 or k = n)
//   where the two are within 0.1 of each other;
// - cost per completion (µs) of the language_consistency reward with each identifier, on
//   R1-style completions of about 1 KB of English reasoning, and the ratio.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "reward/language_identifier.h"
#include "reward/reward_registry.h"

namespace {

using aha::reward::Completion;
using aha::reward::RewardExample;

struct Line {
  std::string language, text;
};

// Calls `work` (one completion each) until at least a second has passed; microseconds per call.
double micros_per_call(const std::function<double()>& work) {
  double guard = 0;
  size_t calls = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    guard += work();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < 1.0);
  if (guard < 0) std::cout << "";  // keep the work observable
  return elapsed * 1e6 / static_cast<double>(calls);
}

std::unique_ptr<aha::reward::Reward> language_reward(const std::string& language, const std::string& identifier) {
  return aha::reward::create_reward({"language_consistency", "language_consistency", 1.0, 10.0,
                                     R"({"language": ")" + language + R"(", "identifier": ")" + identifier + "\"}"});
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = AHA_SOURCE_DIR "/tools/bench/language_id/sentences.tsv";
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--set") path = argv[i + 1];
  std::ifstream in(path);
  if (!in) {
    std::cerr << "bench_language_id: cannot read " << path << " (pass --set FILE)\n";
    return 1;
  }
  std::vector<Line> lines;
  for (std::string row; std::getline(in, row);) {
    size_t tab = row.find('\t');
    if (tab != std::string::npos) lines.push_back({row.substr(0, tab), row.substr(tab + 1)});
  }

  // Accuracy of CLD2's top language.
  const std::vector<std::string> latin = {"en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl"};
  std::map<std::string, std::pair<int, int>> per_language;  // right, total
  int right = 0, latin_right = 0, latin_total = 0;
  for (const auto& line : lines) {
    auto found = aha::reward::identify_languages(line.text);
    bool ok = !found.languages.empty() && found.languages[0].code == line.language;
    right += ok;
    per_language[line.language].first += ok;
    per_language[line.language].second += 1;
    if (std::find(latin.begin(), latin.end(), line.language) != latin.end()) latin_right += ok, ++latin_total;
  }
  std::printf("cld2 accuracy (top language = label): %.3f of %zu lines in %zu languages\n",
              double(right) / double(lines.size()), lines.size(), per_language.size());
  std::printf("cld2 accuracy on Latin-script languages (en fr de es it pt nl sv pl): %.3f of %d lines\n",
              double(latin_right) / latin_total, latin_total);
  std::string per;
  for (const auto& [language, counts] : per_language) {
    char item[32];
    std::snprintf(item, sizeof item, " %s %d/%d", language.c_str(), counts.first, counts.second);
    per += item;
  }
  std::printf("cld2 per language:%s\n", per.c_str());

  // Each identifier as the reward uses it: the label's score on en/zh lines (both should be
  // high), and the "en" score of the other Latin-script lines (should be low: the script path
  // cannot tell them from English).
  {
    RewardExample none;
    int script_right = 0, cld2_right = 0, labelled = 0, script_fooled = 0, cld2_fooled = 0, others = 0;
    auto script_zh = language_reward("zh", "script"), cld2_zh = language_reward("zh", "cld2");
    auto script_en_line = language_reward("en", "script"), cld2_en_line = language_reward("en", "cld2");
    for (const auto& line : lines) {
      Completion c{"<think>" + line.text + "</think>"};
      if (line.language == "en" || line.language == "zh") {
        bool zh = line.language == "zh";
        script_right += (zh ? script_zh : script_en_line)->score(none, c).value >= 0.5;
        cld2_right += (zh ? cld2_zh : cld2_en_line)->score(none, c).value >= 0.5;
        ++labelled;
      } else if (std::find(latin.begin(), latin.end(), line.language) != latin.end()) {
        script_fooled += script_en_line->score(none, c).value >= 0.5;
        cld2_fooled += cld2_en_line->score(none, c).value >= 0.5;
        ++others;
      }
    }
    std::printf("en/zh lines scoring >= 0.5 for their own language: script %d/%d, cld2 %d/%d\n", script_right,
                labelled, cld2_right, labelled);
    std::printf("other Latin-script lines scoring >= 0.5 for en (wrong): script %d/%d, cld2 %d/%d\n", script_fooled,
                others, cld2_fooled, others);
  }

  // The script path against CLD2 on English/Chinese mixes.
  std::vector<std::string> english, chinese;
  for (const auto& line : lines) {
    if (line.language == "en") english.push_back(line.text);
    if (line.language == "zh") chinese.push_back(line.text);
  }
  auto script_en = language_reward("en", "script"), cld2_en = language_reward("en", "cld2");
  RewardExample example;
  double total_difference = 0;
  int same_side = 0, mixes = 0, pure_same = 0, pure = 0;
  const int kSentences = 8;
  for (size_t start = 0; start < english.size(); ++start) {
    for (int k = 0; k <= kSentences; ++k) {  // k Chinese sentences among kSentences
      std::string think;
      for (int s = 0; s < kSentences; ++s) {
        const auto& pool = s < k ? chinese : english;
        think += pool[(start + static_cast<size_t>(s)) % pool.size()] + " ";
      }
      Completion c{"<think>" + think + "</think><answer>42</answer>"};
      double a = script_en->score(example, c).value, b = cld2_en->score(example, c).value;
      total_difference += std::fabs(a - b);
      same_side += (a >= 0.5) == (b >= 0.5);
      ++mixes;
      if (k == 0 || k == kSentences) pure_same += std::fabs(a - b) <= 0.1, ++pure;
    }
  }
  std::printf("script vs cld2 on %d en/zh mixes: mean |difference| %.3f, same side of 0.5: %.3f\n", mixes,
              total_difference / mixes, double(same_side) / mixes);
  std::printf("script vs cld2 on %d all-English or all-Chinese reasonings: within 0.1 of each other %.3f\n", pure,
              double(pure_same) / pure);

  // Cost per completion: about 1 KB of English reasoning.
  std::vector<Completion> completions;
  size_t bytes = 0;
  for (size_t start = 0; start < english.size(); ++start) {
    std::string think;
    for (size_t s = 0; think.size() < 1000; ++s) think += english[(start + s) % english.size()] + " ";
    bytes += think.size();
    completions.push_back({"<think>" + think + "</think><answer>42</answer>"});
  }
  size_t next = 0;
  auto cost = [&](const aha::reward::Reward& reward) {
    return micros_per_call([&] { return reward.score(example, completions[next++ % completions.size()]).value; });
  };
  double script_us = cost(*script_en), cld2_us = cost(*cld2_en);
  std::printf("cost per completion (%zu bytes of reasoning on average): script %.1f us, cld2 %.1f us, cld2/script %.1fx\n",
              bytes / completions.size(), script_us, cld2_us, cld2_us / script_us);
  return 0;
}

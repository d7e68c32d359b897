// math_verify_cases: the math verifier alone on JSON Lines, for tools/bench/math_verify_agreement.py.
//
// Reads lines {"pred": completion, "gold": gold text, "extraction": "strict"|"lenient",
// "relative_precision": r, "numbers": bool} from standard input and writes one line per input,
// {"equal": bool, "answer": extracted prediction or null, "gold_answer": ..., "refusal": ...}:
// the same extraction and comparison as the math_accuracy reward with those options.
// Links aha_reward only (no LibTorch), so it builds in seconds.
#include <iostream>
#include <string>

#include "core/error.h"
#include "core/json.h"
#include "reward/math_answer.h"
#include "reward/math_equivalence.h"

int main() {
  using namespace aha::reward;
  std::string line;
  size_t number = 0;
  try {
    while (std::getline(std::cin, line)) {
      ++number;
      if (line.empty()) continue;
      auto doc = aha::json::parse(line, "standard input line " + std::to_string(number));
      aha::json::ObjectReader fields(doc, "line " + std::to_string(number));
      ExtractionMode mode = parse_extraction_mode(fields.get_string("extraction", "lenient"), "\"extraction\"");
      MathEquivalenceOptions options;
      options.relative_precision = fields.get_double("relative_precision", options.relative_precision);
      std::string gold = extract_gold_answer(fields.get_string("gold"), mode);
      // "numbers": false reads math only (Math-Verify's LaTeX-only extraction target).
      auto answer = extract_final_answer(fields.get_string("pred"), mode, fields.get_bool("numbers", true));
      MathVerdict verdict;
      if (answer) verdict = check_math_answer(*answer, gold, options);
      rapidjson::Document out(rapidjson::kObjectType);
      auto& a = out.GetAllocator();
      out.AddMember("equal", verdict.equal, a);
      if (answer)
        out.AddMember("answer", rapidjson::Value(answer->data(), static_cast<rapidjson::SizeType>(answer->size()), a), a);
      else
        out.AddMember("answer", rapidjson::Value(), a);
      out.AddMember("gold_answer", rapidjson::Value(gold.data(), static_cast<rapidjson::SizeType>(gold.size()), a), a);
      out.AddMember("refusal", rapidjson::Value(verdict.refusal.c_str(), a), a);
      std::cout << aha::json::to_string(out) << "\n";
    }
  } catch (const aha::Error& e) {
    std::cerr << "math_verify_cases: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

// JSONL loaders: hand-written fixtures (always run) and the public data sets in ../shared/data
// (skipped when absent), with answers checked against the records as published.
#include "datasets/jsonl_loader.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

#include <filesystem>

#include "core/error.h"
#include "core/json.h"

namespace aha {
namespace {

const std::string kFixtures = AHA_SOURCE_DIR "/tests/datasets/fixtures/";
// The data sets the project ships (data/README.md), and AIME 2024, which it does not ship, from
// the development machines' shared folder when present.
const std::string kShipped = AHA_SOURCE_DIR "/data/";
const std::string kShared = AHA_SOURCE_DIR "/../shared/data/";

JsonlOptions format(JsonlFormat f) {
  JsonlOptions o;
  o.format = f;
  return o;
}

std::string metadata_string(const Example& ex, const char* key) {
  rapidjson::Document doc = json::parse(ex.metadata, "metadata");
  return json::ObjectReader(doc, "metadata").get_string(key);
}

using aha::test::error_of;

TEST(Gsm8kFinalAnswer, TakesTheNumberAfterTheLastMarkWithoutCommas) {
  EXPECT_EQ(gsm8k_final_answer("so 3 + 4 = 7\n#### 7"), "7");
  EXPECT_EQ(gsm8k_final_answer("x\n#### 1,234,567"), "1234567");
  EXPECT_EQ(gsm8k_final_answer("#### 1\n#### -2.5 \n"), "-2.5");
  EXPECT_EQ(gsm8k_final_answer("no mark here 7"), std::nullopt);
  EXPECT_EQ(gsm8k_final_answer("#### "), std::nullopt);
}

TEST(LastBoxed, BalancesNestedBracesAndTakesTheLast) {
  EXPECT_EQ(last_boxed("$\\boxed{\\frac{1}{2}}$"), "\\frac{1}{2}");
  EXPECT_EQ(last_boxed("\\boxed{1} or \\boxed{2}"), "2");
  EXPECT_EQ(last_boxed("\\boxed{\\{1, 2\\}}"), "\\{1, 2\\}");  // escaped braces are content
  EXPECT_EQ(last_boxed("so \\fbox{x^{2}}"), "x^{2}");
  EXPECT_EQ(last_boxed("\\boxed{} done"), "");
  EXPECT_EQ(last_boxed("\\boxed{\\frac{1}{2}"), std::nullopt);  // unclosed
  EXPECT_EQ(last_boxed("no box"), std::nullopt);
}

TEST(JsonlLoader, Gsm8kFixture) {
  auto ex = load_jsonl(kFixtures + "gsm8k_small.jsonl", format(JsonlFormat::gsm8k));
  ASSERT_EQ(ex.size(), 3u);  // the empty line is skipped
  EXPECT_EQ(ex[0].prompt, "Ann has 3 pens and buys 2 more. How many pens does she have?");
  EXPECT_EQ(ex[0].gold, "5");
  EXPECT_EQ(ex[1].gold, "1234");
  EXPECT_EQ(ex[2].gold, "-3");
  EXPECT_EQ(ex[2].id, kFixtures + "gsm8k_small.jsonl:4");  // line numbers count the empty line
  EXPECT_EQ(metadata_string(ex[1], "solution"), "Both cost 1,200 + 34 = <<1200+34=1234>>1,234 dollars.\n#### 1,234");
  EXPECT_EQ(ex[0].kind, TaskKind::math);
  EXPECT_EQ(ex[0].source, kFixtures + "gsm8k_small.jsonl");
}

TEST(JsonlLoader, MathFixturePrefersAnswerElseLastBox) {
  auto ex = load_jsonl(kFixtures + "math_small.jsonl", format(JsonlFormat::math));
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].gold, "\\frac{3}{4}");
  EXPECT_EQ(ex[1].gold, "\\{-1, 1\\}");
  EXPECT_EQ(ex[2].gold, "42");  // the answer field wins over the (wrong) box
  EXPECT_EQ(metadata_string(ex[2], "subject"), "Prealgebra");
  EXPECT_NE(ex[0].metadata.find("\"level\":1"), std::string::npos);
}

TEST(JsonlLoader, HumanEvalAndMbppFixtures) {
  auto he = load_jsonl(kFixtures + "humaneval_small.jsonl", format(JsonlFormat::humaneval));
  ASSERT_EQ(he.size(), 1u);
  EXPECT_EQ(he[0].id, "Toy/0");
  EXPECT_EQ(he[0].kind, TaskKind::code);
  EXPECT_EQ(he[0].tests.entry_point, "add");
  EXPECT_EQ(he[0].tests.test, "def check(candidate):\n    assert candidate(2, 3) == 5\n");
  EXPECT_EQ(metadata_string(he[0], "canonical_solution"), "    return a + b\n");

  auto mb = load_jsonl(kFixtures + "mbpp_small.jsonl", format(JsonlFormat::mbpp));
  ASSERT_EQ(mb.size(), 2u);
  EXPECT_EQ(mb[0].id, "11");
  EXPECT_EQ(mb[0].prompt, "Write a function to return the square root of n, rounded down.");  // from "text"
  EXPECT_EQ(mb[0].tests.asserts, (std::vector<std::string>{"assert isqrt(10) == 3", "assert isqrt(16) == 4"}));
  EXPECT_EQ(mb[0].tests.imports, std::vector<std::string>{"import math"});
  EXPECT_EQ(mb[1].prompt, "Write a function that doubles x.");  // from "prompt"
  EXPECT_TRUE(mb[1].tests.imports.empty());
}

TEST(JsonlLoader, PlainWithDefaultAndMappedFields) {
  auto ex = load_jsonl(kFixtures + "plain_small.jsonl", format(JsonlFormat::plain));
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].id, "p1");
  EXPECT_EQ(ex[0].kind, TaskKind::custom);
  EXPECT_EQ(ex[0].gold, "14");
  EXPECT_EQ(ex[0].metadata, "{\"task\":\"countdown\",\"numbers\":[2,3,4],\"target\":14}");
  EXPECT_EQ(ex[1].id, "7");
  EXPECT_EQ(ex[1].kind, TaskKind::code);
  EXPECT_EQ(ex[1].gold, "");  // code needs no answer
  EXPECT_EQ(ex[1].tests.asserts, std::vector<std::string>{"assert f() is None"});

  JsonlOptions mapped;
  mapped.prompt_field = "question_text";
  mapped.answer_field = "final";
  auto m = load_jsonl(kFixtures + "mapped_small.jsonl", mapped);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].prompt, "What is 2 + 2?");
  EXPECT_EQ(m[0].gold, "4");  // an integer answer
  EXPECT_EQ(m[1].gold, "5/2");
  EXPECT_EQ(m[1].metadata, "{\"difficulty\":\"medium\"}");
}

TEST(JsonlLoader, PlainReadsBackWhatExampleToJsonLineWrites) {
  Example ex;
  ex.id = "x-1";
  ex.prompt = "line one\nline \"two\" \xC3\xA9";
  ex.gold = "\\frac{1}{2}";
  ex.kind = TaskKind::code;
  ex.metadata = "{\"a\":[1,2],\"b\":{\"c\":true}}";
  ex.tests.test = "def check(c): pass";
  ex.tests.entry_point = "f";
  ex.tests.asserts = {"assert 1"};
  ex.tests.imports = {"import os"};
  ex.source = "somewhere";
  std::string line = example_to_json_line(ex);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto back = parse_jsonl(line + "\n", "roundtrip.jsonl", JsonlOptions{});
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].id, ex.id);
  EXPECT_EQ(back[0].prompt, ex.prompt);
  EXPECT_EQ(back[0].gold, ex.gold);
  EXPECT_EQ(back[0].kind, ex.kind);
  EXPECT_EQ(back[0].metadata, ex.metadata);
  EXPECT_EQ(back[0].tests.test, ex.tests.test);
  EXPECT_EQ(back[0].tests.entry_point, ex.tests.entry_point);
  EXPECT_EQ(back[0].tests.asserts, ex.tests.asserts);
  EXPECT_EQ(back[0].tests.imports, ex.tests.imports);
  EXPECT_EQ(back[0].source, "roundtrip.jsonl");
}

TEST(JsonlLoader, EveryNthAndLimitCountRecordsNotLines) {
  std::string text;
  for (int i = 0; i < 10; ++i)
    text += "{\"prompt\": \"q" + std::to_string(i) + "\", \"answer\": \"" + std::to_string(i) + "\"}\n\n";
  JsonlOptions o;
  o.every_nth = 3;
  auto ex = parse_jsonl(text, "t.jsonl", o);
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[0].gold, "0");
  EXPECT_EQ(ex[1].gold, "3");
  EXPECT_EQ(ex[3].gold, "9");
  o.limit = 2;
  ex = parse_jsonl(text, "t.jsonl", o);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[1].gold, "3");
  // Lines after the limit are not parsed, so a broken tail does not matter.
  JsonlOptions first;
  first.limit = 1;
  EXPECT_EQ(parse_jsonl("{\"prompt\":\"a\",\"answer\":\"1\"}\n{broken", "t.jsonl", first).size(), 1u);
  o.every_nth = 0;
  EXPECT_THROW(parse_jsonl(text, "t.jsonl", o), Error);
}

TEST(JsonlLoader, AcceptsCrlfAndAByteOrderMark) {
  auto ex =
      parse_jsonl("\xEF\xBB\xBF{\"prompt\": \"a\", \"answer\": \"1\"}\r\n\r\n{\"prompt\": \"b\", \"answer\": 2}\r\n",
                  "w.jsonl", JsonlOptions{});
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].prompt, "a");
  EXPECT_EQ(ex[1].gold, "2");
  EXPECT_EQ(ex[1].id, "w.jsonl:3");
}

TEST(JsonlLoader, ErrorsNameFileLineAndField) {
  const std::string good = "{\"question\": \"q\", \"answer\": \"#### 1\"}\n";
  std::string e =
      error_of([&] { parse_jsonl(good + "\n{\"question\": \"q\", ", "g.jsonl", format(JsonlFormat::gsm8k)); });
  EXPECT_NE(e.find("g.jsonl:3"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;

  e = error_of([&] { parse_jsonl(good + "{\"answer\": \"#### 2\"}", "g.jsonl", format(JsonlFormat::gsm8k)); });
  EXPECT_NE(e.find("g.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("'question'"), std::string::npos) << e;

  e = error_of([&] { parse_jsonl("{\"question\": \"q\", \"answer\": 5}", "g.jsonl", format(JsonlFormat::gsm8k)); });
  EXPECT_NE(e.find("g.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("'answer' must be a string"), std::string::npos) << e;

  e = error_of(
      [&] { parse_jsonl("{\"question\": \"q\", \"answer\": \"no mark\"}", "g.jsonl", format(JsonlFormat::gsm8k)); });
  EXPECT_NE(e.find("'answer' has no final answer"), std::string::npos) << e;

  e = error_of(
      [&] { parse_jsonl("{\"problem\": \"p\", \"solution\": \"none\"}", "m.jsonl", format(JsonlFormat::math)); });
  EXPECT_NE(e.find("m.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("'solution'"), std::string::npos) << e;

  e = error_of(
      [&] { parse_jsonl("{\"prompt\": \"p\", \"test_list\": [\"ok\", 3]}", "b.jsonl", format(JsonlFormat::mbpp)); });
  EXPECT_NE(e.find("b.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("'test_list'"), std::string::npos) << e;

  e = error_of([&] { parse_jsonl("[1, 2]", "p.jsonl", JsonlOptions{}); });
  EXPECT_NE(e.find("p.jsonl:1: expected a JSON object"), std::string::npos) << e;

  e = error_of([&] { parse_jsonl("{\"prompt\": \"p\", \"answer\": 1.5}", "p.jsonl", JsonlOptions{}); });
  EXPECT_NE(e.find("'answer' must be a string or an integer"), std::string::npos) << e;

  e = error_of(
      [&] { parse_jsonl("{\"prompt\": \"p\", \"answer\": \"1\", \"kind\": \"poetry\"}", "p.jsonl", JsonlOptions{}); });
  EXPECT_NE(e.find("p.jsonl:1: field 'kind'"), std::string::npos) << e;

  e = error_of([&] { load_jsonl(kFixtures + "no_such_file.jsonl", JsonlOptions{}); });
  EXPECT_NE(e.find("no_such_file.jsonl"), std::string::npos) << e;

  e = error_of([&] { parse_jsonl_format("csv"); });
  EXPECT_NE(e.find("gsm8k"), std::string::npos) << e;
}

// ---- the published data sets ----

bool have_shared(const std::string& file) { return std::filesystem::exists(kShared + file); }
#define REQUIRE_SHARED(file) \
  if (!have_shared(file)) GTEST_SKIP() << "data set not found: " << kShared << file

TEST(SharedData, Gsm8k) {
  auto test = load_jsonl(kShipped + "gsm8k/test.jsonl", format(JsonlFormat::gsm8k));
  ASSERT_EQ(test.size(), 1319u);
  EXPECT_EQ(test[0].gold, "18");      // Janet's ducks
  EXPECT_EQ(test[1].gold, "3");       // the robe
  EXPECT_EQ(test[2].gold, "70000");   // flipping a house
  EXPECT_EQ(test[146].gold, "2125");  // published as "2,125"
  EXPECT_EQ(test[201].gold, "114200");
  EXPECT_EQ(test[489].gold, "-10");
  EXPECT_EQ(test[0].prompt.rfind("Janet\xE2\x80\x99s ducks lay 16 eggs per day.", 0), 0u);
  auto train = load_jsonl(kShipped + "gsm8k/train.jsonl", format(JsonlFormat::gsm8k));
  ASSERT_EQ(train.size(), 7473u);
  EXPECT_EQ(train[0].gold, "72");  // Natalia's clips
}

TEST(SharedData, Math500BoxedAnswersAgreeWithTheAnswerField) {
  auto ex = load_jsonl(kShipped + "math500/test.jsonl", format(JsonlFormat::math));
  ASSERT_EQ(ex.size(), 500u);
  EXPECT_EQ(ex[0].gold, "\\left( 3, \\frac{\\pi}{2} \\right)");
  EXPECT_EQ(ex[4].gold, "\\text{Evelyn}");
  size_t agree = 0;
  for (const auto& e : ex) {
    auto boxed = last_boxed(metadata_string(e, "solution"));
    agree += boxed && *boxed == e.gold;
  }
  EXPECT_EQ(agree, 500u);  // MATH-500's answer field is its solution's last box
}

TEST(SharedData, Aime2024) {
  REQUIRE_SHARED("aime2024/test.jsonl");
  auto ex = load_jsonl(kShared + "aime2024/test.jsonl", format(JsonlFormat::aime));
  ASSERT_EQ(ex.size(), 30u);
  EXPECT_EQ(ex[0].id, "60");
  EXPECT_EQ(ex[0].gold, "204");  // Aya's walk
  EXPECT_EQ(ex[1].gold, "113");
  EXPECT_NE(metadata_string(ex[0], "url"), "");
}

TEST(SharedData, HumanEvalAndMbpp) {
  auto he = load_jsonl(kShipped + "humaneval/test.jsonl", format(JsonlFormat::humaneval));
  ASSERT_EQ(he.size(), 164u);
  EXPECT_EQ(he[0].id, "HumanEval/0");
  EXPECT_EQ(he[0].tests.entry_point, "has_close_elements");
  EXPECT_NE(he[0].tests.test.find("def check(candidate):"), std::string::npos);
  EXPECT_EQ(he[163].tests.entry_point, "generate_integers");
  auto mb = load_jsonl(kShipped + "mbpp/test.jsonl", format(JsonlFormat::mbpp));
  ASSERT_EQ(mb.size(), 257u);
  ASSERT_EQ(mb[0].tests.asserts.size(), 3u);
  EXPECT_EQ(mb[0].tests.asserts[0], "assert remove_Occ(\"hello\",\"l\") == \"heo\"");
  size_t with_imports = 0;
  for (const auto& e : mb) with_imports += !e.tests.imports.empty();
  EXPECT_EQ(with_imports, 13u);
}

}  // namespace
}  // namespace aha

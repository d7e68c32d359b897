// Rejection sampling's filters on hand-worked responses, the SFT record's layout, and the
// resumable JSON Lines writer's guarantees (a torn line and an uncounted unit are cut on resume;
// nothing it did not write is truncated).
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "recipes/runner/rejection_filters.h"
#include "recipes/runner/resumable_jsonl.h"
#include "recipes/runner/sft_record.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

Candidate cand(const std::string& text, double accuracy = 1, double format = 1, double language = 1,
               int64_t tokens = 10) {
  Candidate c;
  c.text = text;
  c.tokens = tokens;
  c.components = {{"accuracy", accuracy}, {"format", format}, {"language", language}};
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RejectionFilters, EachSwitchDropsWhatItNames) {
  RejectionFilters f;
  enable_filters(f, "correct,format,language,no_code,paragraph,length", "--filter");
  f.max_paragraph_chars = 40;  // the short responses here are 34 characters
  f.max_tokens = 50;
  std::vector<Candidate> c = {
      cand("<think>ok</think><answer>1</answer>"),                       // kept
      cand("<think>ok</think><answer>2</answer>", 0),                    // wrong
      cand("<think>ok</think>2", 1, 0),                                   // bad format
      cand("<think>ok 好</think><answer>1</answer>", 1, 1, 0.98),        // mixed language
      cand("<think>```py\nx\n```</think><answer>1</answer>"),            // code in a math CoT
      cand("<think>" + std::string(40, 'a') + "</think><answer>1</answer>"),  // long paragraph
      cand("<think>ok</think><answer>1</answer>", 1, 1, 1, 51),          // too long
  };
  Candidate truncated = cand("<think>ok</think><answer>1</answer>");
  truncated.truncated = true;
  c.push_back(truncated);
  auto v = apply_filters(f, c, 10);
  EXPECT_EQ(v.kept, std::vector<size_t>({0}));
  EXPECT_EQ(v.reasons, std::vector<std::string>({"", "correct", "format", "language", "no_code", "paragraph",
                                                 "length", "length"}));
  // The first failing filter is the one counted: wrong and badly formatted counts as "correct".
  EXPECT_EQ(apply_filters(f, {cand("x", 0, 0)}, 1).reasons[0], "correct");
  // Code in the chain of thought of a code task is fine; code in a math answer is not the CoT.
  RejectionFilters no_code;
  enable_filters(no_code, "no_code", "--filter");
  Candidate code = cand("<think>```py\nx\n```</think><answer>1</answer>");
  EXPECT_EQ(apply_filters(no_code, {code}, 1).kept.size(), 0u);
  code.math = false;
  EXPECT_EQ(apply_filters(no_code, {code}, 1).kept.size(), 1u);
  EXPECT_EQ(apply_filters(no_code, {cand("<think>ok</think><answer>```1```</answer>")}, 1).kept.size(), 1u);
  // Switched off, nothing is dropped.
  RejectionFilters none;
  EXPECT_EQ(apply_filters(none, c, 10).kept.size(), c.size());
}

TEST(RejectionFilters, DeduplicatesAndKeepsAtMostK) {
  RejectionFilters f;
  enable_filters(f, "exact_dup,near_dup", "--filter");
  f.near_dup_threshold = 0.6;
  std::vector<Candidate> c = {cand("the cat sat on the mat"), cand("the cat sat on the mat"),
                              cand("the cat sat on the rug"), cand("a dog ran in the park"),
                              cand("birds fly over the sea")};
  auto v = apply_filters(f, c, 2);
  EXPECT_EQ(v.kept, std::vector<size_t>({0, 3}));
  EXPECT_EQ(v.reasons, std::vector<std::string>({"", "exact_dup", "near_dup", "", "over_keep"}));
  f.near_dup_threshold = 0.61;  // 0.6 < threshold: the rug is different enough
  EXPECT_EQ(apply_filters(f, c, 5).kept, std::vector<size_t>({0, 2, 3, 4}));
}

TEST(RejectionFilters, HandWorkedMeasures) {
  // 3-shingles {the cat sat, cat sat on, sat on the, on the mat|rug}: 3 shared of 5.
  EXPECT_DOUBLE_EQ(shingle_jaccard("the cat sat on the mat", "The  cat sat\non the rug"), 0.6);
  EXPECT_DOUBLE_EQ(shingle_jaccard("a b", "a b"), 1.0);
  EXPECT_DOUBLE_EQ(shingle_jaccard("a b", "a c"), 0.0);
  EXPECT_EQ(longest_paragraph_chars("aaaa\n\nbb"), 4);
  EXPECT_EQ(longest_paragraph_chars("ab\ncd"), 5);  // one paragraph, its line break counted
  EXPECT_EQ(longest_paragraph_chars("ab\n  \t\ncd"), 2);  // a line of spaces separates
  EXPECT_EQ(longest_paragraph_chars("好好好"), 3);   // characters, not bytes
  EXPECT_EQ(longest_paragraph_chars(""), 0);
  EXPECT_EQ(reasoning_of("<think>r</think>a"), "r");
  EXPECT_EQ(reasoning_of("r</think>a"), "r");
  EXPECT_EQ(reasoning_of("no reasoning"), "");
}

TEST(RejectionFilters, ErrorsNameTheFilter) {
  RejectionFilters f;
  EXPECT_NE(error_of([&] { enable_filters(f, "correct,bogus", "--filter"); }).find("unknown filter 'bogus'"),
            std::string::npos);
  enable_filters(f, "language", "--filter");
  Candidate c;
  c.components = {{"accuracy", 1}};
  EXPECT_NE(error_of([&] { apply_filters(f, {c}, 1); }).find("'language'"), std::string::npos);
  f.language_threshold = 1.5;
  EXPECT_NE(error_of([&] { validate(f); }).find("language_threshold"), std::string::npos);
}

TEST(SftRecord, MessagesWithReasoning) {
  EXPECT_EQ(assistant_text("r</think>a", true), "<think>r</think>a");
  EXPECT_EQ(assistant_text("<think>r</think>a", true), "<think>r</think>a");
  EXPECT_EQ(assistant_text("plain", false), "plain");
  std::string line = sft_json_line("What is 2+2?", "<think>\n2+2=4\n</think>\n<answer>4</answer>", R"({"k": 1})");
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
  auto d = json::parse(line, "line");
  EXPECT_EQ(std::string(d["messages"][0]["role"].GetString()), "user");
  EXPECT_EQ(std::string(d["messages"][0]["content"].GetString()), "What is 2+2?");
  EXPECT_EQ(std::string(d["messages"][1]["role"].GetString()), "assistant");
  EXPECT_EQ(std::string(d["messages"][1]["content"].GetString()), "<think>\n2+2=4\n</think>\n<answer>4</answer>");
  EXPECT_EQ(std::string(d["messages"][1]["reasoning_content"].GetString()), "2+2=4");
  EXPECT_EQ(d["provenance"]["k"].GetInt(), 1);
  auto field = json::parse(sft_json_line("p", "<think>r</think>\n\nanswer", "{}", ReasoningLayout::field), "f");
  EXPECT_EQ(std::string(field["messages"][1]["content"].GetString()), "answer");
  EXPECT_EQ(std::string(field["messages"][1]["reasoning_content"].GetString()), "r");
  auto tagged = json::parse(sft_json_line("p", "r</think> <answer> 4 </answer>\n", "{}", ReasoningLayout::field), "g");
  EXPECT_EQ(std::string(tagged["messages"][1]["content"].GetString()), "4");
  auto two = json::parse(sft_json_line("p", "r</think><answer>4</answer><answer>5</answer>", "{}",
                                       ReasoningLayout::field), "2");
  EXPECT_EQ(std::string(two["messages"][1]["content"].GetString()), "<answer>4</answer><answer>5</answer>");
  auto think = json::parse(sft_json_line("p", "<think>r</think>a", "{}", ReasoningLayout::think), "t");
  EXPECT_FALSE(think["messages"][1].HasMember("reasoning_content"));
  auto none = json::parse(sft_json_line("p", "just an answer", "{}"), "n");
  EXPECT_EQ(std::string(none["messages"][1]["reasoning_content"].GetString()), "");
  // Invalid UTF-8 in a response still gives valid JSON text.
  auto bad = json::parse(sft_json_line("p", "a\xff", "{}"), "b");
  EXPECT_EQ(std::string(bad["messages"][1]["content"].GetString()), "a\xEF\xBF\xBD");
}

class ResumableJsonlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_resumable_jsonl_" + std::to_string(getpid()));
    remove_tree(dir_);
    fs::create_directories(dir_);
    out_ = dir_ / "out.jsonl";
  }
  void TearDown() override { remove_tree(dir_); }
  fs::path dir_, out_;
};

TEST_F(ResumableJsonlTest, ResumeCutsATornLineAndAnUncountedUnit) {
  using Mode = ResumableJsonl::Mode;
  {
    ResumableJsonl w(out_, Mode::fresh, R"({"a": 1})", "test");
    w.append_unit("{\"p\": 0}\n{\"p\": 0}\n", R"({"n": 2})");
    w.append_unit("", R"({"n": 2})");  // a prompt with nothing kept still counts as done
    w.append_unit("{\"p\": 2}\n", R"({"n": 3})");
  }
  const std::string good = "{\"p\": 0}\n{\"p\": 0}\n{\"p\": 2}\n";
  EXPECT_EQ(read_file(out_), good);
  // A kill: a whole unit written but not yet counted, then a torn line.
  {
    FILE* f = std::fopen(out_.c_str(), "a");
    std::fputs("{\"p\": 3}\n{\"p\": 4, \"mess", f);
    std::fclose(f);
  }
  ResumableJsonl w(out_, Mode::resume, R"({ "a" : 1 })", "test");
  EXPECT_EQ(w.units_done(), 3);
  EXPECT_EQ(w.state_json(), R"({"n":3})");
  EXPECT_EQ(read_file(out_), good);
  w.append_unit("{\"p\": 3}\n", R"({"n": 4})");
  w.finish(R"({"n": 4})");
  EXPECT_EQ(read_file(out_), good + "{\"p\": 3}\n");
  ResumableJsonl again(out_, Mode::resume, R"({"a": 1})", "test");
  EXPECT_TRUE(again.complete());
}

TEST_F(ResumableJsonlTest, NeverTruncatesWhatItDidNotWrite) {
  using Mode = ResumableJsonl::Mode;
  write_file_atomic(out_, "user data\n");
  EXPECT_NE(error_of([&] { ResumableJsonl(out_, Mode::fresh, "{}", "test"); }).find("--overwrite"), std::string::npos);
  EXPECT_NE(error_of([&] { ResumableJsonl(out_, Mode::resume, "{}", "test"); }).find("nothing to resume"),
            std::string::npos);
  write_file_atomic(ResumableJsonl::progress_path(out_), "{\"not\": \"ours\"}");
  EXPECT_NE(error_of([&] { ResumableJsonl(out_, Mode::overwrite, "{}", "test"); }).find("not a progress record"),
            std::string::npos);
  EXPECT_EQ(read_file(out_), "user data\n");
  fs::remove(ResumableJsonl::progress_path(out_));
  fs::remove(out_);
  {
    ResumableJsonl w(out_, Mode::fresh, R"({"a": 1})", "test");
    w.append_unit("{}\n", "{}");
  }
  // A progress record means an earlier run: a fresh start must not silently replace it.
  fs::remove(out_);
  EXPECT_NE(error_of([&] { ResumableJsonl(out_, Mode::fresh, R"({"a": 1})", "test"); }).find("--resume"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ResumableJsonl(out_, Mode::resume, R"({"a": 1})", "test"); }).find("missing"),
            std::string::npos);
  write_file_atomic(out_, "");
  EXPECT_NE(error_of([&] { ResumableJsonl(out_, Mode::resume, R"({"a": 1})", "test"); }).find("shorter"),
            std::string::npos);
  write_file_atomic(out_, "{}\n");
  EXPECT_NE(error_of([&] { ResumableJsonl(out_, Mode::resume, R"({"a": 2})", "test"); }).find("settings differ"),
            std::string::npos);
  ResumableJsonl w(out_, Mode::overwrite, R"({"a": 2})", "test");
  EXPECT_EQ(w.units_done(), 0);
  EXPECT_EQ(fs::file_size(out_), 0u);
}

}  // namespace
}  // namespace aha::recipes

// JSON Lines reading limits (issue 23, finding 7): a line over the limit is an error naming the
// file, the line number and the limit, before anything parses or tokenises it.
#include "core/text_lines.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace {

using aha::test::error_of;

std::vector<std::pair<std::string, size_t>> lines_of(std::string_view text, size_t limit = aha::kMaxJsonlLineBytes) {
  std::vector<std::pair<std::string, size_t>> out;
  aha::for_each_nonblank_line(
      text, "t.jsonl",
      [&](std::string_view line, size_t number) {
        out.emplace_back(std::string(line), number);
        return true;
      },
      limit);
  return out;
}

TEST(TextLines, SkipsBlankLinesAndCountsEveryLine) {
  using V = std::vector<std::pair<std::string, size_t>>;
  EXPECT_EQ(lines_of("\xEF\xBB\xBF{\"a\":1}\n\n  \t\r\n{\"b\":2}\r\n{\"c\":3}"),
            (V{{"{\"a\":1}", 1}, {"{\"b\":2}\r", 4}, {"{\"c\":3}", 5}}));
  EXPECT_TRUE(lines_of("").empty());
  EXPECT_TRUE(lines_of("\n\n").empty());
}

TEST(TextLines, StopsWhenAsked) {
  size_t seen = 0;
  aha::for_each_nonblank_line("a\nb\nc\n", "t", [&](std::string_view, size_t) { return ++seen < 2; });
  EXPECT_EQ(seen, 2u);
}

TEST(TextLines, ALineOverTheLimitNamesFileLineAndLimit) {
  const std::string text = "short\n" + std::string(101, 'x') + "\nlater\n";
  EXPECT_EQ(lines_of("short\n" + std::string(100, 'x'), 100).size(), 2u);  // at the limit: fine
  std::vector<std::string> seen;
  const std::string error = error_of([&] {
    aha::for_each_nonblank_line(
        text, "prompts.jsonl",
        [&](std::string_view line, size_t) {
          seen.emplace_back(line);
          return true;
        },
        100);
  });
  EXPECT_EQ(error, "prompts.jsonl line 2 is 101 bytes long, over the 100 bytes limit for one line");
  EXPECT_EQ(seen, std::vector<std::string>{"short"});  // the long line was never handed on
}

TEST(TextLines, TheDefaultLimitIsEightMebibytes) {
  const std::string huge(aha::kMaxJsonlLineBytes + 1, 'x');
  const std::string error = error_of([&] { lines_of(huge); });
  EXPECT_NE(error.find("t.jsonl line 1"), std::string::npos) << error;
  EXPECT_NE(error.find("over the 8 MiB limit"), std::string::npos) << error;
}

}  // namespace

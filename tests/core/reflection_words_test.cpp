#include "core/reflection_words.h"

#include <gtest/gtest.h>

namespace aha {
namespace {

TEST(ReflectionWords, CountsWholeWordsCaseInsensitively) {
  const std::vector<std::string> words = {"wait", "let me", "re-check"};
  EXPECT_EQ(count_reflection_words("Wait. wait,WAIT!", words), 3);
  EXPECT_EQ(count_reflection_words("awaiting waiter", words), 0);
  EXPECT_EQ(count_reflection_words("Let me re-check; let meat", words), 2);
  EXPECT_EQ(count_reflection_words("", words), 0);
}

TEST(ReflectionWords, DefaultListFindsTheReportsPhrases) {
  const auto& words = default_reflection_words();
  EXPECT_EQ(count_reflection_words("3 + 4 = 8. Wait, let me double-check: 3 + 4 = 7.", words), 3);
  EXPECT_EQ(count_reflection_words("3 + 4 = 7, so the answer is 7.", words), 0);
}

}  // namespace
}  // namespace aha

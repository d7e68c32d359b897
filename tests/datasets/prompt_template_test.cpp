// Prompt templates rendered against hand-written expectations (the R1 report's wording,
// Qwen's ChatML, DeepSeek-R1's chat template).
#include "datasets/prompt_template.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace aha {
namespace {

TEST(PromptTemplate, R1ZeroFollowsTheReport) {
  PromptTemplate t = PromptTemplate::r1_zero();
  std::string expected =
      "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
      "The assistant first thinks about the reasoning process in the mind and then provides the user with "
      "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
      "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
      "</answer>.\nUser: What is 2+3?\nAssistant:";
  EXPECT_EQ(t.render("What is 2+3?"), expected);
  EXPECT_EQ(t.stop_strings(), std::vector<std::string>{"</answer>"});
  EXPECT_FALSE(t.includes_bos());
}

TEST(PromptTemplate, R1ZeroThinkOpensTheReasoning) {
  PromptTemplate t = PromptTemplate::r1_zero_think();
  const std::string text = t.render("What is 2+3?");
  EXPECT_EQ(text, PromptTemplate::r1_zero().render("What is 2+3?") + " <think>");
  EXPECT_EQ(t.stop_strings(), std::vector<std::string>{"</answer>"});
  EXPECT_TRUE(t.opens_think());
  EXPECT_TRUE(t.r1_format());
  EXPECT_FALSE(PromptTemplate::r1_zero().opens_think());
  EXPECT_TRUE(PromptTemplate::r1_zero().r1_format());
  EXPECT_TRUE(PromptTemplate::deepseek_r1().opens_think());  // ends in "<think>\n"
  EXPECT_FALSE(PromptTemplate::chatml().opens_think());
  EXPECT_FALSE(PromptTemplate::chatml().r1_format());
  EXPECT_EQ(PromptTemplate::from_name("r1_zero_think").name(), "r1_zero_think");
}

TEST(PromptTemplate, ChatMlWithAndWithoutSystem) {
  EXPECT_EQ(PromptTemplate::chatml().render("Hi"), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(PromptTemplate::chatml("Be brief.").render("Hi"),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(PromptTemplate::chatml().stop_strings(), (std::vector<std::string>{"<|im_end|>", "<|endoftext|>"}));
}

TEST(PromptTemplate, DeepSeekR1ChatFormat) {
  PromptTemplate t = PromptTemplate::deepseek_r1();
  EXPECT_EQ(t.render("1+1?"), "<｜begin▁of▁sentence｜><｜User｜>1+1?<｜Assistant｜><think>\n");
  EXPECT_EQ(t.stop_strings(), std::vector<std::string>{"<｜end▁of▁sentence｜>"});
  EXPECT_TRUE(t.includes_bos());
}

TEST(PromptTemplate, CustomTemplateSubstitutesVerbatim) {
  PromptTemplate t = PromptTemplate::from_name("Q: {prompt}\nA:", {"\nQ:"});
  EXPECT_EQ(t.name(), "custom");
  EXPECT_EQ(t.render("{x} and {prompt}"), "Q: {x} and {prompt}\nA:");  // the prompt is not re-scanned
  EXPECT_EQ(t.stop_strings(), std::vector<std::string>{"\nQ:"});
}

TEST(PromptTemplate, BadNamesAndTemplatesAreErrors) {
  EXPECT_THROW(PromptTemplate::from_name("r1-zero"), Error);
  EXPECT_THROW(PromptTemplate::from_name("no slot here", {"x"}), Error);
  EXPECT_THROW(PromptTemplate::custom("{prompt} {prompt}", {}), Error);
  EXPECT_THROW(PromptTemplate::custom("{prompt}", {""}), Error);
  EXPECT_THROW(PromptTemplate::from_name("chatml", {"stop"}), Error);
  try {
    PromptTemplate::from_name("llama");
    ADD_FAILURE() << "accepted an unknown template name";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("r1_zero, r1_zero_think, chatml, deepseek_r1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aha

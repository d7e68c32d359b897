// Chat data: both record conventions, every kind of bad record as an error naming file and
// line or dropped and counted by reason; conversations rendered into trained and untrained
// pieces, checked against hand-written texts for each template.
#include "datasets/chat_data.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "datasets/chat_render.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::string& text) {
  try {
    parse_chat_jsonl(text, "d.jsonl", BadExamplePolicy::kError);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatData, ReadsMessagesAndPromptCompletion) {
  const std::string text =
      R"({"id": 7, "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},)"
      R"( {"role": "assistant", "content": "A", "reasoning_content": "R", "name": "x"}]})"
      "\n\n"
      R"({"prompt": "P", "completion": "C"})"
      "\n";
  ChatDataStats stats;
  auto examples = parse_chat_jsonl(text, "d.jsonl", BadExamplePolicy::kError, &stats);
  ASSERT_EQ(examples.size(), 2u);
  ASSERT_EQ(examples[0].messages.size(), 3u);
  EXPECT_EQ(examples[0].messages[2].role, "assistant");
  EXPECT_EQ(examples[0].messages[2].reasoning_content, "R");
  EXPECT_EQ(examples[0].where, "d.jsonl:1");
  EXPECT_EQ(examples[1].where, "d.jsonl:3");  // the blank line still counts
  ASSERT_EQ(examples[1].messages.size(), 2u);
  EXPECT_EQ(examples[1].messages[0].role, "user");
  EXPECT_EQ(examples[1].messages[0].content, "P");
  EXPECT_EQ(examples[1].messages[1].content, "C");
  EXPECT_EQ(stats.records, 2);
  EXPECT_EQ(stats.kept, 2);
}

TEST(ChatData, BadRecordsAreErrorsNamingFileAndLine) {
  const std::string ok = R"({"prompt": "P", "completion": "C"})" "\n";
  EXPECT_NE(error_of(ok + R"({"messages": [{"content": "x"}, {"role": "assistant", "content": "A"}]})")
                .find("d.jsonl:2: messages[0] has no 'role'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "A"}]})")
                .find("d.jsonl:1: messages[0]: role 'tool' is not system, user or assistant"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "  "}]})")
                .find("messages[1]: the assistant turn is empty"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "x"}]})").find("no assistant turn"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "A"}]})")
                .find("messages[0]: 'content' must be a string"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": []})").find("non-empty list"), std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "P"})").find("the record has no 'completion'"), std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "P", "completion": ""})").find("'completion' is empty"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("d.jsonl:1: not a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{\"messages\": [").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"text": "x"})").find("neither 'messages' nor 'prompt' and 'completion'"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "x", "reasoning_content": "r"}, {"role": "assistant", "content": "A"}]})")
                .find("assistant turns only"),
            std::string::npos);
  // A thought alone is a non-empty assistant turn.
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "", "reasoning_content": "r"}]})"),
            "");
}

TEST(ChatData, DropPolicyCountsEachReason) {
  const std::string text =
      R"({"prompt": "P", "completion": "C"})" "\n"
      R"({"messages": [{"role": "user", "content": "x"}]})" "\n"
      R"({"messages": [{"role": "user", "content": "x"}]})" "\n"
      R"({"messages": [{"role": "bot", "content": "x"}]})" "\n"
      "not json\n"
      R"({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]})" "\n";
  ChatDataStats stats;
  auto examples = parse_chat_jsonl(text, "d.jsonl", BadExamplePolicy::kDrop, &stats);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[1].where, "d.jsonl:6");
  EXPECT_EQ(stats.records, 6);
  EXPECT_EQ(stats.kept, 2);
  EXPECT_EQ(stats.dropped_total(), 4);
  EXPECT_EQ(stats.dropped["no_assistant_turn"], 2);
  EXPECT_EQ(stats.dropped["unknown_role"], 1);
  EXPECT_EQ(stats.dropped["not_json_object"], 1);
  EXPECT_THROW(parse_bad_example_policy("skip"), Error);
}

ChatExample conversation(std::vector<ChatMessage> messages) { return {std::move(messages), "d.jsonl:1"}; }

TEST(ChatRender, ChatmlTrainsAssistantContentAndEndToken) {
  auto r = ChatRenderer("chatml", {}, "Be brief.")
               .render(conversation({{"user", "Q1", ""}, {"assistant", "A1", "R1"}, {"user", "Q2", ""},
                                     {"assistant", "A2", ""}}));
  ASSERT_EQ(r.pieces.size(), 5u);
  EXPECT_EQ(r.pieces[0].text, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
                              "<|im_start|>assistant\n");
  EXPECT_FALSE(r.pieces[0].trained);
  EXPECT_EQ(r.pieces[1].text, "<think>\nR1\n</think>\n\nA1<|im_end|>");
  EXPECT_TRUE(r.pieces[1].trained);
  EXPECT_EQ(r.pieces[2].text, "\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(r.pieces[3].text, "A2<|im_end|>");
  EXPECT_TRUE(r.pieces[3].trained);
  EXPECT_EQ(r.pieces[4].text, "\n");
  EXPECT_FALSE(r.includes_bos);
  // The conversation's own system message replaces the default.
  auto own = ChatRenderer("chatml", {}, "Be brief.")
                 .render(conversation({{"system", "S", ""}, {"user", "Q", ""}, {"assistant", "A", ""}}));
  EXPECT_EQ(own.pieces[0].text, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatRender, DeepseekR1PromptEndsInsideThinkAsGenerationDoes) {
  auto r = ChatRenderer("deepseek_r1").render(conversation({{"user", "Q", ""}, {"assistant", "A", "R"}}));
  ASSERT_EQ(r.pieces.size(), 2u);
  EXPECT_EQ(r.pieces[0].text, "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><think>\n");
  EXPECT_EQ(r.pieces[1].text, "R\n</think>\n\nA<｜end▁of▁sentence｜>");
  EXPECT_TRUE(r.includes_bos);
  auto no_thought = ChatRenderer("deepseek_r1").render(conversation({{"user", "Q", ""}, {"assistant", "A", ""}}));
  EXPECT_EQ(no_thought.pieces[1].text, "\n</think>\n\nA<｜end▁of▁sentence｜>");
}

TEST(ChatRender, R1ZeroWritesThinkAndAnswerTags) {
  auto r = ChatRenderer("r1_zero").render(conversation({{"user", "1+1?", ""}, {"assistant", "2", "one and one"}}));
  ASSERT_EQ(r.pieces.size(), 2u);
  EXPECT_TRUE(r.pieces[0].text.ends_with("\nUser: 1+1?\nAssistant:")) << r.pieces[0].text;
  EXPECT_EQ(r.pieces[1].text, " <think> one and one </think> <answer> 2 </answer>");
  auto think = ChatRenderer("r1_zero_think").render(conversation({{"user", "Q", ""}, {"assistant", "2", "t"}}));
  EXPECT_EQ(think.pieces[1].text, " t </think> <answer> 2 </answer>");
  auto verbatim = ChatRenderer("r1_zero").render(conversation({{"user", "Q", ""}, {"assistant", "<think>x", ""}}));
  EXPECT_EQ(verbatim.pieces[1].text, " <think>x");
  EXPECT_THROW(ChatRenderer("r1_zero").render(conversation({{"user", "Q", ""}, {"assistant", "A", ""}, {"user", "Q", ""},
                                                            {"assistant", "A", ""}})),
               Error);
  EXPECT_THROW(ChatRenderer("r1_zero", {}, "system"), Error);
  EXPECT_THROW(ChatRenderer("{prompt}!"), Error);
}

class ChatRenderModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha-chat-render-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_); }
  void use(const std::string& jinja_file, const std::string& bos) {
    fs::copy_file(fs::path(AHA_SOURCE_DIR) / "tests/fixtures/chat_templates" / jinja_file, dir_ / "chat_template.jinja");
    std::ofstream(dir_ / "tokenizer_config.json") << "{\"bos_token\": " << bos << ", \"eos_token\": \"<|im_end|>\"}";
  }
  fs::path dir_;
};

TEST_F(ChatRenderModel, QwenTemplateSpansAreTheAssistantTurns) {
  use("qwen2.5-instruct.jinja", "null");
  auto r = ChatRenderer("model", dir_).render(conversation({{"user", "Hi", ""}, {"assistant", "Hello", ""},
                                                            {"user", "Q", ""}, {"assistant", "A", ""}}));
  ASSERT_EQ(r.pieces.size(), 4u);
  EXPECT_EQ(r.pieces[0].text, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                              "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(r.pieces[1].text, "Hello<|im_end|>\n");
  EXPECT_TRUE(r.pieces[1].trained);
  EXPECT_EQ(r.pieces[2].text, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(r.pieces[3].text, "A<|im_end|>\n");
  EXPECT_FALSE(r.includes_bos);
}

TEST_F(ChatRenderModel, ATemplateThatRewritesEarlierTurnsIsAnError) {
  // Qwen3's template keeps the thought only of turns after the last user message: a turn's
  // rendering changes once a later user turn follows.
  use("qwen3.jinja", "null");
  ChatRenderer renderer("model", dir_);
  auto single = renderer.render(conversation({{"user", "Q", ""}, {"assistant", "A", "R"}}));
  ASSERT_EQ(single.pieces.size(), 2u);
  EXPECT_EQ(single.pieces[0].text, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(single.pieces[1].text, "<think>\nR\n</think>\n\nA<|im_end|>\n");
  try {
    renderer.render(conversation({{"user", "Q", ""}, {"assistant", "A", "R"}, {"user", "Q2", ""}, {"assistant", "B", ""}}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d.jsonl:1 (template model): the chat template renders the conversation"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(ChatRenderModel, ATemplateThatDropsTheThoughtIsAnError) {
  // DeepSeek-R1's template keeps only what follows </think> of every assistant turn.
  use("deepseek-r1-distill-qwen.jinja", "\"<｜begin▁of▁sentence｜>\"");
  ChatRenderer renderer("model", dir_);
  auto plain = renderer.render(conversation({{"user", "Q", ""}, {"assistant", "A", ""}}));
  EXPECT_TRUE(plain.includes_bos);
  EXPECT_TRUE(plain.pieces.back().trained);
  try {
    renderer.render(conversation({{"user", "Q", ""}, {"assistant", "A", "R"}}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("messages[1]: the chat template leaves out the turn's reasoning_content"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace aha

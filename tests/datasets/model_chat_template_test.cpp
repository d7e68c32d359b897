// The "model" prompt template: the chat template read from a model directory's files and
// rendered as transformers' apply_chat_template renders it. Expected texts are the golden
// outputs of transformers (tests/fixtures/chat_templates/cases.json).
#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/files.h"
#include "core/json.h"
#include "datasets/model_chat_template.h"
#include "datasets/prompt_template.h"
#include "tests/test_util.h"

namespace aha {
namespace {
namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/chat_templates";

std::string read(const fs::path& path) { return read_file(path); }

// transformers' output for one golden case.
std::string golden(const std::string& template_file, const std::string& conversation, bool generation_prompt) {
  const auto doc = json::parse(read(kFixtures / "cases.json"), "cases.json");
  for (const auto& c : doc["cases"].GetArray())
    if (c["template"].GetString() == template_file && c["conversation"].GetString() == conversation &&
        c["add_generation_prompt"].GetBool() == generation_prompt && c.HasMember("expected") &&
        c["variables"].MemberCount() <= 2)
      return c["expected"].GetString();
  ADD_FAILURE() << "no golden case " << template_file << " " << conversation;
  return "";
}

std::string quoted(const std::string& s) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return b.GetString();
}

class ModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha-chat-template-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name, std::ios::binary) << text; }
  fs::path dir_;
};

TEST_F(ModelDir, TokenizerConfigTemplateRendersTheUserPromptAsTransformersDoes) {
  write("tokenizer_config.json", "{\"bos_token\": null, \"eos_token\": \"<|im_end|>\", \"chat_template\": " +
                                     quoted(read(kFixtures / "qwen2.5-instruct.jinja")) + "}");
  const auto t = PromptTemplate::from_name("model", {}, dir_);
  EXPECT_EQ(t.name(), "model");
  EXPECT_EQ(t.render("What is 2+3?"), golden("qwen2.5-instruct.jinja", "user_only", true));
  EXPECT_EQ(t.stop_strings(), std::vector<std::string>{"<|im_end|>"});
  EXPECT_FALSE(t.includes_bos());
  EXPECT_FALSE(t.opens_think());
  const auto with_system = PromptTemplate::from_name("model", {}, dir_, "You are a careful solver.");
  EXPECT_EQ(with_system.render("What is 2+3?"), golden("qwen2.5-instruct.jinja", "system_user", true));
}

TEST_F(ModelDir, BosAsAnObjectIsFoundAndTheThinkingTemplateOpensThink) {
  write("tokenizer_config.json",
        "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<｜begin▁of▁sentence｜>\"}, "
        "\"eos_token\": {\"content\": \"<｜end▁of▁sentence｜>\"}, \"chat_template\": " +
            quoted(read(kFixtures / "deepseek-r1-distill-qwen.jinja")) + "}");
  const auto r1 = PromptTemplate::from_model(dir_);
  EXPECT_EQ(r1.render("What is 2+3?"), golden("deepseek-r1-distill-qwen.jinja", "user_only", true));
  EXPECT_TRUE(r1.includes_bos());
  EXPECT_EQ(r1.stop_strings(), std::vector<std::string>{"<｜end▁of▁sentence｜>"});

  write("chat_template.jinja", read(kFixtures / "qwen3-thinking-2507.jinja"));  // preferred over the config's
  const auto qwen = PromptTemplate::from_model(dir_);
  EXPECT_EQ(qwen.render("What is 2+3?"), golden("qwen3-thinking-2507.jinja", "user_only", true));
  EXPECT_TRUE(qwen.opens_think());
  EXPECT_FALSE(qwen.includes_bos());  // the template writes no BOS
}

TEST_F(ModelDir, NamedTemplateListUsesDefault) {
  write("tokenizer_config.json",
        "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"TOOLS\"}, "
        "{\"name\": \"default\", \"template\": \"{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
        "{% if add_generation_prompt %}>{% endif %}\"}]}");
  EXPECT_EQ(PromptTemplate::from_model(dir_, "sys").render("hi"), "[system:sys][user:hi]>");
  write("tokenizer_config.json", "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"rag\", \"template\": \"R\"}]}");
  EXPECT_NE(test::error_of([&] { PromptTemplate::from_model(dir_); }).find("no template named \"default\" (it has: tool_use, rag)"),
            std::string::npos);
  write("tokenizer_config.json", "{\"chat_template\": 7}");
  EXPECT_NE(test::error_of([&] { PromptTemplate::from_model(dir_); }).find("'chat_template' must be a string or a list"),
            std::string::npos);
  write("tokenizer_config.json", "{\"chat_template\": \"x\", \"eos_token\": 5}");
  EXPECT_NE(test::error_of([&] { PromptTemplate::from_model(dir_); }).find("'eos_token' must be a string"), std::string::npos);
}

TEST_F(ModelDir, MissingOrBrokenTemplatesAreNamedErrors) {
  const std::string none = test::error_of([&] { PromptTemplate::from_model(dir_); });
  EXPECT_NE(none.find("has no chat template"), std::string::npos) << none;
  EXPECT_NE(none.find("chat_template.jinja"), std::string::npos) << none;
  EXPECT_NE(none.find("tokenizer_config.json"), std::string::npos) << none;
  write("tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
  EXPECT_NE(test::error_of([&] { PromptTemplate::from_model(dir_); }).find("has no chat template"), std::string::npos);
  write("chat_template.jinja", "ok\n{% macro m() %}{% endmacro %}");
  const std::string broken = test::error_of([&] { PromptTemplate::from_model(dir_); });
  EXPECT_NE(broken.find("chat_template.jinja line 2: the 'macro' statement is not supported"), std::string::npos) << broken;
  write("chat_template.jinja", "{{ raise_exception('System role not supported') }}");
  EXPECT_NE(test::error_of([&] { PromptTemplate::from_model(dir_); }).find("raise_exception: System role not supported"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { PromptTemplate::from_name("model"); }).find("needs the model directory"), std::string::npos);
  EXPECT_NE(test::error_of([] { PromptTemplate::from_name("r1_zero", {}, {}, "sys"); }).find("a system prompt needs"),
            std::string::npos);
}

TEST(PromptTemplateSystem, ChatmlAndDeepseekTakeTheSystemPrompt) {
  EXPECT_EQ(PromptTemplate::from_name("chatml", {}, {}, "S").render("P"),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nP<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(PromptTemplate::from_name("deepseek_r1", {}, {}, "S").render("P"),
            "<｜begin▁of▁sentence｜>S<｜User｜>P<｜Assistant｜><think>\n");
}

}  // namespace
}  // namespace aha

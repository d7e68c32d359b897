// aha's Jinja renderer against transformers' own chat-template rendering: the real templates of
// Qwen2.5, Qwen3, DeepSeek-R1 distilled, Llama 3.1 and Mistral v0.3 over a set of conversations,
// byte for byte (tests/fixtures/chat_templates/cases.json, made by make_fixtures.py there).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "jinja/template.h"

namespace aha::jinja {
namespace {

const std::string kDir = std::string(AHA_SOURCE_DIR) + "/tests/fixtures/chat_templates/";

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ChatTemplateGolden, EveryCaseIsByteIdenticalToTransformers) {
  const auto doc = json::parse(read(kDir + "cases.json"), "cases.json");
  const auto& cases = doc["cases"];
  ASSERT_GT(cases.Size(), 100u);
  int compared = 0, refused = 0;
  for (const auto& c : cases.GetArray()) {
    const std::string name = c["template"].GetString();
    const std::string label = name + " / " + c["conversation"].GetString() +
                              (c["add_generation_prompt"].GetBool() ? " / generation prompt" : "");
    Template t(read(kDir + name), name);
    // What transformers' render_jinja_template passes: messages, tools and documents (None),
    // add_generation_prompt, and the keyword arguments (special tokens, enable_thinking, ...).
    Dict variables = {{"messages", Value::from_json(c["messages"])},
                      {"tools", Value::none()},
                      {"documents", Value::none()},
                      {"add_generation_prompt", Value(c["add_generation_prompt"].GetBool())}};
    for (const auto& v : c["variables"].GetObject()) variables.emplace_back(v.name.GetString(), Value::from_json(v.value));
    if (c.HasMember("expected_error")) {
      try {
        t.render(variables);
        ADD_FAILURE() << label << ": rendered, expected raise_exception";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(std::string("raise_exception: ") + c["expected_error"].GetString()),
                  std::string::npos)
            << label << ": " << e.what();
        ++refused;
      }
      continue;
    }
    try {
      EXPECT_EQ(t.render(variables), std::string(c["expected"].GetString(), c["expected"].GetStringLength())) << label;
    } catch (const Error& e) {
      ADD_FAILURE() << label << ": " << e.what();
    }
    ++compared;
  }
  EXPECT_GT(compared, 100);
  EXPECT_EQ(refused, 1);
}

// One construct at a time (loops, scoping, slices, arithmetic, filters, tests, methods,
// whitespace control), against jinja2 in transformers' environment.
TEST(ChatTemplateGolden, SnippetsMatchJinja2) {
  const auto doc = json::parse(read(kDir + "cases.json"), "cases.json");
  const auto& snippets = doc["snippets"];
  ASSERT_GT(snippets.Size(), 20u);
  for (const auto& s : snippets.GetArray()) {
    const std::string source = s["template"].GetString();
    Dict variables;
    for (const auto& v : s["variables"].GetObject()) variables.emplace_back(v.name.GetString(), Value::from_json(v.value));
    try {
      EXPECT_EQ(Template(source, "snippet").render(variables), std::string(s["expected"].GetString())) << source;
    } catch (const Error& e) {
      ADD_FAILURE() << source << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace aha::jinja

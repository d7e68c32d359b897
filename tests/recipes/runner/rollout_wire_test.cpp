// The split layout's messages (recipes/runner/rollout_wire.h): round trips that keep every bit
// (64-bit seeds, log-probs as float32 patterns, -inf included, text with any UTF-8), and
// malformed messages refused with the field named.
#include "recipes/runner/rollout_wire.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"

namespace aha::recipes {
namespace {

TEST(RolloutWire, TaskRoundTrip) {
  RolloutTask t;
  t.id = 12;
  t.batch = 7;
  t.min_version = 6;
  t.seed = 0xFEDCBA9876543210ULL;  // above 2^53: a JSON number would lose it
  t.prompts = {"What is 2+3?", "Ünïcödé \"quoted\"\nline", std::string("\xe4\xb8", 2)};  // cut inside a character
  auto back = task_from_json(task_to_json(t));
  EXPECT_EQ(back.id, 12);
  EXPECT_EQ(back.batch, 7);
  EXPECT_EQ(back.min_version, 6);
  EXPECT_EQ(back.seed, 0xFEDCBA9876543210ULL);
  EXPECT_EQ(back.prompts, t.prompts);
}

TEST(RolloutWire, ResultRoundTripKeepsEveryBit) {
  RolloutResult r;
  r.id = 3;
  r.batch = 2;
  r.version = 1;
  r.worker = 4;
  r.seconds = 0.25;
  RolloutGroup g;
  g.prompt_ids = {1, 17, 99};
  Completion c;
  c.tokens = {5, 6, 2};
  c.logprobs = {-0.1f, std::nextafter(-1.0f, 0.0f), -std::numeric_limits<float>::infinity()};
  c.text = "<answer>5</answer>\xe2\x9c";  // a completion may stop inside a character
  c.finish_reason = FinishReason::kEos;
  g.completions = {c, c};
  g.completions[1].finish_reason = FinishReason::kLength;
  r.groups = {g};
  auto back = result_from_json(result_to_json(r));
  EXPECT_EQ(back.id, 3);
  EXPECT_EQ(back.version, 1);
  EXPECT_EQ(back.worker, 4);
  EXPECT_EQ(back.seconds, 0.25);
  ASSERT_EQ(back.groups.size(), 1u);
  EXPECT_EQ(back.groups[0].prompt_ids, g.prompt_ids);
  ASSERT_EQ(back.groups[0].completions.size(), 2u);
  const auto& b = back.groups[0].completions[0];
  EXPECT_EQ(b.tokens, c.tokens);
  ASSERT_EQ(b.logprobs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(std::bit_cast<uint32_t>(b.logprobs[i]), std::bit_cast<uint32_t>(c.logprobs[i]));
  EXPECT_EQ(b.text, c.text);
  EXPECT_EQ(b.finish_reason, FinishReason::kEos);
  EXPECT_EQ(back.groups[0].completions[1].finish_reason, FinishReason::kLength);
  EXPECT_EQ(back.groups[0].completions[1].sample_index, 1);
}

TEST(RolloutWire, MalformedMessagesNameTheField) {
  auto fails_with = [](auto parse, const std::string& text, const std::string& part) {
    try {
      parse(text);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  auto task = [](const std::string& t) { return task_from_json(t); };
  auto result = [](const std::string& t) { return result_from_json(t); };
  fails_with(task, R"({"batch": 1, "min_version": 0, "seed": "1", "prompts": []})", "'id'");
  fails_with(task, R"({"id": 1, "batch": 1, "min_version": 0, "seed": 5, "prompts": []})", "'seed'");
  fails_with(task, R"({"id": 1, "batch": 1, "min_version": 0, "seed": "5x", "prompts": []})", "'seed'");
  fails_with(task, R"({"id": 1, "batch": 1, "min_version": 0, "seed": "5", "prompts": [3]})", "'prompts'");
  fails_with(task, R"({"id": 1, "batch": 1, "min_version": 0, "seed": "5", "prompts": ["4g"]})", "hex");
  fails_with(task, "not json", "rollout task");
  const std::string head = R"({"id": 1, "batch": 1, "version": 0, "worker": 0, "seconds": 0, "groups": )";
  fails_with(result, head + R"([{"prompt_ids": [1], "completions": [{"tokens": [1, 2], "logprob_bits": [0],
             "text_hex": "", "finish": "eos"}]}]})", "2 tokens but 1 log-probs");
  fails_with(result, head + R"([{"prompt_ids": [1], "completions": [{"tokens": [1], "logprob_bits": [0],
             "text_hex": "", "finish": "tired"}]}]})", "unknown finish reason 'tired'");
  fails_with(result, head + R"([{"prompt_ids": [1], "completions": [{"tokens": [1], "logprob_bits": [-1],
             "text_hex": "", "finish": "eos"}]}]})", "32-bit");
  fails_with(result, head + R"([{"completions": []}]})", "group 0: 'prompt_ids' is missing");
}

}  // namespace
}  // namespace aha::recipes

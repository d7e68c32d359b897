// Continuous batching (rollout_engine.h): a request with more rows than the batch holds, with
// prompts of different lengths and completions of different lengths (EOS, stop strings, their
// own token limits, max_new_tokens), gives exactly the completions each prompt gives alone,
// once each, in prompt-major order (the same tokens; log-probs to float32 rounding); and the
// bookkeeping (refills, slot shifts, progress) adds up.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "policy/model/model_io.h"
#include "rollout/rollout_engine.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models";

aha::TextDecoder angle_decoder() {
  aha::TextDecoder decoder;
  decoder.token_bytes = [](int64_t id) { return "<" + std::to_string(id) + ">"; };
  decoder.decode = [](const std::vector<int64_t>& ids) {
    std::string text;
    for (auto id : ids) {
      text += '<';
      text += std::to_string(id);
      text += '>';
    }
    return text;
  };
  return decoder;
}

constexpr int64_t kGroup = 3, kMaxNew = 20;

// Seven prompts of 1 to 19 tokens; each completion has its own limit, most of them max_new.
aha::RolloutRequest uneven_request() {
  aha::RolloutRequest r;
  r.prompts = {{1, 17, 99, 4, 200},
               {1, 3, 3, 3, 250, 9, 8, 7, 6},
               {1},
               {1, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 7},
               {9, 8},
               {1, 100, 101, 102, 103, 104, 105},
               {77, 66, 55}};
  r.group_size = kGroup;
  r.settings.sampler.temperature = 0.9;
  r.settings.stop.max_new_tokens = kMaxNew;
  r.settings.stop.eos_token_ids = {5, 6, 7};
  r.settings.stop.stop_strings = {"9><2"};  // a token ending in 9, then one starting with 2: across tokens
  r.settings.seed = 41;
  const int64_t n = static_cast<int64_t>(r.prompts.size()) * kGroup;
  for (int64_t k = 0; k < n; ++k) r.max_new_tokens_each.push_back(k % 4 == 1 ? 3 + k % 7 : kMaxNew);
  return r;
}

// Prompt i alone, with its place in the whole request (first_prompt_index) and its limits.
aha::RolloutRequest alone(const aha::RolloutRequest& whole, int64_t i) {
  aha::RolloutRequest r = whole;
  r.prompts = {whole.prompts[i]};
  r.first_prompt_index = i;
  r.max_new_tokens_each.assign(whole.max_new_tokens_each.begin() + i * kGroup,
                               whole.max_new_tokens_each.begin() + (i + 1) * kGroup);
  return r;
}

// The same tokens, text and ending bit for bit; the log-probs to float32 rounding, because a
// row's attention then sums over another span of slots (its keys sit elsewhere), in another order.
void expect_same(const aha::Completion& got, const aha::Completion& want, const std::string& where) {
  EXPECT_EQ(got.tokens, want.tokens) << where;
  EXPECT_EQ(got.finish_reason, want.finish_reason) << where;
  EXPECT_EQ(got.text, want.text) << where;
  ASSERT_EQ(got.logprobs.size(), want.logprobs.size()) << where;
  for (size_t t = 0; t < got.logprobs.size(); ++t)
    EXPECT_NEAR(got.logprobs[t], want.logprobs[t], 2e-5) << where << " token " << t;
}

TEST(ContinuousBatching, MatchesEachPromptAloneWithFewerRows) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  const auto request = uneven_request();
  const int64_t N = static_cast<int64_t>(request.prompts.size());

  aha::EngineOptions single_options;
  single_options.span_bucket = 8;
  aha::RolloutEngine single(*model, single_options, angle_decoder());
  std::vector<aha::Completion> expected;
  for (int64_t i = 0; i < N; ++i) {
    auto result = single.generate(alone(request, i));
    ASSERT_EQ(result.completions.size(), static_cast<size_t>(kGroup));
    EXPECT_EQ(result.stats.refills, 0);
    for (auto& c : result.completions) expected.push_back(c);
  }
  // The reference covers every way to end: EOS, a stop string, a completion's own limit, and
  // max_new_tokens (otherwise the comparison below would prove less than it claims).
  std::map<aha::FinishReason, int> reasons;
  int own_limit = 0;
  for (size_t k = 0; k < expected.size(); ++k) {
    ++reasons[expected[k].finish_reason];
    const int64_t n = static_cast<int64_t>(expected[k].tokens.size());
    if (expected[k].finish_reason == aha::FinishReason::kLength && n < kMaxNew) {
      EXPECT_EQ(n, request.max_new_tokens_each[k]);
      ++own_limit;
    }
  }
  EXPECT_GT(reasons[aha::FinishReason::kEos], 0);
  EXPECT_GT(reasons[aha::FinishReason::kStop], 0);
  EXPECT_GT(own_limit, 0);
  EXPECT_GT(reasons[aha::FinishReason::kLength] - own_limit, 0);

  // Two groups (6 rows) at a time, then one group (max_rows below G rounds up to one group),
  // and 4 rows (rounds down to one group); and two groups at a time without refills (windows).
  for (int64_t max_rows : {6, 1, 4, -6}) {
    aha::EngineOptions options = single_options;
    options.max_rows = std::abs(max_rows);
    options.continuous_batching = max_rows > 0;
    aha::RolloutEngine engine(*model, options, angle_decoder());
    int64_t calls = 0, last_finished = -1;
    auto result = engine.generate(request, [&](int64_t finished, int64_t total, int64_t) {
      EXPECT_EQ(total, N * kGroup);
      EXPECT_GE(finished, last_finished);
      last_finished = finished;
      ++calls;
    });
    const std::string where = "max_rows " + std::to_string(max_rows);
    EXPECT_EQ(last_finished, N * kGroup) << where;
    EXPECT_GT(calls, 1) << where;
    ASSERT_EQ(result.completions.size(), expected.size()) << where;
    for (size_t k = 0; k < expected.size(); ++k) {
      const auto& c = result.completions[k];
      EXPECT_EQ(c.prompt_index, static_cast<int64_t>(k) / kGroup) << where;
      EXPECT_EQ(c.sample_index, static_cast<int64_t>(k) % kGroup) << where;
      expect_same(c, expected[k], where + " completion " + std::to_string(k));
    }
    const int64_t groups_at_once = std::abs(max_rows) == 6 ? 2 : 1;
    if (max_rows > 0) {
      EXPECT_EQ(result.stats.refills, N - groups_at_once) << where;  // every group after the first fill
      EXPECT_EQ(result.stats.windows, 1) << where;
    } else {
      EXPECT_EQ(result.stats.refills, 0) << where;
      EXPECT_EQ(result.stats.windows, 4) << where;  // 7 prompts, 2 at a time
    }
    EXPECT_EQ(result.stats.prefilled_prompts, N) << where;
    int64_t tokens = 0;
    for (const auto& c : result.completions) tokens += static_cast<int64_t>(c.tokens.size());
    EXPECT_EQ(result.stats.generated_tokens, tokens) << where;
    // Never more rows than asked for per step.
    EXPECT_LE(result.stats.row_steps, result.stats.decode_steps * groups_at_once * kGroup) << where;
  }
}

// The whole request at once (no refills) and through one group of rows give the same
// completions, and the long run moves its cache slots down (the shared slot would otherwise
// pass the capacity), without changing any completion.
TEST(ContinuousBatching, SlotShiftsKeepCompletionsExact) {
  auto model = aha::load_model(kFixtures / "llama_bias_llama3rope");
  auto request = uneven_request();
  request.settings.stop.stop_strings.clear();
  request.max_new_tokens_each.clear();
  request.settings.sampler.top_k = 40;
  request.settings.sampler.top_p = 0.95;
  request.settings.seed = 7;
  aha::EngineOptions options;
  options.span_bucket = 4;
  aha::RolloutEngine all_at_once(*model, options);
  const auto expected = all_at_once.generate(request);
  EXPECT_EQ(expected.stats.refills, 0);
  EXPECT_EQ(expected.stats.slot_shifts, 0);

  options.max_rows = kGroup;
  aha::RolloutEngine one_group(*model, options);
  const auto result = one_group.generate(request);
  EXPECT_GT(result.stats.slot_shifts, 0);
  EXPECT_EQ(result.stats.refills, static_cast<int64_t>(request.prompts.size()) - 1);
  // The cache holds the longest prompt (19) + 2 * max_new - 1 slots, rounded up to 4.
  EXPECT_EQ(result.stats.cache_capacity, 60);
  ASSERT_EQ(result.completions.size(), expected.completions.size());
  for (size_t k = 0; k < expected.completions.size(); ++k)
    expect_same(result.completions[k], expected.completions[k], "completion " + std::to_string(k));
}

// A window of a data set, given its place, reproduces the whole request's completions.
TEST(ContinuousBatching, FirstPromptIndexReproducesAWindow) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  auto whole = uneven_request();
  whole.max_new_tokens_each.clear();
  whole.settings.stop.stop_strings.clear();
  aha::RolloutEngine engine(*model);
  const auto all = engine.generate(whole);
  auto window = whole;
  window.prompts.assign(whole.prompts.begin() + 4, whole.prompts.end());
  window.first_prompt_index = 4;
  const auto part = engine.generate(window);
  ASSERT_EQ(part.completions.size(), 3u * kGroup);
  for (size_t k = 0; k < part.completions.size(); ++k) {
    EXPECT_EQ(part.completions[k].prompt_index, static_cast<int64_t>(k) / kGroup);
    EXPECT_EQ(part.completions[k].tokens, all.completions[4 * kGroup + k].tokens) << k;
  }
  // Without the offset the window draws other samples.
  window.first_prompt_index = 0;
  const auto shifted = engine.generate(window);
  int differing = 0;
  for (size_t k = 0; k < part.completions.size(); ++k)
    differing += shifted.completions[k].tokens != part.completions[k].tokens;
  EXPECT_GT(differing, 4);
}

// Each row attends from its own first slot: one row refilled seven times (G = 1, the shared
// slot moving on and shifting down between them), a completion of n tokens after a prompt of
// len tokens attends to len + k slots at the step that computes token k + 1 (k = 1 .. n - 1),
// whatever slot the row started at, as when it runs alone.
TEST(ContinuousBatching, RowsAttendToTheirOwnContext) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  auto request = uneven_request();
  request.group_size = 1;
  request.settings.stop.stop_strings.clear();
  request.settings.stop.ignore_eos = true;
  request.max_new_tokens_each = {20, 3, 1, 17, 20, 8, 2};
  int64_t expected = 0;
  for (size_t i = 0; i < request.prompts.size(); ++i) {
    const int64_t len = static_cast<int64_t>(request.prompts[i].size()), n = request.max_new_tokens_each[i];
    expected += (n - 1) * len + n * (n - 1) / 2;
  }
  aha::EngineOptions options;
  options.span_bucket = 4;
  options.max_rows = 1;
  const auto result = aha::RolloutEngine(*model, options).generate(request);
  EXPECT_EQ(result.stats.refills, 6);
  EXPECT_GT(result.stats.slot_shifts, 0);
  for (size_t i = 0; i < request.prompts.size(); ++i)
    EXPECT_EQ(static_cast<int64_t>(result.completions[i].tokens.size()), request.max_new_tokens_each[i]) << i;
  EXPECT_EQ(result.stats.attended_slots, expected);
}

// An engine keeps its batch between requests: a later request with fewer rows runs on the
// larger batch (rows past its own are computed, their results dropped, and follow the slot
// shifts) and gives the completions a batch of its own size gives.
TEST(ContinuousBatching, ALargerKeptBatchGivesTheSameCompletions) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  auto request = uneven_request();
  request.settings.stop.stop_strings.clear();
  aha::EngineOptions options;
  options.span_bucket = 4;
  aha::RolloutEngine kept(*model, options);
  request.max_rows = 3 * kGroup;
  const auto larger = kept.generate(request);
  request.max_rows = 2 * kGroup;
  const auto reused = kept.generate(request);  // 9 rows kept, 6 used: the step runs on all 9
  const auto own = aha::RolloutEngine(*model, options).generate(request);
  EXPECT_GT(reused.stats.slot_shifts, 0);
  EXPECT_GT(reused.stats.row_steps, own.stats.row_steps);  // the kept batch's extra rows ran
  ASSERT_EQ(reused.completions.size(), own.completions.size());
  for (size_t k = 0; k < own.completions.size(); ++k) {
    expect_same(reused.completions[k], own.completions[k], "completion " + std::to_string(k));
    expect_same(larger.completions[k], own.completions[k], "larger, completion " + std::to_string(k));
  }
}

// Refills batched into few prefills give the completions that refilling one group at a time
// gives, and both those of the whole request in one batch: twelve prompts, G = 2, uneven limits,
// among them completions of a single token (their rows are free as soon as they are placed, so
// the next group enters the same rows before their first tokens reach the host).
// refill_fraction 1 refills only when every row is free, so the events are known exactly: the
// first fill and two refills of 4 groups each, each one prefill (or two, in chunks of 2 prompts).
TEST(ContinuousBatching, BatchedRefillsMatchOneGroupAtATime) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  constexpr int64_t N = 12, G = 2, kNew = 12;
  aha::RolloutRequest request;
  int64_t longest = 0;
  for (int64_t i = 0; i < N; ++i) {
    std::vector<int64_t> prompt;
    for (int64_t t = 0; t <= (i * 5) % 13; ++t) prompt.push_back(1 + (i * 31 + t * 17) % 250);
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompt.size()));
    request.prompts.push_back(prompt);
  }
  request.group_size = G;
  request.settings.sampler.temperature = 1.0;
  request.settings.stop.max_new_tokens = kNew;
  request.settings.stop.eos_token_ids = {5, 6, 7, 8, 9};
  request.settings.seed = 23;
  for (int64_t k = 0; k < N * G; ++k)  // prompt 3: both samples one token; sample 9 too
    request.max_new_tokens_each.push_back(k / G == 3 || k == 9 ? 1 : k % 3 == 0 ? kNew : 2 + (k * 5) % 10);

  aha::EngineOptions options;
  options.span_bucket = 4;
  const auto whole = aha::RolloutEngine(*model, options).generate(request);
  EXPECT_EQ(whole.stats.refills, 0);
  EXPECT_EQ(whole.stats.refill_events, 0);
  EXPECT_EQ(whole.stats.prefill_calls, 1);  // every prompt in one chunk
  int eos = 0, single = 0;
  for (const auto& c : whole.completions) {
    eos += c.finish_reason == aha::FinishReason::kEos;
    single += c.tokens.size() == 1;
  }
  EXPECT_GT(eos, 0);      // rows freed by a stop the host reads a step late, too
  EXPECT_GE(single, 3);  // the one-token limits above

  struct Way {
    std::string name;
    int64_t max_rows;
    double refill_fraction;
    int64_t prefill_tokens;
    int64_t refills, refill_events, prefill_calls;  // expected; -1: not fixed
  };
  const std::vector<Way> ways = {
      {"one group at a time", G, 0.0, 16384, N - 1, N - 1, N},
      {"4 groups, refilled when all free", 4 * G, 1.0, 16384, 8, 2, 3},
      {"4 groups, chunks of 2 prompts", 4 * G, 1.0, 2 * longest, 8, 2, 6},
      {"4 groups, refilled early", 4 * G, 0.0, 16384, 8, -1, -1},
  };
  for (const auto& way : ways) {
    aha::EngineOptions o = options;
    o.max_rows = way.max_rows;
    o.refill_fraction = way.refill_fraction;
    o.prefill_tokens = way.prefill_tokens;
    int64_t last_finished = 0;
    const auto result = aha::RolloutEngine(*model, o).generate(
        request, [&](int64_t finished, int64_t, int64_t) { last_finished = finished; });
    EXPECT_EQ(last_finished, N * G) << way.name;
    EXPECT_EQ(result.stats.refills, way.refills) << way.name;
    if (way.refill_events >= 0) {
      EXPECT_EQ(result.stats.refill_events, way.refill_events) << way.name;
    }
    if (way.prefill_calls >= 0) {
      EXPECT_EQ(result.stats.prefill_calls, way.prefill_calls) << way.name;
    }
    EXPECT_LE(result.stats.refill_events, result.stats.refills) << way.name;
    EXPECT_EQ(result.stats.prefilled_prompts, N) << way.name;
    ASSERT_EQ(result.completions.size(), whole.completions.size()) << way.name;
    int64_t tokens = 0;
    for (size_t k = 0; k < whole.completions.size(); ++k) {
      expect_same(result.completions[k], whole.completions[k], way.name + ", completion " + std::to_string(k));
      tokens += static_cast<int64_t>(result.completions[k].tokens.size());
    }
    EXPECT_EQ(result.stats.generated_tokens, tokens) << way.name;
  }
}

TEST(ContinuousBatching, RejectsBadLimits) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  aha::RolloutEngine engine(*model);
  auto request = uneven_request();
  request.settings.stop.stop_strings.clear();
  request.max_new_tokens_each.pop_back();  // one short
  EXPECT_THROW(engine.generate(request), aha::Error);
  request = uneven_request();
  request.settings.stop.stop_strings.clear();
  request.max_new_tokens_each[2] = kMaxNew + 1;
  EXPECT_THROW(engine.generate(request), aha::Error);
  request.max_new_tokens_each[2] = 0;
  EXPECT_THROW(engine.generate(request), aha::Error);
  request.max_new_tokens_each[2] = 1;
  request.first_prompt_index = -1;
  EXPECT_THROW(engine.generate(request), aha::Error);
  aha::EngineOptions bad;
  bad.max_rows = -1;
  EXPECT_THROW(aha::RolloutEngine(*model, bad), aha::Error);
  bad.max_rows = 0;
  bad.refill_fraction = 1.5;
  EXPECT_THROW(aha::RolloutEngine(*model, bad), aha::Error);
}

}  // namespace

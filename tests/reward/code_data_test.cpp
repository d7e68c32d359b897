// The code reward on real data (the shipped data/): every HumanEval canonical solution passes
// and a broken variant of each (its body replaced by "return None") fails; every MBPP reference
// solution passes its own asserts. Skipped with a message when the data or the sandbox is
// absent.
#include <gtest/gtest.h>

#include "tests/test_util.h"

#include <filesystem>
#include <fstream>

#include "core/json.h"
#include "reward/reward_registry.h"
#include "reward/reward_runner.h"
#include "sandbox/sandbox.h"

namespace aha::reward {
namespace {

// The data sets the project ships (data/README.md), so these run on every machine.
const std::filesystem::path kData = AHA_SOURCE_DIR "/data";

const auto& read_lines = aha::test::read_nonempty_lines;

std::string sandbox_problem() {
  sandbox::SandboxRequest request;
  request.program = "print(1)";
  auto result = sandbox::run_sandboxed(request);
  return result.status == sandbox::SandboxStatus::ok ? "" : result.message + " " + result.stderr_text;
}

RewardRunner code_runner() {
  RewardSpec spec;
  spec.name = spec.kind = "code";
  spec.timeout_seconds = 20;  // generous: the suite may share two cores with a build
  return RewardRunner({spec}, 0);
}

TEST(CodeData, HumanEvalCanonicalSolutionsPassAndBrokenOnesFail) {
  auto path = kData / "humaneval/test.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path << " (the shipped data set is missing)";
  if (auto why = sandbox_problem(); !why.empty()) GTEST_SKIP() << "sandbox cannot run python3: " << why;
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 164u);
  std::vector<ScoringInput> inputs;
  std::vector<std::string> ids;
  for (auto& line : lines) {
    auto doc = json::parse(line, "humaneval");
    ScoringInput in;
    in.example.task = TaskKind::code;
    in.example.prompt = doc["prompt"].GetString();
    in.example.entry_point = doc["entry_point"].GetString();
    in.example.tests = {doc["test"].GetString()};
    in.completion.text = doc["canonical_solution"].GetString();
    inputs.push_back(in);
    in.completion.text = "    return None\n";
    inputs.push_back(in);
    ids.push_back(doc["task_id"].GetString());
  }
  auto results = code_runner().score(inputs);
  int passed = 0, broken_failed = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& good = results[2 * i];
    const auto& bad = results[2 * i + 1];
    passed += good.total == 1.0;
    broken_failed += bad.total == 0.0;
    EXPECT_EQ(good.total, 1.0) << ids[i] << ": " << good.diagnostics.at("code");
    EXPECT_EQ(bad.total, 0.0) << ids[i] << " broken: " << bad.diagnostics.at("code");
    EXPECT_TRUE(good.errors.empty() && bad.errors.empty()) << ids[i];
  }
  std::cout << "HumanEval: " << passed << "/164 canonical solutions pass; " << broken_failed
            << "/164 broken variants fail\n";
}

TEST(CodeData, MbppReferenceCodePassesItsAsserts) {
  auto path = kData / "mbpp/test.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path << " (the shipped data set is missing)";
  if (auto why = sandbox_problem(); !why.empty()) GTEST_SKIP() << "sandbox cannot run python3: " << why;
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 257u);
  std::vector<ScoringInput> inputs;
  for (auto& line : lines) {
    auto doc = json::parse(line, "mbpp");
    ScoringInput in;
    in.example.task = TaskKind::code;
    for (auto& t : doc["test_list"].GetArray()) in.example.tests.push_back(t.GetString());
    for (auto& t : doc["test_imports"].GetArray()) in.example.test_setup += std::string(t.GetString()) + "\n";
    in.completion.text = std::string("```python\n") + doc["code"].GetString() + "\n```";
    inputs.push_back(in);
  }
  auto results = code_runner().score(inputs);
  int passed = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    passed += results[i].total == 1.0;
    EXPECT_EQ(results[i].total, 1.0) << "mbpp line " << i + 1 << ": " << results[i].diagnostics.at("code");
  }
  std::cout << "MBPP: " << passed << "/257 reference solutions pass their asserts\n";
}

}  // namespace
}  // namespace aha::reward

// The code reward: extraction, HumanEval and MBPP formats, scoring modes, and candidates that
// try to fake a pass (early exit, forged report lines, reading the tests). Runs python3 in the
// sandbox; skipped with a message when the sandbox cannot run python3 here.
#include <gtest/gtest.h>

#include "core/error.h"
#include "reward/code_reward.h"
#include "reward/reward_registry.h"
#include "reward/reward_runner.h"
#include "sandbox/sandbox.h"

namespace aha::reward {
namespace {

bool sandbox_usable(std::string* why) {
  sandbox::SandboxRequest request;
  request.program = "print(1)";
  auto result = sandbox::run_sandboxed(request);
  if (result.status != sandbox::SandboxStatus::ok) *why = result.message + " " + result.stderr_text;
  return result.status == sandbox::SandboxStatus::ok;
}

#define REQUIRE_SANDBOX()                                                             \
  do {                                                                                \
    std::string why;                                                                  \
    if (!sandbox_usable(&why)) GTEST_SKIP() << "sandbox cannot run python3: " << why; \
  } while (0)

RewardExample mbpp_example() {
  RewardExample e;
  e.task = TaskKind::code;
  e.tests = {"assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 5"};
  return e;
}

RewardExample humaneval_example() {
  RewardExample e;
  e.task = TaskKind::code;
  e.prompt = "def double(x):\n    \"\"\"Twice x.\"\"\"\n";
  e.entry_point = "double";
  e.tests = {"def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6\n"};
  return e;
}

RewardOutput score(const std::string& options, const RewardExample& example, const std::string& completion,
                   double timeout_seconds = 5) {
  RewardSpec spec;
  spec.name = spec.kind = "code";
  spec.options_json = options;
  spec.timeout_seconds = timeout_seconds;
  return create_reward(spec)->score(example, Completion{completion, -1});
}

TEST(CodeReward, ExtractsTheLastFencedBlockOfTheAnswer) {
  EXPECT_EQ(extract_code("<think>```python\nx = 1\n```</think>\n```python\ny = 2\n```\n"), "y = 2\n");
  EXPECT_EQ(extract_code("a\n```\nfirst\n```\nb\n```py\nsecond\n```\nc"), "second\n");
  EXPECT_EQ(extract_code("<answer>```python\nz = 3\n```</answer>"), "z = 3\n");
  EXPECT_EQ(extract_code("    return x * 2\n"), "    return x * 2\n");
  EXPECT_EQ(extract_code("<think>plan</think>def f(): pass"), "def f(): pass");
}

TEST(CodeReward, ScoresMbppAssertsAllOrFraction) {
  REQUIRE_SANDBOX();
  const std::string code = "```python\ndef add(a, b):\n    return a + b\n```";
  auto all = score("{}", mbpp_example(), code);
  EXPECT_EQ(all.value, 0.0);  // the third assert is wrong on purpose
  EXPECT_EQ(all.components.at("passed"), 2.0);
  EXPECT_EQ(all.diagnostic, "2/3 tests passed");
  EXPECT_DOUBLE_EQ(score("{\"mode\": \"fraction\"}", mbpp_example(), code).value, 2.0 / 3.0);
  auto two = mbpp_example();
  two.tests.pop_back();
  EXPECT_EQ(score("{}", two, code).value, 1.0);
  auto broken = score("{}", two, "def add(a, b):\n    return a - b\n");
  EXPECT_EQ(broken.value, 0.0);
  EXPECT_EQ(broken.components.at("passed"), 0.0);
}

TEST(CodeReward, ScoresHumanEvalBodiesAndWholeFunctions) {
  REQUIRE_SANDBOX();
  EXPECT_EQ(score("{}", humaneval_example(), "    return 2 * x\n").value, 1.0);
  EXPECT_EQ(score("{}", humaneval_example(), "```python\ndef double(x):\n    return x + x\n```").value, 1.0);
  EXPECT_EQ(score("{}", humaneval_example(), "    return x * x\n").value, 0.0);
  auto syntax = score("{}", humaneval_example(), "    return (\n");
  EXPECT_EQ(syntax.value, 0.0);
  EXPECT_NE(syntax.diagnostic.find("SyntaxError"), std::string::npos) << syntax.diagnostic;
  EXPECT_EQ(score("{}", humaneval_example(), "no code").value, 0.0);
}

TEST(CodeReward, CannotBeFooled) {
  REQUIRE_SANDBOX();
  const auto example = humaneval_example();
  const char* cheats[] = {
      "import sys\nsys.exit(0)\n",
      "import os\nos._exit(0)\n",
      "def double(x):\n    return 0\nimport os\nfor i in range(3):\n    print('pass', i)\n",
      "def double(x):\n    return 0\nimport sys\nprint(sys.stdin.read())\n",
      "def double(x):\n    while True: pass\n",
      "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
      "def double(x):\n    return 0\nraise SystemExit(0)\n",
  };
  for (const char* cheat : cheats) {
    auto out = score("{\"mode\": \"fraction\"}", example, std::string("```python\n") + cheat + "```", 2);
    EXPECT_EQ(out.value, 0.0) << cheat << " -> " << out.diagnostic;
  }
}

TEST(CodeReward, ChecksItsOptionsAndInputs) {
  EXPECT_THROW(score("{\"mode\": \"some\"}", mbpp_example(), "x"), Error);
  EXPECT_THROW(score("{\"timeout\": 3}", mbpp_example(), "x"), Error);
  RewardExample no_tests;
  no_tests.task = TaskKind::code;
  EXPECT_THROW(score("{}", no_tests, "x"), Error);
  RewardExample math;  // another task in a mixed batch scores 0 without running anything
  auto out = score("{}", math, "```python\nprint(1)\n```");
  EXPECT_EQ(out.value, 0.0);
  EXPECT_EQ(out.diagnostic, "not a code task (math)");
}

}  // namespace
}  // namespace aha::reward

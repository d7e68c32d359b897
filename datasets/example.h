// Example: one dataset record as the pipeline sees it (prompt, gold answer, task kind, tests
// for code, metadata), whatever file or generator it came from.
//
// Contract: `prompt` is the raw problem text (no template applied: see prompt_template.h).
// `gold` is the reference final answer as text ("72", "\frac{1}{2}"); it is empty for code
// tasks, which are judged by `tests`. `metadata` is always a JSON object serialised as text
// ("{}" when there is nothing), carrying whatever else the source had (a worked solution,
// Countdown's numbers). `id` is unique within its source.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace aha {

enum class TaskKind { math, code, custom };

// "math", "code", "custom".
const char* task_kind_name(TaskKind kind);
// Parses a task kind name; `what` names the option or field in the error, which lists the names.
TaskKind parse_task_kind(std::string_view name, const std::string& what);

// How a code example is judged. HumanEval: `test` defines check(candidate) and `entry_point`
// names the function to pass it. MBPP: `asserts` are statements run after the solution, with
// `imports` run before them.
struct CodeTests {
  std::string test;
  std::string entry_point;
  std::vector<std::string> asserts;
  std::vector<std::string> imports;

  bool empty() const { return test.empty() && entry_point.empty() && asserts.empty() && imports.empty(); }
};

struct Example {
  std::string id;
  std::string prompt;
  std::string gold;
  TaskKind kind = TaskKind::math;
  std::string metadata = "{}";
  CodeTests tests;
  std::string source;  // e.g. "gsm8k/test.jsonl" or "synthetic:countdown"
};

// One JSON object on one line (no newline): id, source, kind, prompt, answer, metadata (an
// object), and tests when there are any. The `plain` JSONL format reads it back.
std::string example_to_json_line(const Example& example);

}  // namespace aha

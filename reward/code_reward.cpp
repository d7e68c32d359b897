#include "reward/code_reward.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "reward/code_harness.h"
#include "sandbox/sandbox.h"

namespace aha::reward {
namespace {

std::string random_nonce() {
  static thread_local std::random_device device;
  char text[33];
  for (int i = 0; i < 4; ++i) std::snprintf(text + 8 * i, 9, "%08x", static_cast<unsigned>(device()));
  return text;
}

std::string request_json(const std::string& nonce, const std::string& setup, const std::string& code,
                         const std::vector<std::string>& tests, const std::string& entry_point) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto field = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  field("nonce", nonce);
  field("setup", setup);
  field("code", code);
  field("entry_point", entry_point);
  w.Key("tests");
  w.StartArray();
  for (auto& t : tests) w.String(t.data(), static_cast<rapidjson::SizeType>(t.size()));
  w.EndArray();
  w.EndObject();
  return json::text_of(buffer);  // valid UTF-8 whatever the completion held
}

class CodeReward : public Reward {
 public:
  CodeReward(bool fraction, sandbox::SandboxLimits limits, sandbox::IsolationOptions isolation,
             std::vector<std::string> interpreter)
      : fraction_(fraction), limits_(limits), isolation_(isolation), interpreter_(std::move(interpreter)) {}

  RewardOutput score(const RewardExample& example, const Completion& completion) const override {
    RewardOutput out;
    if (example.task != TaskKind::code) {  // a mixed batch: this reward does not apply
      out.diagnostic = std::string("not a code task (") + to_string(example.task) + ")";
      return out;
    }
    if (example.tests.empty()) throw Error("code: the example has no tests");
    const bool humaneval = !example.entry_point.empty();
    if (humaneval && example.tests.size() != 1) {
      throw Error(
          "code: a HumanEval-style example (with an entry point) needs exactly one test defining check()");
    }
    std::string code = extract_code(completion.text);
    out.components = {{"passed", 0.0}, {"tests", static_cast<double>(example.tests.size())}};
    if (code.find_first_not_of(" \t\r\n") == std::string::npos) {
      out.diagnostic = "no code in the completion";
      return out;
    }
    if (humaneval && code.find("def " + example.entry_point + "(") == std::string::npos)
      code = example.prompt + code;

    sandbox::SandboxRequest request;
    request.program = kCodeHarness;
    request.program_name = "harness.py";
    request.interpreter = interpreter_;
    const std::string nonce = random_nonce();
    request.stdin_data = request_json(nonce, example.test_setup, code, example.tests, example.entry_point);
    request.limits = limits_;
    request.isolation = isolation_;
    sandbox::SandboxResult result = sandbox::run_sandboxed(request);
    if (result.status == sandbox::SandboxStatus::sandbox_failure)
      throw Error("code: sandbox failure: " + result.message);

    size_t passed = 0;
    bool done = false;
    std::string load_error;
    std::istringstream lines(result.stdout_text);
    for (std::string line; std::getline(lines, line);) {
      if (line.compare(0, nonce.size() + 1, nonce + " ") != 0) continue;  // the candidate's own output
      std::string_view rest = std::string_view(line).substr(nonce.size() + 1);
      if (rest.starts_with("pass "))
        ++passed;
      else if (rest == "done")
        done = true;
      else if (rest.starts_with("load_error "))
        load_error = std::string(rest.substr(11));
    }
    const size_t tests = example.tests.size();
    out.components["passed"] = static_cast<double>(passed);
    out.value =
        fraction_ ? static_cast<double>(passed) / static_cast<double>(tests) : (passed == tests ? 1.0 : 0.0);
    out.diagnostic = std::to_string(passed) + "/" + std::to_string(tests) + " tests passed";
    if (!load_error.empty())
      out.diagnostic += "; the code failed to load (" + load_error + ")";
    else if (!done)
      out.diagnostic += std::string("; the run ended early (") + sandbox::to_string(result.status) + ")";
    return out;
  }

 private:
  bool fraction_;
  sandbox::SandboxLimits limits_;
  sandbox::IsolationOptions isolation_;
  std::vector<std::string> interpreter_;
};

}  // namespace

std::string extract_code(std::string_view completion) {
  std::string_view region = completion;
  size_t answer_open = completion.rfind("<answer>");
  size_t think_close = completion.rfind("</think>");
  if (answer_open != std::string_view::npos) {
    size_t start = answer_open + 8;
    size_t end = completion.find("</answer>", start);
    region = completion.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  } else if (think_close != std::string_view::npos) {
    region = completion.substr(think_close + 8);
  }
  // The last fenced block: find the last opening fence that has a closing one after it.
  size_t search_end = region.size();
  for (;;) {
    size_t close = region.rfind("```", search_end == 0 ? 0 : search_end - 1);
    if (close == std::string_view::npos || close == 0) break;
    size_t open = region.rfind("```", close - 1);
    if (open == std::string_view::npos) break;
    size_t body = region.find('\n', open);  // skip the language tag line
    if (body != std::string_view::npos && body < close)
      return std::string(region.substr(body + 1, close - body - 1));
    search_end = open;
    if (open == 0) break;
  }
  return std::string(region);
}

std::unique_ptr<Reward> make_code_reward(const json::ObjectReader& options, double timeout_seconds) {
  options.reject_unknown({"mode", "memory_mb", "namespaces", "seccomp", "interpreter"});
  std::string mode = options.get_string("mode", "all");
  require(mode == "all" || mode == "fraction",
          options.context() + ": option 'mode' must be \"all\" or \"fraction\", got \"" + mode + "\"");
  int64_t memory_mb = options.get_int("memory_mb", 1024);
  require(memory_mb >= 16 && memory_mb <= (sandbox::kMaxMemoryBytes >> 20),
          options.context() + ": option 'memory_mb' must be in 16.." + std::to_string(sandbox::kMaxMemoryBytes >> 20));
  sandbox::SandboxLimits limits;
  limits.wall_seconds = limits.cpu_seconds = timeout_seconds;
  limits.memory_bytes = memory_mb << 20;
  sandbox::IsolationOptions isolation;
  isolation.namespaces = options.get_bool("namespaces", true);
  isolation.seccomp = options.get_bool("seccomp", true);
  std::vector<std::string> interpreter;
  if (options.has("interpreter")) {
    const auto& list = options.get("interpreter");
    bool ok = list.IsArray() && !list.Empty();
    for (rapidjson::SizeType i = 0; ok && i < list.Size(); ++i) {
      ok = list[i].IsString() && list[i].GetStringLength() > 0;
      if (ok) interpreter.push_back(list[i].GetString());
    }
    require(ok, options.context() + ": option 'interpreter' must be a non-empty list of strings");
  }
  return std::make_unique<CodeReward>(mode == "fraction", limits, isolation, std::move(interpreter));
}

}  // namespace aha::reward

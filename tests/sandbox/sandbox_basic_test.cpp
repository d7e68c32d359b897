// Basic behaviour of run_sandboxed(): outcomes, stdin/stdout/stderr, files, the JSON form.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>

#include "core/error.h"
#include "core/json.h"
#include "sandbox/sandbox.h"

namespace aha::sandbox {
namespace {

SandboxResult run(const std::string& program, const std::string& stdin_data = "") {
  SandboxRequest r;
  r.program = program;
  r.stdin_data = stdin_data;
  return run_sandboxed(r);
}

bool has_layer(const SandboxResult& r, const std::string& name) {
  return std::find(r.layers.begin(), r.layers.end(), name) != r.layers.end();
}

TEST(SandboxBasic, PrintsAndExitsZero) {
  SandboxResult r = run("print(6 * 7)\n");
  ASSERT_EQ(r.status, SandboxStatus::ok) << r.to_json();
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.stdout_text, "42\n");
  EXPECT_EQ(r.stderr_text, "");
  EXPECT_GT(r.wall_seconds, 0);
  EXPECT_TRUE(has_layer(r, "rlimits"));
}

TEST(SandboxBasic, NonZeroExitIsRuntimeError) {
  SandboxResult r = run("import sys\nsys.stderr.write('bad')\nsys.exit(3)\n");
  EXPECT_EQ(r.status, SandboxStatus::runtime_error) << r.to_json();
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.stderr_text, "bad");
}

TEST(SandboxBasic, ExceptionIsRuntimeErrorWithTraceback) {
  SandboxResult r = run("assert 1 == 2, 'nope'\n");
  EXPECT_EQ(r.status, SandboxStatus::runtime_error);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.stderr_text.find("AssertionError: nope"), std::string::npos) << r.stderr_text;
}

TEST(SandboxBasic, DeathBySignalIsSignal) {
  SandboxResult term = run("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n");
  EXPECT_EQ(term.status, SandboxStatus::signal) << term.to_json();
  EXPECT_EQ(term.signal, SIGTERM);
  EXPECT_EQ(term.exit_code, -1);
  SandboxResult segv = run("import ctypes\nctypes.string_at(0)\n");
  EXPECT_EQ(segv.status, SandboxStatus::signal) << segv.to_json();
  EXPECT_EQ(segv.signal, SIGSEGV);
}

TEST(SandboxBasic, StdinIsFed) {
  SandboxResult r = run("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n", "1 2 3\n40\n");
  ASSERT_EQ(r.status, SandboxStatus::ok) << r.to_json();
  EXPECT_EQ(r.stdout_text, "46\n");
}

TEST(SandboxBasic, LargeStdinIsFedWhileOutputIsRead) {
  // 4 MB each way: more than any pipe buffer, so the feeding and reading must interleave.
  std::string input(4 << 20, 'x');
  SandboxRequest r;
  r.program = "import sys\nd = sys.stdin.buffer.read()\nsys.stdout.buffer.write(d)\n";
  r.stdin_data = input;
  r.limits.max_output_bytes = 8 << 20;
  SandboxResult res = run_sandboxed(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.message;
  EXPECT_EQ(res.stdout_text.size(), input.size());
  EXPECT_TRUE(res.stdout_text == input);
}

TEST(SandboxBasic, ExtraFilesSitBesideTheProgramAndArgsArePassed) {
  SandboxRequest r;
  r.program = "import sys, helper\nprint(helper.VALUE, sys.argv[1:])\n";
  r.files = {{"helper.py", "VALUE = 'from helper'\n"}};
  r.args = {"a", "b c"};
  SandboxResult res = run_sandboxed(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_EQ(res.stdout_text, "from helper ['a', 'b c']\n");
}

TEST(SandboxBasic, ProgramRunsAsUnprivilegedUserInItsTempDir) {
  SandboxResult r = run(
      "import os, tempfile\n"
      "print(os.getuid() != 0, os.geteuid() != 0)\n"
      "open('scratch.txt', 'w').write('hi')\n"
      "print(open('scratch.txt').read(), os.getcwd() == os.environ['HOME'] == tempfile.gettempdir())\n");
  ASSERT_EQ(r.status, SandboxStatus::ok) << r.to_json();
  EXPECT_EQ(r.stdout_text, "True True\nhi True\n");
  EXPECT_TRUE(has_layer(r, "unprivileged_uid"));
}

TEST(SandboxBasic, ProgramFileIsCopiedIn) {
  SandboxRequest r;
  r.program_file = std::string(AHA_BINARY_DIR) + "/sandbox_program_file_test.py";
  {
    FILE* f = fopen(r.program_file.c_str(), "w");
    ASSERT_TRUE(f);
    fputs("print('from file')\n", f);
    fclose(f);
  }
  SandboxResult res = run_sandboxed(r);
  EXPECT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_EQ(res.stdout_text, "from file\n");
  std::remove(r.program_file.c_str());
}

TEST(SandboxBasic, BadRequestsAreErrorsNamingTheField) {
  SandboxRequest empty;
  EXPECT_THROW(run_sandboxed(empty), Error);
  SandboxRequest slash;
  slash.program = "pass";
  slash.program_name = "../x.py";
  try {
    run_sandboxed(slash);
    FAIL() << "accepted a program name with '/'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("program_name"), std::string::npos) << e.what();
  }
  SandboxRequest zero;
  zero.program = "pass";
  zero.limits.wall_seconds = 0;
  EXPECT_THROW(run_sandboxed(zero), Error);
  zero.limits.wall_seconds = 1e30;  // would overflow the clock
  EXPECT_THROW(run_sandboxed(zero), Error);
  SandboxRequest too_big;
  too_big.program = std::string(2 << 20, '#');
  too_big.limits.tmp_bytes = 1 << 20;
  EXPECT_THROW(run_sandboxed(too_big), Error);
  SandboxRequest missing;
  missing.program_file = "/nonexistent/prog.py";
  EXPECT_THROW(run_sandboxed(missing), Error);
  SandboxRequest no_interpreter;
  no_interpreter.program = "pass";
  no_interpreter.interpreter = {"no-such-interpreter-aha"};
  EXPECT_THROW(run_sandboxed(no_interpreter), Error);
}

TEST(SandboxBasic, OtherInterpreterRuns) {
  SandboxRequest r;
  r.interpreter = {"sh"};
  r.program_name = "main.sh";
  r.program = "echo \"shell $1\"\nexit 5\n";
  r.args = {"arg"};
  SandboxResult res = run_sandboxed(r);
  EXPECT_EQ(res.status, SandboxStatus::runtime_error) << res.to_json();
  EXPECT_EQ(res.exit_code, 5);
  EXPECT_EQ(res.stdout_text, "shell arg\n");
}

TEST(SandboxBasic, JsonHoldsEveryField) {
  SandboxResult r = run("import sys\nprint('out \"q\"')\nsys.exit(2)\n");
  rapidjson::Document d = json::parse(r.to_json(), "result");
  json::ObjectReader o(d, "result");
  EXPECT_EQ(o.get_string("status"), "runtime_error");
  EXPECT_EQ(o.get_int("exit_code"), 2);
  EXPECT_TRUE(o.value()["signal"].IsNull());
  EXPECT_EQ(o.get_string("stdout"), "out \"q\"\n");
  EXPECT_GE(o.get_double("wall_seconds"), 0);
  EXPECT_GE(o.get_double("cpu_seconds"), 0);
  EXPECT_FALSE(o.get_bool("stdout_truncated"));
  EXPECT_TRUE(o.get("layers").IsArray());
  EXPECT_TRUE(o.get("missing_layers").IsArray());
  o.reject_unknown({"status", "exit_code", "signal", "wall_seconds", "cpu_seconds", "stdout", "stderr",
                    "stdout_truncated", "stderr_truncated", "layers", "missing_layers", "message"});
}

TEST(SandboxBasic, JsonOutputIsValidUtf8) {
  SandboxResult r = run("import sys\nsys.stdout.buffer.write(b'ok \\xff\\xc3\\xa9 \\xe2\\x82')\n");
  ASSERT_EQ(r.status, SandboxStatus::ok) << r.message;
  EXPECT_EQ(r.stdout_text, "ok \xff\xc3\xa9 \xe2\x82");  // the raw bytes stay in the result
  rapidjson::Document d = json::parse(r.to_json(), "result");
  // U+FFFD for the stray byte and for the truncated sequence; the valid é is kept.
  EXPECT_EQ(std::string(d["stdout"].GetString()), "ok \xEF\xBF\xBD\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(SandboxBasic, StdinDevicesAndSharedMemoryWork) {
  SandboxResult r = run(
      "import multiprocessing\n"
      "print(open('/dev/stdin').read().strip())\n"
      "lock = multiprocessing.Lock()\n"  // a POSIX semaphore in /dev/shm
      "with lock:\n"
      "    print('locked')\n",
      "through /dev/stdin\n");
  ASSERT_EQ(r.status, SandboxStatus::ok) << r.to_json();
  EXPECT_EQ(r.stdout_text, "through /dev/stdin\nlocked\n");
}

}  // namespace
}  // namespace aha::sandbox

// Memory limits as a careless user sets them (issue 23, finding 10): limits out of range are
// refused naming the limit and its range, and a program that dies because the limit refused
// it memory is memory_limit however it dies, including an interpreter that cannot even start.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "sandbox/sandbox.h"
#include "tests/test_util.h"

namespace aha::sandbox {
namespace {

using aha::test::error_of;

SandboxRequest request_for(const std::string& program) {
  SandboxRequest r;
  r.program = program;
  r.limits.wall_seconds = r.limits.cpu_seconds = 30;
  return r;
}

TEST(SandboxMemoryLimit, OutOfRangeLimitsAreRefusedNamingTheRange) {
  SandboxRequest r = request_for("print(1)\n");
  r.limits.memory_bytes = kMaxMemoryBytes + 1;
  EXPECT_EQ(error_of([&] { run_sandboxed(r); }),
            "sandbox limits: memory_bytes must be in 1..1099511627776 (1 TiB), got 1099511627777");
  r.limits.memory_bytes = -1;
  EXPECT_NE(error_of([&] { run_sandboxed(r); }).find("memory_bytes must be in 1.."), std::string::npos);
  r = request_for("print(1)\n");
  r.limits.max_output_bytes = kMaxOutputBytes + 1;
  EXPECT_EQ(error_of([&] { run_sandboxed(r); }),
            "sandbox limits: max_output_bytes must be in 1..1073741824 (1 GiB), got 1073741825");
  // The largest limits themselves are accepted.
  r = request_for("print(1)\n");
  r.limits.memory_bytes = kMaxMemoryBytes;
  r.limits.max_output_bytes = kMaxOutputBytes;
  EXPECT_EQ(run_sandboxed(r).status, SandboxStatus::ok);
}

TEST(SandboxMemoryLimit, LimitBelowTheInterpretersNeedsIsMemoryLimit) {
  // 1 MiB cannot even hold python3's shared libraries: it dies in the dynamic loader.
  for (int64_t bytes : {int64_t{1} << 20, int64_t{4} << 20}) {
    SandboxRequest r = request_for("print('never')\n");
    r.limits.memory_bytes = bytes;
    SandboxResult res = run_sandboxed(r);
    EXPECT_EQ(res.status, SandboxStatus::memory_limit) << res.to_json();
    EXPECT_NE(res.message.find("memory limit of " + std::to_string(bytes) + " bytes"), std::string::npos)
        << res.message;
    EXPECT_EQ(res.stdout_text, "");
  }
}

TEST(SandboxMemoryLimit, ProgramRefusedMemoryIsMemoryLimit) {
  SandboxRequest r = request_for("b = bytearray(512 << 20)\nprint('allocated')\n");
  r.limits.memory_bytes = 128LL << 20;
  SandboxResult res = run_sandboxed(r);
  EXPECT_EQ(res.status, SandboxStatus::memory_limit) << res.to_json();
  EXPECT_EQ(res.stdout_text, "");
}

TEST(SandboxMemoryLimit, SilentStartUpFailureIsBlamedOnTheLimitOnlyWhenTheLimitIsTheCause) {
  // An "interpreter" that needs 256 MB before it runs anything and, refused them, exits 3
  // without a word: its output cannot say why, so the sandbox asks whether an empty program
  // starts under the same limit.
  const std::string bootstrap =
      "import os, runpy, sys\n"
      "try:\n"
      "    ballast = bytearray(256 << 20)\n"
      "except MemoryError:\n"
      "    os._exit(3)\n"
      "del ballast\n"
      "runpy.run_path(sys.argv[1], run_name='__main__')\n";
  auto run = [&](const std::string& program, int64_t memory_mb) {
    SandboxRequest r = request_for(program);
    r.interpreter = {default_interpreter()[0], "-c", bootstrap};
    r.limits.memory_bytes = memory_mb << 20;
    return run_sandboxed(r);
  };
  SandboxResult starved = run("print('hello')\n", 64);
  EXPECT_EQ(starved.status, SandboxStatus::memory_limit) << starved.to_json();
  EXPECT_EQ(starved.exit_code, 3);
  EXPECT_NE(starved.message.find("cannot start"), std::string::npos) << starved.message;
  // With room to start, the program runs; a program failing on its own is its own failure.
  SandboxResult fine = run("print('hello')\n", 1024);
  EXPECT_EQ(fine.status, SandboxStatus::ok) << fine.to_json();
  EXPECT_EQ(fine.stdout_text, "hello\n");
  SandboxResult own_failure = run("raise SystemExit(3)\n", 1024);
  EXPECT_EQ(own_failure.status, SandboxStatus::runtime_error) << own_failure.to_json();
  EXPECT_EQ(own_failure.exit_code, 3);
}

TEST(SandboxMemoryLimit, FailuresUnderAGenerousLimitKeepTheirStatus) {
  SandboxRequest r = request_for("import sys\nsys.stderr.write('bad input\\n')\nsys.exit(2)\n");
  r.limits.memory_bytes = 256LL << 20;
  SandboxResult res = run_sandboxed(r);
  EXPECT_EQ(res.status, SandboxStatus::runtime_error) << res.to_json();
  EXPECT_EQ(res.exit_code, 2);
  r = request_for("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n");
  r.limits.memory_bytes = 256LL << 20;
  res = run_sandboxed(r);
  EXPECT_EQ(res.status, SandboxStatus::signal) << res.to_json();
}

}  // namespace
}  // namespace aha::sandbox

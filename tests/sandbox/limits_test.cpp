// Each rlimit of SandboxLimits holds: the program counts how far it gets and the count is
// checked against the limit it was given.
#include <gtest/gtest.h>

#include <string>

#include "sandbox_test_util.h"

namespace aha::sandbox {
namespace {

using testing::marked_request;
using testing::processes_with_marker;
using testing::unique_marker;

TEST(SandboxLimits, ProcessCountIsCapped) {
  const std::string marker = unique_marker();
  SandboxRequest r = marked_request(
      "import os, time\n"
      "children = 0\n"
      "while True:\n"
      "    try:\n"
      "        pid = os.fork()\n"
      "    except OSError:\n"
      "        break\n"
      "    if pid == 0:\n"
      "        time.sleep(60)\n"
      "        os._exit(0)\n"
      "    children += 1\n"
      "print(children)\n",
      marker);
  r.limits.max_processes = 6;
  SandboxResult res = run_sandboxed(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_EQ(res.stdout_text, "5\n");  // the program itself is the sixth
  EXPECT_TRUE(processes_with_marker(marker).empty());
}

TEST(SandboxLimits, OpenFilesAreCapped) {
  SandboxRequest r;
  r.program =
      "import os\n"
      "fds = []\n"
      "try:\n"
      "    while True:\n"
      "        fds.append(os.open('/dev/null', os.O_RDONLY))\n"
      "except OSError as e:\n"
      "    print(e.errno, max(fds) < 16)\n";
  r.limits.max_open_files = 16;
  SandboxResult res = run_sandboxed(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_EQ(res.stdout_text, "24 True\n");  // EMFILE
}

TEST(SandboxLimits, NoCoreDumpsAndLimitsAreVisibleToTheProgram) {
  SandboxRequest r;
  r.program =
      "import resource as R\n"
      "for name in ('RLIMIT_CORE', 'RLIMIT_AS', 'RLIMIT_NPROC', 'RLIMIT_FSIZE', 'RLIMIT_NOFILE', 'RLIMIT_CPU'):\n"
      "    print(name, *R.getrlimit(getattr(R, name)))\n";
  r.limits.memory_bytes = 300LL << 20;
  r.limits.max_processes = 9;
  r.limits.max_file_bytes = 12345;
  r.limits.max_open_files = 33;
  r.limits.cpu_seconds = 2.5;
  SandboxResult res = run_sandboxed(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_EQ(res.stdout_text,
            "RLIMIT_CORE 0 0\nRLIMIT_AS 314572800 314572800\nRLIMIT_NPROC 9 9\n"
            "RLIMIT_FSIZE 12345 12345\nRLIMIT_NOFILE 33 33\nRLIMIT_CPU 3 4\n");
}

}  // namespace
}  // namespace aha::sandbox

// Isolation layers: each is reported active or missing with a reason, the fallbacks when a
// request turns layers off still confine the program, and a sandbox that cannot start the
// program says so (sandbox_failure) instead of blaming the program.
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "sandbox_test_util.h"

namespace aha::sandbox {
namespace {

using testing::marked_request;
using testing::processes_with_marker;
using testing::unique_marker;

const std::vector<std::string> kLayers = {"user_namespace", "pid_namespace",     "mount_namespace",
                                          "network_namespace", "ipc_namespace", "uts_namespace",
                                          "seccomp",        "rlimits",           "unprivileged_uid"};

bool active(const SandboxResult& r, const std::string& layer) {
  return std::find(r.layers.begin(), r.layers.end(), layer) != r.layers.end();
}

bool reported_missing(const SandboxResult& r, const std::string& prefix) {
  return std::any_of(r.missing_layers.begin(), r.missing_layers.end(),
                     [&](const std::string& m) { return m.rfind(prefix + ":", 0) == 0; });
}

TEST(SandboxIsolation, EveryLayerIsEitherActiveOrReportedMissing) {
  SandboxRequest r;
  r.program = "pass\n";
  SandboxResult res = run_sandboxed(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  for (const auto& layer : kLayers)
    EXPECT_NE(active(res, layer), reported_missing(res, layer)) << layer << ": " << res.to_json();
}

TEST(SandboxIsolation, AsRootEveryLayerIsActive) {
  // The machines aha's CI runs on (containers, as root) allow every layer; a missing one
  // there is a regression of the sandbox, not of the host.
  if (geteuid() != 0) GTEST_SKIP() << "not root";
  SandboxRequest r;
  r.program = "pass\n";
  SandboxResult res = run_sandboxed(r);
  for (const auto& layer : kLayers) EXPECT_TRUE(active(res, layer)) << layer << ": " << res.to_json();
  EXPECT_TRUE(res.missing_layers.empty()) << res.to_json();
}

TEST(SandboxIsolation, WithoutNamespacesTheProgramIsStillConfinedAndKilled) {
  const std::string marker = unique_marker();
  SandboxRequest r = marked_request(
      "import os\n"
      "print(os.getcwd())\n"
      "print(os.getuid() != 0)\n"
      "try:\n"
      "    open('/usr/aha_evil', 'w')\n"
      "    print('WROTE')\n"
      "except OSError:\n"
      "    print('refused')\n"
      "if os.fork() == 0:\n"
      "    while True:\n"
      "        pass\n",
      marker);
  r.interpreter = {"/usr/bin/python3"};  // a root-only home would hide pyenv's from nobody
  r.isolation.namespaces = false;
  SandboxResult res = run_sandboxed(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_TRUE(processes_with_marker(marker).empty());
  const std::string workdir = res.stdout_text.substr(0, res.stdout_text.find('\n'));
  EXPECT_EQ(res.stdout_text, workdir + "\nTrue\nrefused\n");
  EXPECT_EQ(workdir.rfind("/tmp/aha-sandbox-", 0), 0u) << workdir;
  EXPECT_FALSE(std::filesystem::exists(workdir));  // removed afterwards
  for (const char* ns : {"user_namespace", "pid_namespace", "mount_namespace", "network_namespace"})
    EXPECT_FALSE(active(res, ns)) << ns;
  EXPECT_TRUE(reported_missing(res, "namespaces"));
  EXPECT_TRUE(active(res, "seccomp"));
  EXPECT_TRUE(active(res, "unprivileged_uid"));
}

TEST(SandboxIsolation, SeccompTurnedOffIsReportedAndIsWhatRefusedPtrace) {
  SandboxRequest r;
  r.program =
      "import ctypes\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "print(libc.ptrace(0, 0, 0, 0))\n";  // PTRACE_TRACEME
  r.isolation.seccomp = false;
  SandboxResult res = run_sandboxed(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_EQ(res.stdout_text, "0\n");
  EXPECT_FALSE(active(res, "seccomp"));
  EXPECT_TRUE(reported_missing(res, "seccomp"));
  r.isolation.seccomp = true;
  SandboxResult on = run_sandboxed(r);
  EXPECT_EQ(on.stdout_text, "-1\n");
}

TEST(SandboxIsolation, AnInterpreterThatCannotStartIsSandboxFailure) {
  // Outside /tmp: the sandbox replaces /tmp with a private one, so an interpreter folder inside
  // the host's /tmp (a build tree cloned there) cannot be shown in the view.
  std::string folder = AHA_BINARY_DIR;
  if (folder.rfind("/tmp/", 0) == 0) folder = "/var/tmp";
  if (!std::filesystem::is_directory(folder)) GTEST_SKIP() << "no folder outside /tmp for the test interpreter";
  const std::string script = folder + "/sandbox_broken_interpreter_" + std::to_string(getpid());
  std::ofstream(script) << "#!/nonexistent/interpreter\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                           std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                           std::filesystem::perms::others_exec);
  SandboxRequest r;
  r.program = "pass\n";
  r.interpreter = {script};
  SandboxResult res = run_sandboxed(r);
  std::filesystem::remove(script);
  EXPECT_EQ(res.status, SandboxStatus::sandbox_failure) << res.to_json();
  EXPECT_NE(res.message.find("executing the interpreter"), std::string::npos) << res.message;
  EXPECT_EQ(res.exit_code, -1);
}

}  // namespace
}  // namespace aha::sandbox

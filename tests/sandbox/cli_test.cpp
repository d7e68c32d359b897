// `aha sandbox run`: prints the outcome as JSON and exits 0 whenever the sandbox worked,
// whatever the program did; 1 for a sandbox failure or bad arguments.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/files.h"
#include "core/json.h"
#include "tests/test_util.h"

namespace {

using Outcome = aha::test::CommandOutcome;

Outcome run_aha(const std::string& arguments) { return aha::test::run_aha(arguments, /*merge_stderr=*/false); }

class SandboxCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(std::string(AHA_BINARY_DIR) + "/aha")) GTEST_SKIP() << "aha is not built";
    dir_ = std::string(AHA_BINARY_DIR) + "/sandbox_cli_test_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) aha::remove_tree(dir_);
  }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
    return dir_ + "/" + name;
  }
  std::string dir_;
};

TEST_F(SandboxCli, ProgramFailureStillExitsZeroWithTheOutcome) {
  const std::string program = write("prog.py", "import sys\nprint(sys.stdin.read().upper(), sys.argv[1])\nsys.exit(3)\n");
  const std::string input = write("in.txt", "abc");
  Outcome o = run_aha("sandbox run " + program + " word --stdin " + input + " --timeout 20 --memory 512");
  ASSERT_EQ(o.exit_status, 0) << o.out;
  rapidjson::Document d = aha::json::parse(o.out, "aha sandbox run output");
  aha::json::ObjectReader r(d, "aha sandbox run output");
  EXPECT_EQ(r.get_string("status"), "runtime_error");
  EXPECT_EQ(r.get_int("exit_code"), 3);
  EXPECT_EQ(r.get_string("stdout"), "ABC word\n");
  EXPECT_TRUE(r.get("layers").IsArray());
}

TEST_F(SandboxCli, TimeoutIsReportedNotFailed) {
  const std::string program = write("loop.py", "while True:\n    pass\n");
  Outcome o = run_aha("sandbox run " + program + " --timeout 1");
  ASSERT_EQ(o.exit_status, 0) << o.out;
  rapidjson::Document d = aha::json::parse(o.out, "aha sandbox run output");
  EXPECT_EQ(std::string(d["status"].GetString()), "timeout");
}

// Exit 1 for an error, 2 for a usage error such as an unknown option (tools/cli.h).
TEST_F(SandboxCli, SandboxFailureAndBadArgumentsExitOneOrTwo) {
  const std::string program = write("p.py", "pass\n");
  const std::string broken = write("broken-interpreter", "#!/nonexistent/interpreter\n");
  std::filesystem::permissions(broken, std::filesystem::perms::all);
  Outcome failed = run_aha("sandbox run " + program + " --interpreter " + broken);
  EXPECT_EQ(failed.exit_status, 1) << failed.out;
  rapidjson::Document d = aha::json::parse(failed.out, "aha sandbox run output");
  EXPECT_EQ(std::string(d["status"].GetString()), "sandbox_failure");
  EXPECT_EQ(run_aha("sandbox run " + dir_ + "/missing.py").exit_status, 1);
  EXPECT_EQ(run_aha("sandbox run " + program + " --memory 0").exit_status, 1);
  EXPECT_EQ(run_aha("sandbox run " + program + " --no-such-option").exit_status, 2);
}

}  // namespace

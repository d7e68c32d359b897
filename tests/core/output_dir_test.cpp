// The one rule for directories aha writes whole (core/output_dir.h): what may be written where,
// hand-worked over every kind of target, and what killed builds leave behind.
#include "core/output_dir.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "tests/test_util.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

class OutputDir : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("aha_output_dir_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    remove_tree(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { remove_tree(root_); }

  std::string error_for(const fs::path& dir, const std::string& made_by, bool overwrite) {
    return test::error_of([&] { check_output_dir(dir, "--out", made_by, overwrite); });
  }

  fs::path root_;
};

// A pid that no process has: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TEST_F(OutputDir, WhatMayBeWrittenWhere) {
  // Absent and empty: always.
  EXPECT_EQ(error_for(root_ / "absent", "model init", false), "");
  fs::create_directories(root_ / "empty");
  EXPECT_EQ(error_for(root_ / "empty", "model init", false), "");

  // Anything aha did not write: never, --overwrite or not.
  fs::create_directories(root_ / "theirs");
  write_file_atomic(root_ / "theirs" / "config.json", "{}");
  write_file_atomic(root_ / "file", "bytes");
  fs::create_symlink(root_ / "empty", root_ / "link");
  fs::create_directories(root_ / "bad-marker");
  write_file_atomic(root_ / "bad-marker" / kOutputMarker, "not json");
  for (const char* name : {"theirs", "file", "link", "bad-marker"}) {
    for (bool overwrite : {false, true}) {
      const auto e = error_for(root_ / name, "model init", overwrite);
      EXPECT_NE(e.find((root_ / name).string()), std::string::npos) << name << ": " << e;
    }
  }

  // aha's own output: only the same command's, and only when asked.
  fs::create_directories(root_ / "ours");
  mark_output_dir(root_ / "ours", "model init");
  EXPECT_EQ(output_made_by(root_ / "ours"), "model init");
  EXPECT_EQ(output_made_by(root_ / "theirs"), std::nullopt);
  EXPECT_NE(error_for(root_ / "ours", "model init", false).find("--overwrite"), std::string::npos);
  EXPECT_NE(error_for(root_ / "ours", "pretrain", true).find("aha model init"), std::string::npos);
  EXPECT_EQ(error_for(root_ / "ours", "model init", true), "");
}

TEST_F(OutputDir, SwapInReplacesWholeAndLeavesNothingBeside) {
  const fs::path target = root_ / "model";
  for (const char* content : {"first", "second"}) {
    const fs::path built = fresh_build_dir(target);
    fs::create_directories(built);
    write_file_atomic(built / "weights", content);
    swap_in_dir(built, target);
    EXPECT_EQ(read_file(target / "weights"), content);
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(root_), fs::directory_iterator()), 1);
}

TEST_F(OutputDir, FreshBuildDirRemovesWhatKilledBuildsLeft) {
  const fs::path target = root_ / "model";
  const std::string dead = std::to_string(dead_pid());
  const fs::path stale_tmp = root_ / ("model.tmp-" + dead + "-0");
  const fs::path stale_old = root_ / ("model.old-" + dead + "-1");
  const fs::path live_tmp = root_ / ("model.tmp-" + std::to_string(::getppid()) + "-2");  // a live owner
  for (const auto& d : {stale_tmp, stale_old, live_tmp}) {
    fs::create_directories(d);
    write_file_atomic(d / "weights", "partial");
  }
  // The target is gone: the set-aside copy may be the only one, so it stays.
  fresh_build_dir(target);
  EXPECT_FALSE(fs::exists(stale_tmp));
  EXPECT_TRUE(fs::exists(stale_old));
  EXPECT_TRUE(fs::exists(live_tmp));
  // With the target whole, the set-aside copy is garbage.
  fs::create_directories(target);
  const fs::path next = fresh_build_dir(target);
  EXPECT_FALSE(fs::exists(stale_old));
  EXPECT_TRUE(fs::exists(live_tmp));
  EXPECT_FALSE(fs::exists(next));  // a name, not yet a directory
  EXPECT_EQ(next.parent_path(), root_);
}

}  // namespace
}  // namespace aha

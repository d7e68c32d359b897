// Atomic-write temporaries of a killed writer (issue 23, finding 11): SIGTERM and SIGINT remove
// them before the process dies; after SIGKILL, which cannot be caught, the next atomic write of
// the same path removes them.
#include "core/temporary_files.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "core/files.h"

namespace fs = std::filesystem;

namespace {

class TemporaryFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_temporaries_" + std::to_string(::getpid()));
    aha::remove_tree(dir_);
    fs::create_directories(dir_);
    target_ = dir_ / "out.jsonl";
  }
  void TearDown() override { aha::remove_tree(dir_); }

  // Names in dir_ other than the target itself.
  std::vector<std::string> others() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path() != target_) names.push_back(e.path().filename().string());
    return names;
  }

  // Forks a writer that has written part of target_ through AtomicFileWriter and waits;
  // returns its pid once the temporary exists.
  pid_t start_writer() {
    int ready[2];
    EXPECT_EQ(::pipe(ready), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(ready[0]);
      aha::AtomicFileWriter writer(target_);
      writer.write("partial", 7);
      char byte = 1;
      if (::write(ready[1], &byte, 1) != 1) ::_exit(2);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char byte = 0;
    EXPECT_EQ(::read(ready[0], &byte, 1), 1);
    ::close(ready[0]);
    return pid;
  }

  fs::path dir_, target_;
};

TEST_F(TemporaryFiles, SigkilledWritersTemporaryIsRemovedByTheNextWrite) {
  const pid_t pid = start_writer();
  const std::string expected = "out.jsonl.tmp-" + std::to_string(pid) + "-";
  auto left = others();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].rfind(expected, 0), 0u) << left[0];
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  // Wait for it to die but do not reap it yet: a killed process stays a zombie until its parent
  // reaps it, and still answers kill(pid, 0); the sweep must see it as gone all the same.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
  ASSERT_EQ(info.si_code, CLD_KILLED);
  EXPECT_EQ(others().size(), 1u);  // SIGKILL cannot be caught: the temporary is still there

  aha::write_file_atomic(target_, "complete");
  EXPECT_TRUE(others().empty());
  EXPECT_EQ(aha::read_file(target_), "complete");
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
}

TEST_F(TemporaryFiles, SigtermRemovesTheTemporaryAndStillKillsTheProcess) {
  for (int sig : {SIGTERM, SIGINT}) {
    struct sigaction current {};
    ::sigaction(sig, nullptr, &current);
    // A shell without job control starts background jobs with SIGINT ignored; the handler is
    // then (rightly) not installed and the signal would not end the writer.
    if (current.sa_handler == SIG_IGN) continue;
    const pid_t pid = start_writer();
    ASSERT_EQ(others().size(), 1u);
    ASSERT_EQ(::kill(pid, sig), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    // Died of the signal itself (not a normal exit), as without the handler.
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "signal " << sig << " status " << status;
    EXPECT_TRUE(others().empty()) << "signal " << sig;
    EXPECT_FALSE(fs::exists(target_));  // never committed
  }
}

TEST_F(TemporaryFiles, SweepKeepsLiveOwnersAndOtherNames) {
  // A dead pid: a child that has exited and been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  const std::string d = std::to_string(dead);
  const std::vector<std::string> kept = {
      "out.jsonl.tmp-1-0",                                   // pid 1 is alive
      "out.jsonl.tmp-" + std::to_string(::getpid()) + "-7",  // this process's own
      "other.jsonl.tmp-" + d + "-0",                         // another file's
      "out.jsonl.tmp-" + d + "-x",                           // not unique_sibling's form
      "out.jsonl.tmp-" + d,
      "out.jsonl.old-" + d + "-0",  // another tag
  };
  for (const auto& name : kept) std::ofstream(dir_ / name) << "x";
  std::ofstream(dir_ / ("out.jsonl.tmp-" + d + "-3")) << "stale";
  fs::create_directories(dir_ / ("out.jsonl.tmp-" + d + "-4") / "inner");  // a stale tree
  EXPECT_EQ(aha::remove_stale_siblings(target_, "tmp"), 2u);
  auto left = others();
  std::sort(left.begin(), left.end());
  auto expected = kept;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(left, expected);
}

TEST_F(TemporaryFiles, RegistryReleasesSlots) {
  // More registrations than slots, released as they go: none may leak a slot.
  for (int i = 0; i < 1000; ++i) {
    const int slot = aha::track_temporary(dir_ / std::to_string(i));
    ASSERT_GE(slot, 0);
    aha::release_temporary(slot);
  }
  EXPECT_EQ(aha::track_temporary(std::string(5000, 'x')), -1);  // longer than PATH_MAX
  aha::release_temporary(-1);                                      // ignored
}

}  // namespace

// A rank that dies (SIGKILL) or hangs (SIGSTOP) makes the others stop with an error naming it,
// never a silent hang: run_world fails the test if a rank is still running at its limit.
#include <gtest/gtest.h>

#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {
namespace {

TEST(PeerFailure, AKilledRankIsNamedByTheOthers) {
  auto ranks = run_world("killed_peer", 3, {{"AHA_TEST_VICTIM", "2"}}, {}, /*limit_seconds=*/60);
  EXPECT_EQ(ranks[2].signal, SIGKILL);
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(ranks[r].exit_code, 0) << ranks[r].stderr_text;
    EXPECT_NE(ranks[r].stderr_text.find("rank 2"), std::string::npos) << "rank " << r << ": " << ranks[r].stderr_text;
  }
}

TEST(PeerFailure, AHungRankIsNamedByTheHeartbeat) {
  // Rank 1 stops itself; rank 0 is blocked in an all-reduce whose own timeout (60 s) is far
  // off, so only the heartbeat (3 s) can end it, with rank 1's name and last activity.
  auto ranks = run_world("hung_peer", 2, {{"AHA_TEST_VICTIM", "1"}, {"AHA_TEST_HEARTBEAT_TIMEOUT", "3"}}, {},
                         /*limit_seconds=*/50, /*end_when_rank0_exits=*/true);
  EXPECT_EQ(ranks[0].exit_code, 1) << ranks[0].stderr_text;
  EXPECT_NE(ranks[0].stderr_text.find("rank 1 stopped responding"), std::string::npos) << ranks[0].stderr_text;
  EXPECT_NE(ranks[0].stderr_text.find("test all-reduce loop"), std::string::npos) << ranks[0].stderr_text;
}

// Rank 0 is a rank like the others: the store is the launcher's (run_world's), so it outlives
// rank 0, and rank 1 learns of the death from the broken collective and the heartbeat.
TEST(PeerFailure, ADeadRankZeroIsNamed) {
  auto ranks = run_world("killed_peer", 2, {{"AHA_TEST_VICTIM", "0"}}, {}, /*limit_seconds=*/60);
  EXPECT_EQ(ranks[0].signal, SIGKILL);
  EXPECT_NE(ranks[1].exit_code, 0);
  EXPECT_NE(ranks[1].stderr_text.find("rank 0"), std::string::npos) << ranks[1].stderr_text;
}

}  // namespace
}  // namespace aha::parallel::testing

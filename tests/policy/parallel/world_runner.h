// Runs a world of N ranks for a test: this test binary started N times with torchrun's
// variables on a free loopback port and AHA_PARALLEL_WORKER=<scenario> (main.cpp dispatches
// to the scenario instead of the tests); each rank's stderr goes to its own file.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace aha::parallel {
class Communicator;
}

namespace aha::parallel::testing {

struct RankOutcome {
  int exit_code = -1;   // -1: killed by a signal (or still running when the world was ended)
  int signal = 0;
  std::string stderr_text;
};

// Starts the ranks and waits for all of them; a rank still running after `limit_seconds`
// (a hang: the test fails then) is killed; with end_when_rank0_exits the other ranks are
// killed as soon as rank 0 has exited (for scenarios where a rank stops itself). `env` is added to every rank's environment, and
// `rank_env[r]` to rank r's.
std::vector<RankOutcome> run_world(const std::string& scenario, int world_size,
                                   const std::map<std::string, std::string>& env = {},
                                   const std::map<int, std::map<std::string, std::string>>& rank_env = {},
                                   int limit_seconds = 120, bool end_when_rank0_exits = false);

// The scenarios (scenarios.cpp), each run inside one rank; the exit code is the process's.
int run_scenario(const std::string& name);

// Inside a scenario: this rank's Gloo communicator on the CPU, with the tests' timeouts (a
// 60 s collective timeout, a 10 s heartbeat timeout unless AHA_TEST_HEARTBEAT_TIMEOUT says).
std::shared_ptr<Communicator> connect_scenario_rank();

// The learning rate of the "trainer_step" scenario and of the one-process runs it is compared
// with. 1e-4, not larger: AdamW divides by sqrt(v), so float32 summation-order noise in a
// near-zero gradient becomes ~1e-3 of lr in its update (1.4e-6 at lr 1e-3 on an AMD EPYC),
// while a lost gradient still moves weights by ~lr, far above the 1e-6 the tests compare within.
inline constexpr double kTrainerStepLr = 1e-4;

}  // namespace aha::parallel::testing

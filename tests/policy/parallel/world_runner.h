// Runs a world of N ranks for a test: this test binary started N times with torchrun's
// variables and AHA_PARALLEL_WORKER=<scenario> (main.cpp dispatches to the scenario instead of
// the tests); each rank's stderr goes to its own file. As under torchrun, the rendezvous store
// is the launcher's: this process serves it (store_host.h) while the world runs.
// run_world_results also reads back the result files each rank wrote.
#pragma once
#include <fstream>
#include <functional>
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
// `rank_env[r]` to rank r's, each replacing the variables of the same name set before it
// (torchrun's among them).
std::vector<RankOutcome> run_world(const std::string& scenario, int world_size,
                                   const std::map<std::string, std::string>& env = {},
                                   const std::map<int, std::map<std::string, std::string>>& rank_env = {},
                                   int limit_seconds = 120, bool end_when_rank0_exits = false);

// A rank's result files, as the scenarios write them: its numbers as text at `base` (the
// AHA_PARALLEL_OUT path + ".rank<r>") and its tensors beside it (base + ".weights.pt", ...).
struct RankFiles {
  std::string base;
  std::string path(const std::string& suffix) const { return base + suffix; }
  bool has(const std::string& suffix) const;
  std::ifstream numbers() const { return std::ifstream(base); }
};

// Runs `scenario` on `world_size` ranks (run_world) with AHA_PARALLEL_OUT added to `env`: a path
// in a fresh temporary directory, removed after. Every rank must exit with 0 (else a test failure
// with that rank's stderr for each one that did not, and false, nothing read); then
// read(r, rank r's files) for each rank in order, and true.
bool run_world_reading(const std::string& scenario, int world_size, std::map<std::string, std::string> env,
                       const std::function<void(int rank, const RankFiles& files)>& read);

// The same, each rank's files read into its Result: read(files, results[r]). Empty when a rank failed.
template <class Result, class Read>
std::vector<Result> run_world_results(const std::string& scenario, int world_size,
                                      std::map<std::string, std::string> env, Read read) {
  std::vector<Result> results(world_size);
  const bool ok = run_world_reading(scenario, world_size, std::move(env),
                                    [&](int rank, const RankFiles& files) { read(files, results[rank]); });
  return ok ? results : std::vector<Result>{};
}

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

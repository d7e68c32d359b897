// The test binary's own main: started with AHA_PARALLEL_WORKER set (world_runner.h), it is one
// rank of a test's world and runs that scenario instead of the tests.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/policy/parallel/world_runner.h"

int main(int argc, char** argv) {
  if (const char* scenario = std::getenv("AHA_PARALLEL_WORKER")) return aha::parallel::testing::run_scenario(scenario);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

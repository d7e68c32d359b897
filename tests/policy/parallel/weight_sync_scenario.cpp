// The weight_sync scenario of weight_sync_test.cpp, run inside each rank: the root holds seeded
// tensors of several dtypes and version 7, the others zeros and -1; after sync_weights every
// rank compares its tensors with the seeded ones and writes "equal" or "differ", the version,
// the bucket count and the bytes.
#include <cstdlib>
#include <fstream>

#include "policy/parallel/communicator.h"
#include "tests/policy/parallel/world_runner.h"
#include "policy/parallel/weight_sync.h"

namespace aha::parallel::testing {

int weight_sync_scenario() {
  auto comm = connect_scenario_rank();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  // Bucket plan at 32 bytes: [f32[4], f32[2]], [bf16[8]], [f32[10]], [f32[1], int64[3]].
  std::vector<torch::Tensor> expected = {torch::randn({4}, gen), torch::randn({2}, gen),
                                         torch::randn({2, 4}, gen).to(torch::kBFloat16), torch::randn({2, 5}, gen),
                                         torch::randn({1}, gen), torch::randint(-1000, 1000, {3}, gen, torch::kInt64)};
  std::vector<torch::Tensor> mine;
  for (const auto& t : expected) mine.push_back(comm->rank() == 0 ? t.clone() : torch::zeros_like(t));
  // A parameter that requires grad is written in place too (the rollout's policy).
  mine[3].requires_grad_(true);
  const auto result = sync_weights(*comm, mine, comm->rank() == 0 ? 7 : -1, 0, 32);
  bool equal = true;
  for (size_t i = 0; i < mine.size(); ++i) equal = equal && torch::equal(mine[i].detach(), expected[i]);
  std::ofstream out(std::string(std::getenv("AHA_PARALLEL_OUT")) + ".rank" + std::to_string(comm->rank()));
  out << (equal ? "equal" : "differ") << " " << result.version << " " << result.buckets << " " << result.bytes << "\n";
  out.close();
  comm->finish();
  return 0;
}

}  // namespace aha::parallel::testing

// zero_masters_test.cpp's optimizer run (zero_masters_run.h) as one rank: sharding
// AHA_TEST_SHARDING, masters unless AHA_TEST_MASTERS=0, clipping at AHA_TEST_CLIP (default none),
// steps [AHA_TEST_FIRST, AHA_TEST_LAST), p0 written before step AHA_TEST_WRITE_AT; resumed from
// the directory AHA_TEST_LOAD first (weights.pt, and optimizer/ shards or optimizer.pt), saved
// into AHA_TEST_SAVE after (the same layout). Writes its weights, its master range (the shards'
// pieces) and its optimizer state bytes.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "policy/learner/optimizer_shards.h"
#include "policy/learner/sharded_adamw.h"
#include "policy/parallel/communicator.h"
#include "tests/policy/learner/trainer_test_util.h"
#include "tests/policy/parallel/world_runner.h"
#include "tests/policy/parallel/zero_masters_run.h"

namespace aha::parallel::testing {
namespace fs = std::filesystem;

int zero_masters_scenario() {
  policy::testing::one_thread();
  auto comm = connect_scenario_rank();
  auto env = [](const char* name, const std::string& otherwise = "") -> std::string {
    const char* v = std::getenv(name);
    return v ? v : otherwise;
  };
  auto p = masters_params();
  policy::Optimizer opt(p.groups(), masters_options(env("AHA_TEST_MASTERS", "1") == "1", std::stod(env("AHA_TEST_CLIP", "0"))));
  opt.shard(comm, policy::parse_sharding(env("AHA_TEST_SHARDING")), p.named());
  const bool zero2 = opt.sharding() == policy::Sharding::zero2;
  if (const auto load = env("AHA_TEST_LOAD"); !load.empty()) {
    std::vector<torch::Tensor> weights;
    torch::load(weights, load + "/weights.pt");
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < weights.size(); ++i) p.named()[i].second.copy_(weights[i]);
    }
    if (fs::exists(load + "/optimizer/index.json"))
      opt.load_shards(load + "/optimizer", p.named());
    else
      opt.load(load + "/optimizer.pt");
  }
  const int64_t write_at = std::stoll(env("AHA_TEST_WRITE_AT", "-1"));
  const auto [begin, end] = opt.sharded()->layout().range(comm->rank());
  for (int64_t k = std::stoll(env("AHA_TEST_FIRST", "0")); k < std::stoll(env("AHA_TEST_LAST")); ++k) {
    if (k == write_at) masters_write(p);
    const auto g = masters_grads(k);
    if (zero2) {  // the rank's range of the (reduced) gradient alone, as the gradient sync leaves it
      opt.sharded()->set_shard_grad(torch::cat({g[0].reshape({-1}), g[1].reshape({-1}), g[2].reshape({-1})})
                                        .narrow(0, begin, end - begin)
                                        .clone());
    } else {
      for (size_t i = 0; i < g.size(); ++i) p.named()[i].second.mutable_grad() = g[i];
    }
    opt.step();
  }
  if (const auto save = env("AHA_TEST_SAVE"); !save.empty()) {
    fs::create_directories(save + "/optimizer");
    if (comm->rank() == 0) torch::save(masters_weights(p), save + "/weights.pt");
    opt.save_shards(save + "/optimizer", p.named());
  }
  std::vector<torch::Tensor> masters;
  for (const auto& piece : opt.sharded()->piece_states())
    if (piece.master.defined()) masters.push_back(piece.master);
  const std::string out = std::string(std::getenv("AHA_PARALLEL_OUT")) + ".rank" + std::to_string(comm->rank());
  torch::save(masters_weights(p), out + ".weights.pt");
  torch::save(masters.empty() ? torch::zeros({0}) : torch::cat(masters), out + ".masters.pt");
  std::ofstream(out) << opt.state_bytes() << " " << opt.step_count() << " " << begin << " " << end;
  comm->finish();
  return 0;
}

}  // namespace aha::parallel::testing

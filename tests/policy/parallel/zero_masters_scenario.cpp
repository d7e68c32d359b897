// zero_masters_test.cpp's optimizer run (zero_masters_run.h) as one rank: sharding
// AHA_TEST_SHARDING, masters unless AHA_TEST_MASTERS=0, clipping at AHA_TEST_CLIP (default none),
// steps [AHA_TEST_FIRST, AHA_TEST_LAST), p0 written before step AHA_TEST_WRITE_AT, parameter
// AHA_TEST_FLOAT32_PARAM float32 (a mixed-dtype model), AHA_TEST_GATHER_ROUND elements per rank
// in each round of the weights' all-gathers (default: the bucket's); resumed from the directory
// AHA_TEST_LOAD first (weights.pt, and optimizer/ shards or optimizer.pt), saved into
// AHA_TEST_SAVE after (the same layout). Writes its weights, its master range (the shards'
// pieces), its optimizer state bytes and the bytes it gave the weights' all-gathers.
// masters_lookup (below) checks master_of's look-ups.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

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
  auto p = masters_params(std::stoi(env("AHA_TEST_FLOAT32_PARAM", "-1")));
  policy::Optimizer opt(p.groups(), masters_options(env("AHA_TEST_MASTERS", "1") == "1", std::stod(env("AHA_TEST_CLIP", "0"))));
  opt.shard(comm, policy::parse_sharding(env("AHA_TEST_SHARDING")), p.named());
  const bool zero2 = opt.sharding() == policy::Sharding::zero2;
  if (const auto round = env("AHA_TEST_GATHER_ROUND"); !round.empty())
    opt.sharded()->set_gather_round_elements(std::stoll(round));
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
    const auto g = masters_grads(k, p);
    if (zero2) {  // the rank's range of the (reduced) gradient alone, as the gradient sync leaves it
      // (float32 when a parameter is: in the widest dtype, as gradient_sync.h hands it over, each
      // bucket having been summed in its own dtype)
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
  std::ofstream(out) << opt.state_bytes() << " " << opt.step_count() << " " << begin << " " << end << " "
                     << opt.sharded()->gathered_bytes();
  comm->finish();
  return 0;
}

namespace {

// masters_lookup's parameters on one rank: 120 of sizes 1..7, float32 every fifth and bf16 the
// others, in two groups; every fourth bf16 one rank-local (its slice: the value of its number plus
// rank / 2, so each rank's differs), the others replicated (the value of its number).
struct LookupParams {
  std::vector<std::pair<std::string, torch::Tensor>> all;
  std::vector<bool> local;
  std::vector<float> value;
  std::vector<std::pair<size_t, size_t>> position;  // in groups(): group, index in it
  std::vector<policy::ParamGroup> groups() const {
    std::vector<policy::ParamGroup> g = {{"decay", {}, 0.01, 1.0}, {"no_decay", {}, 0.0, 1.0}};
    for (size_t i = 0; i < all.size(); ++i) g[position[i].first].params.push_back(all[i].second);
    return g;
  }
  std::vector<std::pair<std::string, torch::Tensor>> sharded() const {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (size_t i = 0; i < all.size(); ++i)
      if (!local[i]) out.push_back(all[i]);
    return out;
  }
  std::vector<torch::Tensor> rank_local() const {
    std::vector<torch::Tensor> out;
    for (size_t i = 0; i < all.size(); ++i)
      if (local[i]) out.push_back(all[i].second);
    return out;
  }
};

LookupParams lookup_params(int rank) {
  LookupParams p;
  size_t in_group[2] = {0, 0};
  for (int i = 0; i < 120; ++i) {
    const auto dtype = i % 5 == 3 ? torch::kFloat32 : torch::kBFloat16;
    const bool local = dtype == torch::kBFloat16 && i % 4 == 0;
    const float value = float(i) + (local ? 0.5f * rank : 0.0f);  // exact in bf16
    p.all.emplace_back(c10::str("p", i), torch::full({1 + i % 7}, value).to(dtype).requires_grad_(true));
    p.local.push_back(local);
    p.value.push_back(value);
    p.position.emplace_back(i % 2, in_group[i % 2]++);
  }
  return p;
}

void lookup_grads(LookupParams& p) {
  for (size_t i = 0; i < p.all.size(); ++i) {
    auto& t = p.all[i].second;
    t.mutable_grad() = torch::full_like(t, 1.0 + double(i % 3));
  }
}

}  // namespace

// zero_masters_test.cpp's MastersLookup, on one rank: lookup_params' parameters with float32
// masters, the rank-local ones set (set_rank_local), the others sharded zero1. master_of must
// give each rank-local parameter its own master (AdamW's tensor at its position, holding its
// values) and the others none, and the shards' pieces' masters must be their weights, before and
// after a step; then an unsharded optimizer.pt of the same parameters loaded into it must leave
// exactly the rank-local parameters' state in AdamW, as the unsharded optimizer held it, and the
// pieces' masters as its masters. Exits 1 after printing each mismatch.
int masters_lookup_scenario() {
  policy::testing::one_thread();
  auto comm = connect_scenario_rank();
  const int rank = comm->rank();
  int failures = 0;
  auto expect = [&](bool ok, const std::string& what) {
    if (ok) return;
    std::fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
    ++failures;
  };
  auto p = lookup_params(rank);
  policy::Optimizer opt(p.groups(), masters_options(true, 0));
  opt.set_rank_local(comm, p.rank_local());
  opt.shard(comm, policy::Sharding::zero1, p.sharded());
  std::map<std::string, torch::Tensor> by_name(p.all.begin(), p.all.end());

  // Each rank-local parameter's master is its own; the pieces' masters are the pieces' weights
  // (`masters_of(name)`: the whole parameter's masters those should be).
  auto check = [&](const std::string& when, const std::function<torch::Tensor(const std::string&)>& masters_of) {
    for (size_t i = 0; i < p.all.size(); ++i) {
      const auto& [name, t] = p.all[i];
      const auto master = opt.master_of(t);
      const auto& held = opt.adamw().param_groups()[p.position[i].first].params()[p.position[i].second];
      const std::string what = when + ": " + name;
      if (!p.local[i]) {
        expect(!master.defined(), what + " is not rank-local, yet master_of gives a master");
        expect(held.unsafeGetTensorImpl() == t.unsafeGetTensorImpl(), what + ": AdamW holds another tensor in its place");
        continue;
      }
      if (!master.defined() || master.sizes() != t.sizes()) {
        expect(false, what + ": no master of its size");
        continue;
      }
      expect(master.unsafeGetTensorImpl() == held.unsafeGetTensorImpl(), what + "'s master is not AdamW's tensor");
      expect(torch::equal(master.to(torch::kBFloat16), t.detach()), what + ": the weights are not the master's rounding");
      expect((master - p.value[i]).abs().max().item<float>() < 0.01f, what + "'s master holds another's values");
    }
    for (const auto& piece : opt.sharded()->piece_states()) {
      const auto& t = by_name.at(piece.name);
      const std::string what = when + ": the piece " + piece.name + "@" + std::to_string(piece.offset);
      // A float32 parameter's master is its weights.
      const auto whole = t.scalar_type() == torch::kFloat32 ? t.detach() : masters_of(piece.name);
      expect(piece.master.defined() &&
                 torch::equal(piece.master, whole.reshape({-1}).narrow(0, piece.offset, piece.master.numel())),
             what + " has other masters");
    }
  };
  // The same parameters unsharded, one step (no clipping: the same update, element by element).
  auto whole = lookup_params(rank);
  policy::Optimizer reference(whole.groups(), masters_options(true, 0));
  lookup_grads(whole);
  reference.step();
  std::map<std::string, torch::Tensor> whole_by_name(whole.all.begin(), whole.all.end());
  auto reference_masters = [&](const std::string& name) { return reference.master_of(whole_by_name.at(name)); };

  check("before a step", [&](const std::string& name) { return by_name.at(name).detach().to(torch::kFloat32); });
  lookup_grads(p);
  opt.step();
  check("after a step", reference_masters);

  // The reference saved and loaded into the sharded optimizer.
  const std::string path =
      std::string(std::getenv("AHA_PARALLEL_OUT")) + ".rank" + std::to_string(rank) + ".optimizer.pt";
  reference.save(path);
  opt.load(path);
  std::filesystem::remove(path);
  const auto& state = opt.adamw().state();
  expect(state.size() == p.rank_local().size(), "after the load AdamW holds " + std::to_string(state.size()) +
                                                    " states, the rank-local parameters are " +
                                                    std::to_string(p.rank_local().size()));
  for (size_t i = 0; i < p.all.size(); ++i) {
    if (!p.local[i]) continue;
    const auto& name = p.all[i].first;
    const auto mine = state.find(opt.master_of(p.all[i].second).unsafeGetTensorImpl());
    const auto want = reference.adamw().state().find(reference.master_of(whole.all[i].second).unsafeGetTensorImpl());
    if (mine == state.end() || want == reference.adamw().state().end()) {
      expect(false, "after the load: " + name + " has no AdamW state");
      continue;
    }
    const auto& a = static_cast<const torch::optim::AdamWParamState&>(*mine->second);
    const auto& b = static_cast<const torch::optim::AdamWParamState&>(*want->second);
    expect(torch::equal(a.exp_avg(), b.exp_avg()) && torch::equal(a.exp_avg_sq(), b.exp_avg_sq()),
           "after the load: " + name + "'s moments are not the unsharded optimizer's");
  }
  check("after the load", reference_masters);
  comm->finish();
  return failures == 0 ? 0 : 1;
}

}  // namespace aha::parallel::testing

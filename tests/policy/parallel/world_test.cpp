// The world from the launcher's environment (policy/parallel/world.h): torchrun, Slurm's srun,
// a single process, and partial or inconsistent variables as errors that name them; and where
// the ranks meet: the launcher's store, or rank 0's.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "core/files.h"
#include "policy/parallel/communicator.h"
#include "policy/parallel/store_host.h"
#include "policy/parallel/world.h"
#include "tests/policy/parallel/world_runner.h"
#include "tests/test_util.h"

namespace aha::parallel {
namespace {

using Vars = std::map<std::string, std::string>;

World world_of(const Vars& vars) {
  return world_from_environment([&](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  });
}
std::string error_of(const Vars& vars) { return test::error_of([&] { world_of(vars); }); }

const Vars kTorchrun = {{"RANK", "5"},        {"WORLD_SIZE", "8"},         {"LOCAL_RANK", "1"},
                        {"LOCAL_WORLD_SIZE", "4"}, {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29400"}};

TEST(World, NoLauncherIsOneProcess) {
  auto w = world_of({{"PATH", "/bin"}});
  EXPECT_EQ(w.world_size, 1);
  EXPECT_EQ(w.rank, 0);
  EXPECT_FALSE(w.distributed());
  EXPECT_EQ(w.launcher, "single");
}

TEST(World, Torchrun) {
  auto w = world_of(kTorchrun);
  EXPECT_EQ(w.launcher, "torchrun");
  EXPECT_EQ(w.rank, 5);
  EXPECT_EQ(w.world_size, 8);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.local_world_size, 4);
  EXPECT_EQ(w.master_addr, "node0");
  EXPECT_EQ(w.master_port, 29400);
  EXPECT_TRUE(w.distributed());
}

TEST(World, PartialTorchrunNamesTheMissingVariables) {
  auto vars = kTorchrun;
  vars.erase("MASTER_ADDR");
  vars.erase("LOCAL_WORLD_SIZE");
  const auto e = error_of(vars);
  EXPECT_NE(e.find("LOCAL_WORLD_SIZE, MASTER_ADDR not set"), std::string::npos) << e;
  EXPECT_NE(error_of({{"RANK", "0"}}).find("WORLD_SIZE"), std::string::npos);
}

TEST(World, InconsistentValuesNameTheVariable) {
  auto vars = kTorchrun;
  vars["RANK"] = "8";
  EXPECT_NE(error_of(vars).find("RANK=8 is not below WORLD_SIZE=8"), std::string::npos) << error_of(vars);
  vars = kTorchrun;
  vars["LOCAL_RANK"] = "4";
  EXPECT_NE(error_of(vars).find("LOCAL_RANK=4 is not below LOCAL_WORLD_SIZE=4"), std::string::npos);
  vars = kTorchrun;
  vars["MASTER_PORT"] = "70000";
  EXPECT_NE(error_of(vars).find("MASTER_PORT=70000"), std::string::npos);
  vars = kTorchrun;
  vars["WORLD_SIZE"] = "eight";
  EXPECT_NE(error_of(vars).find("WORLD_SIZE=eight is not an integer"), std::string::npos);
  vars = kTorchrun;
  vars["LOCAL_WORLD_SIZE"] = "16";
  EXPECT_NE(error_of(vars).find("LOCAL_WORLD_SIZE=16 exceeds WORLD_SIZE=8"), std::string::npos);
}

TEST(World, TorchrunsAgentStore) {
  EXPECT_FALSE(world_of(kTorchrun).agent_store);
  for (const char* yes : {"True", "true", "1"}) {
    auto vars = kTorchrun;
    vars["TORCHELASTIC_USE_AGENT_STORE"] = yes;
    EXPECT_TRUE(world_of(vars).agent_store) << yes;
  }
  for (const char* no : {"False", "false", "0"}) {
    auto vars = kTorchrun;
    vars["TORCHELASTIC_USE_AGENT_STORE"] = no;
    EXPECT_FALSE(world_of(vars).agent_store) << no;
  }
  auto vars = kTorchrun;
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "yes";
  EXPECT_NE(error_of(vars).find("TORCHELASTIC_USE_AGENT_STORE=yes is not True, true, 1, False, false or 0"),
            std::string::npos)
      << error_of(vars);
}

const Vars kSrun = {{"SLURM_STEP_ID", "0"},          {"SLURM_PROCID", "3"},
                    {"SLURM_STEP_NUM_TASKS", "6"},   {"SLURM_LOCALID", "0"},
                    {"SLURM_NODEID", "1"},           {"SLURM_STEP_TASKS_PER_NODE", "3(x2)"},
                    {"SLURM_STEP_NODELIST", "gpu[07-08]"}, {"SLURM_JOB_ID", "123456"}};

TEST(World, SlurmStep) {
  auto w = world_of(kSrun);
  EXPECT_EQ(w.launcher, "slurm");
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.world_size, 6);
  EXPECT_EQ(w.local_rank, 0);
  EXPECT_EQ(w.local_world_size, 3);
  EXPECT_EQ(w.master_addr, "gpu07");
  EXPECT_EQ(w.master_port, 29500 + 456);
  auto vars = kSrun;
  vars["MASTER_ADDR"] = "login1";
  vars["MASTER_PORT"] = "40000";
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "True";  // torchrun's, not srun's: no agent serves a store
  w = world_of(vars);
  EXPECT_EQ(w.master_addr, "login1");
  EXPECT_EQ(w.master_port, 40000);
  EXPECT_FALSE(w.agent_store);
}

TEST(World, SlurmBatchScriptOutsideSrunIsOneProcess) {
  auto w = world_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_JOB_ID", "9"}});
  EXPECT_FALSE(w.distributed());
}

TEST(World, PartialSlurmNamesTheVariable) {
  auto vars = kSrun;
  vars.erase("SLURM_LOCALID");
  EXPECT_NE(error_of(vars).find("SLURM_LOCALID is not set"), std::string::npos) << error_of(vars);
  vars = kSrun;
  vars["SLURM_NODEID"] = "2";
  EXPECT_NE(error_of(vars).find("SLURM_STEP_TASKS_PER_NODE=3(x2)"), std::string::npos) << error_of(vars);
}

TEST(World, SlurmHostListsAndTaskCounts) {
  EXPECT_EQ(first_slurm_host("gpu[03-05,9],cpu1"), "gpu03");
  EXPECT_EQ(first_slurm_host("node7,node8"), "node7");
  EXPECT_EQ(first_slurm_host("a[1,3]"), "a1");
  EXPECT_EQ(slurm_tasks_on_node("2(x3),1", 0), 2);
  EXPECT_EQ(slurm_tasks_on_node("2(x3),1", 2), 2);
  EXPECT_EQ(slurm_tasks_on_node("2(x3),1", 3), 1);
  EXPECT_EQ(slurm_tasks_on_node("4", 0), 4);
}

// The launcher's store (store_host.h) as torchrun's agent serves it: the ranks meet there and
// all-reduce, rank 0 a client like the others. (Were rank 0 to try serving on that port, c10d
// would log "The server socket on <port> has failed to bind" and then connect anyway.)
TEST(World, RanksMeetAtTheLaunchersStore) {
  StoreHost host;
  const auto dir = std::filesystem::temp_directory_path() / ("aha-agent-store-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "out").string();
  const auto ranks = testing::run_world("rendezvous", 2,
                                        {{"MASTER_PORT", std::to_string(host.port())},
                                         {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                         {"AHA_PARALLEL_OUT", out}});
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(ranks[r].exit_code, 0) << ranks[r].stderr_text;
    EXPECT_EQ(ranks[r].stderr_text.find("failed to bind"), std::string::npos) << ranks[r].stderr_text;
    double sum = 0;
    int agent_store = 0;
    std::ifstream(out + ".rank" + std::to_string(r)) >> sum >> agent_store;
    EXPECT_EQ(sum, 3.0) << "rank " << r;
    EXPECT_EQ(agent_store, 1) << "rank " << r;
  }
  remove_tree(dir);
  c10d::TCPStoreOptions client;
  client.port = static_cast<uint16_t>(host.port());
  EXPECT_EQ(c10d::TCPStore("127.0.0.1", client).add("aha/joined", 0), 2);
}

// Without TORCHELASTIC_USE_AGENT_STORE rank 0 serves the store itself (as under srun): on a port
// that the launcher's store already holds, it fails, naming the port.
TEST(World, WithoutTheAgentStoreRankZeroServesTheStore) {
  StoreHost host;
  const std::string port = std::to_string(host.port());
  const auto ranks =
      testing::run_world("rendezvous", 2, {{"MASTER_PORT", port}, {"TORCHELASTIC_USE_AGENT_STORE", "False"}}, {},
                         /*limit_seconds=*/60, /*end_when_rank0_exits=*/true);
  EXPECT_NE(ranks[0].exit_code, 0);
  EXPECT_NE(ranks[0].stderr_text.find("rank 0: rendezvous with 127.0.0.1:" + port + " failed"), std::string::npos)
      << ranks[0].stderr_text;
  EXPECT_NE(ranks[0].stderr_text.find("EADDRINUSE"), std::string::npos) << ranks[0].stderr_text;
}

TEST(World, SharesCoverTheRowsOnce) {
  EXPECT_EQ(share_of(10, 0, 4), (std::pair<int64_t, int64_t>(0, 3)));
  EXPECT_EQ(share_of(10, 1, 4), (std::pair<int64_t, int64_t>(3, 6)));
  EXPECT_EQ(share_of(10, 2, 4), (std::pair<int64_t, int64_t>(6, 8)));
  EXPECT_EQ(share_of(10, 3, 4), (std::pair<int64_t, int64_t>(8, 10)));
}

TEST(World, BackendNames) {
  EXPECT_EQ(parse_backend("gloo"), BackendKind::gloo);
  EXPECT_EQ(parse_backend("nccl"), BackendKind::nccl);
  EXPECT_EQ(parse_backend("auto"), BackendKind::automatic);
  EXPECT_NE(test::error_of([] { parse_backend("mpi"); }).find("auto, gloo, nccl"), std::string::npos);
}

}  // namespace
}  // namespace aha::parallel

// `aha train` data-parallel as a user meets it (issue 16): `--nproc-per-node 2` on a tiny
// recipe, torchrun-style environments started by hand, a rank killed mid-run, and --resume
// at the same and at another world size.
// Two CPU ranks with Gloo on loopback.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "core/files.h"
#include "core/run_store.h"
#include "tests/test_util.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
using test::shell_quoted;

class TrainParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = fs::path(AHA_BINARY_DIR) /
            ("train-parallel-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    remove_tree(work_);
    fs::create_directories(work_);
    std::ofstream(work_ / "config.json") << R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
      "hidden_act": "silu", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
      "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-06,
      "rope_theta": 10000.0, "tie_word_embeddings": true, "torch_dtype": "float32", "bos_token_id": 0,
      "eos_token_id": 2, "vocab_size": 3008})";
    const fs::path tokenizer = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/tokenizers/qwen2_style";
    auto m = test::run_aha_in(work_, "model init --config config.json --tokenizer " + shell_quoted(tokenizer.string()) +
                                         " --out model", true, 120);
    ASSERT_EQ(m.exit_status, 0) << m.out;
    std::ofstream(work_ / "recipe.json") << R"({
      "name": "dp-test",
      "model": {"path": "model", "device": "cpu", "threads": 1},
      "template": "chatml",
      "data": {"train": {"synthetic": "arithmetic", "n": 40, "seed": 1, "difficulty": 1},
               "eval": {"arith": {"synthetic": "arithmetic", "n": 4, "seed": 2, "difficulty": 1, "split": "heldout"}}},
      "rewards": [{"name": "accuracy", "kind": "math_accuracy"},
                  {"name": "length", "kind": "length", "weight": 1.0,
                   "options": {"max_length": 30, "buffer": 30, "unit": "characters"}}],
      "rollout": {"prompts_per_step": 4, "group_size": 4, "max_new_tokens": 6},
      "algorithm": {"lr": 0.01, "clip_eps_high": 0.28},
      "schedule": {"steps": 400, "seed": 5},
      "checkpoint": {"every": 1, "keep_last": 0},
      "eval": {"max_new_tokens": 4}
    })";
  }
  void TearDown() override { remove_tree(work_); }

  std::vector<double> series(const std::string& name) const {
    RunStore store(work_ / "run" / "run.db", {.read_only = true});
    std::vector<double> values;
    for (const auto& p : store.metric_series(store.stages().at(0).id, name)) values.push_back(p.value);
    return values;
  }

  // The completions that run/ sampled at `steps` are plain/'s (the same weights sampled them).
  void expect_samples_as_plain_run(const std::vector<int64_t>& steps) const {
    RunStore store(work_ / "run" / "run.db", {.read_only = true});
    RunStore plain_store(work_ / "plain" / "run.db", {.read_only = true});
    const auto stage = store.stages().at(0).id, plain_stage = plain_store.stages().at(0).id;
    for (int64_t step : steps) {
      const auto got = store.samples(stage, step), want = plain_store.samples(plain_stage, step);
      ASSERT_EQ(got.size(), want.size()) << step;
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(got[i].completion, want[i].completion) << "step " << step << " " << i;
    }
  }

  // Expert parallelism on the tiny MoE (init_moe, in moe/): plain data parallelism for 2 steps on
  // 2 ranks, then the run with `sets` samples as it did and checkpoints `written` (not `absent`);
  // the run then resumes for a step with expert parallelism (unsharded) and for one without it.
  void expect_expert_parallel_run(const std::string& sets, const std::vector<std::string>& written,
                                  const std::string& absent) {
    const std::string moe = " --set model.path=moe";
    auto plain = test::run_aha_in(work_, "train recipe.json --run-dir plain --quiet --nproc-per-node 2 --stop-after 2" + moe,
                                  true, 300);
    ASSERT_EQ(plain.exit_status, 0) << plain.out;
    auto r = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --nproc-per-node 2 --stop-after 2" + sets + moe,
                              true, 300);
    ASSERT_EQ(r.exit_status, 0) << r.out;
    EXPECT_EQ(series("train/sequences"), (std::vector<double>{16, 16}));
    expect_samples_as_plain_run({1, 2});
    const fs::path saved = work_ / "run" / "checkpoints" / "grpo" / "step-2";
    for (const auto& part : written) EXPECT_TRUE(fs::exists(saved / part)) << part;
    EXPECT_FALSE(fs::exists(saved / absent)) << absent;
    auto again = test::run_aha_in(work_,
                                  "train recipe.json --run-dir run --quiet --resume --nproc-per-node 2 --stop-after 1 "
                                  "--set parallel.expert_parallel=true" + moe,
                                  true, 300);
    ASSERT_EQ(again.exit_status, 0) << again.out;
    auto off = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --resume --nproc-per-node 2 --stop-after 1" + moe,
                                true, 300);
    ASSERT_EQ(off.exit_status, 0) << off.out;
    RunStore after(work_ / "run" / "run.db", {.read_only = true});
    EXPECT_EQ(*after.latest_step(after.stages().at(0).id), 4);
  }

  fs::path work_;
};

TEST_F(TrainParallel, TwoLocalRanksTrainTheWholeBatchAndOnlyRankZeroWrites) {
  auto r = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --nproc-per-node 2 --set schedule.steps=2",
                            true, 300);
  ASSERT_EQ(r.exit_status, 0) << r.out;
  EXPECT_NE(r.out.find("data parallel: 2 ranks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 steps"), std::string::npos) << r.out;
  // The learner saw the world's 4 prompts x 4 completions each step, not one rank's 8 rows.
  EXPECT_EQ(series("train/sequences"), (std::vector<double>{16, 16}));
  RunStore store(work_ / "run" / "run.db", {.read_only = true});
  ASSERT_EQ(store.stages().size(), 1u);  // one writer began one stage
  const auto stage = store.stages().at(0).id;
  EXPECT_EQ(store.samples(stage, 1).size(), 8u);  // rank 0's share: 2 groups of 4
  EXPECT_EQ(store.checkpoints(stage).size(), 2u);
  // Nothing but rank 0's run store and checkpoints in the run directory.
  std::set<std::string> top;
  for (const auto& e : fs::directory_iterator(work_ / "run")) top.insert(e.path().filename().string());
  top.erase("run.db-wal");
  top.erase("run.db-shm");
  EXPECT_EQ(top, (std::set<std::string>{"checkpoints", "run.db"}));
  std::set<std::string> steps;
  for (const auto& e : fs::directory_iterator(work_ / "run" / "checkpoints" / "grpo")) steps.insert(e.path().filename().string());
  EXPECT_EQ(steps, (std::set<std::string>{"step-1", "step-2"}));
}

// parallel.sharding zero2: every rank writes its optimizer shard (and RNG state) into the
// checkpoint, rank 0 the rest; one process then resumes from it unsharded (the sharding is not
// part of the recipe that --resume compares).
TEST_F(TrainParallel, ZeroTwoRanksCheckpointPerRankAndOneProcessResumes) {
  auto r = test::run_aha_in(
      work_, "train recipe.json --run-dir run --quiet --nproc-per-node 2 --stop-after 2 --set parallel.sharding=zero2",
      true, 300);
  ASSERT_EQ(r.exit_status, 0) << r.out;
  const fs::path saved = work_ / "run" / "checkpoints" / "grpo" / "step-2";
  for (const char* part : {"state.json", "model/config.json", "optimizer/index.json", "optimizer/rank-0.safetensors",
                           "optimizer/rank-1.safetensors", "rng/rank-0.pt", "rng/rank-1.pt", "rng.pt"})
    EXPECT_TRUE(fs::exists(saved / part)) << part;
  EXPECT_FALSE(fs::exists(saved / "optimizer.pt"));
  auto single = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --resume --stop-after 1", true, 300);
  ASSERT_EQ(single.exit_status, 0) << single.out;
  RunStore store(work_ / "run" / "run.db", {.read_only = true});
  EXPECT_EQ(*store.latest_step(store.stages().at(0).id), 3);
}

// A bf16 model with float32 master weights under zero2 (algorithm.fp32_master_weights): every
// rank writes its masters into its optimizer shard beside the moments, and 2 steps then a resume
// for the third end bit for bit where 3 uninterrupted steps end: the model and every shard.
TEST_F(TrainParallel, ZeroTwoWithFloat32MastersResumesBitForBit) {
  const std::string sets =
      " --set model.dtype=bfloat16 --set algorithm.fp32_master_weights=true --set parallel.sharding=zero2";
  auto straight = test::run_aha_in(
      work_, "train recipe.json --run-dir straight --quiet --nproc-per-node 2 --stop-after 3" + sets, true, 300);
  ASSERT_EQ(straight.exit_status, 0) << straight.out;
  auto first = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --nproc-per-node 2 --stop-after 2" + sets,
                                true, 300);
  ASSERT_EQ(first.exit_status, 0) << first.out;
  auto resumed = test::run_aha_in(
      work_, "train recipe.json --run-dir run --quiet --nproc-per-node 2 --resume --stop-after 1" + sets, true, 300);
  ASSERT_EQ(resumed.exit_status, 0) << resumed.out;
  const fs::path want = work_ / "straight" / "checkpoints" / "grpo" / "step-3";
  const fs::path got = work_ / "run" / "checkpoints" / "grpo" / "step-3";
  for (const char* part : {"model/model.safetensors", "optimizer/rank-0.safetensors", "optimizer/rank-1.safetensors"}) {
    ASSERT_TRUE(fs::exists(got / part)) << part;
    EXPECT_TRUE(read_file(got / part) == read_file(want / part)) << part << " differs from the uninterrupted run's";
  }
  EXPECT_NE(read_file(got / "optimizer" / "rank-1.safetensors").find("/master"), std::string::npos)
      << "the shards hold the masters";
}

// parallel.sharding zero3: the rollout decodes from the copy gathered after each update, so the
// second step samples what plain data parallelism samples (a stale copy, the first weights, would
// not: the first update at lr 0.01 moves them); the checkpoint holds the whole model and every
// rank's optimizer shard, and one process resumes from it unsharded.
TEST_F(TrainParallel, ZeroThreeSamplesFromTheUpdatedWeightsAndOneProcessResumes) {
  auto plain = test::run_aha_in(work_, "train recipe.json --run-dir plain --quiet --nproc-per-node 2 --stop-after 2",
                                true, 300);
  ASSERT_EQ(plain.exit_status, 0) << plain.out;
  auto r = test::run_aha_in(
      work_, "train recipe.json --run-dir run --quiet --nproc-per-node 2 --stop-after 2 --set parallel.sharding=zero3",
      true, 300);
  ASSERT_EQ(r.exit_status, 0) << r.out;
  EXPECT_EQ(series("train/sequences"), (std::vector<double>{16, 16}));
  expect_samples_as_plain_run({1, 2});
  const fs::path saved = work_ / "run" / "checkpoints" / "grpo" / "step-2";
  for (const char* part : {"model/config.json", "model/model.safetensors", "optimizer/index.json",
                           "optimizer/rank-0.safetensors", "optimizer/rank-1.safetensors"})
    EXPECT_TRUE(fs::exists(saved / part)) << part;
  auto single = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --resume --stop-after 1", true, 300);
  ASSERT_EQ(single.exit_status, 0) << single.out;
  RunStore after(work_ / "run" / "run.db", {.read_only = true});
  EXPECT_EQ(*after.latest_step(after.stages().at(0).id), 3);
}

// parallel.sharding zero3 with a reference model (beta > 0): two ranks train two steps (the KL to
// the sharded reference logged), the checkpoint holds the whole reference beside the model, and
// two ranks resume from it for a third step.
TEST_F(TrainParallel, ZeroThreeWithAReferenceModelCheckpointsAndResumes) {
  const std::string sets = " --set parallel.sharding=zero3 --set algorithm.beta=0.04";
  auto r = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --nproc-per-node 2 --stop-after 2" + sets,
                            true, 300);
  ASSERT_EQ(r.exit_status, 0) << r.out;
  const fs::path saved = work_ / "run" / "checkpoints" / "grpo" / "step-2";
  for (const char* part : {"model/model.safetensors", "reference/config.json", "reference/model.safetensors",
                           "optimizer/rank-0.safetensors", "optimizer/rank-1.safetensors"})
    EXPECT_TRUE(fs::exists(saved / part)) << part;
  auto resumed = test::run_aha_in(
      work_, "train recipe.json --run-dir run --quiet --nproc-per-node 2 --resume --stop-after 1" + sets, true, 300);
  ASSERT_EQ(resumed.exit_status, 0) << resumed.out;
  RunStore store(work_ / "run" / "run.db", {.read_only = true});
  EXPECT_EQ(*store.latest_step(store.stages().at(0).id), 3);
  const auto kl = series("train/kl");
  ASSERT_EQ(kl.size(), 3u);
  for (double v : kl) EXPECT_TRUE(std::isfinite(v) && v > -1e-6) << v;
  EXPECT_GT(kl.back(), 0);  // the policy has moved away from the reference
}

// A tiny Qwen3-MoE (4 experts, top-2) at <work>/moe for the expert-parallel runs.
void init_moe(const fs::path& work) {
  std::ofstream(work / "moe.json") << R"({"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
    "hidden_act": "silu", "hidden_size": 32, "head_dim": 8, "intermediate_size": 64, "moe_intermediate_size": 16,
    "num_experts": 4, "num_experts_per_tok": 2, "norm_topk_prob": true, "decoder_sparse_step": 1,
    "mlp_only_layers": [], "router_aux_loss_coef": 0.001, "num_hidden_layers": 1, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
    "tie_word_embeddings": true, "torch_dtype": "float32", "bos_token_id": 0, "eos_token_id": 2,
    "vocab_size": 3008})";
  const fs::path tokenizer = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/tokenizers/qwen2_style";
  auto m = test::run_aha_in(work, "model init --config moe.json --tokenizer " + shell_quoted(tokenizer.string()) +
                                       " --out moe", true, 120);
  ASSERT_EQ(m.exit_status, 0) << m.out;
}

// parallel.expert_parallel on a tiny Qwen3-MoE: 2 of its 4 experts per rank, the rollout from the
// whole copy gathered after each update, so the samples are plain data parallelism's; the
// checkpoint is the one plain data parallelism writes (the model once, optimizer.pt), and the
// run resumes from it with expert parallelism and then without.
TEST_F(TrainParallel, ExpertParallelSamplesAsDataParallelSavesOnceAndResumes) {
  ASSERT_NO_FATAL_FAILURE(init_moe(work_));
  expect_expert_parallel_run(" --set parallel.expert_parallel=true",
                             {"state.json", "model/config.json", "model/model.safetensors", "optimizer.pt"}, "optimizer");
}

// parallel.expert_parallel with parallel.sharding zero2: the same samples as plain data
// parallelism; every rank writes its optimizer shard (its experts' moments in it), and the run
// resumes from it without sharding and then without expert parallelism.
TEST_F(TrainParallel, ExpertParallelWithZeroTwoSamplesAsDataParallelAndResumesUnsharded) {
  ASSERT_NO_FATAL_FAILURE(init_moe(work_));
  expect_expert_parallel_run(" --set parallel.expert_parallel=true --set parallel.sharding=zero2",
                             {"state.json", "model/model.safetensors", "optimizer/index.json",
                              "optimizer/rank-0.safetensors", "optimizer/rank-1.safetensors"},
                             "optimizer.pt");
}

// The log-probs `aha model logprobs` computes with the model directory `dir` for a few token ids.
std::vector<double> model_logprobs(const fs::path& work, const fs::path& dir) {
  auto r = test::run_aha_in(work, "model logprobs " + shell_quoted(dir.string()) + " --ids 1,5,9,13,17,21", true, 120);
  EXPECT_EQ(r.exit_status, 0) << r.out;
  std::vector<double> values;
  const auto open = r.out.find('['), close = r.out.find(']');
  if (open == std::string::npos || close == std::string::npos) return values;
  std::stringstream list(r.out.substr(open + 1, close - open - 1));
  for (std::string item; std::getline(list, item, ',');) values.push_back(std::stod(item));
  return values;
}

// parallel.expert_parallel with parallel.sharding zero3: each rank loads its master range of the
// replicated parameters and its 2 experts only, the rollout gathers the whole copy after each
// update, so the samples are plain data parallelism's; every rank writes its optimizer shard
// (its experts' moments in it) and rank 0 the whole Hugging Face model, which loads and gives
// plain data parallelism's log-probs; the run resumes from it unsharded, without expert
// parallelism, and (from that last, unsharded checkpoint) with ep+zero3 again.
TEST_F(TrainParallel, ExpertParallelWithZeroThreeSamplesAsDataParallelAndResumesAcrossLayouts) {
  ASSERT_NO_FATAL_FAILURE(init_moe(work_));
  const std::string sets = " --set parallel.expert_parallel=true --set parallel.sharding=zero3";
  expect_expert_parallel_run(sets,
                             {"state.json", "model/config.json", "model/model.safetensors", "optimizer/index.json",
                              "optimizer/rank-0.safetensors", "optimizer/rank-1.safetensors"},
                             "optimizer.pt");
  const auto got = model_logprobs(work_, work_ / "run" / "checkpoints" / "grpo" / "step-2" / "model");
  const auto want = model_logprobs(work_, work_ / "plain" / "checkpoints" / "grpo" / "step-2" / "model");
  ASSERT_EQ(got.size(), 5u);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4) << i;
  auto again = test::run_aha_in(
      work_, "train recipe.json --run-dir run --quiet --resume --nproc-per-node 2 --stop-after 1 --set model.path=moe" + sets,
      true, 300);
  ASSERT_EQ(again.exit_status, 0) << again.out;
  RunStore after(work_ / "run" / "run.db", {.read_only = true});
  EXPECT_EQ(*after.latest_step(after.stages().at(0).id), 5);
  EXPECT_TRUE(fs::exists(work_ / "run" / "checkpoints" / "grpo" / "step-5" / "optimizer" / "rank-1.safetensors"));
}

// parallel.sharding zero3 loads the model sharded: a model whose files lack a tensor (its config
// now says the LM head is untied, and the files have none) is refused with load_model's message,
// by each rank, before the run directory is written.
TEST_F(TrainParallel, ZeroThreeRefusesAModelMissingATensorBeforeWritingTheRun) {
  const fs::path config = work_ / "model" / "config.json";
  std::string text = read_file(config);
  const auto key = text.find("\"tie_word_embeddings\"");
  ASSERT_NE(key, std::string::npos) << text;
  const auto value = text.find("true", key);
  ASSERT_NE(value, std::string::npos) << text;
  text.replace(value, 4, "false");
  write_file_atomic(config, text);
  auto r = test::run_aha_in(work_, "train recipe.json --run-dir run --nproc-per-node 2 --set parallel.sharding=zero3",
                            true, 300);
  EXPECT_EQ(r.exit_status, 1) << r.out;
  const std::string message = "checkpoint is missing tensor 'lm_head.weight' (config.json says tie_word_embeddings is false)";
  size_t count = 0;
  for (auto at = r.out.find(message); at != std::string::npos; at = r.out.find(message, at + 1)) ++count;
  EXPECT_EQ(count, 2u) << r.out;  // one per rank
  EXPECT_FALSE(fs::exists(work_ / "run" / "run.db")) << r.out;
}

TEST_F(TrainParallel, AWorldThatDoesNotDivideTheStepsPromptsIsRefusedByName) {
  auto r = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --nproc-per-node 3", true, 300);
  EXPECT_EQ(r.exit_status, 1) << r.out;
  EXPECT_NE(r.out.find("rollout.prompts_per_step 4 must be divisible by the world size 3"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(work_ / "run" / "run.db"));
}

TEST_F(TrainParallel, AKilledRankStopsTheOtherWithItsNameAndResumeContinues) {
  // Two ranks started by hand with torchrun's variables but no agent store, so rank 0 serves the
  // store (as under srun); rank 1 is killed once step 2 is saved. The port lies below Linux's
  // ephemeral range (32768-60999 by default), from which other tests' connections take theirs.
  const std::string aha = std::string(AHA_BINARY_DIR) + "/aha";
  const int port = 20000 + (::getpid() % 12000);
  auto rank_command = [&](int r) {
    return "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
           " WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + aha +
           " train recipe.json --run-dir run --quiet --heartbeat-timeout 10 --dist-timeout 60 > rank" + std::to_string(r) + ".log 2>&1";
  };
  // A backgrounded simple command is exec'ed in the forked child, so $! is rank 1's own pid.
  const std::string script = "cd " + shell_quoted(work_.string()) + " && { " + rank_command(1) +
                             " & echo $! > rank1.pid; timeout -k 5 120 sh -c " + shell_quoted(rank_command(0)) +
                             "; echo $? > rank0.rc; wait; }";
  auto world = std::async(std::launch::async, [&] { return std::system(("sh -c " + shell_quoted(script)).c_str()); });
  // Wait (bounded by the timeout above) for step 2's checkpoint, then kill rank 1.
  const fs::path saved = work_ / "run" / "checkpoints" / "grpo" / "step-2" / "state.json";
  while (!fs::exists(saved) && !fs::exists(work_ / "rank0.rc")) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(work_ / "rank1.pid"));
  std::ifstream pid_file(work_ / "rank1.pid");
  int pid = 0;
  pid_file >> pid;
  ASSERT_GT(pid, 0);
  std::system(("kill -9 " + std::to_string(pid) + " 2>/dev/null").c_str());
  world.wait();
  std::ifstream rc_file(work_ / "rank0.rc");
  int rc = -1;
  rc_file >> rc;
  std::ifstream log(work_ / "rank0.log");
  const std::string rank0_log((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(rc, 0) << rank0_log;
  EXPECT_NE(rc, 124) << "rank 0 hung: " << rank0_log;  // timeout's status
  EXPECT_NE(rank0_log.find("rank 1"), std::string::npos) << rank0_log;
  const auto stopped_at = series("train/sequences").size();
  EXPECT_GE(stopped_at, 2u);

  // --resume at the same world size continues from the last checkpoint.
  auto r = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --resume --nproc-per-node 2 --stop-after 1",
                            true, 300);
  ASSERT_EQ(r.exit_status, 0) << r.out;
  RunStore store(work_ / "run" / "run.db", {.read_only = true});
  const auto stage = store.stages().at(0).id;
  bool resumed = false;
  for (const auto& e : store.events(stage)) resumed = resumed || e.kind == "resumed";
  EXPECT_TRUE(resumed);
  const int64_t after_resume = *store.latest_step(stage);
  EXPECT_GE(after_resume, 3);

  // And at another world size (one process): the checkpoint holds the whole optimizer state.
  auto single = test::run_aha_in(work_, "train recipe.json --run-dir run --quiet --resume --stop-after 1", true, 300);
  ASSERT_EQ(single.exit_status, 0) << single.out;
  EXPECT_EQ(*RunStore(work_ / "run" / "run.db", {.read_only = true}).latest_step(stage), after_resume + 1);
}

}  // namespace
}  // namespace aha

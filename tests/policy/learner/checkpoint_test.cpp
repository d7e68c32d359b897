// Checkpoints: layout, latest_checkpoint's choice, interrupted writes (an exception mid-write,
// a killed writer's leftover temporary directory) and loading errors.
#include "policy/learner/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "core/files.h"
#include "trainer_test_util.h"

namespace aha::policy {
namespace {
namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::one_thread();
    dir_ = fs::temp_directory_path() / ("aha_ckpt_" + std::to_string(::getpid()));
    remove_tree(dir_);
  }
  void TearDown() override { remove_tree(dir_); }
  TrainerOptions options(double beta = 0.0) {
    TrainerOptions o;
    o.loss.beta = beta;
    o.optimizer.lr = 1e-2;
    return o;
  }
  fs::path dir_;
};

std::vector<torch::Tensor> weights(Transformer& m) {
  std::vector<torch::Tensor> w;
  for (auto& p : m.parameters()) w.push_back(p.detach().clone());
  return w;
}

bool equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

TEST_F(CheckpointTest, PathLayoutAndContents) {
  EXPECT_EQ(checkpoint_path("runs/x", "grpo", 12), fs::path("runs/x/checkpoints/grpo/step-12"));
  GrpoTrainer trainer(testing::tiny_model(), options(0.1));
  auto path = save_checkpoint(dir_, {7, 70}, trainer, testing::kTinyModel);
  EXPECT_EQ(path, dir_ / "step-7");
  for (const char* f : {"model/config.json", "model/model.safetensors", "model/generation_config.json",
                        "reference/model.safetensors", "optimizer.pt", "rng.pt", "state.json"})
    EXPECT_TRUE(fs::exists(path / f)) << f;
  // The saved policy is an ordinary HF model directory.
  auto reloaded = load_model(path / "model");
  auto a = reloaded->parameters(), b = trainer.policy().parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i]));
}

TEST_F(CheckpointTest, LoadRestoresWeightsAndCounters) {
  GrpoTrainer trainer(testing::tiny_model(), options());
  trainer.train_step(testing::synthetic_batch(trainer.policy(), 1));
  auto saved = weights(trainer.policy());
  save_checkpoint(dir_, {1, 5}, trainer);
  trainer.train_step(testing::synthetic_batch(trainer.policy(), 2));
  EXPECT_FALSE(equal(saved, weights(trainer.policy())));
  auto state = load_checkpoint(dir_ / "step-1", trainer);
  EXPECT_EQ(state.data_cursor, 5);
  EXPECT_TRUE(equal(saved, weights(trainer.policy())));
  EXPECT_EQ(trainer.steps_done(), 1);
  EXPECT_EQ(trainer.optimizer().step_count(), 1);
}

TEST_F(CheckpointTest, InterruptedWriteKeepsThePreviousCheckpoint) {
  GrpoTrainer trainer(testing::tiny_model(), options(0.1));
  save_checkpoint(dir_, {1, 1}, trainer);
  trainer.train_step(testing::synthetic_batch(trainer.policy(), 1));
  auto at_two = weights(trainer.policy());
  save_checkpoint(dir_, {2, 2}, trainer);
  trainer.train_step(testing::synthetic_batch(trainer.policy(), 2));

  // An exception after the model and optimizer were written: nothing of step 3 remains.
  std::vector<std::string> parts;
  EXPECT_THROW(save_checkpoint(dir_, {3, 3}, trainer, {},
                               [&](const std::string& part) {
                                 parts.push_back(part);
                                 if (part == "optimizer") throw Error("disk full (simulated)");
                               }),
               Error);
  EXPECT_EQ(parts, (std::vector<std::string>{"model", "reference", "optimizer"}));
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) ++entries, (void)e;
  EXPECT_EQ(entries, 2u);  // step-1, step-2: no temporary directory left behind

  // A writer killed mid-write leaves its temporary directory; a half-made step directory
  // without state.json (not produced by save_checkpoint, but possible by hand) is skipped too.
  fs::create_directories(dir_ / "step-9.tmp-123-0" / "model");
  fs::copy(dir_ / "step-2" / "state.json", dir_ / "step-9.tmp-123-0" / "state.json");
  fs::create_directories(dir_ / "step-10" / "model");
  fs::create_directories(dir_ / "step-x");
  auto latest = latest_checkpoint(dir_);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(*latest, dir_ / "step-2");
  load_checkpoint(*latest, trainer);
  EXPECT_TRUE(equal(at_two, weights(trainer.policy())));

  // Rewriting a step replaces it.
  trainer.train_step(testing::synthetic_batch(trainer.policy(), 3));
  save_checkpoint(dir_, {2, 2}, trainer);
  load_checkpoint(dir_ / "step-2", trainer);
  EXPECT_FALSE(equal(at_two, weights(trainer.policy())));
}

TEST_F(CheckpointTest, LatestOfMissingOrEmptyDirectoryIsNone) {
  EXPECT_FALSE(latest_checkpoint(dir_ / "nothing").has_value());
  fs::create_directories(dir_);
  EXPECT_FALSE(latest_checkpoint(dir_).has_value());
}

TEST_F(CheckpointTest, MismatchesAreErrorsNamingTheFile) {
  GrpoTrainer with_ref(testing::tiny_model(), options(0.1));
  save_checkpoint(dir_, {1, 1}, with_ref);
  GrpoTrainer without_ref(testing::tiny_model(), options());
  try {
    load_checkpoint(dir_ / "step-1", without_ref);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reference"), std::string::npos) << e.what();
  }
  write_file_atomic(dir_ / "step-1" / "state.json",
                    "{\"format\": 1, \"step\": 1, \"data_cursor\": 1, "
                    "\"trainer_steps\": 1, \"epoch\": 2}");
  try {
    load_checkpoint(dir_ / "step-1", with_ref);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("epoch"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_checkpoint(dir_ / "step-5", with_ref), Error);
}

}  // namespace
}  // namespace aha::policy

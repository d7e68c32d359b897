// Loading checks each tensor against the config; init follows transformers' scheme.
#include "policy/model/model_io.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "policy/model/safetensors.h"

namespace fs = std::filesystem;

namespace {

const fs::path kTiny = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen2_gqa_tied";

class ModelIo : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_io_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    aha::remove_tree(dir_);
    fs::create_directories(dir_);
    fs::copy_file(kTiny / "config.json", dir_ / "config.json");
    aha::CheckpointReader reader(kTiny);
    for (const auto& name : reader.names()) tensors_.emplace_back(name, reader.load(name));
  }
  void TearDown() override { aha::remove_tree(dir_); }

  std::string load_error() {
    aha::save_safetensors(dir_ / "model.safetensors", tensors_);
    try {
      aha::load_model(dir_);
    } catch (const aha::Error& e) {
      return e.what();
    }
    return "";
  }
  void replace(const std::string& name, const torch::Tensor& t) {
    for (auto& [n, v] : tensors_) if (n == name) v = t;
  }

  fs::path dir_;
  std::vector<std::pair<std::string, torch::Tensor>> tensors_;
};

TEST_F(ModelIo, LoadsWhenEverythingMatches) { EXPECT_EQ(load_error(), ""); }

TEST_F(ModelIo, ShapeMismatchNamesTensorAndShapes) {
  replace("model.layers.1.self_attn.k_proj.weight", torch::zeros({16, 64}));
  auto msg = load_error();
  EXPECT_NE(msg.find("'model.layers.1.self_attn.k_proj.weight' has shape [16, 64]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("implies [32, 64]"), std::string::npos) << msg;
}

TEST_F(ModelIo, WrongDtypeIsRejected) {
  replace("model.norm.weight", torch::ones({64}, torch::kInt32));
  auto msg = load_error();
  EXPECT_NE(msg.find("'model.norm.weight' has dtype I32"), std::string::npos) << msg;
}

TEST_F(ModelIo, MissingTensorIsNamed) {
  std::erase_if(tensors_, [](auto& p) { return p.first == "model.layers.0.mlp.up_proj.weight"; });
  auto msg = load_error();
  EXPECT_NE(msg.find("missing tensor 'model.layers.0.mlp.up_proj.weight'"), std::string::npos) << msg;
}

TEST_F(ModelIo, UntiedConfigNeedsLmHead) {
  auto text = aha::read_file(dir_ / "config.json");
  text.replace(text.find("\"tie_word_embeddings\": true"), 27, "\"tie_word_embeddings\": false");
  aha::write_file_atomic(dir_ / "config.json", text);
  auto msg = load_error();
  EXPECT_NE(msg.find("'lm_head.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tie_word_embeddings is false"), std::string::npos) << msg;
}

TEST_F(ModelIo, BadConfigOrMissingFiles) {
  aha::write_file_atomic(dir_ / "config.json", R"({"model_type": "gpt2"})");
  EXPECT_NE(load_error().find("model_type 'gpt2'"), std::string::npos);
  EXPECT_THROW(aha::load_model(dir_ / "nope"), aha::Error);
  fs::remove(dir_ / "model.safetensors");
  fs::copy_file(kTiny / "config.json", dir_ / "config.json", fs::copy_options::overwrite_existing);
  try {
    aha::load_model(dir_);
    FAIL();
  } catch (const aha::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no model.safetensors"), std::string::npos) << e.what();
  }
}

TEST_F(ModelIo, DtypeConversionOnLoad) {
  auto model = aha::load_model(kTiny, {torch::kCPU, torch::kBFloat16});
  EXPECT_EQ(model->dtype(), torch::kBFloat16);
  for (const auto& t : model->parameters()) EXPECT_EQ(t.scalar_type(), torch::kBFloat16);
  aha::save_model(*model, dir_ / "bf16");
  auto config = aha::ModelConfig::from_file(dir_ / "bf16/config.json");
  EXPECT_EQ(config.torch_dtype, "bfloat16");
  EXPECT_EQ(aha::load_model(dir_ / "bf16")->dtype(), torch::kBFloat16);
}

TEST_F(ModelIo, InitIsSeededAndFollowsTheScheme) {
  auto config = aha::ModelConfig::from_file(kTiny / "config.json");
  auto a = aha::init_model(config, 42), b = aha::init_model(config, 42), c = aha::init_model(config, 43);
  auto pa = a->named_parameters(), pb = b->named_parameters(), pc = c->named_parameters();
  bool any_different = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
    any_different |= !torch::equal(pa[i].second, pc[i].second);
    const auto& name = pa[i].first;
    if (name.find("norm") != std::string::npos) {
      EXPECT_TRUE(torch::all(pa[i].second == 1).item<bool>()) << name;
    } else if (name.find("bias") != std::string::npos) {
      EXPECT_TRUE(torch::all(pa[i].second == 0).item<bool>()) << name;
    }
  }
  EXPECT_TRUE(any_different);
  auto embed = a->named_parameters()[0].second;
  EXPECT_NEAR(embed.std().item<double>(), config.initializer_range, 0.002);
  EXPECT_TRUE(torch::all(embed[config.pad_token_id] == 0).item<bool>());  // padding row zeroed
}

TEST_F(ModelIo, SaveOverItsOwnEarlierOutputReplacesItWhenAsked) {
  auto model = aha::load_model(kTiny);
  aha::save_model(*model, dir_ / "out", {.max_shard_bytes = 60000});  // sharded
  EXPECT_TRUE(fs::exists(dir_ / "out/model.safetensors.index.json"));
  aha::save_model(*model, dir_ / "out", {.overwrite = true});  // unsharded over it
  EXPECT_FALSE(fs::exists(dir_ / "out/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir_ / "out/model-00001-of-00002.safetensors"));
  size_t siblings = 0;
  for (auto& e : fs::directory_iterator(dir_)) siblings += e.path().filename().string().rfind("out", 0) == 0;
  EXPECT_EQ(siblings, 1u);  // no temporary or old directory left
  EXPECT_NO_THROW(aha::load_model(dir_ / "out"));
}

// Issue 23, finding 2: a model directory aha did not write is never replaced, and an earlier
// output of aha is replaced only when asked. The refused target is left byte for byte.
TEST_F(ModelIo, SaveNeverReplacesWhatAhaDidNotWrite) {
  auto model = aha::load_model(kTiny);
  const fs::path root = dir_ / "save-rule";
  fs::create_directories(root);
  const fs::path users = root / "users-checkpoint";
  fs::create_directories(users / "sub");
  aha::write_file_atomic(users / "config.json", "{\"model_type\": \"theirs\"}");
  aha::write_file_atomic(users / "sub/notes.txt", "keep me");
  const fs::path file = root / "a-file";
  aha::write_file_atomic(file, "not a directory");
  for (const auto& target : {users, file}) {
    try {
      aha::save_model(*model, target, {.overwrite = true});
      FAIL() << target;
    } catch (const aha::Error& e) {
      EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(aha::read_file(users / "config.json"), "{\"model_type\": \"theirs\"}");
  EXPECT_EQ(aha::read_file(users / "sub/notes.txt"), "keep me");
  EXPECT_EQ(aha::read_file(file), "not a directory");
  EXPECT_EQ(std::distance(fs::directory_iterator(root), fs::directory_iterator()), 2);  // no temporary left

  aha::save_model(*model, root / "ours", {.made_by = "model init"});
  EXPECT_THROW(aha::save_model(*model, root / "ours", {.made_by = "model init"}), aha::Error);  // not asked
  EXPECT_THROW(aha::save_model(*model, root / "ours", {.made_by = "model convert", .overwrite = true}),
               aha::Error);  // another command's output
  EXPECT_NO_THROW(aha::save_model(*model, root / "ours", {.made_by = "model init", .overwrite = true}));
  fs::create_directories(root / "empty");
  EXPECT_NO_THROW(aha::save_model(*model, root / "empty"));
  EXPECT_NO_THROW(aha::load_model(root / "empty"));
}

}  // namespace

// Pretraining specs (errors, overrides, the committed recipes/base files) and ensure_base_model
// on a very small spec: a complete HF directory, reuse, and atomic failure.
#include "recipes/runner/base_model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include "core/files.h"
#include "core/json.h"
#include "datasets/base_corpus.h"
#include "datasets/prompt_template.h"
#include "policy/tokenizer/bpe_trainer.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "recipes/runner/heldout_eval.h"
#include "tests/test_util.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

const char* kSmallSpec = R"({
  "model": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "intermediate_size": 64, "max_position_embeddings": 128},
  "tokenizer": {"vocab_size": 320},
  "corpus": {"documents": 150, "seed": 1, "min_difficulty": 1, "max_difficulty": 1,
             "styles": {"plain": 0.6, "dialogue": 0.1, "tagged": 0.2, "prose": 0.1}},
  "training": {"steps": 3, "seq_len": 64, "batch_size": 4, "lr": 0.003, "warmup_steps": 1},
  "eval": {"problems": 3, "max_new_tokens": 8}
})";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

fs::path fresh_dir(const std::string& name) {
  fs::path parent = fs::temp_directory_path() / ("aha_base_model_test_" + std::to_string(getpid()) + "_" + name);
  fs::path dir = parent / "model";
  remove_tree(parent);
  fs::create_directories(dir.parent_path());
  return dir;
}

PretrainRunOptions quiet() {
  PretrainRunOptions o;
  o.progress = false;
  return o;
}

TEST(PretrainSpec, ParsesAndAppliesOverrides) {
  auto s = PretrainSpec::parse(kSmallSpec, "small.json");
  EXPECT_EQ(s.model.hidden_size, 32);
  EXPECT_EQ(s.training.total_steps(), 3);
  EXPECT_EQ(s.corpus.documents, 150);
  auto t = PretrainSpec::parse(kSmallSpec, "small.json", {"training.steps=7", "model.rope_theta=500000"});
  EXPECT_EQ(t.training.total_steps(), 7);
  EXPECT_EQ(t.model.rope_theta, 500000.0);
  EXPECT_NE(s.hash, t.hash);
  EXPECT_EQ(s.hash, PretrainSpec::parse(kSmallSpec, "other name.json").hash);
  auto tokens = PretrainSpec::parse(kSmallSpec, "small.json", {"training.steps=0", "training.tokens=1000"});
  EXPECT_EQ(tokens.training.total_steps(), 4);  // 1000 / (4 * 64) rounded up
}

TEST(PretrainSpec, ErrorsNameTheFileAndKey) {
  auto err = [](std::vector<std::string> sets) {
    return test::error_of([&] { PretrainSpec::parse(kSmallSpec, "small.json", sets); });
  };
  std::string unknown = err({"training.stpes=3"});
  EXPECT_TRUE(contains(unknown, "small.json") && contains(unknown, "stpes") && contains(unknown, "warmup_steps"))
      << unknown;
  EXPECT_TRUE(contains(err({"model.hidden_size=\"big\""}), "hidden_size"));
  EXPECT_TRUE(contains(err({"training.tokens=100"}), "exactly one of steps or tokens"));
  EXPECT_TRUE(contains(err({"training.seq_len=4096"}), "max_position_embeddings"));
  EXPECT_TRUE(contains(err({"model.num_attention_heads=3"}), "num_attention_heads"));
  EXPECT_TRUE(contains(err({"corpus.max_difficulty=9"}), "max_difficulty"));
  EXPECT_TRUE(contains(err({"training.dtype=float64"}), "dtype"));
  EXPECT_TRUE(contains(err({"nonsense"}), "key.path=value"));
  EXPECT_TRUE(contains(err({"tokenizer.vocab_size=100"}), "vocab_size"));
  EXPECT_TRUE(contains(err({"model.num_experts=4"}), "num_experts needs model_type qwen3_moe"));
  EXPECT_TRUE(contains(err({"model.model_type=mixtral"}), "model_type must be qwen2, qwen3 or qwen3_moe"));
  EXPECT_TRUE(contains(err({"model.model_type=qwen3_moe"}), "num_experts"));  // required then
}

// A Qwen3-MoE base model: the spec's expert fields reach config.json, and the model trains
// and loads as one (1 layer, so 1 MoE layer of 4 experts).
TEST(BaseModel, BuildsAMixtureOfExpertsBase) {
  torch::set_num_threads(1);
  const fs::path dir = fresh_dir("moe");
  auto spec = PretrainSpec::parse(kSmallSpec, "small.json",
                                  {"model.model_type=qwen3_moe", "model.num_experts=4", "model.num_experts_per_tok=2",
                                   "model.moe_intermediate_size=32", "model.head_dim=8"});
  auto r = ensure_base_model(spec, dir, quiet());
  EXPECT_EQ(r.steps, 3);
  auto model = load_model(dir);
  const auto& c = model->config();
  EXPECT_EQ(c.architecture, "Qwen3MoeForCausalLM");
  EXPECT_EQ(c.num_experts, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.moe_layer_count(), 1);
  EXPECT_TRUE(c.norm_topk_prob);
  remove_tree(dir.parent_path());
}

// Every spec in recipes/base/, whatever its name.
TEST(PretrainSpec, CommittedBaseSpecsParse) {
  int specs = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(AHA_SOURCE_DIR) / "recipes/base")) {
    if (entry.path().extension() != ".json") continue;
    ++specs;
    const auto name = entry.path().filename().string();
    auto s = PretrainSpec::from_file(entry.path().string());
    EXPECT_GT(s.training.total_steps(), 0) << name;
    EXPECT_GT(s.eval.problems, 0) << name;
    EXPECT_EQ(s.corpus.counted_checks, name == "gpu-depth-count-base.json") << name;
  }
  EXPECT_GE(specs, 6);
}

TEST(BaseTokenizer, KnowsThePreambleWordsAndTags) {
  // A tokenizer trained on the base corpus (as ensure_base_model does) writes the R1-Zero
  // preamble's words as single tokens and the tags in few pieces.
  BaseCorpusSpec corpus;
  corpus.documents = 3000;
  BpeTrainer bpe({1024, 2, {"<|endoftext|>"}, 512});
  for (const auto& d : generate_base_corpus(corpus)) bpe.add_text(d.text);
  auto tok = Tokenizer::from_json(bpe.train().tokenizer_json(), "base tokenizer");
  for (const char* word : {" conversation", " user", " assistant", " question", " solves", " reasoning",
                           " process", " mind", " provides", " answer", " enclosed", " tags", " respectively"})
    EXPECT_EQ(tok.encode(word).size(), 1u) << word;
  for (const char* tag : {"<think>", " </think>", " <answer>", " </answer>"}) EXPECT_LE(tok.encode(tag).size(), 3u) << tag;
  EXPECT_LT(tok.encode(kR1ZeroPreamble).size(), 100u);  // 391 bytes, about 60 words
}

TEST(HeldoutEval, FinalNumber) {
  EXPECT_EQ(final_number(" Tom starts with 3. 3 + 4 = 7. The answer is 7."), "7");
  EXPECT_EQ(final_number("The answer is 12. Then 99"), "12");
  EXPECT_EQ(final_number("so 5 - 9 = -4"), "-4");
  EXPECT_EQ(final_number("The answer is unclear, maybe 30 or 31"), "31");
  EXPECT_EQ(final_number("no digits"), std::nullopt);
}

TEST(BaseModel, WritesAHuggingFaceDirectoryAndReusesIt) {
  torch::set_num_threads(1);
  const fs::path dir = fresh_dir("ok");
  auto spec = PretrainSpec::parse(kSmallSpec, "small.json");
  auto r = ensure_base_model(spec, dir, quiet());
  EXPECT_FALSE(r.reused);
  EXPECT_EQ(r.steps, 3);
  EXPECT_EQ(r.tokens, 3 * 4 * 64);
  ASSERT_TRUE(r.heldout_accuracy.has_value());
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "generation_config.json", "pretrain_spec.json", "pretrain_report.json"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  auto model = load_model(dir);
  auto tok = Tokenizer::from_dir(dir);
  EXPECT_EQ(model->config().vocab_size, int64_t(tok.vocab_size()));
  EXPECT_EQ(model->config().eos_token_ids, std::vector<int64_t>{*tok.eos_id()});
  auto report = json::parse(read_file(dir / "pretrain_report.json"), "report");
  EXPECT_EQ(report["loss_curve"].Size(), 3u);
  EXPECT_EQ(report["heldout_plain"]["problems"].GetInt(), 3);

  auto again = ensure_base_model(spec, dir, quiet());
  EXPECT_TRUE(again.reused);
  EXPECT_EQ(again.steps, 3);
  // Another spec never silently replaces an earlier build (issue 23): only when asked.
  auto changed = PretrainSpec::parse(kSmallSpec, "small.json", {"training.steps=2"});
  EXPECT_NE(test::error_of([&] { ensure_base_model(changed, dir, quiet()); }).find("--overwrite"), std::string::npos);
  EXPECT_TRUE(holds_base_model(dir, spec.hash));
  PretrainRunOptions overwrite = quiet();
  overwrite.overwrite = true;
  EXPECT_FALSE(ensure_base_model(changed, dir, overwrite).reused);
  EXPECT_TRUE(holds_base_model(dir, changed.hash));
  EXPECT_FALSE(holds_base_model(dir, spec.hash));
  remove_tree(dir.parent_path());
}

TEST(BaseModel, AFailureLeavesNoHalfWrittenDirectory) {
  torch::set_num_threads(1);
  const fs::path dir = fresh_dir("fail");
  auto spec = PretrainSpec::parse(kSmallSpec, "small.json", {"training.steps=2"});
  PretrainRunOptions failing = quiet();
  failing.on_stage = [](const std::string& stage) {
    if (stage == "eval") throw Error("interrupted");  // after the model files were written
  };
  EXPECT_EQ(test::error_of([&] { ensure_base_model(spec, dir, failing); }), "interrupted");
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::is_empty(dir.parent_path()));  // no temporary left behind

  ensure_base_model(spec, dir, quiet());
  auto other = PretrainSpec::parse(kSmallSpec, "small.json");
  EXPECT_NE(test::error_of([&] { ensure_base_model(other, dir, failing); }), "");
  EXPECT_TRUE(holds_base_model(dir, spec.hash));  // the previous model is intact
  remove_tree(dir.parent_path());
}

}  // namespace
}  // namespace aha

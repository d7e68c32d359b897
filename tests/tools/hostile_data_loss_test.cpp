// Issue 23 as a careless or hostile user meets the `aha` command: nothing a user owns is ever
// destroyed (findings 1-3), requests are sized before anything is allocated (8), and configs
// are checked for every number's domain (9). Each test runs the built binary and asserts the
// clear error (exit 1, the option or field named, no stack trace) and that what was there is
// left byte for byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "core/files.h"
#include "tests/test_util.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
using test::shell_quoted;

// Every file below `dir` with its bytes (empty for directories), to compare before and after.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  if (fs::is_regular_file(dir)) return {{"", read_file(dir)}};
  for (const auto& e : fs::recursive_directory_iterator(dir))
    files[fs::relative(e.path(), dir).string()] = e.is_regular_file() ? read_file(e.path()) : "<dir>";
  return files;
}

// The command's exit status and merged output; bounded, so a regression to a hang fails.
test::CommandOutcome aha_cmd(const std::string& arguments) {
  return test::run_aha(arguments, /*merge_stderr=*/true, /*timeout_seconds=*/300);
}

void expect_clean_error(const test::CommandOutcome& o, const std::string& must_name) {
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("error: "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find(must_name), std::string::npos) << "the message should name '" << must_name << "': " << o.out;
  EXPECT_EQ(o.out.find("internal error"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("Exception raised from"), std::string::npos) << o.out;  // a LibTorch stack trace
  EXPECT_LE(std::count(o.out.begin(), o.out.end(), '\n'), 3) << o.out;
}

const std::string kTinyConfig = R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
  "hidden_act": "silu", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
  "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "tie_word_embeddings": true, "torch_dtype": "float32",
  "bos_token_id": 0, "eos_token_id": 2, "vocab_size": 3000})";

class DataLoss : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = fs::path(AHA_BINARY_DIR) /
            ("hostile-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    remove_tree(work_);
    fs::create_directories(work_);
  }
  void TearDown() override { remove_tree(work_); }

  fs::path write(const std::string& name, const std::string& text) {
    fs::create_directories((work_ / name).parent_path());
    write_file_atomic(work_ / name, text);
    return work_ / name;
  }

  // A model directory as a user downloads one: config, weights and tokenizer, no aha marker.
  fs::path users_model() {
    const fs::path config = write("config-in.json", kTinyConfig);
    const fs::path dir = work_ / "users-model";
    auto o = aha_cmd("model init --config " + shell_quoted(config) + " --out " + shell_quoted(dir));
    EXPECT_EQ(o.exit_status, 0) << o.out;
    fs::remove(dir / ".aha-output.json");
    const fs::path tokenizer = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/tokenizers/qwen2_style";
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(tokenizer / f, dir / f);
    return dir;
  }

  fs::path work_;
};

// Finding 1: a recipe with model.build pointed (--set model.path) at a user's model.
TEST_F(DataLoss, TrainWithModelBuildNeverReplacesAUsersModel) {
  const fs::path model = users_model();
  const auto before = snapshot(model);
  const std::string recipe = std::string(AHA_SOURCE_DIR) + "/recipes/r1-zero-tiny.json";
  auto o = aha_cmd("train " + shell_quoted(recipe) + " --quiet --set model.path=" + shell_quoted(model) +
                   " --run-dir " + shell_quoted(work_ / "run"));
  expect_clean_error(o, model.string());
  EXPECT_NE(o.out.find("model.build=null"), std::string::npos) << o.out;  // says how to train it instead
  EXPECT_EQ(snapshot(model), before);
  EXPECT_FALSE(fs::exists(work_ / "run"));
}

// Finding 2: --out of model init / convert, pretrain and tokenizer train.
TEST_F(DataLoss, OutputDirectoriesNeverReplaceWhatAhaDidNotWrite) {
  const fs::path config = write("config-in.json", kTinyConfig);
  const fs::path model = users_model();
  const fs::path notes = write("notes/keep.txt", "a user's notes");
  const fs::path file = write("a-file.bin", std::string("\0\1\2 user bytes", 15));
  const auto model_before = snapshot(model), notes_before = snapshot(work_ / "notes"), file_before = snapshot(file);
  for (const fs::path& target : {model, work_ / "notes", file}) {
    SCOPED_TRACE(target.string());
    expect_clean_error(aha_cmd("model init --config " + shell_quoted(config) + " --overwrite --out " +
                               shell_quoted(target)),
                       target.string());
    expect_clean_error(aha_cmd("model convert " + shell_quoted(model) + " --overwrite --out " + shell_quoted(target)),
                       target.string());
    expect_clean_error(aha_cmd("pretrain " + shell_quoted(std::string(AHA_SOURCE_DIR) + "/recipes/base/tiny-base.json") +
                               " --overwrite --out " + shell_quoted(target)),
                       target.string());
    expect_clean_error(aha_cmd("tokenizer train " + shell_quoted(notes) + " --vocab-size 300 --overwrite --out " +
                               shell_quoted(target)),
                       target.string());
  }
  EXPECT_EQ(snapshot(model), model_before);
  EXPECT_EQ(snapshot(work_ / "notes"), notes_before);
  EXPECT_EQ(snapshot(file), file_before);

  // aha's own earlier output is replaced only when asked, and only by the same command.
  const fs::path ours = work_ / "ours";
  EXPECT_EQ(aha_cmd("model init --config " + shell_quoted(config) + " --out " + shell_quoted(ours)).exit_status, 0);
  expect_clean_error(aha_cmd("model init --config " + shell_quoted(config) + " --out " + shell_quoted(ours)),
                     "--overwrite");
  expect_clean_error(aha_cmd("model convert " + shell_quoted(model) + " --overwrite --out " + shell_quoted(ours)),
                     "model init");
  auto o = aha_cmd("model init --config " + shell_quoted(config) + " --seed 7 --overwrite --out " + shell_quoted(ours));
  EXPECT_EQ(o.exit_status, 0) << o.out;
  // The input is never the output.
  expect_clean_error(aha_cmd("model convert " + shell_quoted(ours) + " --overwrite --out " + shell_quoted(ours)),
                     "input");
}

// Finding 3: a run directory that is not a run, and --resume over a run store with no run.
TEST_F(DataLoss, TrainNeverWritesIntoAFolderThatIsNotItsRun) {
  const fs::path model = users_model();
  const std::string recipe = std::string(AHA_SOURCE_DIR) + "/recipes/r1-zero-tiny.json";
  const std::string common = "train " + shell_quoted(recipe) + " --quiet --set model.build=null --set model.path=" +
                             shell_quoted(model) + " --run-dir ";
  const fs::path folder = work_ / "folder";
  write("folder/checkpoints/grpo/step-10/state.json", "{\"users\": true}");
  write("folder/results.csv", "a,b\n1,2\n");
  const auto folder_before = snapshot(folder);
  expect_clean_error(aha_cmd(common + shell_quoted(folder)), folder.string());
  EXPECT_EQ(snapshot(folder), folder_before);

  const fs::path run = work_ / "empty-store";
  write("empty-store/run.db", "");
  write("empty-store/checkpoints/grpo/step-10/state.json", "{\"step\": 10}");
  write("empty-store/checkpoints/grpo/step-20/state.json", "{\"step\": 20}");
  const auto run_before = snapshot(run);
  expect_clean_error(aha_cmd(common + shell_quoted(run) + " --resume"), "run.db");
  EXPECT_EQ(snapshot(run), run_before);
}

// Finding 8: sizes checked against the context and the memory before anything is allocated.
TEST_F(DataLoss, GenerationRequestsAreSizedBeforeTheyAllocate) {
  const fs::path model = users_model();
  const std::string generate = "generate --device cpu --model " + shell_quoted(model) + " ";
  expect_clean_error(aha_cmd(generate + "--prompt hello --max-new-tokens 99999999999"), "max_new_tokens");
  expect_clean_error(aha_cmd(generate + "--prompt hello --max-new-tokens 600"), "max_position_embeddings");
  expect_clean_error(aha_cmd(generate + "--prompt hello --max-new-tokens 8 -n 99999999999"), "group size");
  const std::string long_prompt(200000, 'x');
  const fs::path prompts = write("long.jsonl", "{\"prompt\": \"" + long_prompt + "\"}\n");
  expect_clean_error(aha_cmd(generate + "--max-new-tokens 8 --input " + shell_quoted(prompts) + " --output " +
                             shell_quoted(work_ / "out.jsonl")),
                     "max_position_embeddings");
  EXPECT_FALSE(fs::exists(work_ / "out.jsonl"));
}

// Findings 8 and 9: every number in config.json has its domain, and sizes that multiply
// beyond any machine are refused naming the fields.
TEST_F(DataLoss, ConfigNumbersOutsideTheirDomainAreNamed) {
  auto with = [&](const std::string& field, const std::string& value) {
    std::string json = kTinyConfig;
    const auto at = json.find("\"" + field + "\": ");
    EXPECT_NE(at, std::string::npos) << field;
    const auto start = at + field.size() + 4, end = json.find_first_of(",}", start);
    return write("config-" + field + ".json", json.replace(start, end - start, value));
  };
  for (const auto& [field, value] : std::vector<std::pair<std::string, std::string>>{
           {"rms_norm_eps", "-1"}, {"rms_norm_eps", "0"}, {"rope_theta", "0"}, {"rope_theta", "-5"},
           {"hidden_size", "1000000000000"}, {"intermediate_size", "1000000000000000"}, {"vocab_size", "4000000000"}}) {
    SCOPED_TRACE(field + " = " + value);
    const fs::path config = with(field, value);
    expect_clean_error(aha_cmd("model init --config " + shell_quoted(config) + " --out " + shell_quoted(work_ / "m")),
                       field);
    EXPECT_FALSE(fs::exists(work_ / "m"));
  }
  // A model directory whose config.json went bad is refused where it is read, never scored as NaN.
  const fs::path model = users_model();
  write_file_atomic(model / "config.json", read_file(with("rms_norm_eps", "-1")));
  expect_clean_error(aha_cmd("model logprobs " + shell_quoted(model) + " --ids 1,2,3"), "rms_norm_eps");

  // Weights that are all NaN (every byte after the safetensors header 0xFF): an error, not "-nan".
  const fs::path nan_model = work_ / "nan-model";
  ASSERT_EQ(aha_cmd("model init --config " + shell_quoted(write("ok.json", kTinyConfig)) + " --out " +
                    shell_quoted(nan_model)).exit_status, 0);
  std::string weights = read_file(nan_model / "model.safetensors");
  uint64_t header = 0;
  std::memcpy(&header, weights.data(), sizeof header);
  std::fill(weights.begin() + 8 + static_cast<std::ptrdiff_t>(header), weights.end(), '\xff');
  write_file_atomic(nan_model / "model.safetensors", weights);
  auto o = aha_cmd("model logprobs " + shell_quoted(nan_model) + " --ids 1,2,3");
  expect_clean_error(o, "not a number");
  EXPECT_EQ(o.out.find("\"logprobs\""), std::string::npos) << o.out;  // no JSON with NaN in it
}

// The same rule for files: an output file with content is replaced only with --overwrite.
TEST_F(DataLoss, OutputFilesWithContentAreReplacedOnlyWhenAsked) {
  const fs::path data = write("data.jsonl", "{\"users\": \"rows\"}\n");
  const std::string generate = "data generate --task arithmetic --n 3 --seed 1 --out " + shell_quoted(data);
  expect_clean_error(aha_cmd(generate), "--overwrite");
  EXPECT_EQ(read_file(data), "{\"users\": \"rows\"}\n");
  auto o = aha_cmd(generate + " --overwrite");
  EXPECT_EQ(o.exit_status, 0) << o.out;
  EXPECT_EQ(test::read_nonempty_lines(data).size(), 3u);
  const fs::path empty = write("empty.jsonl", "");  // an empty file holds nothing to lose
  EXPECT_EQ(aha_cmd("data generate --task arithmetic --n 2 --seed 1 --out " + shell_quoted(empty)).exit_status, 0);
}

}  // namespace
}  // namespace aha

// Issue 22: `aha tokenize` reads its text as an argument, from --file F, or from standard input
// (`-` or --file -), byte for byte: the three give the same ids, and a NUL byte (which no
// argument can carry) survives the round trip through the ids.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/files.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

using aha::test::CommandOutcome;
using aha::test::shell_quoted;

constexpr int kTimeout = 120;

std::string q(const fs::path& p) { return shell_quoted(p.string()); }

class TokenizeInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_tokenize_input_" + std::to_string(::getpid()));
    aha::remove_tree(dir_);
    fs::create_directories(dir_ / "tok");
    const fs::path fixture = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/tokenizers/qwen2_style";
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(fixture / name, dir_ / "tok" / name);
  }
  void TearDown() override { aha::remove_tree(dir_); }

  fs::path write(const std::string& name, const std::string& bytes) const {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
    return dir_ / name;
  }
  // The --json output of `aha tokenize --model tok TAIL` (stdout only), and its status.
  CommandOutcome tokenize(const std::string& tail) const {
    return aha::test::run_aha("tokenize --model " + q(dir_ / "tok") + " --json " + tail, false, kTimeout);
  }

  fs::path dir_;
};

TEST_F(TokenizeInput, ArgumentFileAndStandardInputGiveTheSameIds) {
  const std::vector<std::string> texts = {
      "first line\r\nsecond\tline\r\n\r\n\tindented\r\n",
      "h\xC3\xA9llo w\xC3\xB6rld \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82\r\n\t\tend",
      "\r\n\r\n\r\n",
  };
  for (size_t i = 0; i < texts.size(); ++i) {
    SCOPED_TRACE(i);
    const fs::path file = write("text" + std::to_string(i) + ".txt", texts[i]);
    const CommandOutcome by_argument = tokenize(shell_quoted(texts[i]));
    ASSERT_EQ(by_argument.exit_status, 0) << by_argument.out;
    ASSERT_EQ(by_argument.out.find("\"ids\": []"), std::string::npos) << by_argument.out;  // some ids
    EXPECT_EQ(tokenize("--file " + q(file)).out, by_argument.out);
    EXPECT_EQ(tokenize("- < " + q(file)).out, by_argument.out);
    EXPECT_EQ(tokenize("--file - < " + q(file)).out, by_argument.out);
    EXPECT_EQ(tokenize("< " + q(file) + " -").exit_status, 0);
  }
}

// The --json output's "ids" list as its text: "1, 2, 3".
std::string ids_of(const std::string& json) {
  const size_t start = json.find("\"ids\": [") + 8;
  return json.substr(start, json.find(']', start) - start);
}

TEST_F(TokenizeInput, NulBytesRoundTripThroughTheIds) {
  const std::string bytes("a\0b\r\n\0\0tail\r\n", 13);
  ASSERT_EQ(bytes.size(), 13u);
  const fs::path file = write("nul.bin", bytes);
  const CommandOutcome from_file = tokenize("--file " + q(file));
  ASSERT_EQ(from_file.exit_status, 0) << from_file.out;
  EXPECT_EQ(tokenize("- < " + q(file)).out, from_file.out);
  std::string ids = ids_of(from_file.out);
  for (char& c : ids) if (c == ',') c = ' ';
  const CommandOutcome decoded =
      aha::test::run_aha("tokenize --model " + q(dir_ / "tok") + " --decode " + ids, false, kTimeout);
  ASSERT_EQ(decoded.exit_status, 0) << decoded.out;
  EXPECT_EQ(decoded.out, bytes + "\n");  // the text, then one newline
}

TEST_F(TokenizeInput, ExactlyOneSourceOfText) {
  const fs::path file = write("t.txt", "x");
  for (const std::string& tail : {std::string(""), "text --file " + q(file), "- --file " + q(file)}) {
    const CommandOutcome o =
        aha::test::run_aha("tokenize --model " + q(dir_ / "tok") + " " + tail + " < /dev/null", true, kTimeout);
    EXPECT_EQ(o.exit_status, 2) << tail << ": " << o.out;
    EXPECT_NE(o.out.find("exactly one way"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("--file"), std::string::npos) << o.out;
  }
  const CommandOutcome missing = aha::test::run_aha("tokenize --model " + q(dir_ / "tok") + " --file " +
                                                    q(dir_ / "missing.txt"), true, kTimeout);
  EXPECT_EQ(missing.exit_status, 1) << missing.out;
  EXPECT_NE(missing.out.find("missing.txt"), std::string::npos) << missing.out;
}

TEST_F(TokenizeInput, GeneratePromptFileAndStandardInputMatchTheArgument) {
  // The same convention for aha generate's free text: --prompt-file F and --prompt-file -
  // (standard input) give the same greedy completion as --prompt with the same bytes.
  const fs::path config = write("config.json", R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "hidden_act": "silu", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
    "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "tie_word_embeddings": true, "torch_dtype": "float32",
    "eos_token_id": 0, "vocab_size": 4096})");
  const CommandOutcome init = aha::test::run_aha("model init --config " + q(config) + " --tokenizer " + q(dir_ / "tok") +
                                                     " --out " + q(dir_ / "model") + " --seed 3", true, kTimeout);
  ASSERT_EQ(init.exit_status, 0) << init.out;
  const std::string text = "What is 12 + 30?\nThink, then answer.";
  const fs::path file = write("prompt.txt", text);
  const std::string common = "generate --model " + q(dir_ / "model") + " --temperature 0 --max-new-tokens 6 ";
  const CommandOutcome by_argument = aha::test::run_aha(common + "--prompt " + shell_quoted(text), false, kTimeout);
  const CommandOutcome by_file = aha::test::run_aha(common + "--prompt-file " + q(file), false, kTimeout);
  const CommandOutcome by_stdin = aha::test::run_aha(common + "--prompt-file - < " + q(file), false, kTimeout);
  ASSERT_EQ(by_argument.exit_status, 0) << by_argument.out;
  EXPECT_FALSE(by_argument.out.empty());
  EXPECT_EQ(by_file.exit_status, 0) << by_file.out;
  EXPECT_EQ(by_file.out, by_argument.out);
  EXPECT_EQ(by_stdin.exit_status, 0) << by_stdin.out;
  EXPECT_EQ(by_stdin.out, by_argument.out);
  // A prompt no argument can carry: a NUL byte, read whole.
  const fs::path nul = write("nul.txt", std::string("before\0after", 12));
  const CommandOutcome with_nul = aha::test::run_aha(common + "--prompt-file " + q(nul), true, kTimeout);
  EXPECT_EQ(with_nul.exit_status, 0) << with_nul.out;
  const CommandOutcome twice =
      aha::test::run_aha(common + "--prompt-file - --prompt-file - < " + q(file), true, kTimeout);
  EXPECT_EQ(twice.exit_status, 1) << twice.out;
  EXPECT_NE(twice.out.find("standard input"), std::string::npos) << twice.out;
}

}  // namespace

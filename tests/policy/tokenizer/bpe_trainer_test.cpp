// BpeTrainer: hand-worked merges, tie-breaking, determinism, special tokens, option errors,
// and parity of a trained tokenizer with Hugging Face tokenizers (golden ids written by
// tests/fixtures/make_bpe_trainer_fixtures.py for the committed tokenizer.json).
#include "policy/tokenizer/bpe_trainer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/files.h"
#include "core/json.h"
#include "policy/tokenizer/tokenizer.h"
#include "tests/test_util.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/bpe_trainer";

using Merges = std::vector<std::pair<std::string, std::string>>;

TEST(BpeTrainer, MergesTheMostFrequentPairFirst) {
  // Words (Qwen2 split keeps the leading space): "ab", " ab" x2, " abc".
  // (a,b) occurs 4 times -> "ab"; then (Ġ,ab) 3 times -> "Ġab"; (Ġab,c) once < min_frequency 2.
  BpeTrainer trainer({/*vocab_size=*/400, /*min_frequency=*/2, {"<|endoftext|>"}, 64});
  trainer.add_text("ab ab ab abc");
  auto bpe = trainer.train();
  EXPECT_EQ(bpe.merges, (Merges{{"a", "b"}, {"Ġ", "ab"}}));
  ASSERT_EQ(bpe.vocab.size(), 258u);
  EXPECT_EQ(bpe.vocab[256], "ab");
  EXPECT_EQ(bpe.vocab[257], "Ġab");
  EXPECT_EQ(bpe.vocab['a'], "a");
  EXPECT_EQ(bpe.vocab[' '], "Ġ");
  EXPECT_EQ(bpe.size(), 259);
}

TEST(BpeTrainer, TiesGoToTheSmallestPairBytes) {
  // "xyzw" twice: (x,y), (y,z), (z,w) all count 2; "x" < "y" < "z" picks (x,y); then
  // (xy,z) and (z,w) tie and "xy" < "z"; then (xyz,w).
  BpeTrainer trainer({400, 2, {"<|endoftext|>"}, 64});
  trainer.add_text("xyzw\nxyzw");
  EXPECT_EQ(trainer.train().merges, (Merges{{"x", "y"}, {"xy", "z"}, {"xyz", "w"}}));
}

TEST(BpeTrainer, StopsAtTheVocabularySize) {
  BpeTrainer trainer({/*vocab_size=*/259, 1, {"<|endoftext|>"}, 64});  // room for 2 merges
  trainer.add_text("xyzw\nxyzw");
  auto bpe = trainer.train();
  EXPECT_EQ(bpe.merges.size(), 2u);
  EXPECT_EQ(bpe.size(), 259);
}

TEST(BpeTrainer, DigitsStayOneTokenEachAndSpecialTokensAreNotCounted) {
  BpeTrainer trainer({300, 2, {"<|endoftext|>"}, 64});
  for (int i = 0; i < 20; ++i) trainer.add_text("12 + 12 = 24<|endoftext|>");
  auto bpe = trainer.train();
  for (const auto& token : bpe.vocab) {
    int digits = 0;
    for (char c : token) digits += (c >= '0' && c <= '9');
    EXPECT_LE(digits, 1) << token;
    EXPECT_EQ(token.find("<|"), std::string::npos) << token;
  }
  auto tok = Tokenizer::from_json(bpe.tokenizer_json(), "trained");
  auto ids = tok.encode("12<|endoftext|>");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[2], int(bpe.vocab.size()));  // the special token follows the learned vocabulary
}

TEST(BpeTrainer, IsDeterministicAndRoundTrips) {
  std::string text = read_file(kFixtures / "corpus.txt");
  auto train = [&] {
    BpeTrainer trainer({600, 2, {"<|endoftext|>"}, 2048});
    trainer.add_text(text);
    return trainer.train();
  };
  auto a = train(), b = train();
  EXPECT_EQ(a.tokenizer_json(), b.tokenizer_json());
  auto tok = Tokenizer::from_json(a.tokenizer_json(), "trained");
  EXPECT_EQ(int64_t(tok.vocab_size()), a.size());
  for (std::string s : {text.substr(0, 2000), std::string("café 中文 😀 \xff\xfe raw bytes"), std::string("")}) {
    auto ids = tok.encode(s);
    EXPECT_EQ(tok.decode(ids), s);
  }
  // The committed tokenizer is this trainer's output on corpus.txt (its golden ids below are HF's).
  EXPECT_EQ(a.tokenizer_json(), read_file(kFixtures / "tokenizer.json"));
}

TEST(BpeTrainer, WrittenFilesMatchHuggingFaceIds) {
  auto tok = Tokenizer::from_dir(kFixtures);
  ASSERT_TRUE(tok.eos_id() && tok.bos_id() && tok.pad_id());
  EXPECT_EQ(*tok.eos_id(), *tok.token_to_id("<|endoftext|>"));
  auto golden = json::parse(read_file(kFixtures / "golden.json"), "golden.json");
  size_t checked = 0;
  for (const auto& c : golden["cases"].GetArray()) {
    std::string name = c["name"].GetString();
    std::string text(c["text"].GetString(), c["text"].GetStringLength());
    std::vector<TokenId> expected;
    for (const auto& id : c["ids"].GetArray()) expected.push_back(id.GetInt());
    EXPECT_EQ(tok.encode(text), expected) << name;
    ++checked;
  }
  EXPECT_GT(checked, 30u);
}

TEST(BpeTrainer, PreambleWordsAreWholeTokens) {
  auto tok = Tokenizer::from_dir(kFixtures);
  for (const char* word : {" conversation", " assistant", " reasoning", " answer", " respectively"})
    EXPECT_EQ(tok.encode(word).size(), 1u) << word;
}

TEST(BpeTrainer, BadOptionsAreErrors) {
  EXPECT_NE(test::error_of([] { BpeTrainer({257, 2, {"<|endoftext|>"}, 64}); }).find("vocab_size"), std::string::npos);
  EXPECT_NE(test::error_of([] { BpeTrainer({400, 0, {"<|endoftext|>"}, 64}); }).find("min_frequency"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { BpeTrainer({400, 2, {"<|a|>", "<|a|>"}, 64}); }).find("twice"), std::string::npos);
  EXPECT_NE(test::error_of([] { BpeTrainer({400, 2, {""}, 64}); }).find("empty"), std::string::npos);
}

}  // namespace
}  // namespace aha

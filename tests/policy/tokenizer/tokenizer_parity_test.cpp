// Parity with Hugging Face tokenizers: ids, tokens and decoded text for every case of
// tests/fixtures/tokenizers/corpus.jsonl, against golden files written by
// tests/fixtures/make_tokenizer_fixtures.py. The Qwen2-style tokenizer is committed and always
// runs; GPT-2 and cl100k come from ../shared/tokenizers (or $AHA_TOKENIZERS_DIR) and are
// skipped when that folder is absent.
//
// Invalid UTF-8: Hugging Face takes Python str, which cannot hold raw bytes, and rejects lone
// surrogates ("TextInputSequence must be str"), so the parity corpus carries invalid input the
// way HF sees it after decoding with errors="replace": U+FFFD. Raw invalid bytes are tested in
// tokenizer_components_test.cpp: they encode to their byte tokens and decode back exactly, and
// HF's decode of those ids is utf8::lossy of aha's.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/json.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy/tokenizer/tokenizer_spec.h"
#include "policy/tokenizer/tokenizer_stream.h"
#include "policy/tokenizer/tokenizer_utf8.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/tokenizers";

fs::path shared_tokenizers() {
  if (const char* dir = std::getenv("AHA_TOKENIZERS_DIR")) return dir;
  return fs::path(AHA_SOURCE_DIR "/../shared/tokenizers");
}

struct GoldenCase {
  std::string name, text, decoded;
  std::vector<TokenId> ids;
  std::vector<std::string> tokens;
};

GoldenCase read_case(const rapidjson::Value& c) {
  GoldenCase out;
  out.name = c["name"].GetString();
  for (const auto& id : c["ids"].GetArray()) out.ids.push_back(id.GetInt());
  for (const auto& t : c["tokens"].GetArray()) out.tokens.emplace_back(t.GetString(), t.GetStringLength());
  if (c.HasMember("text")) out.text.assign(c["text"].GetString(), c["text"].GetStringLength());
  if (c.HasMember("decoded")) out.decoded.assign(c["decoded"].GetString(), c["decoded"].GetStringLength());
  return out;
}

// golden_<name>.json: the ids of corpus.jsonl's cases, in its order.
std::vector<GoldenCase> read_golden(const std::string& name) {
  auto corpus_text = read_file(kFixtures / "corpus.jsonl");
  auto golden = json::parse(read_file(kFixtures / ("golden_" + name + ".json")), "golden_" + name);
  std::vector<GoldenCase> out;
  size_t start = 0;
  for (const auto& golden_case : golden["cases"].GetArray()) {
    size_t end = corpus_text.find('\n', start);
    auto line = json::parse(corpus_text.substr(start, end - start), "corpus.jsonl");
    start = end + 1;
    GoldenCase c = read_case(golden_case);
    EXPECT_EQ(c.name, line["name"].GetString()) << "golden_" << name << " is out of step with corpus.jsonl";
    c.text.assign(line["text"].GetString(), line["text"].GetStringLength());
    if (!golden_case.HasMember("decoded")) c.decoded = c.text;
    out.push_back(std::move(c));
  }
  EXPECT_EQ(start, corpus_text.size()) << "corpus.jsonl has cases that golden_" << name << " lacks";
  return out;
}

// fuzz_<name>.json: seeded random strings, with their text.
std::vector<GoldenCase> read_fuzz(const std::string& name) {
  auto golden = json::parse(read_file(kFixtures / ("fuzz_" + name + ".json")), "fuzz_" + name);
  std::vector<GoldenCase> out;
  for (const auto& golden_case : golden["cases"].GetArray()) {
    out.push_back(read_case(golden_case));
    if (!golden_case.HasMember("decoded")) out.back().decoded = out.back().text;
  }
  return out;
}

void expect_parity(const Tokenizer& tok, const std::vector<GoldenCase>& cases, const std::string& golden_name) {
  ASSERT_GE(cases.size(), 40u);  // the whole corpus, not an empty golden file
  std::vector<std::string> texts;
  for (const auto& c : cases) {
    SCOPED_TRACE(golden_name + " case " + c.name);
    std::vector<TokenId> ids = tok.encode(c.text);
    EXPECT_EQ(ids, c.ids);
    std::vector<std::string> tokens;
    for (TokenId id : ids) tokens.push_back(tok.id_to_token(id).value_or("<missing>"));
    EXPECT_EQ(tokens, c.tokens);
    EXPECT_EQ(tok.decode(ids), c.decoded);
    // Streaming one id at a time gives the same text, and never splits a character.
    StreamingDecoder stream(tok);
    std::string streamed;
    for (TokenId id : ids) {
      std::string piece = stream.push(id);
      EXPECT_EQ(utf8::incomplete_tail_length(piece), 0u);
      streamed += piece;
    }
    EXPECT_EQ(stream.pending_bytes(), 0u);
    EXPECT_EQ(streamed + stream.finish(), c.decoded);
    texts.push_back(c.text);
  }
  // The batch on a thread pool gives what one-by-one encoding gives (against HF's ids).
  ThreadPool pool(3);
  auto batch = tok.encode_batch(texts, true, &pool);
  ASSERT_EQ(batch.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(batch[i], cases[i].ids) << cases[i].name;
}

TEST(TokenizerParity, Qwen2StyleMatchesHuggingFace) {
  Tokenizer tok = Tokenizer::from_dir(kFixtures / "qwen2_style");
  expect_parity(tok, read_golden("qwen2_style"), "golden_qwen2_style");
  EXPECT_EQ(tok.eos_id(), tok.token_to_id("<|im_end|>"));
  EXPECT_EQ(tok.pad_id(), tok.token_to_id("<|endoftext|>"));
  EXPECT_FALSE(tok.bos_id().has_value());
  EXPECT_EQ(tok.vocab_size(), 3000u);
  EXPECT_TRUE(tok.is_special(*tok.token_to_id("<|im_start|>")));
}

TEST(TokenizerParity, Qwen2StyleMatchesHuggingFaceOnFuzz) {
  expect_parity(Tokenizer::from_dir(kFixtures / "qwen2_style"), read_fuzz("qwen2_style"), "fuzz_qwen2_style");
}

TEST(TokenizerParity, Qwen2StyleRoundTripsNfcText) {
  // With the NFC normalizer, decode(encode(x)) == x holds for text already in NFC: the golden
  // "decoded" values are HF's NFC of the text, and encoding them again changes nothing.
  Tokenizer tok = Tokenizer::from_dir(kFixtures / "qwen2_style");
  for (const auto& c : read_golden("qwen2_style")) EXPECT_EQ(tok.decode(tok.encode(c.decoded)), c.decoded) << c.name;
}

class SharedTokenizerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(SharedTokenizerParity, TokenizerJsonMatchesHuggingFace) {
  fs::path dir = shared_tokenizers() / GetParam();
  if (!fs::exists(dir / "tokenizer.json")) GTEST_SKIP() << dir << " is absent (set AHA_TOKENIZERS_DIR)";
  Tokenizer tok = Tokenizer::from_dir(dir);
  expect_parity(tok, read_golden(GetParam()), "golden_" + GetParam());
  expect_parity(tok, read_fuzz(GetParam()), "fuzz_" + GetParam());
  // Round trip on the whole corpus (these tokenizers have no normalizer).
  for (const auto& c : read_golden(GetParam())) EXPECT_EQ(tok.decode(tok.encode(c.text)), c.text) << c.name;
}

TEST_P(SharedTokenizerParity, VocabAndMergesMatchTokenizerJson) {
  fs::path dir = shared_tokenizers() / GetParam();
  if (!fs::exists(dir / "vocab.json")) GTEST_SKIP() << dir << " is absent (set AHA_TOKENIZERS_DIR)";
  Tokenizer from_json = Tokenizer::from_dir(dir);
  // The same files without tokenizer.json: GPT-2's pipeline, specials found as the vocabulary
  // entries no merge produces.
  TokenizerSpec spec = parse_vocab_and_merges(read_file(dir / "vocab.json"), read_file(dir / "merges.txt"), GetParam());
  if (GetParam() == "cl100k") {
    // cl100k's pre-tokenizer is not GPT-2's: keep the files' vocabulary and merges and take
    // the pipeline from tokenizer.json, which checks that merges.txt is read rank for rank.
    TokenizerSpec json_spec = parse_tokenizer_json(read_file(dir / "tokenizer.json"), "tokenizer.json");
    spec.pre_tokenizer = json_spec.pre_tokenizer;
    spec.ignore_merges = json_spec.ignore_merges;
    EXPECT_EQ(spec.merges, json_spec.merges);
  }
  Tokenizer from_files(spec);
  EXPECT_EQ(from_files.vocab_size(), from_json.vocab_size());
  std::vector<GoldenCase> cases = read_golden(GetParam()), fuzz = read_fuzz(GetParam());
  cases.insert(cases.end(), fuzz.begin(), fuzz.end());
  for (const auto& c : cases) {
    EXPECT_EQ(from_files.encode(c.text), c.ids) << c.name;
    for (TokenId id : c.ids) EXPECT_EQ(from_files.is_special(id), from_json.is_special(id)) << c.name << " id " << id;
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, SharedTokenizerParity, ::testing::Values("gpt2", "cl100k"));

TEST(TokenizerParity, Cl100kSpecialIdsFollowTheVocabularyNotTheirOrder) {
  fs::path dir = shared_tokenizers() / "cl100k";
  if (!fs::exists(dir / "tokenizer.json")) GTEST_SKIP() << dir << " is absent (set AHA_TOKENIZERS_DIR)";
  Tokenizer tok = Tokenizer::from_dir(dir);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 100257);
  EXPECT_EQ(tok.token_to_id("<|endofprompt|>"), 100276);
  EXPECT_EQ(tok.encode("<|endofprompt|>"), std::vector<TokenId>{100276});
  EXPECT_EQ(tok.vocab_size(), 100261u);
  EXPECT_EQ(tok.id_limit(), 100277);
  EXPECT_FALSE(tok.id_to_token(100256).has_value());
  std::vector<TokenId> gap{100256};
  EXPECT_THROW(tok.decode(gap), Error);
}

}  // namespace
}  // namespace aha

// The tokenizer's parts against hand-worked expectations: UTF-8 handling, the byte-level
// alphabet, NFC (against Python's unicodedata), Oniguruma-compatible split patterns, invalid
// bytes, streaming decode, added-token options, post-processor templates and the errors for
// what aha does not support.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "policy/tokenizer/byte_level.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy/tokenizer/tokenizer_added_tokens.h"
#include "policy/tokenizer/tokenizer_nfc.h"
#include "policy/tokenizer/tokenizer_pre_tokenizer.h"
#include "policy/tokenizer/tokenizer_regex.h"
#include "policy/tokenizer/tokenizer_spec.h"
#include "policy/tokenizer/tokenizer_stream.h"
#include "policy/tokenizer/tokenizer_utf8.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/tokenizers";
const std::string kReplacement = "\xEF\xBF\xBD";

TEST(TokenizerUtf8, LossyReplacesMaximalIllFormedSubparts) {
  EXPECT_EQ(utf8::lossy("plain é 😀"), "plain é 😀");
  EXPECT_EQ(utf8::lossy("a\xFF" "b"), "a" + kReplacement + "b");
  EXPECT_EQ(utf8::lossy("\xE2\x82"), kReplacement);                      // truncated: one
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x98x"), kReplacement + "x");
  EXPECT_EQ(utf8::lossy("\xE0\x80\x80"), kReplacement + kReplacement + kReplacement);  // overlong
  EXPECT_EQ(utf8::lossy("\xED\xA0\x80"), kReplacement + kReplacement + kReplacement);  // surrogate
  EXPECT_EQ(utf8::lossy("\xF4\x90\x80\x80"), kReplacement + kReplacement + kReplacement + kReplacement);
}

TEST(TokenizerUtf8, IncompleteTailIsOnlyAValidUnfinishedCharacter) {
  EXPECT_EQ(utf8::incomplete_tail_length(""), 0u);
  EXPECT_EQ(utf8::incomplete_tail_length("ab\xC3"), 1u);
  EXPECT_EQ(utf8::incomplete_tail_length("\xF0\x9F"), 2u);
  EXPECT_EQ(utf8::incomplete_tail_length("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8::incomplete_tail_length("\xF0\x9F\x98\x80"), 0u);  // complete
  EXPECT_EQ(utf8::incomplete_tail_length("\xFF"), 0u);              // never valid
  EXPECT_EQ(utf8::incomplete_tail_length("\xE0\x80"), 0u);          // overlong start
  EXPECT_EQ(utf8::incomplete_tail_length("\x80"), 0u);
}

TEST(TokenizerByteLevel, AlphabetMatchesGpt2) {
  EXPECT_EQ(byte_level::char_for_byte(' '), "Ġ");
  EXPECT_EQ(byte_level::char_for_byte('\n'), "Ċ");
  EXPECT_EQ(byte_level::char_for_byte('a'), "a");
  EXPECT_EQ(byte_level::char_for_byte(0xAD), "Ń");  // the last byte shifted past U+0100
  EXPECT_EQ(byte_level::char_for_byte(0xE9), "é");   // Latin-1 stands for itself
  EXPECT_EQ(byte_level::to_bytes("ĠĊ"), std::optional<std::string>(" \n"));
  EXPECT_EQ(byte_level::to_bytes("中"), std::nullopt);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(byte_level::to_bytes(byte_level::from_bytes(all)), std::optional<std::string>(all));
}

TEST(TokenizerNfc, HandWorkedCases) {
  EXPECT_EQ(nfc("e\u0301"), "é");
  EXPECT_EQ(nfc("\u212B"), "Å");                         // singleton decomposition
  EXPECT_EQ(nfc("a\u0323\u0302"), "\u1EAD");              // ậ
  EXPECT_EQ(nfc("a\u0302\u0323"), "\u1EAD");              // reordered first
  EXPECT_EQ(nfc("\u1100\u1161\u11A8"), "\uAC01");         // Hangul jamo -> 각
  EXPECT_EQ(nfc("\uFB01"), "\uFB01");                     // compatibility only: unchanged
  EXPECT_EQ(nfc("e\xFF\u0301"), "e\xFF\u0301");           // invalid byte blocks composing
  EXPECT_TRUE(is_nfc_quick("plain ascii and 中文"));
  EXPECT_FALSE(is_nfc_quick("e\u0301"));
}

TEST(TokenizerNfc, MatchesPythonUnicodedata) {
  auto doc = json::parse(read_file(kFixtures / "nfc_cases.json"), "nfc_cases.json");
  ASSERT_EQ(doc["cases"].Size(), 300u);
  for (const auto& c : doc["cases"].GetArray()) {
    std::string text(c["text"].GetString(), c["text"].GetStringLength());
    std::string expected(c["nfc"].GetString(), c["nfc"].GetStringLength());
    EXPECT_EQ(nfc(text), expected) << text;
    if (is_nfc_quick(text)) {
      EXPECT_EQ(text, expected) << "quick check passed a non-NFC string";
    }
  }
}

std::vector<std::string> split_all(const SplitRegex& re, std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0, begin, end;
  while (re.find(text, pos, begin, end)) {
    out.emplace_back(text.substr(begin, end - begin));
    pos = end;
  }
  return out;
}

TEST(TokenizerRegex, WhiteSpaceIsOnigurumasNotPcre2s) {
  // Hugging Face (Oniguruma) splits "a\u0085b\u00a0c\u200bd" on \s+ at U+0085 and U+00A0
  // only: \s is Unicode White_Space, which has no U+200B.
  SplitRegex re("\\s+", "test");
  EXPECT_EQ(split_all(re, "a\u0085b\u00A0c\u200Bd\u3000"),
            (std::vector<std::string>{"\u0085", "\u00A0", "\u3000"}));
  SplitRegex negated("[^\\s]+", "test");
  EXPECT_EQ(split_all(negated, "ab\u0085cd"), (std::vector<std::string>{"ab", "cd"}));
  SplitRegex unicode_escape("\\u00e9+", "test");
  EXPECT_EQ(split_all(unicode_escape, "xéé"), std::vector<std::string>{"éé"});
}

TEST(TokenizerRegex, CaseInsensitiveContractionsFoldLikeHuggingFace) {
  SplitRegex re("(?i:'s|'t)", "test");  // HF also matches the long s: 'ſ
  EXPECT_EQ(split_all(re, "x'S y'ſ z't"), (std::vector<std::string>{"'S", "'ſ", "'t"}));
}

TEST(TokenizerRegex, EscapesThatWouldChangeMeaningAreErrors) {
  for (const char* pattern : {"\\bword", "\\h+", "(a)\\1", "[\\S]", "[a[b]]"}) {
    try {
      SplitRegex re(pattern, "pre_tokenizer.Split");
      ADD_FAILURE() << "accepted " << pattern;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("pre_tokenizer.Split"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(SplitRegex("(unclosed", "test"), Error);
}

TEST(TokenizerRegex, InvalidUtf8NeverMatches) {
  SplitRegex re("\\p{L}+|\\s+", "test");
  EXPECT_EQ(split_all(re, "ab\xFF\xFE" "cd \xC3"), (std::vector<std::string>{"ab", "cd", " "}));
}

TEST(TokenizerRegex, DeepSeekV3SplitSequenceMatchesHuggingFace) {
  // DeepSeek-V3's three Split patterns; the expected pieces are what Hugging Face tokenizers
  // 0.23.2 gives for this text (pre_tokenize_str).
  std::vector<PreTokenizerStep> steps(3);
  steps[0].pattern = "\\p{N}{1,3}";
  steps[1].pattern = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+";
  steps[2].pattern =
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
      "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
  PreTokenizer pre(steps, "deepseek");
  std::vector<std::string> pieces;
  pre.run("DeepSeek-V3 has 671B params; 日本語のテキスト and नमस्ते! x.foo()\n\n  [ok] \\path 12345",
          [&](std::string_view p) { pieces.emplace_back(p); });
  std::vector<std::string> expected{"DeepSeek", "-V", "3", " has", " ", "671", "B", " params", ";", " ",
                                    "日本語のテキスト", " and", " नमस्ते", "!", " x", ".foo", "()\n\n", " ", " [",
                                    "ok", "]", " \\", "path", " ", "123", "45"};
  EXPECT_EQ(pieces, expected);
}

Tokenizer qwen2_style() { return Tokenizer::from_dir(kFixtures / "qwen2_style"); }

TokenId id_of(const Tokenizer& tok, const std::string& token) {
  auto id = tok.token_to_id(token);
  EXPECT_TRUE(id.has_value()) << token;
  return id.value_or(-1);
}

TEST(TokenizerEncode, InvalidBytesBecomeTheirByteTokensAndDecodeExactly) {
  Tokenizer tok = qwen2_style();
  std::string text = "a\xFF" "b\xC3";
  std::vector<TokenId> expected{id_of(tok, "a"), id_of(tok, "ÿ"), id_of(tok, "b"), id_of(tok, "Ã")};
  EXPECT_EQ(tok.encode(text), expected);
  EXPECT_EQ(tok.decode(expected), text);
  EXPECT_EQ(utf8::lossy(tok.decode(expected)), "a" + kReplacement + "b" + kReplacement);
}

TEST(TokenizerEncode, ArbitraryBytesRoundTrip) {
  // The fixture without its normalizer, so that any byte string must come back unchanged.
  TokenizerSpec spec = read_tokenizer_dir(kFixtures / "qwen2_style");
  spec.nfc = false;
  Tokenizer tok(spec);
  std::mt19937 rng(12345);
  const std::string pieces[] = {"a", " ", "\n", "é", "中", "😀", "\xFF", "\x80", "\xE2\x82", "'s", "1", "<|im_end|>"};
  for (int round = 0; round < 300; ++round) {
    std::string text;
    int length = static_cast<int>(rng() % 40);
    for (int i = 0; i < length; ++i) {
      if (rng() % 3 == 0) text.push_back(static_cast<char>(rng() % 256));
      else text += pieces[rng() % std::size(pieces)];
    }
    EXPECT_EQ(tok.decode(tok.encode(text)), text);
  }
}

TEST(TokenizerStream, HoldsBackASplitCharacter) {
  Tokenizer tok = qwen2_style();
  std::vector<TokenId> ids = tok.encode("x🫠y");
  ASSERT_GT(ids.size(), 3u) << "the emoji should take several byte tokens";
  StreamingDecoder stream(tok);
  std::vector<std::string> outputs;
  for (TokenId id : ids) outputs.push_back(stream.push(id));
  EXPECT_EQ(outputs.front(), "x");
  std::string joined;
  for (size_t i = 1; i + 1 < outputs.size(); ++i) {
    EXPECT_TRUE(outputs[i].empty() || outputs[i] == "🫠") << i;
    joined += outputs[i];
  }
  EXPECT_EQ(joined, "🫠");
  EXPECT_EQ(outputs.back(), "y");
  EXPECT_EQ(stream.finish(), "");
}

TEST(TokenizerStream, FinishReturnsAnUnfinishedCharacter) {
  Tokenizer tok = qwen2_style();
  StreamingDecoder stream(tok, /*skip_special_tokens=*/true);
  EXPECT_EQ(stream.push(id_of(tok, "ð")), "");  // 0xF0: the first byte of a 4-byte character
  EXPECT_EQ(stream.pending_bytes(), 1u);
  EXPECT_EQ(stream.push(*tok.eos_id()), "");     // special: skipped
  EXPECT_EQ(stream.finish(), "\xF0");
}

// The fixture's tokenizer.json with one field replaced.
std::string fixture_json_with(const char* key, const std::string& value_json) {
  auto doc = json::parse(read_file(kFixtures / "qwen2_style/tokenizer.json"), "fixture");
  rapidjson::Document value;
  value.Parse(value_json.c_str());
  doc[key].CopyFrom(value, doc.GetAllocator());
  return json::to_string(doc);
}

void expect_error_naming(const std::string& json_text, std::vector<std::string> words) {
  try {
    Tokenizer::from_json(json_text, "tokenizer.json");
    ADD_FAILURE() << "accepted a tokenizer naming " << words.front();
  } catch (const Error& e) {
    for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
  }
}

TEST(TokenizerLoad, UnsupportedComponentsAreErrorsNamingThem) {
  expect_error_naming(fixture_json_with("normalizer", R"({"type": "NFKC"})"), {"normalizer", "NFKC"});
  expect_error_naming(fixture_json_with("pre_tokenizer", R"({"type": "Metaspace"})"), {"pre_tokenizer", "Metaspace"});
  expect_error_naming(fixture_json_with("pre_tokenizer",
                                        R"({"type": "Split", "pattern": {"Regex": "x"}, "behavior": "Removed", "invert": false})"),
                      {"pre_tokenizer", "Removed"});
  expect_error_naming(fixture_json_with("decoder", R"({"type": "WordPiece"})"), {"decoder", "WordPiece"});
  expect_error_naming(fixture_json_with("decoder", "null"), {"decoder"});
  expect_error_naming(fixture_json_with("post_processor", R"({"type": "RobertaProcessing"})"), {"post_processor", "RobertaProcessing"});
  expect_error_naming(fixture_json_with("truncation", R"({"max_length": 8})"), {"truncation"});
  auto doc = json::parse(read_file(kFixtures / "qwen2_style/tokenizer.json"), "fixture");
  doc["model"]["type"].SetString("Unigram");
  expect_error_naming(json::to_string(doc), {"model", "Unigram"});
  doc["model"]["type"].SetString("BPE");
  doc["model"]["byte_fallback"].SetBool(true);
  expect_error_naming(json::to_string(doc), {"model", "byte_fallback"});
  doc["model"]["byte_fallback"].SetBool(false);
  doc["model"]["vocab"]["!"].SetInt(doc["model"]["vocab"]["a"].GetInt());
  expect_error_naming(json::to_string(doc), {"model.vocab", "given to both"});
  doc["model"]["vocab"].RemoveMember("!");
  expect_error_naming(json::to_string(doc), {"byte 0x21"});
  expect_error_naming("{\"model\": 3", {"tokenizer.json", "invalid JSON"});
}

TEST(TokenizerLoad, MissingFilesAndUnknownConfigTokensAreErrors) {
  fs::path dir = fs::temp_directory_path() / ("aha_tokenizer_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  EXPECT_THROW(Tokenizer::from_dir(dir), Error);
  fs::copy_file(kFixtures / "qwen2_style/tokenizer.json", dir / "tokenizer.json");
  write_file_atomic(dir / "tokenizer_config.json", R"({"eos_token": "<|not_a_token|>"})");
  try {
    Tokenizer::from_dir(dir);
    ADD_FAILURE() << "accepted an unknown eos_token";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("eos_token"), std::string::npos) << e.what();
  }
  aha::remove_tree(dir);
}

TEST(TokenizerAddedTokens, LeftmostLongestAmongSharedPrefixes) {
  std::vector<AddedToken> tokens;
  int id = 0;
  for (const char* content : {"<|a|>", "<|ab|>", "<|a", "ｘ", "<｜begin▁of▁sentence｜>", "<｜User｜>"})
    tokens.push_back({content, id++, true, false, false, false});
  AddedTokenMatcher matcher(tokens);
  std::vector<std::string> parts;
  std::string text = "x<|ab|><|a|><|a<|abc|>ｘ<｜User｜><｜begin▁of▁sentence｜>>";
  matcher.split(
      text, [&](size_t b, size_t e) { parts.push_back("text:" + text.substr(b, e - b)); },
      [&](TokenId t) { parts.push_back("token:" + tokens[static_cast<size_t>(t)].content); });
  std::vector<std::string> expected{"text:x", "token:<|ab|>", "token:<|a|>", "token:<|a", "token:<|a", "text:bc|>",
                                    "token:ｘ", "token:<｜User｜>", "token:<｜begin▁of▁sentence｜>", "text:>"};
  EXPECT_EQ(parts, expected);
}

TEST(TokenizerEncode, AddedTokenOptions) {
  auto doc = json::parse(read_file(kFixtures / "qwen2_style/tokenizer.json"), "fixture");
  auto& a = doc.GetAllocator();
  auto add = [&](const char* content, int id, bool lstrip, bool rstrip, bool normalized) {
    rapidjson::Value t(rapidjson::kObjectType);
    t.AddMember("id", id, a).AddMember("content", rapidjson::Value(content, a), a);
    t.AddMember("single_word", false, a).AddMember("lstrip", lstrip, a).AddMember("rstrip", rstrip, a);
    t.AddMember("normalized", normalized, a).AddMember("special", !normalized, a);
    doc["added_tokens"].PushBack(t, a);
  };
  add("<mask>", 3000, true, true, false);
  add("café", 3001, false, false, true);  // matched after NFC
  Tokenizer tok = Tokenizer::from_json(json::to_string(doc), "tokenizer.json");
  Tokenizer plain = qwen2_style();
  auto concat = [](std::vector<TokenId> x, const std::vector<TokenId>& y) {
    x.insert(x.end(), y.begin(), y.end());
    return x;
  };
  // lstrip and rstrip: the token takes the white space on both sides.
  EXPECT_EQ(tok.encode("a \t<mask>  b"), concat(concat(plain.encode("a"), {3000}), plain.encode("b")));
  EXPECT_EQ(tok.encode("cafe\u0301!"), concat({3001}, plain.encode("!")));
  // The ByteLevel decoder reads "café" as alphabet characters: é stands for byte 0xE9. Hugging
  // Face decodes it to "caf\uFFFD" (checked with tokenizers 0.23.2), which is utf8::lossy of
  // the bytes aha returns.
  EXPECT_EQ(tok.decode(std::vector<TokenId>{3000, 3001}), "<mask>caf\xE9");
  EXPECT_EQ(utf8::lossy(tok.decode(std::vector<TokenId>{3001})), "caf" + kReplacement);
  EXPECT_EQ(tok.decode(std::vector<TokenId>{3000, 3001}, /*skip_special_tokens=*/true), "caf\xE9");
}

TEST(TokenizerEncode, TemplateProcessingAddsTokensOnlyWithAddSpecialTokens) {
  std::string processor = R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<|im_end|>", "type_id": 0}}],
      "pair": [], "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]},
                                     "<|im_end|>": {"id": "<|im_end|>", "ids": [2], "tokens": ["<|im_end|>"]}}})";
  Tokenizer tok = Tokenizer::from_json(fixture_json_with("post_processor", processor), "tokenizer.json");
  std::vector<TokenId> bare = tok.encode("hello world", false);
  std::vector<TokenId> wrapped{0};
  wrapped.insert(wrapped.end(), bare.begin(), bare.end());
  wrapped.push_back(2);
  EXPECT_EQ(tok.encode("hello world", true), wrapped);
  EXPECT_EQ(bare, qwen2_style().encode("hello world"));
}

TEST(TokenizerEncode, SplitWithALiteralString) {
  std::string pre = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"String": "."}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})";
  Tokenizer tok = Tokenizer::from_json(fixture_json_with("pre_tokenizer", pre), "tokenizer.json");
  // "." is literal (not "any character"): "ab.cd" is cut into "ab", ".", "cd".
  std::vector<TokenId> expected = tok.encode("ab");
  for (const char* part : {".", "cd"}) {
    auto ids = tok.encode(part);
    expected.insert(expected.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(tok.encode("ab.cd"), expected);
}

}  // namespace
}  // namespace aha

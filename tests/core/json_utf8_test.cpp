// JSON text aha writes is always valid UTF-8 (issue 23, finding 11): invalid bytes in strings
// (a Latin-1 prompt file, a program's raw output) become U+FFFD instead of being copied into
// JSON Lines that readers then reject.
#include <gtest/gtest.h>
#include <rapidjson/writer.h>

#include "core/json.h"
#include "core/utf8.h"

namespace {

// An independent UTF-8 validator, written from RFC 3629's table of well-formed sequences:
// 00-7F | C2-DF 80-BF | E0 A0-BF 80-BF | E1-EC 80-BF 80-BF | ED 80-9F 80-BF | EE-EF 80-BF 80-BF
// | F0 90-BF 80-BF 80-BF | F1-F3 80-BF 80-BF 80-BF | F4 80-8F 80-BF 80-BF.
bool well_formed(const std::string& s) {
  auto in = [](unsigned char c, int lo, int hi) { return c >= lo && c <= hi; };
  size_t i = 0;
  while (i < s.size()) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(i + k < s.size() ? s[i + k] : 0); };
    const unsigned char c = b(0);
    if (c <= 0x7F) {
      i += 1;
    } else if (in(c, 0xC2, 0xDF) && in(b(1), 0x80, 0xBF)) {
      i += 2;
    } else if ((c == 0xE0 && in(b(1), 0xA0, 0xBF)) || (in(c, 0xE1, 0xEC) && in(b(1), 0x80, 0xBF)) ||
               (c == 0xED && in(b(1), 0x80, 0x9F)) || (in(c, 0xEE, 0xEF) && in(b(1), 0x80, 0xBF))) {
      if (!in(b(2), 0x80, 0xBF)) return false;
      i += 3;
    } else if ((c == 0xF0 && in(b(1), 0x90, 0xBF)) || (in(c, 0xF1, 0xF3) && in(b(1), 0x80, 0xBF)) ||
               (c == 0xF4 && in(b(1), 0x80, 0x8F))) {
      if (!in(b(2), 0x80, 0xBF) || !in(b(3), 0x80, 0xBF)) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

const std::string kFFFD = "\xEF\xBF\xBD";

std::string object_with(const std::string& key, const std::string& value) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember(rapidjson::Value(key.data(), static_cast<rapidjson::SizeType>(key.size()), a),
                rapidjson::Value(value.data(), static_cast<rapidjson::SizeType>(value.size()), a), a);
  return aha::json::to_string(doc);
}

TEST(JsonUtf8, TheValidatorItselfAgreesWithHandPickedCases) {
  EXPECT_TRUE(well_formed("plain \xC3\xA9 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(well_formed("\xFF"));
  EXPECT_FALSE(well_formed("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(well_formed("\xED\xA0\x80"));      // a surrogate
  EXPECT_FALSE(well_formed("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(well_formed("\xE2\x82"));          // truncated
}

TEST(JsonUtf8, InvalidBytesInValuesBecomeReplacementCharacters) {
  // Expected texts worked by hand: each maximal ill-formed subpart is one U+FFFD.
  EXPECT_EQ(object_with("k", "a\xFF" "b"), "{\"k\":\"a" + kFFFD + "b\"}");
  EXPECT_EQ(object_with("k", "\xE2\x82"), "{\"k\":\"" + kFFFD + "\"}");                           // truncated € sign
  EXPECT_EQ(object_with("k", "\xC0\xAF"), "{\"k\":\"" + kFFFD + kFFFD + "\"}");                   // overlong
  EXPECT_EQ(object_with("k", "\xED\xA0\x80"), "{\"k\":\"" + kFFFD + kFFFD + kFFFD + "\"}");       // surrogate
  EXPECT_EQ(object_with("k", "caf\xE9"), "{\"k\":\"caf" + kFFFD + "\"}");                        // Latin-1 é
  // Valid text, escapes included, is untouched.
  EXPECT_EQ(object_with("k", "\xC3\xA9\"\n\xF0\x9F\x98\x80"), "{\"k\":\"\xC3\xA9\\\"\\n\xF0\x9F\x98\x80\"}");
}

TEST(JsonUtf8, KeysPrettyTextAndHandDrivenWritersAreValidToo) {
  EXPECT_EQ(object_with("\xFE", "v"), "{\"" + kFFFD + "\":\"v\"}");
  rapidjson::Document doc(rapidjson::kArrayType);
  doc.PushBack(rapidjson::Value("x\x80y", doc.GetAllocator()), doc.GetAllocator());
  const std::string pretty = aha::json::to_string(doc, true);
  EXPECT_TRUE(well_formed(pretty)) << pretty;
  EXPECT_NE(pretty.find("x" + kFFFD + "y"), std::string::npos);

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("prompt");
  const std::string prompt = "\xF0\x9F\x98 tail \xA0";  // a cut emoji and a stray continuation byte
  w.String(prompt.data(), static_cast<rapidjson::SizeType>(prompt.size()));
  w.EndObject();
  const std::string text = aha::json::text_of(buffer);
  EXPECT_EQ(text, "{\"prompt\":\"" + kFFFD + " tail " + kFFFD + "\"}");
  // And the result parses back.
  EXPECT_EQ(aha::json::parse(text, "round trip")["prompt"].GetString(), kFFFD + " tail " + kFFFD);
}

TEST(JsonUtf8, EveryByteValueGivesValidJson) {
  // All 256 single bytes and all 65536 byte pairs, inside a string: the output is well formed.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string value = {static_cast<char>(a), static_cast<char>(b), '\xE2'};
      const std::string text = object_with("k", value);
      ASSERT_TRUE(well_formed(text)) << "bytes " << a << " " << b;
    }
  }
}

TEST(Utf8, IsValidMatchesTheIndependentValidator) {
  for (const std::string s : {"", "abc", "\xC3\xA9", "\xF4\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xE0\x9F\x80",
                              "\xE0\xA0\x80", "\xED\x9F\xBF", "\xED\xA0\x80", "a\xC3", "\x80", "\xC1\xBF"}) {
    EXPECT_EQ(aha::utf8::is_valid(s), well_formed(s)) << s;
  }
}

}  // namespace

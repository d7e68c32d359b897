// JSON helpers over RapidJSON: parsing with located errors, and typed field access whose
// errors name the document and the field (e.g. "config.json: field 'hidden_size' ...").
#pragma once
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aha::json {

// Parses text; `what` names the document in errors ("config.json", "recipe foo.json").
rapidjson::Document parse(std::string_view text, const std::string& what);

// Serialises a value (compact, or indented with pretty). The text is always valid UTF-8:
// strings holding invalid UTF-8 (a prompt file in Latin-1, a program's raw output) have each
// ill-formed sequence replaced by U+FFFD, as Hugging Face tokenizers' decode and Python's
// errors="replace" do, rather than an error: one bad byte in a large data set should not stop
// a run, and JSON readers reject invalid UTF-8 (RFC 8259 section 8.1).
std::string to_string(const rapidjson::Value& value, bool pretty = false);

// The text a hand-driven rapidjson::Writer produced, made valid UTF-8 as to_string does. Every
// writer of JSON text goes through one of these two.
std::string text_of(const rapidjson::StringBuffer& buffer);

// Typed, named access to one JSON object. Holds a reference: the value must outlive it.
class ObjectReader {
 public:
  ObjectReader(const rapidjson::Value& value, std::string context);

  // Present and not null.
  bool has(const char* key) const;
  const rapidjson::Value& get(const char* key) const;  // required, any type

  int64_t get_int(const char* key) const;
  double get_double(const char* key) const;
  bool get_bool(const char* key) const;
  std::string get_string(const char* key) const;
  // Optional fields: the fallback when absent or null.
  int64_t get_int(const char* key, int64_t fallback) const;
  double get_double(const char* key, double fallback) const;
  bool get_bool(const char* key, bool fallback) const;
  std::string get_string(const char* key, const std::string& fallback) const;

  // Throws naming each key of the object not in `known`, and listing the known ones.
  void reject_unknown(std::initializer_list<std::string_view> known) const;

  ObjectReader object(const char* key) const;  // a required nested object
  const std::string& context() const { return context_; }
  const rapidjson::Value& value() const { return value_; }

 private:
  [[noreturn]] void fail(const char* key, const std::string& expected) const;
  const rapidjson::Value& value_;
  std::string context_;
};

// A JSON number or integer list as int64 values ("eos_token_id": 2 or [2, 7]).
std::vector<int64_t> int_or_int_list(const rapidjson::Value& value, const std::string& what);

}  // namespace aha::json

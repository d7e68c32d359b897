#include "core/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/utf8.h"

namespace aha::json {

rapidjson::Document parse(std::string_view text, const std::string& what) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    throw Error(what + ": invalid JSON at byte " + std::to_string(doc.GetErrorOffset()) + ": " +
                rapidjson::GetParseError_En(doc.GetParseError()));
  }
  return doc;
}

std::string to_string(const rapidjson::Value& value, bool pretty) {
  rapidjson::StringBuffer buffer;
  if (pretty) {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    writer.SetIndent(' ', 2);
    value.Accept(writer);
  } else {
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    value.Accept(writer);
  }
  return text_of(buffer);
}

std::string text_of(const rapidjson::StringBuffer& buffer) {
  // JSON's own syntax is ASCII, so invalid bytes can only come from string contents and
  // replacing them in the whole text is the same as replacing them in each string.
  std::string_view text(buffer.GetString(), buffer.GetSize());
  return utf8::is_valid(text) ? std::string(text) : utf8::lossy(text);
}

ObjectReader::ObjectReader(const rapidjson::Value& value, std::string context)
    : value_(value), context_(std::move(context)) {
  if (!value_.IsObject()) throw Error(context_ + ": expected a JSON object");
}

bool ObjectReader::has(const char* key) const {
  auto it = value_.FindMember(key);
  return it != value_.MemberEnd() && !it->value.IsNull();
}

const rapidjson::Value& ObjectReader::get(const char* key) const {
  auto it = value_.FindMember(key);
  if (it == value_.MemberEnd() || it->value.IsNull()) {
    throw Error(context_ + ": missing required field '" + key + "'");
  }
  return it->value;
}

void ObjectReader::fail(const char* key, const std::string& expected) const {
  throw Error(context_ + ": field '" + key + "' must be " + expected + ", got " +
              to_string(get(key)));
}

int64_t ObjectReader::get_int(const char* key) const {
  const auto& v = get(key);
  if (v.IsInt64()) return v.GetInt64();
  if (v.IsUint64()) fail(key, "an integer in int64 range");
  // Accept 4.0 but not 4.5: some exporters write integers as floats.
  if (v.IsDouble() && std::floor(v.GetDouble()) == v.GetDouble() && std::abs(v.GetDouble()) < 9e15) {
    return static_cast<int64_t>(v.GetDouble());
  }
  fail(key, "an integer");
}

double ObjectReader::get_double(const char* key) const {
  const auto& v = get(key);
  if (!v.IsNumber()) fail(key, "a number");
  return v.GetDouble();
}

bool ObjectReader::get_bool(const char* key) const {
  const auto& v = get(key);
  if (!v.IsBool()) fail(key, "true or false");
  return v.GetBool();
}

std::string ObjectReader::get_string(const char* key) const {
  const auto& v = get(key);
  if (!v.IsString()) fail(key, "a string");
  return std::string(v.GetString(), v.GetStringLength());
}

int64_t ObjectReader::get_int(const char* key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
double ObjectReader::get_double(const char* key, double fallback) const {
  return has(key) ? get_double(key) : fallback;
}
bool ObjectReader::get_bool(const char* key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}
std::string ObjectReader::get_string(const char* key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

void ObjectReader::reject_unknown(std::initializer_list<std::string_view> known) const {
  std::vector<std::string> unknown;
  for (auto it = value_.MemberBegin(); it != value_.MemberEnd(); ++it) {
    std::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (std::find(known.begin(), known.end(), name) == known.end()) unknown.emplace_back(name);
  }
  if (unknown.empty()) return;
  std::string message = context_ + ": unknown key";
  message += unknown.size() > 1 ? "s " : " ";
  for (size_t i = 0; i < unknown.size(); ++i) message += (i ? ", '" : "'") + unknown[i] + "'";
  message += "; known keys are: ";
  bool first = true;
  for (auto k : known) {
    message += (first ? "" : ", ") + std::string(k);
    first = false;
  }
  throw Error(message);
}

ObjectReader ObjectReader::object(const char* key) const {
  const auto& v = get(key);
  if (!v.IsObject()) fail(key, "an object");
  return ObjectReader(v, context_ + "." + key);
}

std::vector<int64_t> int_or_int_list(const rapidjson::Value& value, const std::string& what) {
  std::vector<int64_t> out;
  if (value.IsInt64()) {
    out.push_back(value.GetInt64());
  } else if (value.IsArray()) {
    for (const auto& item : value.GetArray()) {
      if (!item.IsInt64()) throw Error(what + ": expected integers, got " + to_string(item));
      out.push_back(item.GetInt64());
    }
  } else if (!value.IsNull()) {
    throw Error(what + ": expected an integer or a list of integers, got " + to_string(value));
  }
  return out;
}

}  // namespace aha::json

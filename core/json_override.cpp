#include "core/json_override.h"

#include <string>
#include <vector>

#include "core/error.h"

namespace aha::json {

namespace {

bool is_index(const std::string& part) {
  return !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

void apply_override(rapidjson::Document& doc, const std::string& assignment, const std::string& what) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(what + ": override '" + assignment + "' must look like key.path=value");
  const std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const auto dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (parts.back().empty()) throw Error(what + ": override '" + assignment + "' has an empty key in its path");
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  rapidjson::Document value(&doc.GetAllocator());
  value.Parse(text.c_str(), text.size());
  if (value.HasParseError()) value.SetString(text.c_str(), static_cast<rapidjson::SizeType>(text.size()), doc.GetAllocator());

  rapidjson::Value* node = &doc;
  std::string walked;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const bool last = i + 1 == parts.size();
    const std::string here = walked.empty() ? part : walked + "." + part;
    if (node->IsArray()) {
      if (!is_index(part))
        throw Error(what + ": override '" + assignment + "': '" + walked + "' is a list; use an index, e.g. " + walked + ".0");
      const size_t index = std::stoul(part);
      if (index >= node->Size())
        throw Error(what + ": override '" + assignment + "': '" + walked + "' has " + std::to_string(node->Size()) +
                    " elements, no index " + part);
      if (last) {
        (*node)[static_cast<rapidjson::SizeType>(index)].CopyFrom(value, doc.GetAllocator());
        return;
      }
      node = &(*node)[static_cast<rapidjson::SizeType>(index)];
    } else if (node->IsObject()) {
      auto member = node->FindMember(part.c_str());
      if (member == node->MemberEnd()) {
        rapidjson::Value key(part.c_str(), static_cast<rapidjson::SizeType>(part.size()), doc.GetAllocator());
        rapidjson::Value fresh;
        if (last) fresh.CopyFrom(value, doc.GetAllocator());
        else fresh.SetObject();
        node->AddMember(key, fresh, doc.GetAllocator());
        member = node->FindMember(part.c_str());
        if (last) return;
      } else if (last) {
        member->value.CopyFrom(value, doc.GetAllocator());
        return;
      }
      node = &member->value;
    } else {
      throw Error(what + ": override '" + assignment + "': '" + walked + "' is not an object or a list");
    }
    walked = here;
  }
}

}  // namespace aha::json

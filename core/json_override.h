// "key.path=value" overrides of a JSON document, as `--set` gives them to recipes and
// pretraining specs.
//
// Contract: the key path names object members (created, as objects, when absent) and array
// elements by index ("data.train.0.n"); an index past the end, an index into an object or a
// member of a scalar is an aha::Error naming `what` and the override. The value is read as
// JSON when it parses as JSON (numbers, true/false, null, quoted strings, lists, objects) and
// as a plain string otherwise ("model.path=/models/Qwen2.5-1.5B"). The caller then reads the
// document as usual, so an override is checked exactly like the file's own value.
#pragma once
#include <rapidjson/document.h>

#include <string>

namespace aha::json {

void apply_override(rapidjson::Document& doc, const std::string& assignment, const std::string& what);

}  // namespace aha::json

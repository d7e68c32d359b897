// The filters, tests and methods templates may call, with Python's and jinja2's behaviour:
// filters (trim, tojson as transformers defines it, length, default, join, replace, ...), tests
// (defined, none, string, mapping, ...), and the str and dict methods chat templates use
// (startswith, split, strip, items, get, ...). Errors are aha::Error prefixed with `where`.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace aha::jinja {

using Args = std::vector<Value>;
using Kwargs = std::vector<std::pair<std::string, Value>>;

bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

Value apply_filter(const std::string& name, const Value& subject, const Args& args, const Kwargs& kwargs,
                   const std::string& where);
bool apply_test(const std::string& name, const Value& subject, const Args& args, const std::string& where);
// object.name(args...) for strings and dicts; unknown methods are errors naming them.
Value call_method(const Value& object, const std::string& name, const Args& args, const Kwargs& kwargs,
                  const std::string& where);

// Python iteration: a list's items, a dict's keys, a string's characters; undefined is empty.
List iterate(const Value& value, const std::string& where);

}  // namespace aha::jinja

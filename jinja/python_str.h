// Python's str operations as chat templates call them (str.strip/split/replace, upper/lower),
// on UTF-8 text by code point where Python counts code points; shared by filters and methods.
// Errors are aha::Error prefixed with `where`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "jinja/value.h"

namespace aha::jinja {

bool is_python_space(char32_t c);  // str.isspace() of one character
// strip/lstrip/rstrip: whitespace, or the characters of `chars` when it is a string.
std::string strip(const std::string& text, const Value& chars, bool left, bool right, const std::string& where);
// str.split(sep, maxsplit): undefined or none sep splits on whitespace runs; max_split < 0: all.
std::vector<std::string> split(const std::string& text, const Value& separator, int64_t max_split,
                               const std::string& where);
// str.replace(old, new, count); count < 0: all.
std::string replace(const std::string& text, const std::string& old, const std::string& replacement, int64_t count);
std::string change_case(const std::string& text, bool upper);  // ASCII letters, as role names need
std::string require_string(const Value& v, const std::string& what, const std::string& where);
int64_t require_int(const Value& v, const std::string& what, const std::string& where);

}  // namespace aha::jinja

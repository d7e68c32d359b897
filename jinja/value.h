// The values a Jinja template computes with, with Python's semantics where a chat template
// can see them: str() and repr() text, truthiness, equality, json.dumps for tojson.
//
// Strings are UTF-8; lengths, indices and slices count code points, as Python's do. Lists and
// dicts are shared (a template's namespace() is mutable and seen through every name bound to
// it); dicts keep insertion order, as Python's do, so tojson prints keys in the given order.
#pragma once
#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aha::jinja {

class Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace };

  Value() = default;  // undefined
  static Value none();
  Value(bool b);
  Value(int64_t i);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double d);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  Value(List items);
  Value(Dict items);
  static Value namespace_of(Dict items);  // a mutable attribute bag: namespace(a=1)
  static Value tuple(List items);         // a list that prints as Python's tuple: dict.items()
  static Value from_json(const rapidjson::Value& json);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
  bool is_mapping() const { return kind_ == Kind::Dict || kind_ == Kind::Namespace; }

  bool as_bool() const { return bool_; }
  int64_t as_int() const { return int_; }
  double as_double() const { return kind_ == Kind::Int ? static_cast<double>(int_) : float_; }
  const std::string& as_string() const { return *string_; }
  const List& as_list() const { return *list_; }
  const Dict& as_dict() const { return *dict_; }
  Dict& mutable_dict() const { return *dict_; }  // namespaces only

  // Dict or namespace member; nullptr when absent.
  const Value* find(const std::string& key) const;

  bool truthy() const;
  std::string str() const;   // Python str(); undefined is ""
  std::string repr() const;  // Python repr()
  // Python json.dumps(self, ensure_ascii=False, indent=indent) (indent < 0: none).
  std::string to_json(int indent = -1) const;
  std::string type_name() const;  // for errors: "string", "list", ...

  friend bool operator==(const Value& a, const Value& b);

 private:
  Kind kind_ = Kind::Undefined;
  bool bool_ = false;
  bool tuple_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<const std::string> string_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
};

// Python's repr of a float: the shortest text that reads back, "1.0", "1e-05", "1e+16".
std::string python_float_repr(double d);

// Code-point views of UTF-8 text, for Python's len, indexing and slicing of str.
std::u32string to_code_points(const std::string& utf8);
std::string to_utf8(const std::u32string& code_points);

}  // namespace aha::jinja

#include "jinja/lexer.h"

#include <cctype>
#include <cstdint>

#include "core/error.h"
#include "core/utf8.h"

namespace aha::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// jinja2 normalises \r\n and \r to \n and drops one trailing newline (keep_trailing_newline=False).
std::string normalise_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's "unicode-escape" decoding of a string literal's body, as jinja2 applies it.
std::string unescape(const std::string& body, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      out += body[i];
      continue;
    }
    const char c = body[++i];
    auto hex = [&](size_t digits) {
      uint32_t value = 0;
      for (size_t k = 1; k <= digits; ++k) {
        if (i + k >= body.size() || !std::isxdigit(static_cast<unsigned char>(body[i + k])))
          throw Error(where + ": truncated \\" + std::string(1, c) + " escape in a string");
        value = value * 16 + static_cast<uint32_t>(std::stoi(std::string(1, body[i + k]), nullptr, 16));
      }
      i += digits;
      if (value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
        throw Error(where + ": escape in a string is not a Unicode scalar value");
      utf8::append_char(out, value);
    };
    switch (c) {
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case '\n': break;  // a backslash-newline continues the line
      case 'x': hex(2); break;
      case 'u': hex(4); break;
      case 'U': hex(8); break;
      case 'N': throw Error(where + ": \\N{...} escapes are not supported");
      default:
        if (c >= '0' && c <= '7') {
          uint32_t value = static_cast<uint32_t>(c - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
            value = value * 8 + static_cast<uint32_t>(body[++i] - '0');
          utf8::append_char(out, value);
        } else {
          out += '\\';  // Python keeps unknown escapes as written
          out += c;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  Lexer(const std::string& source, const std::string& name) : src_(normalise_newlines(source)), name_(name) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t tag = src_.find('{', pos_);
      while (tag != std::string::npos && tag + 1 < src_.size() && src_[tag + 1] != '{' && src_[tag + 1] != '%' &&
             src_[tag + 1] != '#')
        tag = src_.find('{', tag + 1);
      if (tag == std::string::npos || tag + 1 >= src_.size()) {
        emit_text(src_.substr(pos_));
        break;
      }
      const char kind = src_[tag + 1];
      const char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      std::string text = src_.substr(pos_, tag - pos_);
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (kind != '{' && sign != '+') {
        lstrip_indentation(text);
      }
      emit_text(text);
      line_ += count_newlines(pos_, tag);
      pos_ = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') skip_comment(tag);
      else lex_tag(kind == '{', tag);
    }
    tokens_.push_back({Token::Type::End, "", line_});
    return std::move(tokens_);
  }

 private:
  // lstrip_blocks: a block or comment tag with only spaces before it on its line takes them.
  void lstrip_indentation(std::string& text) {
    const size_t newline = text.rfind('\n');
    const size_t line_start = newline == std::string::npos ? 0 : newline + 1;
    if (newline == std::string::npos && !line_starting_) return;
    for (size_t i = line_start; i < text.size(); ++i)
      if (text[i] != ' ' && text[i] != '\t' && text[i] != '\v' && text[i] != '\f') return;
    text.resize(line_start);
  }

  int count_newlines(size_t from, size_t to) const {
    int n = 0;
    for (size_t i = from; i < to; ++i) n += src_[i] == '\n';
    return n;
  }

  void emit_text(const std::string& text) {
    if (!text.empty()) tokens_.push_back({Token::Type::Text, text, line_});
    line_starting_ = false;
  }

  // After a tag: '-' strips all following whitespace, '+' nothing, plain trims one newline
  // (trim_blocks) for blocks and comments.
  void finish_tag(char sign, bool trims_newline) {
    const size_t start = pos_;
    if (sign == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (sign != '+' && trims_newline && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    line_starting_ = pos_ > start && src_[pos_ - 1] == '\n';
    line_ += count_newlines(start, pos_);
  }

  void skip_comment(size_t tag) {
    const int start_line = line_;
    size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) throw Error(where(start_line) + ": comment {# is never closed by #}");
    const char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    line_ += count_newlines(pos_, end);
    pos_ = end + 2;
    finish_tag(sign, true);
    (void)tag;
  }

  void lex_tag(bool variable, size_t tag) {
    const int start_line = line_;
    tokens_.push_back({variable ? Token::Type::VarBegin : Token::Type::BlockBegin, "", line_});
    std::string balance;
    const char* close = variable ? "}}" : "%}";
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) line_ += src_[pos_++] == '\n';
      if (pos_ >= src_.size())
        throw Error(where(start_line) + ": " + (variable ? "{{" : "{%") + " is never closed by " + close);
      if (balance.empty()) {
        for (char sign : {'-', '+', '\0'}) {
          if (sign == '+' && variable) continue;
          const std::string end = (sign ? std::string(1, sign) : "") + close;
          if (src_.compare(pos_, end.size(), end) == 0) {
            tokens_.push_back({variable ? Token::Type::VarEnd : Token::Type::BlockEnd, "", line_});
            pos_ += end.size();
            finish_tag(sign, !variable);
            return;
          }
        }
      }
      lex_expression_token(balance);
    }
    (void)tag;
  }

  void lex_expression_token(std::string& balance) {
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t end = pos_;
      while (end < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) ++end;
      tokens_.push_back({Token::Type::Name, src_.substr(pos_, end - pos_), line_});
      pos_ = end;
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t end = pos_;
      while (end < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) ++end;
      bool is_float = false;
      if (end + 1 < src_.size() && src_[end] == '.' && std::isdigit(static_cast<unsigned char>(src_[end + 1]))) {
        is_float = true;
        ++end;
        while (end < src_.size() && std::isdigit(static_cast<unsigned char>(src_[end]))) ++end;
      }
      if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
        size_t e = end + 1;
        if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
        if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
          is_float = true;
          end = e;
          while (end < src_.size() && std::isdigit(static_cast<unsigned char>(src_[end]))) ++end;
        }
      }
      std::string text;
      for (size_t i = pos_; i < end; ++i)
        if (src_[i] != '_') text += src_[i];
      tokens_.push_back({is_float ? Token::Type::Float : Token::Type::Int, text, line_});
      pos_ = end;
      return;
    }
    if (c == '\'' || c == '"') {
      const int start_line = line_;
      size_t i = pos_ + 1;
      while (i < src_.size() && src_[i] != c) {
        if (src_[i] == '\\') ++i;
        ++i;
      }
      if (i >= src_.size()) throw Error(where(start_line) + ": string literal is never closed");
      const std::string body = src_.substr(pos_ + 1, i - pos_ - 1);
      line_ += count_newlines(pos_, i);
      tokens_.push_back({Token::Type::String, unescape(body, where(start_line)), start_line});
      pos_ = i + 1;
      return;
    }
    static const char* const kOperators[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                             ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"};
    for (const char* op : kOperators) {
      const std::string o(op);
      if (src_.compare(pos_, o.size(), o) != 0) continue;
      if (o == "(" || o == "[" || o == "{") balance += o == "(" ? ')' : o == "[" ? ']' : '}';
      if (o == ")" || o == "]" || o == "}") {
        if (balance.empty() || balance.back() != o[0])
          throw Error(where(line_) + ": unexpected '" + o + "'");
        balance.pop_back();
      }
      tokens_.push_back({Token::Type::Op, o, line_});
      pos_ += o.size();
      return;
    }
    throw Error(where(line_) + ": unexpected character '" + std::string(1, c) + "' inside a tag");
  }

  std::string where(int line) const { return name_ + " line " + std::to_string(line); }

  std::string src_;
  std::string name_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source, const std::string& template_name) {
  return Lexer(source, template_name).run();
}

}  // namespace aha::jinja

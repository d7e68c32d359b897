// UTF-8 helpers shared by the tokenizer and every JSON writer: strict decoding of one character,
// validation, lossy conversion and the incomplete tail of a byte stream.
//
// Contract: text is a byte string that may hold invalid UTF-8. decode_char never reads past
// `end`; a byte that does not start a well-formed character (overlong forms, surrogates, code
// points above U+10FFFF, truncated sequences) is reported as invalid, one byte at a time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aha::utf8 {

// Decodes the character at p. Returns its code point and sets `length` to its byte count,
// or returns -1 with `length` = 1 when the bytes at p are not a well-formed character.
int32_t decode_char(const char* p, const char* end, size_t& length);

// Appends the UTF-8 form of a code point (which must be a valid scalar value).
void append_char(std::string& out, uint32_t code_point);

// True when every byte belongs to a well-formed character.
bool is_valid(std::string_view bytes);

// Replaces every maximal ill-formed subpart with U+FFFD, as Rust's String::from_utf8_lossy
// and Python's bytes.decode("utf-8", "replace") do (Unicode's "best practice").
std::string lossy(std::string_view bytes);

// The number of trailing bytes that begin a well-formed character which is not complete yet
// (0 to 3): what a streaming decoder must hold back until the next token arrives.
size_t incomplete_tail_length(std::string_view bytes);

}  // namespace aha::utf8

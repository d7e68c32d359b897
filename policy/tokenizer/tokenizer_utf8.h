// UTF-8 helpers for the tokenizer: the generic ones (strict decoding of one character, lossy
// conversion, the incomplete tail of a byte stream) live in core/utf8.h, shared with the JSON
// writers; this adds the Unicode White_Space property the pre-tokenizers need.
#pragma once
#include <cstdint>

#include "core/utf8.h"

namespace aha::utf8 {

// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s accept).
bool is_white_space(uint32_t code_point);

}  // namespace aha::utf8

// Unicode NFC normalisation, the "NFC" normalizer of tokenizer.json (Qwen2, Qwen2.5).
//
// Contract: nfc(text) is the canonical composition of text (UAX #15). Bytes that are not
// well-formed UTF-8 are kept unchanged and act as barriers (nothing composes across them).
// The tables come from Python's unicodedata (tokenizer_nfc_data.py), so characters assigned
// after that Unicode version are left as they are.
#pragma once
#include <string>
#include <string_view>

namespace aha {

// True when text is certainly in NFC already (the quick check), which is the common case
// and costs one pass without allocation.
bool is_nfc_quick(std::string_view text);

// The NFC form of text.
std::string nfc(std::string_view text);

}  // namespace aha

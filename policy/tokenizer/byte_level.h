// GPT-2's byte-level alphabet: each of the 256 byte values is written as one printable
// Unicode character (printable ASCII and Latin-1 stand for themselves, the rest map to
// U+0100 onwards), so that a BPE vocabulary over raw bytes can be stored as text.
//
// Contract: to_bytes(from_bytes(b)) == b for every byte string b. to_bytes fails (returns
// nullopt) on a string holding any character outside the alphabet, as the Hugging Face
// ByteLevel decoder does before it falls back to the token's own UTF-8 bytes.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aha::byte_level {

// The alphabet character (UTF-8) that stands for byte b.
const std::string& char_for_byte(uint8_t b);

// Raw bytes -> alphabet string ("Ġthe" for " the").
std::string from_bytes(std::string_view bytes);

// Alphabet string -> raw bytes; nullopt if a character is not in the alphabet.
std::optional<std::string> to_bytes(std::string_view text);

}  // namespace aha::byte_level

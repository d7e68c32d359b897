// Reading a command's text from standard input (`aha tokenize -`), with the same size limit
// idea as read_file: the whole input is held in memory, so a runaway producer (`yes |`) is
// stopped with an error instead of filling the machine's memory.
#pragma once
#include <cstddef>
#include <string>

namespace aha {

// Reads standard input to its end, byte for byte (binary: NUL bytes and CRLF kept exactly).
// Throws aha::Error if it holds more than max_bytes (the message gives the limit) or a read
// fails (the message gives the reason).
std::string read_standard_input(size_t max_bytes);

}  // namespace aha

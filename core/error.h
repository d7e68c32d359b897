// aha::Error: the one exception type for bad input and failed operations.
//
// Contract: the message names what is at fault (file, field, tensor, option) and what was
// expected. The command line prints what() and exits non-zero; nothing aborts on bad input.
#pragma once
#include <stdexcept>
#include <string>

namespace aha {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws aha::Error(message) when condition is false. For checks on user input; internal
// invariants use TORCH_CHECK or assert.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

}  // namespace aha

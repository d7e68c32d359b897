#include "core/standard_input.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/files.h"

namespace aha {

std::string read_standard_input(size_t max_bytes) {
  // read(2) on fd 0 rather than std::cin: no locale or text-mode translation can touch a byte.
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n == 0) return text;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("cannot read standard input: ") + std::strerror(errno));
    }
    if (text.size() + static_cast<size_t>(n) > max_bytes)
      throw Error("standard input holds more than " + byte_size_text(max_bytes) +
                  ", the most read here; pass a smaller input");
    text.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace aha

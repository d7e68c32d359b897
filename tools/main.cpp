// `aha`: the command line. Finds the longest registered command name that prefixes the
// arguments ("model init" before "model") and runs it; aha::Error becomes a message and exit 1.
#include <c10/util/Exception.h>

#include <filesystem>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "core/error.h"
#include "tools/cli.h"

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

void print_help() {
  std::cout << "aha: GRPO reasoning training (DeepSeek-R1 style) in C++/LibTorch\n\nCommands:\n";
  for (const auto& c : aha::cli::registry()) std::cout << "  aha " << c.name << "\n      " << c.summary << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "help" || words[0] == "--help" || words[0] == "-h") {
    print_help();
    return words.empty() ? 2 : 0;
  }
  const aha::cli::Command* best = nullptr;
  size_t best_len = 0;
  for (const auto& c : aha::cli::registry()) {
    std::vector<std::string> parts;
    size_t start = 0, space;
    while ((space = c.name.find(' ', start)) != std::string::npos) {
      parts.push_back(c.name.substr(start, space - start));
      start = space + 1;
    }
    parts.push_back(c.name.substr(start));
    if (parts.size() > words.size() || parts.size() <= best_len) continue;
    if (std::equal(parts.begin(), parts.end(), words.begin())) {
      best = &c;
      best_len = parts.size();
    }
  }
  if (!best) {
    std::cerr << "aha: unknown command '" << words[0] << "'; run 'aha help' for the list\n";
    return 2;
  }
  // One line on stderr whatever escapes: bad input and failed operations are errors (exit 1);
  // only what no check foresaw is an internal error (exit 3). Never a LibTorch stack trace.
  const std::string prefix = "aha " + best->name + ": ";
  try {
    return best->run(std::vector<std::string>(words.begin() + best_len, words.end()));
  } catch (const aha::Error& e) {
    std::cerr << prefix << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << prefix << "error: " << e.what() << "\n";  // names the path(s) and the reason
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << prefix << "error: out of memory: the request needs more memory than this machine has; "
                           "lower the sizes it asks for\n";
    return 1;
  } catch (const c10::OutOfMemoryError& e) {
    std::cerr << prefix << "error: out of device memory: " << first_line(e.what_without_backtrace()) << "\n";
    return 1;
  } catch (const c10::Error& e) {
    const std::string message = first_line(e.what_without_backtrace());
    if (message.find("can't allocate") != std::string::npos || message.find("Cannot allocate") != std::string::npos) {
      std::cerr << prefix << "error: out of memory: " << message << "; lower the sizes the request asks for\n";
      return 1;
    }
    std::cerr << prefix << "internal error: " << message << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << prefix << "internal error: " << first_line(e.what()) << "\n";
    return 3;
  }
}

// Reading the option names back out of an `aha CMD --help` text (tools/cli.h's help_text), so
// that tests compare what the help lists with what the parser accepts.
#pragma once
#include <sstream>
#include <string>
#include <vector>

namespace aha::test {

// The option names of a help text's option lines: after "options:" up to a blank line, each
// line "  [-x, ]--name ..." names one.
inline std::vector<std::string> options_in_help(const std::string& help) {
  std::vector<std::string> names;
  const size_t start = help.find("\noptions:\n");
  if (start == std::string::npos) return names;
  std::istringstream in(help.substr(start + 10));
  for (std::string line; std::getline(in, line) && !line.empty();) {
    size_t at = line.find_first_not_of(' ');
    if (line.compare(at, 2, "--") != 0) at = line.find("--", at);  // "-n, --n N"
    names.push_back(line.substr(at + 2, line.find(' ', at) - at - 2));
  }
  return names;
}

}  // namespace aha::test

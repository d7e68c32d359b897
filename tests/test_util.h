// Helpers shared by the test suites.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace aha::test {

// The aha::Error message fn throws, or "" when it throws none.
template <typename F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The non-empty lines of a text file (JSON Lines data sets).
inline std::vector<std::string> read_nonempty_lines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace aha::test

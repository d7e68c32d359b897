// Whether two directories hold the same files, byte for byte (zero3_save_test.cpp: the streamed
// ZeRO-3 save against the whole save it replaces).
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "core/files.h"

namespace aha::parallel::testing {

// Every regular file under `dir`, by its path relative to `dir`, with its bytes.
inline std::map<std::string, std::string> files_under(const std::filesystem::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[std::filesystem::relative(e.path(), dir).string()] = read_file(e.path());
  return out;
}

inline void expect_same_files(const std::filesystem::path& got, const std::filesystem::path& want,
                              const std::string& what) {
  ASSERT_TRUE(std::filesystem::is_directory(got)) << what << ": " << got << " is missing";
  ASSERT_TRUE(std::filesystem::is_directory(want)) << what << ": " << want << " is missing";
  const auto a = files_under(got), b = files_under(want);
  std::string names_a, names_b;
  for (const auto& [name, _] : a) names_a += name + " ";
  for (const auto& [name, _] : b) names_b += name + " ";
  EXPECT_EQ(names_a, names_b) << what << ": other files";
  EXPECT_GT(a.size(), 2u) << what << ": config.json, the marker and weights at least";
  for (const auto& [name, bytes] : a) {
    auto it = b.find(name);
    if (it == b.end()) continue;
    EXPECT_EQ(bytes.size(), it->second.size()) << what << ": " << name;
    EXPECT_TRUE(bytes == it->second) << what << ": " << name << " differs";
  }
}

}  // namespace aha::parallel::testing

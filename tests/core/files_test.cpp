#include "core/files.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace fs = std::filesystem;

TEST(Files, AtomicWriteThenReadAndMap) {
  auto dir = fs::temp_directory_path() / ("aha_files_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto path = dir / "x.bin";
  std::string data("a\0b\xff", 4);
  aha::write_file_atomic(path, data);
  EXPECT_EQ(aha::read_file(path), data);
  aha::MappedFile map(path);
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(map.data()), map.size()), data);
  // Overwrite leaves no temporary file behind.
  aha::write_file_atomic(path, "new");
  EXPECT_EQ(aha::read_file(path), "new");
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1u);
  aha::remove_tree(dir);
}

TEST(Files, MissingFileIsNamed) {
  try {
    aha::read_file("/nonexistent/aha/config.json");
    FAIL();
  } catch (const aha::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/aha/config.json"), std::string::npos);
  }
  EXPECT_THROW(aha::MappedFile("/nonexistent/x"), aha::Error);
}

TEST(Files, RemoveTreeRemovesNestedDirectoriesAndLinksNotTheirTargets) {
  auto base = fs::temp_directory_path() / ("aha_rt_" + std::to_string(::getpid()));
  fs::create_directories(base / "a/b/c");
  fs::create_directories(base / "keep");
  aha::write_file_atomic(base / "a/b/c/f", "x");
  aha::write_file_atomic(base / "a/g", "y");
  aha::write_file_atomic(base / "keep/h", "z");
  fs::create_directory_symlink(base / "keep", base / "a/link");
  EXPECT_EQ(aha::remove_tree(base / "a"), 6u);  // f, c, b, g, link and a itself
  EXPECT_FALSE(fs::exists(base / "a"));
  EXPECT_TRUE(fs::exists(base / "keep/h"));  // the link's target survives
  EXPECT_EQ(aha::remove_tree(base / "a"), 0u);  // missing is fine
  aha::remove_tree(base);
  EXPECT_FALSE(fs::exists(base));
}

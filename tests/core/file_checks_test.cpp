// What a command is refused before it does any work (issue 23, findings 4, 7 and 11): inputs
// that are not regular files, over-large files, and outputs that are directories, unwritable,
// or the same file as an input however that is spelled.
#include "core/file_checks.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "core/files.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using aha::test::error_of;

namespace {

class FileChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_file_checks_" + std::to_string(::getpid()));
    aha::remove_tree(dir_);
    fs::create_directories(dir_);
    input_ = dir_ / "prompts.jsonl";
    std::ofstream(input_) << "{\"prompt\": \"1+1\"}\n";
  }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0755);
    aha::remove_tree(dir_);
  }
  fs::path dir_, input_;
};

TEST_F(FileChecks, ReadFileRefusesADirectoryNamingIt) {
  const std::string error = error_of([&] { aha::read_file(dir_); });
  EXPECT_NE(error.find(dir_.string()), std::string::npos) << error;
  EXPECT_NE(error.find("is a directory"), std::string::npos) << error;
}

TEST_F(FileChecks, ReadFileRefusesAFifoWithoutWaitingForAWriter) {
  const fs::path fifo = dir_ / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // No writer ever opens it: a blocking open would hang this test until ctest's timeout.
  const std::string error = error_of([&] { aha::read_file(fifo); });
  EXPECT_NE(error.find(fifo.string()), std::string::npos) << error;
  EXPECT_NE(error.find("FIFO"), std::string::npos) << error;
  EXPECT_NE(error_of([&] { aha::MappedFile map(fifo); }).find("FIFO"), std::string::npos);
}

TEST_F(FileChecks, ReadFileRefusesACharacterDevice) {
  // /dev/zero never ends: reading it whole would fill memory.
  const std::string error = error_of([] { aha::read_file("/dev/zero"); });
  EXPECT_NE(error.find("/dev/zero"), std::string::npos) << error;
  EXPECT_NE(error.find("character device"), std::string::npos) << error;
}

TEST_F(FileChecks, ReadFileLimitNamesTheFileAndTheLimit) {
  const fs::path path = dir_ / "big.txt";
  std::ofstream(path) << std::string(2048, 'x');
  EXPECT_EQ(aha::read_file(path, 2048).size(), 2048u);  // exactly at the limit is fine
  const std::string error = error_of([&] { aha::read_file(path, 2047); });
  EXPECT_NE(error.find(path.string()), std::string::npos) << error;
  EXPECT_NE(error.find("2047 bytes limit"), std::string::npos) << error;
  EXPECT_NE(error.find("2 KiB"), std::string::npos) << error;  // the file's size
}

TEST(ByteSizeText, ReadsAsPeopleWriteIt) {
  EXPECT_EQ(aha::byte_size_text(512), "512 bytes");
  EXPECT_EQ(aha::byte_size_text(1536), "1536 bytes");
  EXPECT_EQ(aha::byte_size_text(1024), "1 KiB");
  EXPECT_EQ(aha::byte_size_text(53687091), "51.2 MiB");
  EXPECT_EQ(aha::byte_size_text(8u << 20), "8 MiB");
  EXPECT_EQ(aha::byte_size_text(uint64_t{2} << 30), "2 GiB");
}

TEST_F(FileChecks, RequireRegularFileSaysWhatThePathIs) {
  EXPECT_EQ(error_of([&] { aha::require_regular_file({"--input", input_}); }), "");
  EXPECT_EQ(error_of([&] { aha::require_regular_file({"--input", dir_}); }), "--input " + dir_.string() + " is a directory");
  EXPECT_EQ(error_of([&] { aha::require_regular_file({"--input", dir_ / "none"}); }),
            "--input " + (dir_ / "none").string() + ": no such file");
  EXPECT_NE(error_of([] { aha::require_regular_file({"--input", "/dev/null"}); }).find("character device"),
            std::string::npos);
}

TEST_F(FileChecks, SameFileSeesThroughSpellingsAndLinks) {
  const fs::path link = dir_ / "link.jsonl";
  fs::create_symlink(input_, link);
  const fs::path hard = dir_ / "hard.jsonl";
  fs::create_hard_link(input_, hard);
  const fs::path other = dir_ / "other.jsonl";
  std::ofstream(other) << "{}\n";
  fs::create_directories(dir_ / "sub");
  EXPECT_TRUE(aha::same_file(input_, input_));
  EXPECT_TRUE(aha::same_file(input_, dir_ / "." / "prompts.jsonl"));
  EXPECT_TRUE(aha::same_file(input_, dir_ / "sub" / ".." / "prompts.jsonl"));
  EXPECT_TRUE(aha::same_file(input_, link));
  EXPECT_TRUE(aha::same_file(input_, hard));
  EXPECT_FALSE(aha::same_file(input_, other));
  EXPECT_FALSE(aha::same_file(input_, dir_ / "missing.jsonl"));
}

TEST_F(FileChecks, OutputMustNotBeAnInputHoweverSpelled) {
  const std::vector<aha::NamedPath> inputs = {{"--input", input_}};
  const fs::path link = dir_ / "link.jsonl";
  fs::create_symlink(input_, link);
  // The relative spelling "./prompts.jsonl" is resolved from the current directory.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  const std::string relative = error_of([&] { aha::check_output_file({"--output", "./prompts.jsonl"}, inputs); });
  fs::current_path(cwd);
  for (const std::string& error :
       {error_of([&] { aha::check_output_file({"--output", input_}, inputs); }),
        error_of([&] { aha::check_output_file({"--output", dir_ / "." / "prompts.jsonl"}, inputs); }),
        error_of([&] { aha::check_output_file({"--output", link}, inputs); }), relative}) {
    EXPECT_NE(error.find("--output"), std::string::npos) << error;
    EXPECT_NE(error.find("is the same file as --input " + input_.string()), std::string::npos) << error;
  }
  // --overwrite never lets the output be the input.
  EXPECT_NE(error_of([&] { aha::check_output_file({"--output", link}, inputs, /*overwrite=*/true); })
                .find("is the same file as"),
            std::string::npos);
  // A different file that does not exist yet, or is empty, is fine; one with content is
  // replaced only with --overwrite.
  EXPECT_EQ(error_of([&] { aha::check_output_file({"--output", dir_ / "out.jsonl"}, inputs); }), "");
  std::ofstream(dir_ / "empty.jsonl").flush();
  EXPECT_EQ(error_of([&] { aha::check_output_file({"--output", dir_ / "empty.jsonl"}, inputs); }), "");
  std::ofstream(dir_ / "old.jsonl") << "old\n";
  EXPECT_EQ(error_of([&] { aha::check_output_file({"--output", dir_ / "old.jsonl"}, inputs); }),
            "--output " + (dir_ / "old.jsonl").string() +
                " already exists (4 bytes); aha does not overwrite a file unless told to: pass --overwrite to "
                "replace it, or choose another path");
  EXPECT_EQ(error_of([&] { aha::check_output_file({"--output", dir_ / "old.jsonl"}, inputs, true); }), "");
}

TEST_F(FileChecks, OutputThatCannotBeWrittenIsRefusedUpFront) {
  EXPECT_EQ(error_of([&] { aha::check_output_file({"--out", dir_}); }),
            "--out " + dir_.string() + " is a directory; give a file path");
  EXPECT_NE(error_of([&] { aha::check_output_file({"--out", dir_ / "no" / "x.jsonl"}); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of([&] { aha::check_output_file({"--out", input_ / "x.jsonl"}); }).find("--out"), std::string::npos);
  EXPECT_NE(error_of([&] { aha::check_output_file({"--out", "/dev/null"}); }).find("character device"),
            std::string::npos);
  EXPECT_NE(error_of([&] { aha::check_output_file({"--out", (dir_ / "new").string() + "/"}); }).find("directory"),
            std::string::npos);
  if (::geteuid() != 0) {  // root may write anywhere
    const fs::path locked = dir_ / "locked";
    fs::create_directories(locked);
    ::chmod(locked.c_str(), 0555);
    const std::string error = error_of([&] { aha::check_output_file({"--out", locked / "x.jsonl"}); });
    ::chmod(locked.c_str(), 0755);
    EXPECT_NE(error.find("not writable"), std::string::npos) << error;
  }
}

}  // namespace

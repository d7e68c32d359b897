// Small file-system helpers shared by every folder: whole-file reads and atomic writes.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace aha {

// A name for a temporary sibling of `path` that no other process or thread uses:
// "<path>.<tag>-<pid>-<counter>".
std::filesystem::path unique_sibling(const std::filesystem::path& path, const std::string& tag);

// Removes a file or a directory tree (like std::filesystem::remove_all, through libc's nftw:
// some LibTorch builds export a broken copy of std::filesystem's remove_all that would be
// called instead). A missing path is not an error; returns the number of entries removed.
size_t remove_tree(const std::filesystem::path& path);

// Reads a whole file; throws aha::Error naming the path if it cannot.
std::string read_file(const std::filesystem::path& path);

// Writes data to path atomically: a temporary file beside it, fsync, then rename, so that
// a reader (or a crash) never sees a half-written file.
void write_file_atomic(const std::filesystem::path& path, std::string_view data);

// Writes a file in pieces to a temporary name beside `path`; commit() fsyncs and renames it
// into place. Destroyed without commit() (an exception, a kill), it removes the temporary, so
// `path` is either the old file or the complete new one.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::filesystem::path& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(const void* data, size_t size);
  void commit();

 private:
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
};

// A read-only memory map of a whole file, with its descriptor kept open for pread.
// Move-only; unmaps and closes on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // Reads size bytes at offset with pread (no page faults on the mapping); thread-safe.
  void read_at(uint64_t offset, void* out, size_t size) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace aha

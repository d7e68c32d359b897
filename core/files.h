// Small file-system helpers shared by every folder: whole-file reads and atomic writes.
// Checks that commands make on their input and output paths before any work are in
// core/file_checks.h; how a kill cleans up atomic-write temporaries is core/temporary_files.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace aha {

// A name for a temporary sibling of `path` that no other process or thread uses:
// "<path>.<tag>-<pid>-<counter>". The pid in the name is what lets remove_stale_siblings
// (core/temporary_files.h) tell a dead process's leftovers from a live writer's file.
std::filesystem::path unique_sibling(const std::filesystem::path& path, const std::string& tag);

// Removes a file or a directory tree (like std::filesystem::remove_all, through libc's nftw:
// some LibTorch builds export a broken copy of std::filesystem's remove_all that would be
// called instead). A missing path is not an error; returns the number of entries removed.
size_t remove_tree(const std::filesystem::path& path);

// The most read_file reads unless told otherwise: the whole file is held in memory, and a
// larger input is far more likely a mistake (a disk image, a log) than a data set.
constexpr size_t kMaxReadFileBytes = size_t{4} << 30;  // 4 GiB

// Reads a whole regular file; throws aha::Error naming the path if it cannot, if it is not a
// regular file (a directory would read as empty, a FIFO or /dev/zero block or never end; the
// message says which it is), or if it holds more than max_bytes (the message gives the limit).
std::string read_file(const std::filesystem::path& path, size_t max_bytes = kMaxReadFileBytes);

// "1.5 GiB", "8 MiB", "512 bytes": a limit as error messages give it.
std::string byte_size_text(uint64_t bytes);

// Writes data to path atomically: a temporary file beside it, fsync, then rename, so that
// a reader (or a crash) never sees a half-written file. Temporaries left by writers of the
// same path that were killed (their pid is gone) are removed first, and SIGINT, SIGTERM and
// SIGHUP remove a live writer's temporary before the process ends (core/temporary_files.h).
void write_file_atomic(const std::filesystem::path& path, std::string_view data);

// Makes the entries of `dir` (renames into or inside it) durable: fsync of the directory.
// Best effort: a directory that cannot be opened is left as it is.
void fsync_dir(const std::filesystem::path& dir);

// Writes a file in pieces to a temporary name beside `path`; commit() fsyncs and renames it
// into place. Destroyed without commit() (an exception), it removes the temporary, so `path`
// is either the old file or the complete new one; a signal removes it as write_file_atomic says.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::filesystem::path& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(const void* data, size_t size);
  void commit();

 private:
  void discard_temporary();
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
  int tracked_ = -1;  // the temporary's slot in core/temporary_files.h's registry
};

// A read-only memory map of a whole regular file (anything else is an aha::Error naming the
// path), with its descriptor kept open for pread.
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

#include "core/files.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/file_checks.h"
#include "core/temporary_files.h"

namespace aha {
namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

size_t remove_tree(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  static thread_local size_t removed;
  removed = 0;
  auto remove_entry = [](const char* p, const struct stat*, int, struct FTW*) -> int {
    if (::remove(p) != 0) return -1;
    ++removed;
    return 0;
  };
  if (::nftw(path.c_str(), remove_entry, 64, FTW_DEPTH | FTW_PHYS) != 0) {
    throw Error("cannot remove " + path.string() + ": " + errno_text());
  }
  return removed;
}

std::string byte_size_text(uint64_t bytes) {
  // Exact where it matters (limits are round numbers, small sizes are shown in bytes);
  // one decimal for large sizes that are not whole units.
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  int unit = -1;
  uint64_t whole = bytes;
  while (whole >= 1024 && whole % 1024 == 0 && unit < 3) {
    whole /= 1024;
    ++unit;
  }
  if (unit >= 0) return std::to_string(whole) + " " + units[unit];
  if (bytes < 10 * 1024) return std::to_string(bytes) + " bytes";
  double value = static_cast<double>(bytes);
  for (unit = -1; value >= 1024 && unit < 3; ++unit) value /= 1024;
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

std::string read_file(const std::filesystem::path& path, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error("cannot open " + path.string() + ": " + errno_text());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error("cannot stat " + path.string() + ": " + errno_text());
  if (!S_ISREG(st.st_mode)) throw Error(path.string() + " " + file_type_text(st.st_mode));
  const auto too_large = [&](const std::string& size) {
    return Error(path.string() + " is larger than the " + byte_size_text(max_bytes) + " limit for one file (" + size +
                 ")");
  };
  if (static_cast<uint64_t>(st.st_size) > max_bytes) throw too_large(byte_size_text(static_cast<uint64_t>(st.st_size)));
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t used = 0;
  for (;;) {
    // The file may grow while it is read: read on until the end, but never past the limit.
    if (used == out.size()) {
      if (out.size() > max_bytes) throw too_large("it grew while being read");
      out.resize(std::min(std::max<size_t>(out.size() * 2, 4096), max_bytes + 1));
    }
    ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot read " + path.string() + ": " + errno_text());
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > max_bytes) throw too_large("it grew while being read");
  out.resize(used);
  return out;
}

void fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const std::filesystem::path& path, std::string_view data) {
  AtomicFileWriter writer(path);
  writer.write(data.data(), data.size());
  writer.commit();
}

std::filesystem::path unique_sibling(const std::filesystem::path& path, const std::string& tag) {
  static std::atomic<uint64_t> counter{0};
  auto out = path;
  out += "." + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  return out;
}

AtomicFileWriter::AtomicFileWriter(const std::filesystem::path& path) : path_(path) {
  remove_stale_siblings(path, "tmp");
  tmp_ = unique_sibling(path, "tmp");
  // Tracked before it exists, so that no signal can fall between creating and tracking it.
  tracked_ = track_temporary(tmp_);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    std::string why = errno_text();
    release_temporary(tracked_);
    throw Error("cannot create " + tmp_.string() + ": " + why);
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    discard_temporary();
  }
}

void AtomicFileWriter::discard_temporary() {
  ::unlink(tmp_.c_str());
  release_temporary(tracked_);
  tracked_ = -1;
}

void AtomicFileWriter::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("cannot write " + tmp_.string() + ": " + errno_text());
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::string why = errno_text();
    discard_temporary();
    throw Error("cannot flush " + tmp_.string() + ": " + why);
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::string why = errno_text();
    discard_temporary();
    throw Error("cannot rename " + tmp_.string() + " to " + path_.string() + ": " + why);
  }
  release_temporary(tracked_);
  tracked_ = -1;
}

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block the open
  if (fd < 0) throw Error("cannot open " + path.string() + ": " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = errno_text();
    ::close(fd);
    throw Error("cannot stat " + path.string() + ": " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path.string() + " " + file_type_text(st.st_mode));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      std::string why = errno_text();
      ::close(fd);
      throw Error("cannot map " + path.string() + ": " + why);
    }
    data_ = static_cast<unsigned char*>(p);
  }
  fd_ = fd;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), data_(other.data_), size_(other.size_) {
  other.fd_ = -1;
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    data_ = other.data_;
    size_ = other.size_;
    other.fd_ = -1;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void MappedFile::read_at(uint64_t offset, void* out, size_t size) const {
  if (offset > size_ || size > size_ - offset) throw Error(path_.string() + ": read past the end of the file");
  char* p = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = ::pread(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("cannot read " + path_.string() + ": " + (n == 0 ? std::string("unexpected end") : errno_text()));
    p += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
}

}  // namespace aha

#include "core/file_checks.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace aha {

std::string file_type_text(mode_t mode) {
  if (S_ISDIR(mode)) return "is a directory";
  if (S_ISFIFO(mode)) return "is a FIFO (named pipe), not a regular file";
  if (S_ISCHR(mode)) return "is a character device, not a regular file";
  if (S_ISBLK(mode)) return "is a block device, not a regular file";
  if (S_ISSOCK(mode)) return "is a socket, not a regular file";
  return "is not a regular file";
}

namespace {

std::string named(const NamedPath& p) { return (p.option.empty() ? "" : p.option + " ") + p.path.string(); }

}  // namespace

void require_regular_file(const NamedPath& input) {
  struct stat st {};
  if (::stat(input.path.c_str(), &st) != 0) {
    throw Error(named(input) + ": " + (errno == ENOENT ? std::string("no such file") : std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) throw Error(named(input) + " " + file_type_text(st.st_mode));
}

bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  // stat follows symlinks; device + inode identify the file however the path is spelled.
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void check_output_file(const NamedPath& output, const std::vector<NamedPath>& inputs, bool overwrite) {
  const std::string what = named(output);
  if (output.path.empty()) throw Error(output.option + " is empty; give a file path");
  struct stat st {};
  if (::stat(output.path.c_str(), &st) == 0) {
    // An atomic write renames over the path: over a directory it fails only at the end, and
    // over a device node or FIFO it would replace the node rather than write to it.
    if (S_ISDIR(st.st_mode)) throw Error(what + " is a directory; give a file path");
    if (!S_ISREG(st.st_mode)) throw Error(what + " " + file_type_text(st.st_mode));
    for (const auto& input : inputs) {
      if (same_file(output.path, input.path))
        throw Error(what + " is the same file as " + named(input) +
                    "; writing it would replace the input, give another output path");
    }
    if (st.st_size > 0 && !overwrite)
      throw Error(what + " already exists (" + std::to_string(st.st_size) +
                  " bytes); aha does not overwrite a file unless told to: pass --overwrite to replace it, or "
                  "choose another path");
  } else if (errno != ENOENT) {
    throw Error(what + ": " + std::strerror(errno));
  }
  // A trailing slash names a directory ("out/"), which the file cannot be.
  if (!output.path.has_filename()) throw Error(what + " names a directory; give a file path");
  std::filesystem::path folder = output.path.parent_path();
  if (folder.empty()) folder = ".";
  if (::stat(folder.c_str(), &st) != 0) {
    throw Error(what + ": folder " + folder.string() + " " +
                (errno == ENOENT ? std::string("does not exist") : std::string("cannot be read: ") + std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) throw Error(what + ": " + folder.string() + " is not a directory");
  if (::access(folder.c_str(), W_OK | X_OK) != 0)
    throw Error(what + ": folder " + folder.string() + " is not writable (" + std::strerror(errno) + ")");
}

}  // namespace aha

// Checks a command makes on the files it is given, before it does any work: that an input is
// a regular file (a directory, FIFO or device is refused with a message saying which), and
// that an output file can be written and is none of the inputs. A command that finds its
// output unwritable only after an hour of generation, or writes its results over its prompts,
// has lost the user's time or data; these checks make both impossible up front.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace aha {

// A path as the user gave it, with the option or argument that named it ("--input").
struct NamedPath {
  std::string option;
  std::filesystem::path path;
};

// Throws aha::Error "<option> <path>: ..." unless path (following symlinks) is an existing
// regular file: "no such file", "is a directory", "is a FIFO (named pipe)", "is a character
// device", ... .
void require_regular_file(const NamedPath& input);

// What a file of this type is, for errors about a path that should be a regular file:
// "is a directory", "is a FIFO (named pipe), not a regular file", ...
std::string file_type_text(mode_t mode);

// True when both paths exist and are the same file (same device and inode), however they
// are spelled: "./x", "d/../x", a symlink or a hard link to it.
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b);

// Throws aha::Error naming `output.option` and the path unless the output file can be written
// without harm: it is absent, empty, or (only when `overwrite`, the user's --overwrite) a
// regular file with content; never a directory, FIFO or device; its folder exists, is a
// directory and is writable; and it is not the same file as any of `inputs` (which would
// replace the input with the output, --overwrite or not).
void check_output_file(const NamedPath& output, const std::vector<NamedPath>& inputs = {},
                       bool overwrite = false);

}  // namespace aha

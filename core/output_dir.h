// The one rule for directories aha writes whole (a model, a base model, a tokenizer):
// aha never deletes or overwrites anything it did not create.
//
// Every such directory is built under a temporary name, marked with kOutputMarker (a small
// JSON file naming the command that made it), and swapped into place. Before any work, the
// command checks its target with check_output_dir: the target may be absent or an empty
// directory; a directory that aha made with the same command may be replaced only when the
// user said so (--overwrite); anything else (a user's checkpoint, unrelated files, a regular
// file) is an error that names it, and is left exactly as it was.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace aha {

// The marker file inside a directory aha made: {"made_by": "<command>"}.
inline constexpr const char* kOutputMarker = ".aha-output.json";

// The command that made `dir`, from its marker; nullopt when `dir` holds no readable marker
// (aha did not make it, or it is not a directory).
std::optional<std::string> output_made_by(const std::filesystem::path& dir);

// Throws aha::Error unless a new output of `made_by` may be written at `dir`: absent, an empty
// directory, or (when `overwrite`) a directory whose marker names `made_by`. `what` names the
// target in the message, e.g. "--out" or "model.path".
void check_output_dir(const std::filesystem::path& dir, const std::string& what, const std::string& made_by,
                      bool overwrite);

// Writes the marker into `dir` (a directory being built, before it is swapped into place).
void mark_output_dir(const std::filesystem::path& dir, const std::string& made_by);

// A new temporary name beside `target` to build a directory in (swap_in_dir moves it into
// place), after removing what builds of `target` that were killed left there: their
// temporaries, and an earlier copy set aside (only when `target` itself is whole).
std::filesystem::path fresh_build_dir(const std::filesystem::path& target);

// Puts the finished directory `built` at `target`: an earlier target (which the caller has
// checked may be replaced) is renamed aside first and removed only once the new one is in
// place, so a failure leaves the old or the new directory whole, never a mix; the built
// directory and the rename are fsynced, so a power cut leaves one of them too.
void swap_in_dir(const std::filesystem::path& built, const std::filesystem::path& target);

// True when `dir` is an empty directory; false when it is absent or holds anything.
bool is_empty_dir(const std::filesystem::path& dir);

}  // namespace aha

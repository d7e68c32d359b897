#include "core/output_dir.h"

#include <system_error>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/temporary_files.h"

namespace aha {

namespace fs = std::filesystem;

std::optional<std::string> output_made_by(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / kOutputMarker, ec)) return std::nullopt;
  try {
    auto doc = json::parse(read_file(dir / kOutputMarker), (dir / kOutputMarker).string());
    json::ObjectReader r(doc, kOutputMarker);
    auto made_by = r.get_string("made_by", "");
    if (made_by.empty()) return std::nullopt;
    return made_by;
  } catch (const Error&) {
    return std::nullopt;  // unreadable: not provably ours
  }
}

bool is_empty_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec) && !ec;
}

void check_output_dir(const fs::path& dir, const std::string& what, const std::string& made_by, bool overwrite) {
  std::error_code ec;
  const auto status = fs::symlink_status(dir, ec);
  if (!fs::exists(status)) return;
  const std::string where = what + " " + dir.string();
  if (fs::is_symlink(status))
    throw Error(where + " is a symbolic link; aha writes its output only to a new or empty directory");
  if (!fs::is_directory(status))
    throw Error(where + " exists and is not a directory; aha never overwrites a file it did not create: "
                "choose a new path");
  if (is_empty_dir(dir)) return;
  const auto maker = output_made_by(dir);
  if (!maker)
    throw Error(where + " already holds files that aha did not write; aha never deletes or overwrites them: "
                "choose a new or empty directory");
  if (*maker != made_by)
    throw Error(where + " holds the output of `aha " + *maker + "`, not of `aha " + made_by +
                "`; aha does not replace it: choose a new or empty directory");
  if (!overwrite)
    throw Error(where + " already holds an earlier output of `aha " + made_by +
                "`; pass --overwrite to replace it, or choose a new directory");
}

void mark_output_dir(const fs::path& dir, const std::string& made_by) {
  rapidjson::Document doc(rapidjson::kObjectType);
  doc.AddMember("made_by", rapidjson::Value(made_by.c_str(), doc.GetAllocator()), doc.GetAllocator());
  write_file_atomic(dir / kOutputMarker, json::to_string(doc) + "\n");
}

fs::path fresh_build_dir(const fs::path& target) {
  remove_stale_siblings(target, "tmp");
  // A set-aside copy is the only one when the kill came between its two renames.
  if (fs::exists(fs::symlink_status(target))) remove_stale_siblings(target, "old");
  return unique_sibling(target, "tmp");
}

void swap_in_dir(const fs::path& built, const fs::path& target) {
  fsync_dir(built);  // the built directory's entries are on disk before it takes the target's name
  const fs::path old = unique_sibling(target, "old");
  if (fs::exists(fs::symlink_status(target))) fs::rename(target, old);
  try {
    fs::rename(built, target);
  } catch (...) {
    if (fs::exists(fs::symlink_status(old))) fs::rename(old, target);  // put the earlier one back
    throw;
  }
  fsync_dir(target.has_parent_path() ? target.parent_path() : fs::path("."));
  remove_tree(old);
}

}  // namespace aha

// A JSON Lines output written unit by unit (rejection sampling: one prompt's records) so that a
// kill -9 at any moment loses no finished unit and a resume duplicates none.
//
// Beside the output <out> lies its progress record <out>.progress.json, replaced atomically
// after each unit: the units done, the output's length in bytes after them, the caller's
// state (running counts) and a fingerprint of the settings. append_unit writes the unit's
// lines, fsyncs the output, and only then replaces the progress record. So after a kill:
//   - the output may hold a torn last line, or whole lines of a unit the progress record does
//     not count yet; a resume truncates the output to the recorded length, which removes both,
//     and the caller redoes that unit;
//   - everything the progress record counts is on disk.
// Modes:
//   fresh      <out> absent or empty, and no progress record (a record means an earlier run:
//              resume it or overwrite it);
//   overwrite  <out> may hold content (core/file_checks.h's --overwrite rule); a progress record
//              there must be one of ours;
//   resume     the progress record must exist, be ours, and carry the same fingerprint; <out>
//              must be at least as long as it says (else it was changed by someone else).
// aha never truncates a file it did not write: in resume mode the progress record proves that
// it wrote <out>; a fresh run only starts on an absent or empty file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace aha::recipes {

class ResumableJsonl {
 public:
  enum class Mode { fresh, overwrite, resume };

  // Checks as above and opens <out> for appending; `fingerprint_json` is a JSON object of the
  // settings a resume must share; `what` names the writer in the record and errors ("aha distill").
  ResumableJsonl(const std::filesystem::path& out, Mode mode, const std::string& fingerprint_json,
                 const std::string& what);
  ~ResumableJsonl();
  ResumableJsonl(const ResumableJsonl&) = delete;
  ResumableJsonl& operator=(const ResumableJsonl&) = delete;

  static std::filesystem::path progress_path(const std::filesystem::path& out);

  int64_t units_done() const { return units_done_; }
  bool complete() const { return complete_; }
  // The state saved with the last unit ("{}" before any); a JSON object's text.
  const std::string& state_json() const { return state_json_; }

  // Appends `lines` (whole lines, each ending in '\n'; may be empty) as the next unit, with the
  // caller's state after it, durably (above).
  void append_unit(const std::string& lines, const std::string& state_json);
  // Marks the output complete (a later resume has nothing to do).
  void finish(const std::string& state_json);

 private:
  void write_progress();
  std::filesystem::path out_;
  std::string fingerprint_json_, what_, state_json_ = "{}";
  int fd_ = -1;
  int64_t units_done_ = 0;
  uint64_t bytes_ = 0;
  bool complete_ = false;
};

}  // namespace aha::recipes

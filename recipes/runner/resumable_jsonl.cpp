#include "recipes/runner/resumable_jsonl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "core/file_checks.h"
#include "core/files.h"
#include "core/json.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;
constexpr const char* kMarker = "aha resumable JSON Lines progress";

std::string errno_text() { return std::strerror(errno); }

}  // namespace

fs::path ResumableJsonl::progress_path(const fs::path& out) { return fs::path(out.string() + ".progress.json"); }

ResumableJsonl::ResumableJsonl(const fs::path& out, Mode mode, const std::string& fingerprint_json,
                               const std::string& what)
    : out_(out), what_(what) {
  // The fingerprint in canonical (compact) form, so that a resume compares like with like.
  fingerprint_json_ = json::to_string(json::parse(fingerprint_json, what + " fingerprint"));
  const fs::path progress = progress_path(out);
  std::optional<rapidjson::Document> record;
  if (fs::exists(progress)) {
    require_regular_file({"progress record", progress});
    std::string text = read_file(progress, size_t{64} << 20);
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    require(!doc.HasParseError() && doc.IsObject() && doc.HasMember("marker") && doc["marker"].IsString() &&
                std::string(doc["marker"].GetString()) == kMarker,
            progress.string() + " exists but is not a progress record aha wrote; move it away (aha does not "
                                "overwrite files it did not create)");
    record = std::move(doc);
  }
  uint64_t keep_bytes = 0;
  if (mode == Mode::fresh) {
    require(!record, out.string() + ": an earlier run's progress record " + progress.string() +
                         " exists; continue it with --resume, or start again with --overwrite");
    check_output_file({"--out", out}, {}, /*overwrite=*/false);
  } else if (mode == Mode::overwrite) {
    check_output_file({"--out", out}, {}, /*overwrite=*/true);
  } else {
    require(record.has_value(), "--resume: " + progress.string() + " does not exist, so " + out.string() +
                                    " is not an unfinished output of " + what + " (nothing to resume)");
    const auto& r = *record;
    json::ObjectReader reader(r, progress.string());
    std::string theirs = json::to_string(reader.get("fingerprint"));
    require(theirs == fingerprint_json_, "--resume: the settings differ from the interrupted run's (" +
                                             progress.string() + " has " + theirs + ", now " + fingerprint_json_ +
                                             "); give the same settings, or start again with --overwrite");
    units_done_ = reader.get_int("units_done");
    keep_bytes = static_cast<uint64_t>(reader.get_int("bytes"));
    complete_ = reader.get_bool("complete");
    state_json_ = json::to_string(reader.get("state"));
    require(fs::exists(out) && fs::is_regular_file(out),
            "--resume: " + out.string() + " is missing or not a regular file, but " + progress.string() +
                " says it holds " + std::to_string(keep_bytes) + " bytes");
    require(fs::file_size(out) >= keep_bytes,
            "--resume: " + out.string() + " is shorter (" + std::to_string(fs::file_size(out)) + " bytes) than " +
                progress.string() + " says (" + std::to_string(keep_bytes) +
                "): it was changed since; start again with --overwrite");
  }
  fd_ = ::open(out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open " + out.string() + " for writing: " + errno_text());
  // Fresh: empty already; overwrite: ours to replace; resume: cut what the record does not count.
  if (::ftruncate(fd_, static_cast<off_t>(keep_bytes)) != 0 || ::lseek(fd_, 0, SEEK_END) < 0 || ::fsync(fd_) != 0) {
    std::string why = errno_text();
    ::close(fd_);
    throw Error("cannot truncate " + out.string() + ": " + why);
  }
  bytes_ = keep_bytes;
  fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  fsync_dir(dir);
  write_progress();
}

ResumableJsonl::~ResumableJsonl() {
  if (fd_ >= 0) ::close(fd_);
}

void ResumableJsonl::write_progress() {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& alloc = doc.GetAllocator();
  doc.AddMember("marker", rapidjson::StringRef(kMarker), alloc);
  doc.AddMember("version", 1, alloc);
  doc.AddMember("writer", rapidjson::Value(what_.c_str(), alloc), alloc);
  doc.AddMember("units_done", units_done_, alloc);
  doc.AddMember("bytes", static_cast<uint64_t>(bytes_), alloc);
  doc.AddMember("complete", complete_, alloc);
  rapidjson::Document fingerprint, state;
  fingerprint.Parse(fingerprint_json_.c_str());
  state.Parse(state_json_.c_str());
  doc.AddMember("fingerprint", rapidjson::Value(fingerprint, alloc), alloc);
  doc.AddMember("state", rapidjson::Value(state, alloc), alloc);
  write_file_atomic(progress_path(out_), json::to_string(doc) + "\n");
}

void ResumableJsonl::append_unit(const std::string& lines, const std::string& state_json) {
  require(!complete_, what_ + ": " + out_.string() + " is already complete");
  require(lines.empty() || lines.back() == '\n', what_ + ": a unit must end with a newline");
  const char* p = lines.data();
  size_t left = lines.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("cannot write " + out_.string() + ": " + errno_text());
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0) throw Error("cannot flush " + out_.string() + ": " + errno_text());
  bytes_ += lines.size();
  ++units_done_;
  state_json_ = json::to_string(json::parse(state_json, what_ + " state"));
  write_progress();
}

void ResumableJsonl::finish(const std::string& state_json) {
  complete_ = true;
  state_json_ = json::to_string(json::parse(state_json, what_ + " state"));
  write_progress();
}

}  // namespace aha::recipes

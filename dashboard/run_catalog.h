// RunCatalog: the runs the dashboard may show, found by looking for run.db files under the
// directories given with --runs (recursively), and the one place a run id from a URL becomes a
// file path.
//
// A run's id is its directory relative to its root ("r1-zero-tiny", "sweeps/lr-3e-4"); with
// several roots it is prefixed by the root's own name ("runs/r1-zero-tiny"). An id is only
// ever looked up in the catalog, never joined onto a path, and a run.db is listed only when its
// real path (symlinks resolved) lies inside its root's real path, so no URL can reach a file
// outside the runs.
#pragma once
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace aha::dashboard {

struct RunLocation {
  std::string id;
  std::filesystem::path db_path;  // canonical
};

class RunCatalog {
 public:
  // Throws aha::Error when a root exists but is not a directory, or two roots share a name. A
  // root that does not exist yet is searched once it does.
  explicit RunCatalog(const std::vector<std::filesystem::path>& roots);
  std::vector<std::filesystem::path> missing_roots() const;  // roots that do not exist (yet)

  // Every run found, sorted by id; rescans the disk when the last scan is older than a second.
  std::vector<RunLocation> runs();
  // The run with this id: HttpError 400 for an id that is not a well-formed relative run path
  // ("..", an absolute path, odd characters), 404 for one that names no run.
  RunLocation find(const std::string& id);

  // A well-formed id: 1-512 characters of [A-Za-z0-9._-/], '/'-separated segments, none empty,
  // "." or "..". Throws HttpError 400 saying why otherwise.
  static void check_id(const std::string& id);

 private:
  struct Root {
    std::filesystem::path path;  // absolute as given; each scan resolves it
    std::string prefix;          // "" with one root, else "<root name>/"
  };
  void rescan_if_old();
  std::vector<RunLocation> scan() const;

  std::vector<Root> roots_;
  std::mutex mutex_;
  std::vector<RunLocation> runs_;
  std::chrono::steady_clock::time_point scanned_at_{};
  bool scanned_ = false;
};

}  // namespace aha::dashboard

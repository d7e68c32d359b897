#include "dashboard/run_catalog.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/error.h"
#include "dashboard/http_error.h"

namespace aha::dashboard {
namespace fs = std::filesystem;

namespace {

constexpr int kMaxDepth = 8;  // runs nest a few levels (sweeps/…); deeper trees are not run trees

bool is_inside(const fs::path& path, const fs::path& root) {
  auto [root_end, path_it] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return root_end == root.end();
}

}  // namespace

RunCatalog::RunCatalog(const std::vector<fs::path>& roots) {
  require(!roots.empty(), "aha dashboard: no --runs directory given");
  std::set<std::string> names;
  for (const auto& root : roots) {
    std::error_code ec;
    // A directory that does not exist yet is allowed: `aha train` prints the dashboard command
    // before the run's directory is made, and runs appear there once it is.
    require(!fs::exists(root, ec) || fs::is_directory(root, ec), "--runs " + root.string() + ": not a directory");
    const fs::path absolute = fs::absolute(root, ec).lexically_normal();
    require(!ec, "--runs " + root.string() + ": " + ec.message());
    std::string name = (absolute.has_filename() ? absolute : absolute.parent_path()).filename().string();
    if (name.empty()) name = "root";
    require(names.insert(name).second || roots.size() == 1,
            "--runs: two directories are named '" + name + "'; run ids would clash (give one of them by another path)");
    roots_.push_back({absolute, roots.size() == 1 ? "" : name + "/"});
  }
}

std::vector<fs::path> RunCatalog::missing_roots() const {
  std::vector<fs::path> missing;
  for (const auto& root : roots_) {
    std::error_code ec;
    if (!fs::is_directory(root.path, ec)) missing.push_back(root.path);
  }
  return missing;
}

void RunCatalog::check_id(const std::string& id) {
  if (id.empty() || id.size() > 512) throw HttpError(400, "run id must be 1 to 512 characters");
  if (id.front() == '/') throw HttpError(400, "run id '" + id + "' is an absolute path; ids are relative to the runs directory");
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/'))
      throw HttpError(400, "run id '" + id + "' has a character other than letters, digits, '.', '_', '-', '/'");
  size_t start = 0;
  while (start <= id.size()) {
    size_t end = id.find('/', start);
    if (end == std::string::npos) end = id.size();
    const std::string segment = id.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..")
      throw HttpError(400, "run id '" + id + "' has an empty, '.' or '..' path segment");
    start = end + 1;
  }
}

std::vector<RunLocation> RunCatalog::scan() const {
  std::vector<RunLocation> found;
  for (const auto& given : roots_) {
    std::error_code ec;
    Root root{fs::canonical(given.path, ec), given.prefix};  // real path now: the root may be a symlink
    if (ec || !fs::is_directory(root.path, ec)) continue;    // not made yet
    fs::recursive_directory_iterator it(root.path, fs::directory_options::skip_permission_denied, ec), end;
    auto consider = [&](const fs::path& dir) {
      const fs::path db = dir / "run.db";
      std::error_code e;
      if (!fs::is_regular_file(db, e)) return false;
      const fs::path real = fs::canonical(db, e);
      if (e || !is_inside(real, root.path)) return true;  // a run.db leading out of the root: never served
      std::string relative = fs::relative(dir, root.path, e).generic_string();
      if (e) return true;
      const std::string id = relative == "." ? root.path.filename().string() : root.prefix + relative;
      try {
        check_id(id);
      } catch (const HttpError&) {
        return true;  // a directory name no URL could carry: skipped
      }
      found.push_back({id, real});
      return true;
    };
    if (fs::exists(root.path / "run.db", ec)) {
      consider(root.path);  // --runs pointed at one run directory
      continue;
    }
    for (; !ec && it != end; it.increment(ec)) {
      if (it.depth() >= kMaxDepth) it.disable_recursion_pending();
      std::error_code e;
      if (!it->is_directory(e) || it->is_symlink(e)) continue;  // directory symlinks are not followed
      // A run directory's own subfolders (checkpoints, exports) hold no further runs.
      if (consider(it->path())) it.disable_recursion_pending();
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return found;
}

void RunCatalog::rescan_if_old() {
  const auto now = std::chrono::steady_clock::now();
  if (scanned_ && now - scanned_at_ < std::chrono::seconds(1)) return;
  runs_ = scan();
  scanned_at_ = now;
  scanned_ = true;
}

std::vector<RunLocation> RunCatalog::runs() {
  std::lock_guard lock(mutex_);
  rescan_if_old();
  return runs_;
}

RunLocation RunCatalog::find(const std::string& id) {
  check_id(id);
  std::lock_guard lock(mutex_);
  rescan_if_old();
  for (const auto& run : runs_)
    if (run.id == id) return run;
  runs_ = scan();  // a run that started since the last scan
  scanned_at_ = std::chrono::steady_clock::now();
  for (const auto& run : runs_)
    if (run.id == id) return run;
  throw HttpError(404, "no run with id '" + id + "' under the dashboard's --runs directories");
}

}  // namespace aha::dashboard

// run_sandboxed(): validates the request, chooses the isolation layers (falling back, and
// saying so, where the host refuses one), runs the program under supervise() and judges the
// outcome.
#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>

#include "core/error.h"
#include "core/files.h"
#include "sandbox/child_plan.h"
#include "sandbox/host_isolation.h"
#include "sandbox/supervisor.h"

namespace aha::sandbox {
namespace {

constexpr int kMaxAttempts = 8;

void validate(const SandboxRequest& r) {
  require(!r.program.empty() || !r.program_file.empty(),
          "sandbox request: neither 'program' nor 'program_file' is set");
  auto check_name = [](const std::string& name, const std::string& what) {
    require(!name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
                name.find('\0') == std::string::npos,
            "sandbox request: " + what + " '" + name + "' must be a plain file name (no '/')");
  };
  check_name(r.program_name, "program_name");
  for (const auto& [name, content] : r.files) {
    check_name(name, "file name");
    require(name != r.program_name, "sandbox request: file '" + name + "' has the program's name");
  }
  const SandboxLimits& l = r.limits;

  constexpr double kYear = 365.0 * 24 * 3600;
  require(l.wall_seconds > 0 && l.wall_seconds <= kYear, "sandbox limits: wall_seconds must be in (0, 1 year]");
  require(l.cpu_seconds > 0 && l.cpu_seconds <= kYear, "sandbox limits: cpu_seconds must be in (0, 1 year]");
  require(l.memory_bytes > 0 && l.memory_bytes <= kMaxMemoryBytes,
          "sandbox limits: memory_bytes must be in 1.." + std::to_string(kMaxMemoryBytes) + " (1 TiB), got " +
              std::to_string(l.memory_bytes));
  require(l.max_processes > 0, "sandbox limits: max_processes must be > 0");
  require(l.max_file_bytes > 0, "sandbox limits: max_file_bytes must be > 0");
  require(l.max_open_files > 3, "sandbox limits: max_open_files must be > 3 (stdio)");
  require(l.max_output_bytes > 0 && l.max_output_bytes <= kMaxOutputBytes,
          "sandbox limits: max_output_bytes must be in 1.." + std::to_string(kMaxOutputBytes) + " (1 GiB), got " +
              std::to_string(l.max_output_bytes));
  require(l.tmp_bytes > 0, "sandbox limits: tmp_bytes must be > 0");
  require(r.interpreter.empty() || !r.interpreter[0].empty(), "sandbox request: interpreter[0] is empty");
  require(r.pin_cpu >= -1 && r.pin_cpu < CPU_SETSIZE,
          "sandbox request: pin_cpu must be -1 or a CPU number below " + std::to_string(CPU_SETSIZE));
}

// The run's directory on the host when there is no mount namespace (removed afterwards).
class HostWorkdir {
 public:
  HostWorkdir(const SandboxRequest& r, const std::string& program, unsigned owner, bool chown_it) {
    char pattern[] = "/tmp/aha-sandbox-XXXXXX";
    require(mkdtemp(pattern) != nullptr,
            std::string("sandbox: cannot create a temporary directory in /tmp: ") + std::strerror(errno));
    path_ = pattern;
    chmod(path_.c_str(), 0700);
    write(r.program_name, program);
    for (const auto& [name, content] : r.files) write(name, content);
    if (chown_it && chown(path_.c_str(), owner, owner) != 0)
      throw Error("sandbox: cannot give the temporary directory to uid " + std::to_string(owner));
  }
  ~HostWorkdir() {
    try {
      remove_tree(path_);
    } catch (const Error&) {  // a destructor must not throw; a leftover scratch dir is harmless
    }
  }
  const std::string& path() const { return path_; }

 private:
  // A scratch file for one run: no fsync (nothing is kept), and a fresh name.
  void write(const std::string& name, const std::string& content) {
    const std::string path = path_ + "/" + name;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    require(fd >= 0, "sandbox: cannot create " + path + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < content.size()) {
      ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int error = errno;
        close(fd);
        throw Error("sandbox: cannot write " + path + ": " + std::strerror(error));
      }
      done += static_cast<size_t>(n);
    }
    close(fd);
    chmod(path.c_str(), 0644);  // whatever the umask
  }

  std::string path_;
};

bool mentions_allocation_failure(const std::string& stderr_text) {
  const std::string tail = stderr_text.substr(stderr_text.size() > 4096 ? stderr_text.size() - 4096 : 0);
  for (const char* sign : {"MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory",
                           "failed to map segment"})
    if (tail.find(sign) != std::string::npos) return true;
  return false;
}

// Judges a run whose sandbox worked.
void judge(const Supervision& s, const SandboxLimits& limits, SandboxResult& result) {
  if (s.stop == Supervision::Stop::output_limit) {
    result.status = SandboxStatus::output_limit;
    result.message = "output exceeded " + std::to_string(limits.max_output_bytes) + " bytes";
  } else if (s.stop == Supervision::Stop::wall_timeout) {
    result.status = SandboxStatus::timeout;
    result.message = "wall-clock limit of " + std::to_string(limits.wall_seconds) + " s reached";
  }
  if (!s.have_program_status) {
    if (s.stop == Supervision::Stop::none) {
      result.status = SandboxStatus::sandbox_failure;
      const int st = s.init_status;
      result.message = "the sandbox's init ended (" +
                       (WIFSIGNALED(st) ? "signal " + std::to_string(WTERMSIG(st))
                                        : "exit " + std::to_string(WEXITSTATUS(st))) +
                       ") without reporting the program's status";
    }
    return;
  }
  const int st = s.program_status;
  if (WIFEXITED(st)) result.exit_code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) result.signal = WTERMSIG(st);
  if (s.stop != Supervision::Stop::none) return;
  const bool cpu_exhausted = result.signal == SIGXCPU ||
                             (result.signal == SIGKILL && result.cpu_seconds >= std::ceil(limits.cpu_seconds));
  if (result.exit_code == 0) {
    result.status = SandboxStatus::ok;
  } else if (cpu_exhausted) {
    result.status = SandboxStatus::timeout;
    result.message = "CPU limit of " + std::to_string(limits.cpu_seconds) + " s reached";
  } else if (mentions_allocation_failure(result.stderr_text)) {
    result.status = SandboxStatus::memory_limit;
    result.message = "allocation failed under the memory limit of " +
                     std::to_string(limits.memory_bytes) + " bytes";
  } else if (result.signal != 0) {
    result.status = SandboxStatus::signal;
    result.message = std::string("killed by signal ") + strsignal(result.signal);
  } else {
    result.status = SandboxStatus::runtime_error;
  }
}

std::string describe(const ChildReport& r, const ChildPlan& plan) {
  std::string text = std::string(stage_name(r.stage)) + ": " + std::strerror(r.value);
  if (r.step >= 0 && static_cast<size_t>(r.step) < plan.mounts.size()) {
    const MountStep& step = plan.mounts[r.step];
    text += " (" + step.target + (step.kind == MountStep::kWriteFile ? "" : " <- " + step.source) + ")";
  }
  return text;
}

// The layer to switch off after a fatal set-up failure at `stage`: a CLONE_NEW* flag, 0 for
// seccomp, -1 when the failure is no layer's own.
int layer_of(int32_t stage, int clone_flags) {
  switch (stage) {
    case kStageMount: return CLONE_NEWNS;
    case kStageHostname: return CLONE_NEWUTS;
    case kStageSeccomp: return 0;
    case kStageIds: return (clone_flags & CLONE_NEWUSER) ? CLONE_NEWUSER : -1;
  }
  return -1;
}

}  // namespace

const char* to_string(SandboxStatus status) {
  switch (status) {
    case SandboxStatus::ok: return "ok";
    case SandboxStatus::runtime_error: return "runtime_error";
    case SandboxStatus::timeout: return "timeout";
    case SandboxStatus::memory_limit: return "memory_limit";
    case SandboxStatus::output_limit: return "output_limit";
    case SandboxStatus::signal: return "signal";
    case SandboxStatus::sandbox_failure: return "sandbox_failure";
  }
  return "unknown";
}

namespace {

std::string memory_limit_message(const SandboxLimits& limits, const std::string& why) {
  return why + " within the memory limit of " + std::to_string(limits.memory_bytes) + " bytes";
}

// One run, judged by what the run itself shows.
SandboxResult run_once(const SandboxRequest& request) {
  validate(request);
  const std::string program = request.program.empty() ? read_file(request.program_file) : request.program;
  size_t file_bytes = program.size();
  for (const auto& [name, content] : request.files) file_bytes += content.size();
  require(static_cast<int64_t>(file_bytes) <= request.limits.tmp_bytes,
          "sandbox request: the program and its files (" + std::to_string(file_bytes) +
              " bytes) do not fit in limits.tmp_bytes (" + std::to_string(request.limits.tmp_bytes) + ")");
  for (int attempt = 0;; ++attempt) {
    const HostIsolation host = host_isolation();
    PlanChoice choice;
    choice.clone_flags = request.isolation.namespaces ? host.clone_flags : 0;
    choice.seccomp = request.isolation.seccomp && host.seccomp;
    choice.root = host.root;
    std::unique_ptr<HostWorkdir> workdir;
    if (!(choice.clone_flags & CLONE_NEWNS)) {
      workdir = std::make_unique<HostWorkdir>(request, program, program_id(choice), choice.root);
      choice.host_workdir = workdir->path();
    }
    ChildPlan plan = build_child_plan(request, program, choice);
    SupervisionInput input;
    input.clone_flags = choice.clone_flags;
    input.root = choice.root;
    input.program_host_uid = choice.root ? static_cast<int>(kHostNobody) : -1;
    input.stdin_data = request.stdin_data;
    input.wall_seconds = request.limits.wall_seconds;
    input.max_output_bytes = request.limits.max_output_bytes;
    Supervision s = supervise(plan, input);

    SandboxResult result;
    result.wall_seconds = s.wall_seconds;
    result.cpu_seconds = s.cpu_seconds;
    result.stdout_text = std::move(s.stdout_text);
    result.stderr_text = std::move(s.stderr_text);
    result.stdout_truncated = s.stdout_truncated;
    result.stderr_truncated = s.stderr_truncated;
    for (int flag : sandbox_namespace_flags())
      if (choice.clone_flags & flag) result.layers.push_back(namespace_layer_name(flag));
    if (choice.seccomp) result.layers.push_back("seccomp");
    result.layers.push_back("rlimits");
    if (program_id(choice) != 0) result.layers.push_back("unprivileged_uid");
    result.missing_layers = host.missing;
    if (!request.isolation.namespaces) result.missing_layers.push_back("namespaces: turned off by the request");
    if (!request.isolation.seccomp) result.missing_layers.push_back("seccomp: turned off by the request");

    const ChildReport* fatal = nullptr;
    for (const ChildReport& r : s.reports) {
      if (r.kind == ChildReport::kFatal && !fatal) fatal = &r;
      if (r.kind == ChildReport::kWarning) result.missing_layers.push_back("proc: " + describe(r, plan));
    }
    if (s.stray_output_holder)
      result.message = "a process outside the sandbox's reach held its pipes open";
    if (!s.parent_failure.empty() || fatal) {
      const std::string why = fatal ? describe(*fatal, plan) : s.parent_failure;
      const int layer = fatal ? layer_of(fatal->stage, choice.clone_flags)
                              : (s.user_namespace_failed ? CLONE_NEWUSER : -1);
      const bool layer_in_use = layer > 0 ? (choice.clone_flags & layer) != 0 : layer == 0 && choice.seccomp;
      if (layer_in_use && attempt + 1 < kMaxAttempts) {
        disable_layer(layer, "failed here (" + why + ")");
        continue;
      }
      if (fatal && fatal->stage == kStageExec && fatal->value == ENOMEM) {
        // The kernel could not map the program under its own RLIMIT_AS: the limit's doing.
        result.status = SandboxStatus::memory_limit;
        result.message = memory_limit_message(request.limits, "the program could not be loaded");
        return result;
      }
      result.status = SandboxStatus::sandbox_failure;
      result.message = why;
      return result;
    }
    judge(s, request.limits, result);
    return result;
  }
}

// Whether the request's interpreter starts at all within its memory limit: an empty program
// run under the request's limits exits 0. Under a limit too small for the interpreter itself,
// it dies before it can report anything an allocation-failure signature would match (the
// dynamic loader cannot map a library, the runtime aborts during its set-up), so the run's
// own output cannot tell; this can. It is asked only after a failed run, and the answer is
// cached per interpreter: it is monotone in the limit, so the cache keeps the largest limit
// seen to fail and the smallest seen to work. An interpreter that does not run an empty
// program even under kMaxMemoryBytes is never blamed on the limit.
bool interpreter_starts_within(const SandboxRequest& request) {
  struct Bounds {
    int64_t fails_up_to = 0;                                     // largest limit seen to fail
    int64_t works_from = std::numeric_limits<int64_t>::max();    // smallest limit seen to work
  };
  static std::mutex mutex;
  static std::map<std::string, Bounds> known;
  std::string key = request.program_name + '\0' + (request.isolation.namespaces ? "n" : "-") +
                    (request.isolation.seccomp ? "s" : "-");
  for (const auto& word : request.interpreter) key += '\0' + word;

  auto starts = [&](int64_t memory_bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      const Bounds& b = known[key];
      if (memory_bytes <= b.fails_up_to) return false;
      if (memory_bytes >= b.works_from) return true;
    }
    SandboxRequest empty;
    empty.program = "\n";
    empty.program_name = request.program_name;
    empty.interpreter = request.interpreter;
    empty.isolation = request.isolation;
    empty.pin_cpu = request.pin_cpu;
    empty.limits = request.limits;
    empty.limits.memory_bytes = memory_bytes;
    empty.limits.wall_seconds = std::min(request.limits.wall_seconds, 10.0);
    empty.limits.cpu_seconds = std::min(request.limits.cpu_seconds, 10.0);
    const bool ok = run_once(empty).status == SandboxStatus::ok;
    std::lock_guard<std::mutex> lock(mutex);
    Bounds& b = known[key];
    if (ok)
      b.works_from = std::min(b.works_from, memory_bytes);
    else
      b.fails_up_to = std::max(b.fails_up_to, memory_bytes);
    return ok;
  };
  return starts(request.limits.memory_bytes) || !starts(kMaxMemoryBytes);
}

}  // namespace

SandboxResult run_sandboxed(const SandboxRequest& request) {
  SandboxResult result = run_once(request);
  const bool failed = result.status == SandboxStatus::runtime_error || result.status == SandboxStatus::signal;
  if (failed && !interpreter_starts_within(request)) {
    result.status = SandboxStatus::memory_limit;
    result.message = memory_limit_message(
        request.limits, "the interpreter cannot start (an empty program fails the same way)");
  }
  return result;
}

}  // namespace aha::sandbox

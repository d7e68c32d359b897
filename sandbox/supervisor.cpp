#include "sandbox/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <tuple>

#include "sandbox/child_plan.h"

namespace aha::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

// Time allowed, once everything was killed, for the pipes to report end-of-file.
constexpr auto kDrainGrace = std::chrono::seconds(2);
// Time the init has to kill and reap the program's processes when asked to stop.
constexpr auto kStopGrace = std::chrono::seconds(2);
constexpr size_t kInitStack = 256 * 1024;
constexpr size_t kProgramStack = 256 * 1024;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int* out() { return &fd_; }

 private:
  int fd_ = -1;
};

bool make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return false;
  *read_end.out() = fds[0];
  *write_end.out() = fds[1];
  return true;
}

class Stacks {
 public:
  Stacks() {
    void* p = mmap(nullptr, kInitStack + kProgramStack, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<char*>(p);
  }
  ~Stacks() {
    if (base_) munmap(base_, kInitStack + kProgramStack);
  }
  bool ok() const { return base_ != nullptr; }
  char* init_top() const { return base_ + kInitStack; }
  char* program_top() const { return base_ + kInitStack + kProgramStack; }

 private:
  char* base_ = nullptr;
};

bool write_whole(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// Maps the ids the sandbox needs into its new user namespace: inside 0 stays the parent's
// uid for the set-up, and kSandboxId is the unprivileged one the program runs as.
std::string write_id_maps(pid_t pid, bool root) {
  const std::string proc = "/proc/" + std::to_string(pid) + "/";
  std::string uid_map, gid_map;
  if (root) {
    uid_map = gid_map = "0 0 1\n" + std::to_string(kSandboxId) + " " + std::to_string(kHostNobody) + " 1\n";
  } else {
    // An unprivileged parent may map only its own ids, and must give up setgroups first.
    if (!write_whole(proc + "setgroups", "deny")) return "writing setgroups: " + std::string(std::strerror(errno));
    uid_map = std::to_string(kSandboxId) + " " + std::to_string(geteuid()) + " 1\n";
    gid_map = std::to_string(kSandboxId) + " " + std::to_string(getegid()) + " 1\n";
  }
  if (!write_whole(proc + "uid_map", uid_map)) return "writing uid_map: " + std::string(std::strerror(errno));
  if (!write_whole(proc + "gid_map", gid_map)) return "writing gid_map: " + std::string(std::strerror(errno));
  return "";
}

double seconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

// Appends what `fd` has to `text`, at most `cap` bytes in all. Returns false at end-of-file.
bool read_capped(int fd, std::string& text, int64_t cap, bool& overflow) {
  char buffer[65536];
  ssize_t n = read(fd, buffer, sizeof buffer);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  const size_t room = text.size() < static_cast<size_t>(cap) ? cap - text.size() : 0;
  text.append(buffer, std::min(room, static_cast<size_t>(n)));
  if (static_cast<size_t>(n) > room) overflow = true;
  return true;
}

// Runs the loop with SIGPIPE blocked in this thread only, so that feeding the stdin of a
// program that exited gives EPIPE instead of killing aha; a SIGPIPE left pending (it is
// thread-directed) is consumed before the mask is restored.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old_);
  }
  ~SigpipeBlock() {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
 private:
  sigset_t old_;
};

// Appends what the report pipe holds now (it is non-blocking).
void read_reports(int fd, std::string& report_bytes) {
  char buffer[512];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) report_bytes.append(buffer, static_cast<size_t>(n));
}

// The program's pid from the init's reports, when it is a host pid (no PID namespace).
pid_t program_pid_of(const std::string& report_bytes, int clone_flags) {
  if (clone_flags & CLONE_NEWPID) return 0;
  for (size_t i = 0; i + sizeof(ChildReport) <= report_bytes.size(); i += sizeof(ChildReport)) {
    ChildReport r;
    std::memcpy(&r, report_bytes.data() + i, sizeof r);
    if (r.kind == ChildReport::kProgramPid) return r.value;
  }
  return 0;
}

}  // namespace

Supervision supervise(ChildPlan& plan, const SupervisionInput& input) {
  Supervision out;
  const auto start = Clock::now();
  SigpipeBlock sigpipe_block;
  Fd in_r, in_w, out_r, out_w, err_r, err_w, rep_r, rep_w, go_r, go_w;
  Stacks stacks;
  if (!make_pipe(in_r, in_w) || !make_pipe(out_r, out_w) || !make_pipe(err_r, err_w) ||
      !make_pipe(rep_r, rep_w) || !make_pipe(go_r, go_w) || !stacks.ok()) {
    out.parent_failure = std::string("creating pipes or stacks: ") + std::strerror(errno);
    return out;
  }
  if (input.program_host_uid >= 0) {
    // Reopening a pipe through /proc/self/fd (/dev/stdin) checks its owner.
    for (int fd : {in_r.get(), out_r.get(), err_r.get()})
      if (fchown(fd, input.program_host_uid, input.program_host_uid) != 0) {
        out.parent_failure = std::string("giving the pipes to the program's uid: ") + std::strerror(errno);
        return out;
      }
  }
  plan.stdin_fd = in_r.get();
  plan.stdout_fd = out_w.get();
  plan.stderr_fd = err_w.get();
  plan.report_fd = rep_w.get();
  plan.go_fd = go_r.get();
  plan.program_stack = stacks.program_top();

  // No signal handler of aha's may run in the child before it resets them.
  sigset_t all, during;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &during);
  int pidfd_raw = -1;
  pid_t pid = clone(sandbox_init_main, stacks.init_top(),
                    input.clone_flags | CLONE_PIDFD | SIGCHLD, &plan, &pidfd_raw);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &during, nullptr);
  if (pid < 0) {
    out.parent_failure = std::string("clone: ") + std::strerror(clone_errno);
    return out;
  }
  Fd pidfd(pidfd_raw);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  rep_w.reset();
  go_r.reset();

  // Stopping: first ask the init (a byte on the go pipe) to kill and reap the program's
  // processes itself, so that their CPU time is counted; if it has not exited kStopGrace
  // later, kill it, which in a PID namespace kills everything in it.
  bool stop_requested = false, killed = false;
  pid_t program_host_pid = 0;  // known without a PID namespace only
  auto stop_at = Clock::time_point::max();
  auto request_stop = [&] {
    if (stop_requested) return;
    stop_requested = true;
    stop_at = Clock::now() + kStopGrace;
    char stop = 2;
    if (!go_w.open() || write(go_w.get(), &stop, 1) != 1) stop_at = Clock::now();
  };
  // The reports are read when needed rather than polled: one wake-up less per run.
  std::string report_bytes;
  fcntl(rep_r.get(), F_SETFL, O_NONBLOCK);
  auto kill_all = [&] {
    // The init is not reaped before the loop ends, so its pid cannot have been reused.
    kill(pid, SIGKILL);
    read_reports(rep_r.get(), report_bytes);
    program_host_pid = program_pid_of(report_bytes, input.clone_flags);
    if (program_host_pid > 0) kill(-program_host_pid, SIGKILL);
    killed = true;
  };

  if (input.clone_flags & CLONE_NEWUSER) {
    std::string error = write_id_maps(pid, input.root);
    if (!error.empty()) {
      out.parent_failure = "user namespace id maps: " + error;
      out.user_namespace_failed = true;
      stop_requested = true;
      kill_all();
    }
  }
  if (!killed) {
    char go = 1;
    if (write(go_w.get(), &go, 1) != 1) {
      stop_requested = true;
      kill_all();
    }
  }

  if (input.stdin_data.empty()) in_w.reset();
  else fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  size_t stdin_done = 0;
  bool init_running = true;
  auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(input.wall_seconds));
  auto drain_deadline = Clock::time_point::max();
  while (init_running || out_r.open() || err_r.open()) {
    auto now = Clock::now();
    if (!stop_requested && now >= deadline) {
      out.stop = Supervision::Stop::wall_timeout;
      request_stop();
    }
    if (init_running && !killed && now >= stop_at) kill_all();
    if (!init_running && drain_deadline == Clock::time_point::max()) drain_deadline = now + kDrainGrace;
    if (!init_running && now >= drain_deadline) {
      out.stray_output_holder = out_r.open() || err_r.open();
      break;
    }
    // The next instant something is due; once the init was killed, only its exit (pidfd)
    // and the pipes remain to wait for.
    auto until = drain_deadline;
    if (!stop_requested) until = std::min(until, deadline);
    else if (!killed) until = std::min(until, stop_at);
    const int timeout_ms = static_cast<int>(std::clamp<int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1, 0, 1000));

    pollfd fds[4];
    int n = 0;
    auto add = [&](Fd& fd, short events) -> pollfd* {
      if (!fd.open()) return nullptr;
      fds[n] = {fd.get(), events, 0};
      return &fds[n++];
    };
    pollfd* p_out = add(out_r, POLLIN);
    pollfd* p_err = add(err_r, POLLIN);
    pollfd* p_in = add(in_w, POLLOUT);
    pollfd* p_pid = init_running ? add(pidfd, POLLIN) : nullptr;
    if (poll(fds, n, timeout_ms) < 0 && errno != EINTR) break;

    if (p_in && p_in->revents) {
      ssize_t w = write(in_w.get(), input.stdin_data.data() + stdin_done,
                        std::min<size_t>(input.stdin_data.size() - stdin_done, 65536));
      if (w > 0) stdin_done += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || stdin_done == input.stdin_data.size())
        in_w.reset();  // done, or the program closed its end (EPIPE)
    }
    for (auto [p, fd, text, truncated] :
         {std::tuple{p_out, &out_r, &out.stdout_text, &out.stdout_truncated},
          std::tuple{p_err, &err_r, &out.stderr_text, &out.stderr_truncated}}) {
      if (!p || !p->revents) continue;
      bool overflow = false;
      if (!read_capped(fd->get(), *text, input.max_output_bytes, overflow)) fd->reset();
      if (overflow && !*truncated) {
        *truncated = true;
        if (out.stop == Supervision::Stop::none) out.stop = Supervision::Stop::output_limit;
        request_stop();
      }
    }
    if (p_pid && p_pid->revents) {
      // The init has exited (a zombie until reaped below); without a PID namespace, stray
      // processes of the program's group may remain.
      init_running = false;
      read_reports(rep_r.get(), report_bytes);  // all written: the init has exited
      program_host_pid = program_pid_of(report_bytes, input.clone_flags);
      if (program_host_pid > 0) kill(-program_host_pid, SIGKILL);
    }
  }
  if (init_running) kill_all();
  in_w.reset();

  rusage usage{};
  int status = 0;
  while (wait4(pid, &status, __WALL, &usage) < 0 && errno == EINTR) {
  }
  read_reports(rep_r.get(), report_bytes);
  out.init_status = status;
  out.cpu_seconds = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  for (size_t i = 0; i + sizeof(ChildReport) <= report_bytes.size(); i += sizeof(ChildReport)) {
    ChildReport r;
    std::memcpy(&r, report_bytes.data() + i, sizeof r);
    out.reports.push_back(r);
    if (r.kind == ChildReport::kProgramStatus) {
      out.have_program_status = true;
      out.program_status = r.value;
    }
  }
  out.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

}  // namespace aha::sandbox


// Runs in the cloned children only: every call below is a system call or an
// async-signal-safe C library wrapper (see child.h for why).
#include "sandbox/child.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace aha::sandbox {
namespace {

// The children's fixed descriptors: 0-2 the program's stdio, then these two.
constexpr int kReportFd = 3;
constexpr int kGoFd = 4;

void report(int32_t kind, int32_t stage, int32_t value, int32_t step = -1) {
  ChildReport r{kind, stage, value, step};
  ssize_t ignored = write(kReportFd, &r, sizeof r);
  (void)ignored;
}

[[noreturn]] void fail(int32_t stage, int32_t step = -1) {
  report(ChildReport::kFatal, stage, errno, step);
  _exit(127);
}

void reset_signals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // KILL/STOP: EINVAL
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Moves the five pipe ends to 0-4 and closes every other descriptor inherited from the
// parent (other threads' pipes among them, which would otherwise stay open here).
void arrange_fds(const ChildPlan& plan) {
  const int from[5] = {plan.stdin_fd, plan.stdout_fd, plan.stderr_fd, plan.report_fd, plan.go_fd};
  int moved[5];
  for (int i = 0; i < 5; ++i) {
    moved[i] = fcntl(from[i], F_DUPFD_CLOEXEC, 5);
    if (moved[i] < 0) _exit(126);  // nothing to report through yet
  }
  for (int i = 0; i < 5; ++i) {
    if (dup3(moved[i], i, i >= 3 ? O_CLOEXEC : 0) < 0) _exit(126);
  }
  if (syscall(SYS_close_range, 5u, ~0u, 0u) < 0) {
    for (int fd = 5; fd < 4096; ++fd) close(fd);
  }
}

int bind_mount(const MountStep& step, bool file) {
  if (file) {
    int fd = open(step.target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    close(fd);
  }
  if (mount(step.source.c_str(), step.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) return -1;
  return mount(nullptr, step.target.c_str(), nullptr, MS_REMOUNT | MS_BIND | step.flags, nullptr);
}

int write_file(const MountStep& step) {
  int fd = open(step.target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  const char* data = step.source.data();
  size_t left = step.source.size();
  while (left > 0) {
    ssize_t n = write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return -1;
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  return close(fd);
}

int pivot(const MountStep& step) {
  if (syscall(SYS_pivot_root, step.source.c_str(), step.target.c_str()) < 0) return -1;
  if (chdir("/") < 0) return -1;
  const char* old_root = step.target.c_str() + step.source.size();  // the same path, now under /
  if (umount2(old_root, MNT_DETACH) < 0) return -1;
  return rmdir(old_root);
}

void build_file_system(const ChildPlan& plan) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) fail(kStageMount);
  for (size_t i = 0; i < plan.mounts.size(); ++i) {
    const MountStep& step = plan.mounts[i];
    int rc = 0;
    switch (step.kind) {
      case MountStep::kMakeDir: rc = mkdir(step.target.c_str(), 0755); break;
      case MountStep::kTmpfs:
        rc = mount("tmpfs", step.target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, step.source.c_str());
        break;
      case MountStep::kBind: rc = bind_mount(step, false); break;
      case MountStep::kBindFile: rc = bind_mount(step, true); break;
      case MountStep::kSymlink: rc = symlink(step.source.c_str(), step.target.c_str()); break;
      case MountStep::kWriteFile:
        if (write_file(step) < 0) fail(kStageFiles, static_cast<int32_t>(i));
        break;
      case MountStep::kPivotRoot: rc = pivot(step); break;
      case MountStep::kProc:
        // hidepid: the program sees only its own uid's processes, not the init (a copy of aha).
        if (mount("proc", step.target.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") < 0)
          report(ChildReport::kWarning, kStageProc, errno, static_cast<int32_t>(i));
        break;
      case MountStep::kRemountRootReadOnly:
        rc = mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr);
        break;
    }
    if (rc < 0) fail(kStageMount, static_cast<int32_t>(i));
  }
}

// The program process: shares init's memory (vfork-style) until exec.
int program_main(void* arg) {
  const ChildPlan& plan = *static_cast<const ChildPlan*>(arg);
  // Its own process group, which the init (or the parent, without a PID namespace) kills
  // at the end; seccomp then keeps every descendant in it.
  if (setpgid(0, 0) < 0) fail(kStageSession);
  if (plan.change_ids) {
    // Raw system calls: the C library's wrappers would try to signal threads that exist
    // only in the parent.
    if (syscall(SYS_setgroups, 0, nullptr) < 0 && errno != EPERM) fail(kStageIds);
    if (syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) < 0) fail(kStageIds);
    if (syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) < 0) fail(kStageIds);
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail(kStageSpawn);
  if (chdir(plan.workdir.c_str()) < 0) fail(kStageWorkdir);
  for (const auto& [resource, limit] : plan.limits) {
    if (setrlimit(static_cast<__rlimit_resource>(resource), &limit) < 0) fail(kStageLimits);
  }
  if (plan.pin_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(plan.pin_cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) fail(kStageAffinity);
  }
  reset_signals();
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(kStageNoNewPrivs);
  if (plan.seccomp.len > 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &plan.seccomp) < 0)
    fail(kStageSeccomp);
  execve(plan.exec_path.c_str(), plan.argv.data(), plan.envp.data());
  fail(kStageExec);
}

}  // namespace

const char* stage_name(int32_t stage) {
  switch (stage) {
    case kStageFds: return "arranging descriptors";
    case kStageWaitParent: return "waiting for the parent's id maps";
    case kStageSession: return "setsid";
    case kStageMount: return "building the file-system view";
    case kStageFiles: return "writing the program's files into /tmp";
    case kStageProc: return "mounting /proc";
    case kStageHostname: return "sethostname";
    case kStageSpawn: return "starting the program process";
    case kStageIds: return "switching to the unprivileged uid/gid";
    case kStageWorkdir: return "entering the temporary directory";
    case kStageLimits: return "setting rlimits";
    case kStageAffinity: return "pinning to the requested CPU";
    case kStageNoNewPrivs: return "setting no_new_privs";
    case kStageSeccomp: return "loading the seccomp filter";
    case kStageExec: return "executing the interpreter";
    case kStageProgram: return "program";
  }
  return "unknown stage";
}

int sandbox_init_main(void* arg) {
  const ChildPlan& plan = *static_cast<const ChildPlan*>(arg);
  reset_signals();
  arrange_fds(plan);
  // Dies with the thread that started it (the parent), so no sandbox outlives aha.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  char go = 0;
  if (read(kGoFd, &go, 1) != 1) _exit(126);  // the parent gave up (it knows why)
  if (setsid() < 0) fail(kStageSession);
  if (plan.mount_namespace) build_file_system(plan);
  if (plan.uts_namespace && sethostname("sandbox", 7) < 0) fail(kStageHostname);

  int pidfd = -1;
  pid_t program = clone(program_main, plan.program_stack,
                        CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD,
                        const_cast<ChildPlan*>(&plan), &pidfd);
  if (program < 0) fail(kStageSpawn);
  report(ChildReport::kProgramPid, kStageProgram, program);
  // Only the program's processes may hold the pipes now, so that the parent sees EOF and
  // EPIPE when they are gone.
  close(0);
  close(1);
  close(2);

  // Kills what is left: all of the PID namespace but this init, else the program's group.
  auto kill_rest = [&] { plan.pid_namespace ? kill(-1, SIGKILL) : kill(-program, SIGKILL); };
  bool program_done = false, stopping = false;
  int program_status = 0;
  while (!program_done) {
    // The timeout reaps orphans that the PID namespace hands to this init meanwhile.
    pollfd fds[2] = {{pidfd, POLLIN, 0}, {kGoFd, POLLIN, 0}};
    poll(fds, stopping ? 1 : 2, 200);
    if (!stopping && fds[1].revents) {
      stopping = true;
      kill_rest();
    }
    int status = 0;
    pid_t done;
    while ((done = waitpid(-1, &status, WNOHANG | __WALL)) > 0) {
      if (done == program) {
        program_done = true;
        program_status = status;
      }
    }
    if (done < 0 && errno == ECHILD) break;  // cannot happen before the program is reaped
  }
  kill_rest();
  int status = 0;
  while (waitpid(-1, &status, __WALL) > 0 || errno == EINTR) {
  }
  if (program_done) report(ChildReport::kProgramStatus, kStageProgram, program_status);
  _exit(0);
}

}  // namespace aha::sandbox

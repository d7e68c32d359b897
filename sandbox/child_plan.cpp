#include "sandbox/child_plan.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <utility>

#include "sandbox/interpreter.h"
#include "sandbox/seccomp_filter.h"

namespace aha::sandbox {
namespace {

// The staging point of the new root: a private tmpfs over the host's /tmp, seen only by the
// sandbox's mount namespace.
const std::string kNewRoot = "/tmp";

// Keeps the flags the kernel locks on a bind mount made inside a user namespace (nosuid,
// nodev, noexec, atime), which a remount must repeat, and adds `extra`.
unsigned long remount_flags(const std::string& source, unsigned long extra) {
  struct statvfs st;
  unsigned long flags = extra | MS_NOSUID;
  if (statvfs(source.c_str(), &st) == 0) {
    if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  }
  return flags;
}

void make_dirs(std::vector<MountStep>& steps, const std::string& path) {
  std::string partial = kNewRoot;
  std::filesystem::path relative = std::filesystem::path(path).relative_path();
  for (const auto& part : relative) {
    partial.append("/").append(part.string());
    bool known = false;
    for (const auto& s : steps) known |= (s.kind == MountStep::kMakeDir && s.target == partial);
    if (!known) steps.push_back({MountStep::kMakeDir, "", partial});
  }
}

void add_view(std::vector<MountStep>& steps, const SandboxRequest& request,
              const std::string& program, const std::string& prefix, const PlanChoice& choice) {
  using K = MountStep::Kind;
  steps.push_back({K::kTmpfs, "size=4m,mode=0755", kNewRoot});
  make_dirs(steps, "/usr");
  steps.push_back({K::kBind, "/usr", kNewRoot + "/usr", remount_flags("/usr", MS_RDONLY | MS_NODEV)});
  for (const char* top : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    const std::string host = std::string("/") + top;
    struct stat st;
    if (lstat(host.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      steps.push_back({K::kSymlink, std::filesystem::read_symlink(host).string(), kNewRoot + host});
    } else if (S_ISDIR(st.st_mode)) {
      make_dirs(steps, host);
      steps.push_back({K::kBind, host, kNewRoot + host, remount_flags(host, MS_RDONLY | MS_NODEV)});
    }
  }
  make_dirs(steps, "/etc");
  if (access("/etc/ld.so.cache", R_OK) == 0)
    steps.push_back({K::kBindFile, "/etc/ld.so.cache", kNewRoot + "/etc/ld.so.cache",
                     remount_flags("/etc/ld.so.cache", MS_RDONLY | MS_NODEV)});
  if (!prefix.empty()) {
    make_dirs(steps, prefix);
    steps.push_back({K::kBind, prefix, kNewRoot + prefix, remount_flags(prefix, MS_RDONLY | MS_NODEV)});
  }
  make_dirs(steps, "/dev");
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"})
    steps.push_back({K::kBindFile, dev, kNewRoot + dev, remount_flags(dev, MS_NOEXEC)});
  // /dev/shm for POSIX semaphores (multiprocessing), and the usual links into /proc.
  make_dirs(steps, "/dev/shm");
  steps.push_back({K::kTmpfs, "size=" + std::to_string(request.limits.tmp_bytes) + ",mode=1777",
                   kNewRoot + "/dev/shm"});
  for (const auto& [link, target] : {std::pair{"fd", "/proc/self/fd"}, std::pair{"stdin", "/proc/self/fd/0"},
                                     std::pair{"stdout", "/proc/self/fd/1"}, std::pair{"stderr", "/proc/self/fd/2"}})
    steps.push_back({K::kSymlink, target, kNewRoot + "/dev/" + link});
  make_dirs(steps, "/proc");
  make_dirs(steps, "/tmp");
  const unsigned id = program_id(choice);
  steps.push_back({K::kTmpfs,
                   "size=" + std::to_string(request.limits.tmp_bytes) + ",mode=0700,uid=" +
                       std::to_string(id) + ",gid=" + std::to_string(id),
                   kNewRoot + "/tmp"});
  steps.push_back({K::kWriteFile, program, kNewRoot + "/tmp/" + request.program_name});
  for (const auto& [name, content] : request.files)
    steps.push_back({K::kWriteFile, content, kNewRoot + "/tmp/" + name});
  // Before the pivot: inside a user namespace the kernel mounts a new proc only while a
  // fully visible one (the host's) is in the mount namespace.
  if (choice.clone_flags & CLONE_NEWPID) steps.push_back({K::kProc, "", kNewRoot + "/proc"});
  make_dirs(steps, "/.old_root");
  steps.push_back({K::kPivotRoot, kNewRoot, kNewRoot + "/.old_root"});
  steps.push_back({K::kRemountRootReadOnly, "", ""});
}

rlimit limit(int64_t soft, int64_t hard) {
  return rlimit{static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
}

}  // namespace

unsigned program_id(const PlanChoice& choice) {
  return (choice.clone_flags & CLONE_NEWUSER) ? kSandboxId : (choice.root ? kHostNobody : geteuid());
}

ChildPlan build_child_plan(const SandboxRequest& request, const std::string& program,
                           const PlanChoice& choice) {
  ChildPlan plan;
  const std::vector<std::string>& interpreter =
      request.interpreter.empty() ? default_interpreter() : request.interpreter;
  plan.exec_path = resolve_executable(interpreter[0]);
  plan.mount_namespace = (choice.clone_flags & CLONE_NEWNS) != 0;
  plan.pid_namespace = (choice.clone_flags & CLONE_NEWPID) != 0;
  plan.uts_namespace = (choice.clone_flags & CLONE_NEWUTS) != 0;
  plan.workdir = plan.mount_namespace ? "/tmp" : choice.host_workdir;
  if (plan.mount_namespace) add_view(plan.mounts, request, program, interpreter_prefix(plan.exec_path), choice);

  // Root switches to the unprivileged ids; anyone else loses all capabilities at exec.
  plan.change_ids = choice.root;
  plan.uid = plan.gid = program_id(choice);

  const SandboxLimits& l = request.limits;
  const int64_t cpu = static_cast<int64_t>(std::ceil(l.cpu_seconds));
  plan.limits = {
      {RLIMIT_CPU, limit(cpu, cpu + 1)},  // SIGXCPU at the soft limit, SIGKILL a second later
      {RLIMIT_AS, limit(l.memory_bytes, l.memory_bytes)},
      {RLIMIT_NPROC, limit(l.max_processes, l.max_processes)},
      {RLIMIT_FSIZE, limit(l.max_file_bytes, l.max_file_bytes)},
      {RLIMIT_NOFILE, limit(l.max_open_files, l.max_open_files)},
      {RLIMIT_CORE, limit(0, 0)},
  };
  plan.pin_cpu = request.pin_cpu;
  if (choice.seccomp) {
    const auto& filter = seccomp_filter_program();
    plan.seccomp.len = static_cast<unsigned short>(filter.size());
    plan.seccomp.filter = const_cast<sock_filter*>(filter.data());
  }

  plan.argv_storage.push_back(plan.exec_path);
  plan.argv_storage.insert(plan.argv_storage.end(), interpreter.begin() + 1, interpreter.end());
  plan.argv_storage.push_back(plan.workdir + "/" + request.program_name);
  plan.argv_storage.insert(plan.argv_storage.end(), request.args.begin(), request.args.end());
  plan.env_storage = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + plan.workdir,
                      "TMPDIR=" + plan.workdir,           "LANG=C.UTF-8",
                      "PYTHONDONTWRITEBYTECODE=1",        "PYTHONNOUSERSITE=1"};
  for (auto& s : plan.argv_storage) plan.argv.push_back(s.data());
  plan.argv.push_back(nullptr);
  for (auto& s : plan.env_storage) plan.envp.push_back(s.data());
  plan.envp.push_back(nullptr);
  return plan;
}

}  // namespace aha::sandbox

#include "sandbox/seccomp_filter.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include "core/error.h"

namespace aha::sandbox {
namespace {

const char* const kRefused[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount", "umount2",
    "pivot_root", "chroot", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "open_tree", "mount_setattr", "bpf", "perf_event_open", "kexec_load", "kexec_file_load",
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "create_module", "unshare", "setns", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "open_by_handle_at", "name_to_handle_at", "kcmp", "pidfd_getfd",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
    "setdomainname", "reboot", "swapon", "swapoff", "quotactl", "quotactl_fd", "syslog",
    "acct", "iopl", "ioperm", "lookup_dcookie", "vhangup", "fanotify_init", "uselib",
    "nfsservctl", "setsid", "setpgid",
};

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNS,
                                        CLONE_NEWNET,  CLONE_NEWIPC, CLONE_NEWUTS,
                                        CLONE_NEWCGROUP, CLONE_NEWTIME};

void check(int rc, const std::string& what) {
  if (rc < 0) throw Error("sandbox seccomp filter: " + what + " failed: " + std::strerror(-rc));
}

std::vector<sock_filter> build() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) throw Error("sandbox seccomp filter: seccomp_init failed");
  struct Release {
    scmp_filter_ctx ctx;
    ~Release() { seccomp_release(ctx); }
  } release{ctx};
  // The child sets no_new_privs itself, before loading; the export need not.
  check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set");
  for (const char* name : kRefused) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not a system call on this architecture
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0), std::string("rule ") + name);
  }
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "rule clone3");
  for (uint64_t flag : kNamespaceFlags)
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
          "rule clone");
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                         SCMP_A0(SCMP_CMP_NE, AF_UNIX)),
        "rule socket");
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socketpair), 1,
                         SCMP_A0(SCMP_CMP_NE, AF_UNIX)),
        "rule socketpair");
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI)),
        "rule ioctl");

  int fd = memfd_create("aha-seccomp", MFD_CLOEXEC);
  if (fd < 0) throw Error(std::string("sandbox seccomp filter: memfd_create: ") + std::strerror(errno));
  struct Close {
    int fd;
    ~Close() { close(fd); }
  } close_fd{fd};
  check(seccomp_export_bpf(ctx, fd), "seccomp_export_bpf");
  off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0)
    throw Error("sandbox seccomp filter: exported program has an odd size");
  std::vector<sock_filter> program(size / sizeof(sock_filter));
  if (pread(fd, program.data(), size, 0) != size)
    throw Error("sandbox seccomp filter: cannot read the exported program back");
  return program;
}

}  // namespace

const std::vector<sock_filter>& seccomp_filter_program() {
  static std::once_flag once;
  static std::vector<sock_filter> program;
  std::call_once(once, [] { program = build(); });
  return program;
}

}  // namespace aha::sandbox

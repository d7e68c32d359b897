// The sandbox's seccomp-bpf filter, built once with libseccomp and kept as raw BPF so that a
// freshly cloned child can install it with one prctl() (async-signal-safe, no allocation).
//
// Policy: everything is allowed except what lets a program reach beyond its sandbox, which
// fails with EPERM (EACCES for sockets): ptrace and process_vm_*, mounts and pivot_root,
// bpf, perf_event_open, kexec, keyctl/add_key/request_key, kernel modules, new namespaces
// (unshare, setns, clone with CLONE_NEW*), userfaultfd, io_uring, file handles, kcmp,
// pidfd_getfd, clock and host-name changes, reboot, swap, quotas, syslog, TIOCSTI,
// setsid/setpgid (no process may leave the sandbox's process group), and sockets of any
// family but AF_UNIX. clone3 fails with ENOSYS so that the C library falls back to clone,
// whose flags the filter can see. System calls of another architecture kill the process.
#pragma once
#include <linux/filter.h>

#include <vector>

namespace aha::sandbox {

// The filter program; throws aha::Error if libseccomp cannot build it.
const std::vector<sock_filter>& seccomp_filter_program();

}  // namespace aha::sandbox

// Builds the ChildPlan for one run: the file-system view, ids, rlimits, argv and environment.
//
// The view (with a mount namespace): a small read-only tmpfs root holding /usr and the host's
// top-level links or directories into it (/bin, /lib, /lib64, ...), /etc/ld.so.cache, the
// interpreter's prefix when it is outside /usr (e.g. /root/.pyenv/versions/3.11.7), /dev/null,
// /dev/zero, /dev/random, /dev/urandom, /dev/fd and /dev/std{in,out,err} links, a private
// /dev/shm, a fresh /proc (PID namespace), and /tmp: a private tmpfs of limits.tmp_bytes
// owned by the program's uid, holding the program and its files.
// Everything else on the host (/root, /home, /work, /etc/passwd, ...) is absent.
// Without a mount namespace the program sees the host's files with the permissions of an
// unprivileged uid, and works in a host directory made for the run (host_workdir).
#pragma once
#include <string>

#include "sandbox/child.h"
#include "sandbox/sandbox.h"

namespace aha::sandbox {

// The uid and gid the program runs as inside a user namespace, and the host's ids they map to.
constexpr unsigned kSandboxId = 1000;
constexpr unsigned kHostNobody = 65534;

struct PlanChoice {
  int clone_flags = 0;     // CLONE_NEW* in use
  bool seccomp = false;
  bool root = false;       // the parent runs as uid 0
  std::string host_workdir;  // without a mount namespace: the run's directory on the host
};

// `program` is the program text; the request is already validated.
ChildPlan build_child_plan(const SandboxRequest& request, const std::string& program,
                           const PlanChoice& choice);

// The ids the program gets, as seen from inside its user namespace (if any).
unsigned program_id(const PlanChoice& choice);

}  // namespace aha::sandbox

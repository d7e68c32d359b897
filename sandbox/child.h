// What the sandbox's two child processes do between clone() and exec(), prepared in full by
// the parent (ChildPlan) so that the children only make system calls: no allocation and no
// locks, since clone() copies the parent's other threads' locks in whatever state they were.
//
// The parent clones the sandbox's init (pid 1 of the new PID namespace when there is one),
// which builds the program's file-system view, then clones the program with a vfork-style
// clone on a stack the parent allocated. The program process leads its own process group,
// switches ids, sets rlimits, no_new_privs and seccomp, and execs. The init then reaps every
// process that ends up its child; when the program ends, or the parent asks it to stop (a
// byte or end-of-file on the go pipe), it kills the rest (every process of the PID
// namespace, else the program's process group), reaps them, so that their CPU time is
// counted, reports the program's wait status and exits. Both children report to the parent
// through a close-on-exec pipe (ChildReport records).
#pragma once
#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace aha::sandbox {

// One step of building the program's root file system (mount namespace only).
struct MountStep {
  enum Kind {
    kMakeDir,     // mkdir target
    kTmpfs,       // mount a tmpfs at target with options `source`
    kBind,        // bind-mount directory source at target, remounted with `flags`
    kBindFile,    // the same for a file: creates an empty target first
    kSymlink,     // symlink target -> source
    kWriteFile,   // write `source` (the content) to a new file target, mode 0644
    kPivotRoot,   // make directory source the root, the old one moved to target and dropped
    kProc,        // mount a fresh proc at target (failure is reported, not fatal)
    kRemountRootReadOnly,
  };
  Kind kind;
  std::string source;
  std::string target;
  unsigned long flags = 0;  // kBind/kBindFile: MS_* flags of the remount (MS_RDONLY, ...)
};

// Reports from the children to the parent; fixed-size so that each write is atomic.
struct ChildReport {
  enum Kind : int32_t { kFatal = 1, kWarning = 2, kProgramStatus = 3, kProgramPid = 4 };
  int32_t kind;
  int32_t stage;  // ChildStage
  int32_t value;  // errno; the program's wait status (kProgramStatus) or pid (kProgramPid)
  int32_t step;   // index into ChildPlan::mounts, or -1
};

enum ChildStage : int32_t {
  kStageFds = 1,
  kStageWaitParent,
  kStageSession,
  kStageMount,
  kStageFiles,
  kStageProc,
  kStageHostname,
  kStageSpawn,
  kStageIds,
  kStageWorkdir,
  kStageLimits,
  kStageAffinity,
  kStageNoNewPrivs,
  kStageSeccomp,
  kStageExec,
  kStageProgram,
};
const char* stage_name(int32_t stage);

struct ChildPlan {
  // The children's ends of the pipes, as numbered in the parent.
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1, report_fd = -1, go_fd = -1;
  bool mount_namespace = false;
  bool pid_namespace = false;
  bool uts_namespace = false;
  bool change_ids = false;  // setgroups({}), setresgid(gid), setresuid(uid) before exec
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<MountStep> mounts;
  std::string workdir;
  std::vector<std::pair<int, rlimit>> limits;
  int pin_cpu = -1;  // sched_setaffinity to this CPU alone; -1: leave
  sock_fprog seccomp{};  // len 0: no filter
  std::string exec_path;
  std::vector<std::string> argv_storage, env_storage;
  std::vector<char*> argv, envp;  // null-terminated views of the storage
  char* program_stack = nullptr;  // top of the program process's clone stack
};

// The clone() entry of the sandbox's init; `plan` is a ChildPlan*.
int sandbox_init_main(void* plan);

}  // namespace aha::sandbox

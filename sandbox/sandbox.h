// Running one untrusted program (python3 by default) in a sandbox, and many of them at once.
//
// Contract of run_sandboxed():
// - The program text (or a copy of a host file) is written into a private, writable temporary
//   directory that is the program's working directory, $HOME and $TMPDIR; it is removed
//   afterwards. The program is run as `interpreter... <program> args...`, with `stdin` fed to
//   it (a program that never reads it does not block the sandbox) and stdout/stderr captured
//   up to limits.max_output_bytes each (more ends the run with status output_limit).
// - Isolation layers, each used where the kernel allows and listed in SandboxResult::layers
//   when active (a missing one is listed in SandboxResult::missing_layers with the reason,
//   never silently dropped):
//     "user_namespace"     the program's uid/gid are unprivileged (host nobody);
//     "pid_namespace"      the program sees only its own processes; ending the sandbox's
//                          init kills every one of them;
//     "mount_namespace"    a read-only view holding only /usr (and /bin, /lib... links), the
//                          interpreter's prefix, /etc/ld.so.cache, /dev/{null,zero,random,
//                          urandom,fd,stdin,stdout,stderr}, a private /dev/shm, a fresh /proc,
//                          and a private tmpfs at /tmp (the temp dir); the host's other files
//                          are absent (sandbox/child_plan.h);
//     "network_namespace"  no network interface but a downed loopback;
//     "ipc_namespace", "uts_namespace";
//     "unprivileged_uid"   the program runs with no capabilities as a non-root uid;
//     "seccomp"            a seccomp-bpf filter refuses (EPERM) ptrace, mount, bpf,
//                          perf_event_open, kexec, keyctl, namespaces, sockets other than
//                          AF_UNIX, setsid/setpgid (so that no process leaves the group)...;
//     "rlimits"            CPU, address space, processes, file size, open files, no core
//                          (per process: memory_bytes x max_processes bounds a tree's total).
// - The program runs in its own process group; when it ends (or is stopped by a limit) every
//   process it started is killed and reaped before run_sandboxed() returns.
// - Outcome (SandboxStatus), always with wall and CPU time:
//     ok              exit code 0;
//     runtime_error   non-zero exit code (exit_code holds it);
//     timeout         wall-clock limit reached, or CPU limit (SIGXCPU);
//     memory_limit    the program failed (non-zero exit or a signal) because the memory limit
//                     refused it memory (RLIMIT_AS makes allocations fail rather than the
//                     kernel OOM-killing): its stderr reports an allocation failure (a Python
//                     "MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of
//                     memory", the dynamic loader's "failed to map segment"); or exec itself
//                     was refused memory; or the interpreter cannot start within the limit at
//                     all, which is how a limit below the interpreter's own needs shows up (it
//                     dies in the loader or in its runtime's set-up, before it can say why):
//                     after such a failure, an empty program is run under the same limits,
//                     and if it fails too (while it works under kMaxMemoryBytes) the limit is
//                     to blame. That check is cached per interpreter, so it costs one or two
//                     runs per process;
//     output_limit    stdout or stderr exceeded limits.max_output_bytes;
//     signal          killed by a signal the sandbox did not send (signal holds it);
//     sandbox_failure the sandbox itself could not run the program (message says why);
//                     never the program's fault.
// - Thread-safe: may be called from many threads at once. Does not change the process's
//   signal dispositions. The child does only async-signal-safe work between clone and exec.
#pragma once
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace aha::sandbox {

// The largest limits a request may set: more is a typo or an overflow, not a limit.
constexpr int64_t kMaxMemoryBytes = 1LL << 40;  // 1 TiB of address space
constexpr int64_t kMaxOutputBytes = 1LL << 30;  // 1 GiB per stream (it is held in memory)

struct SandboxLimits {
  double wall_seconds = 10.0;                 // wall-clock timeout of the whole run
  double cpu_seconds = 10.0;                  // RLIMIT_CPU per process (rounded up to 1 s)
  int64_t memory_bytes = 1024LL << 20;        // RLIMIT_AS per process
  // RLIMIT_NPROC: counted per uid in the sandbox's user namespace; without one, every
  // sandbox shares the host's nobody, and so this limit.
  int64_t max_processes = 64;
  int64_t max_file_bytes = 16LL << 20;        // RLIMIT_FSIZE: largest file it may write
  int64_t max_open_files = 64;                // RLIMIT_NOFILE
  int64_t max_output_bytes = 1LL << 20;       // cap on each of stdout and stderr
  int64_t tmp_bytes = 64LL << 20;             // size of the private /tmp (mount namespace)
};

// What may be turned off (all on by default); for diagnosis and for hosts without them.
struct IsolationOptions {
  bool namespaces = true;  // user, pid, mount, network, ipc, uts
  bool seccomp = true;
};

struct SandboxRequest {
  std::string program;       // program text, written to <tmp>/<program_name>
  std::string program_file;  // or a host file to copy there instead (when program is empty)
  std::string program_name = "main.py";
  // argv before the program's path. Empty: the default python3 (default_interpreter()).
  // The first word is looked up on PATH; its real location must be readable by nobody.
  std::vector<std::string> interpreter;
  std::vector<std::string> args;  // argv after the program's path
  std::string stdin_data;
  // Extra files written beside the program: (relative name without '/', content).
  std::vector<std::pair<std::string, std::string>> files;
  SandboxLimits limits;
  IsolationOptions isolation;
  // Runs the program and every process it starts on this CPU only (SandboxPool sets it, so
  // that a sandbox that forks cannot take other sandboxes' cores); -1: on any CPU.
  int pin_cpu = -1;
};

enum class SandboxStatus {
  ok,
  runtime_error,
  timeout,
  memory_limit,
  output_limit,
  signal,
  sandbox_failure,
};

const char* to_string(SandboxStatus status);  // "ok", "runtime_error", ...

struct SandboxResult {
  SandboxStatus status = SandboxStatus::sandbox_failure;
  int exit_code = -1;  // when the program exited, else -1
  int signal = 0;      // when it was killed by a signal (ours or not), else 0
  double wall_seconds = 0;
  // User + system time of the program and of every process of its tree (with a PID
  // namespace; without one, of the program and the children it waited for).
  double cpu_seconds = 0;
  std::string stdout_text;
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::vector<std::string> layers;          // active isolation layers (names above)
  std::vector<std::string> missing_layers;  // "name: why it is not active"
  std::string message;                      // what went wrong for sandbox_failure / limits

  // One-line JSON object with every field above (for `aha sandbox run` and logs).
  std::string to_json() const;
};

// Runs one program; never throws for the program's behaviour. Throws aha::Error only for a
// malformed request (no program, a file name with '/', a missing program_file, a limit of
// zero or above its maximum).
SandboxResult run_sandboxed(const SandboxRequest& request);

// The python3 used when SandboxRequest::interpreter is empty: the real executable behind
// `python3` on PATH (following pyenv-style shims by asking it for sys.executable), found once.
// Throws aha::Error when there is none.
const std::vector<std::string>& default_interpreter();

// Runs many requests concurrently, at most `concurrency` at a time (0: the number of CPUs
// this process may run on), each pinned to a CPU of its own (pin_cpu, unless the request
// set one; with more workers than CPUs they share round-robin), so that sandboxes do not
// oversubscribe the cores. Results come back in the order of submission. The destructor
// waits for submitted runs.
class SandboxPool {
 public:
  explicit SandboxPool(size_t concurrency = 0);
  ~SandboxPool();
  SandboxPool(const SandboxPool&) = delete;
  SandboxPool& operator=(const SandboxPool&) = delete;

  size_t concurrency() const;
  std::future<SandboxResult> submit(SandboxRequest request);
  std::vector<SandboxResult> run_all(std::vector<SandboxRequest> requests);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aha::sandbox

// `aha sandbox run FILE [ARG...] [--stdin F] [--timeout S] [--memory MB] [--output-limit MB]
//  [--interpreter WORD...] [--no-namespaces] [--no-seccomp]`: runs one program in the sandbox
// and prints its outcome as one JSON object (status, exit code, signal, wall and CPU time,
// stdout, stderr, active and missing isolation layers). Exits 0 whenever the sandbox itself
// worked, whatever the program did; 1 for a sandbox failure or bad arguments.
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "core/files.h"
#include "sandbox/sandbox.h"
#include "tools/cli.h"

namespace {

// --name MB as bytes: 1 .. max_bytes / 1 MiB, else an error naming the option and the range.
int64_t megabytes(const aha::cli::Args& args, const std::string& command, const std::string& name,
                  int64_t fallback_bytes, int64_t max_bytes) {
  const int64_t max_mb = max_bytes >> 20;
  const int64_t mb = args.get_int(name, fallback_bytes >> 20);
  aha::require(mb >= 1 && mb <= max_mb, "aha " + command + ": --" + name + " must be in 1.." +
                                            std::to_string(max_mb) + " (MB), got " + std::to_string(mb));
  return mb << 20;
}

int sandbox_run(const aha::cli::Args& args) {
  const std::string command = args.command();
  aha::sandbox::SandboxRequest request;
  request.program_file = args.positional(0, "FILE (the program to run)");
  aha::require(std::filesystem::is_regular_file(request.program_file),
               "FILE '" + request.program_file + "' is not a readable file");
  request.program_name = std::filesystem::path(request.program_file).filename().string();
  request.args.assign(args.positional().begin() + 1, args.positional().end());
  if (auto stdin_file = args.get("stdin")) request.stdin_data = aha::read_file(*stdin_file);

  constexpr double kMaxTimeout = 365.0 * 24 * 3600;  // what sandbox.h accepts
  const double timeout = args.get_double("timeout", request.limits.wall_seconds);
  aha::require(timeout > 0 && timeout <= kMaxTimeout,
               "aha " + command + ": --timeout must be in (0, " + std::to_string(static_cast<int64_t>(kMaxTimeout)) +
                   "] seconds, got " + args.get("timeout", ""));
  request.limits.wall_seconds = request.limits.cpu_seconds = timeout;
  // Megabytes are range-checked before they are scaled, so that no value wraps around.
  request.limits.memory_bytes =
      megabytes(args, command, "memory", request.limits.memory_bytes, aha::sandbox::kMaxMemoryBytes);
  request.limits.max_output_bytes =
      megabytes(args, command, "output-limit", request.limits.max_output_bytes, aha::sandbox::kMaxOutputBytes);
  request.interpreter = args.list("interpreter");
  request.isolation.namespaces = !args.flag("no-namespaces");
  request.isolation.seccomp = !args.flag("no-seccomp");

  const aha::sandbox::SandboxResult result = aha::sandbox::run_sandboxed(request);
  std::cout << result.to_json() << std::endl;
  if (result.status == aha::sandbox::SandboxStatus::sandbox_failure) {
    std::cerr << "aha " << command << ": the sandbox failed: " << result.message << "\n";
    return 1;
  }
  return 0;
}

const aha::cli::CommandRegistration kSandboxRun({
    "sandbox run",
    "run FILE (python3 by default) in the sandbox; prints the outcome as JSON "
    "[--stdin F] [--timeout S] [--memory MB (1..1048576)] [--output-limit MB (1..1024)] "
    "[--interpreter WORD...]",
    {.usage = "FILE [ARG...] [options]",
     .description = "Runs the program FILE with ARGs in the sandbox (namespaces, seccomp, rlimits, a timeout,\n"
                    "an output cap) and prints the outcome as JSON (status, exit code, stdout, stderr, times).",
     .options = {{"stdin", "FILE", "empty", "the program's standard input"},
                 {"timeout", "S", "10", "wall and CPU seconds"},
                 {"memory", "MB", "1024", "memory limit per process, 1..1048576"},
                 {"output-limit", "MB", "1", "cap on each of stdout and stderr, 1..1024"},
                 {"interpreter*", "WORD", "python3", "the command that runs FILE"},
                 {"no-namespaces!", "", "", "no user, PID, network or mount namespaces"},
                 {"no-seccomp!", "", "", "no seccomp filter"}},
     .max_positional = aha::cli::Args::kAnyPositional,
     .examples = {"aha sandbox run solution.py --stdin input.txt --timeout 5"}},
    sandbox_run,
});

}  // namespace

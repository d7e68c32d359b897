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

int sandbox_run(const std::vector<std::string>& words) {
  const std::string command = "sandbox run";
  aha::cli::Args args(words,
                      {"stdin", "timeout", "memory", "output-limit", "interpreter*", "no-namespaces!",
                       "no-seccomp!"},
                      command, aha::cli::Args::kAnyPositional);
  aha::sandbox::SandboxRequest request;
  request.program_file = args.positional(0, "FILE (the program to run)");
  aha::require(std::filesystem::is_regular_file(request.program_file),
               "FILE '" + request.program_file + "' is not a readable file");
  request.program_name = std::filesystem::path(request.program_file).filename().string();
  request.args.assign(args.positional().begin() + 1, args.positional().end());
  if (auto stdin_file = args.get("stdin")) request.stdin_data = aha::read_file(*stdin_file);

  const double timeout = args.get_double("timeout", request.limits.wall_seconds);
  aha::require(timeout > 0, "--timeout must be a positive number of seconds");
  request.limits.wall_seconds = request.limits.cpu_seconds = timeout;
  const int64_t memory_mb = args.get_int("memory", request.limits.memory_bytes >> 20);
  aha::require(memory_mb > 0, "--memory must be a positive number of MB");
  request.limits.memory_bytes = memory_mb << 20;
  const int64_t output_mb = args.get_int("output-limit", request.limits.max_output_bytes >> 20);
  aha::require(output_mb > 0, "--output-limit must be a positive number of MB");
  request.limits.max_output_bytes = output_mb << 20;
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
    "[--stdin F] [--timeout S] [--memory MB] [--output-limit MB] [--interpreter WORD...]",
    sandbox_run,
});

}  // namespace

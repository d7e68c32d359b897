// bench_sandbox [ROUNDS] [PER_ROUND]: executions per second of a trivial Python program
// (`pass`) in the sandbox with every layer on, against plain fork+exec of the same
// interpreter on the same file, measured side by side (interleaved rounds) in one run; first
// one at a time, then as many at once as there are usable CPUs (SandboxPool against as many
// fork+exec threads). Target: sandboxed >= 0.7x the plain rate. The CPU time per execution
// (this process and its children) is printed too: on a busy host the rates mostly measure
// scheduling delays, of which the sandbox has a few more per run (init, program, parent). Each figure is given for the
// interpreter as is and with -S (no site module): site's .pth files differ between machines
// and may read host files that the sandbox's view hides, which would favour the sandbox.
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/files.h"
#include "sandbox/sandbox.h"

namespace {

using Clock = std::chrono::steady_clock;
using aha::sandbox::SandboxRequest;
using aha::sandbox::SandboxStatus;

// Plain fork+exec of `python file`, waited for; argv and envp are built before forking.
bool plain_run(const std::vector<std::string>& interpreter, const std::string& file, const std::string& dir) {
  std::vector<std::string> words = interpreter;
  words.push_back(file);
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir,
                                  "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1", "PYTHONNOUSERSITE=1"};
  std::vector<char*> argv, envp;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(127);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// CPU seconds used so far by this process and its reaped children (the sandboxes' inits
// and programs, the plain runs): unlike the rates, independent of the host's load.
double cpu_used() {
  rusage self{}, children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(self.ru_utime) + s(self.ru_stime) + s(children.ru_utime) + s(children.ru_stime);
}

// Runs `one` `count` times on each of `threads` threads; returns executions per second.
template <typename F>
double rate(int threads, int count, F one) {
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  bool ok = true;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&] {
      for (int i = 0; i < count; ++i)
        if (!one()) ok = false;
    });
  for (auto& w : workers) w.join();
  if (!ok) {
    std::fprintf(stderr, "bench_sandbox: a run failed\n");
    std::exit(1);
  }
  return threads * count / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int per_round = argc > 2 ? std::atoi(argv[2]) : 20;
  cpu_set_t set;
  sched_getaffinity(0, sizeof set, &set);
  const int cpus = CPU_COUNT(&set);

  const std::string python = aha::sandbox::default_interpreter()[0];
  // The host's load matters: each run hands the CPU between several processes.
  std::string load = "?";
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    char buffer[64] = {};
    if (std::fgets(buffer, sizeof buffer, f)) load = std::string(buffer).substr(0, std::string(buffer).find(' '));
    std::fclose(f);
  }
  std::printf("bench_sandbox: %d usable CPUs, load average %s\n", cpus, load.c_str());
  const std::string dir = std::filesystem::temp_directory_path() / ("aha-bench-sandbox-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = dir + "/main.py";
  aha::write_file_atomic(file, "pass\n");
  for (const std::vector<std::string>& interpreter :
       {std::vector<std::string>{python}, std::vector<std::string>{python, "-S"}}) {
    SandboxRequest request;
    request.program = "pass\n";
    request.interpreter = interpreter;
    auto sandboxed = [&] { return aha::sandbox::run_sandboxed(request).status == SandboxStatus::ok; };
    auto plain = [&] { return plain_run(interpreter, file, dir); };
    const auto probe = aha::sandbox::run_sandboxed(request);
    std::string layers, command;
    for (const auto& l : probe.layers) layers += (layers.empty() ? "" : ",") + l;
    for (const auto& w : interpreter) command += w + " ";
    std::printf("bench_sandbox: %smain.py ('pass'); %d rounds x %d runs; layers: %s; missing: %zu\n",
                command.c_str(), rounds, per_round, layers.c_str(), probe.missing_layers.size());
    for (int threads : {1, cpus}) {
      double sandbox_total = 0, plain_total = 0, sandbox_cpu = 0, plain_cpu = 0;
      rate(threads, 2, plain);  // warm the page cache for both
      rate(threads, 2, sandboxed);
      for (int r = 0; r < rounds; ++r) {  // interleaved, so that drift hits both alike
        double c0 = cpu_used();
        plain_total += rate(threads, per_round, plain);
        double c1 = cpu_used();
        sandbox_total += rate(threads, per_round, sandboxed);
        double c2 = cpu_used();
        plain_cpu += c1 - c0;
        sandbox_cpu += c2 - c1;
      }
      const double sb = sandbox_total / rounds, p = plain_total / rounds;
      const double runs = static_cast<double>(rounds) * per_round * threads;
      std::printf("  sandboxed, every layer, %d at once: %.1f exec/s (ratio to plain fork+exec: %.2fx; target >= 0.7x)\n",
                  threads, sb, sb / p);
      std::printf("  plain fork+exec, %d at once: %.1f exec/s\n", threads, p);
      std::printf("  CPU per execution, %d at once: sandboxed %.2f ms, plain %.2f ms (ratio plain/sandboxed: %.2fx)\n",
                  threads, sandbox_cpu / runs * 1e3, plain_cpu / runs * 1e3, plain_cpu / sandbox_cpu);
    }
  }
  aha::remove_tree(dir);
  return 0;
}

// `aha dashboard`: serves the live web dashboard over the runs' SQLite stores (dashboard/).
//
//   aha dashboard [--runs DIR]... [--port P] [--host H] [--token T]
#include <iostream>

#include "core/error.h"
#include "dashboard/server.h"
#include "tools/cli.h"

namespace aha {
namespace {

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) words.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

int run_dashboard(const cli::Args& args) {
  dashboard::ServerOptions options;
  const auto dirs = args.list("runs");
  options.runs_dirs.assign(dirs.begin(), dirs.end());
  if (options.runs_dirs.empty()) options.runs_dirs = {"runs"};
  options.host = args.get("host", "127.0.0.1");
  options.port = static_cast<uint16_t>(args.get_int("port", 8265, 0, 65535));
  options.token = args.get("token", "");
  options.threads = static_cast<int>(args.get_int("threads", 4, 1, 64));
  options.api.stale_after_seconds = static_cast<double>(args.get_int("stale-after", 300, 1));
  if (auto words = args.get("reflection-words")) {
    options.api.reflection_words = split_words(*words);
    if (options.api.reflection_words.empty()) throw cli::UsageError("--reflection-words needs at least one word");
  }
  dashboard::DashboardServer server(options);
  std::string where;
  for (const auto& dir : options.runs_dirs) where += (where.empty() ? "" : ", ") + dir.string();
  std::cout << "aha dashboard: runs under " << where << " at " << server.url()
            << (options.token.empty() ? "" : "?token=" + options.token) << "  (Ctrl-C stops it)" << std::endl;
  for (const auto& dir : server.missing_runs_dirs())
    std::cerr << "aha dashboard: " << dir.string() << " does not exist yet; its runs appear once it does\n";
  server.run(/*handle_signals=*/true);
  return 0;
}

const cli::CommandRegistration kDashboard(
    {"dashboard", "serve the live web dashboard over the runs: aha dashboard --runs runs",
     {.usage = "[options]",
      .description = "Serves a web page with every run found under the --runs directories (recursively): their\n"
                     "status, live charts of rewards, response length, reflection words, optimisation and\n"
                     "throughput, the sampled completions of each step, and a JSON/CSV API (/api/runs, ...).\n"
                     "It only reads the run databases and never slows or blocks a training run. It listens on\n"
                     "127.0.0.1; a --host reachable from other machines needs --token.",
      .options = {{"runs", "DIR", "runs", "a directory to look for runs (run.db) in, recursively; repeatable"},
                  {"port", "P", "8265", "the TCP port (0: any free port)"},
                  {"host", "H", "127.0.0.1", "the address to listen on; not a loopback one only with --token"},
                  {"token", "T", "", "a secret every request must carry (?token=T once, then a cookie)"},
                  {"reflection-words", "W1,W2", "wait,verify,re-check,recheck,let me,double-check",
                   "the words whose rate in the completions the R1-Zero charts show"},
                  {"stale-after", "SECONDS", "300", "a running run that wrote nothing for this long shows as stale"},
                  {"threads", "N", "4", "threads serving requests"}},
      .max_positional = 0,
      .examples = {"aha dashboard", "aha dashboard --runs runs --runs /data/sweeps --port 8300",
                   "aha dashboard --host 0.0.0.0 --token \"$(openssl rand -hex 16)\""}},
     run_dashboard});

}  // namespace
}  // namespace aha

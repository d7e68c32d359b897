// bench_dashboard: the dashboard under load. Writes a run of 10,000 steps with 60 metrics, then
// has 50 clients poll it as the page does (the run's summary and the metrics since their last
// step, every --poll-ms) while a simulated trainer keeps computing and writing steps. Prints
// the p95 response time of the metrics endpoint, the time of one full load (every metric,
// every step), and the trainer's median step time without and with the clients polling (in
// alternating rounds, so that the machine's other load falls on both), with the ratio.
//
//   bench_dashboard [--dir DIR] [--clients 50] [--steps 10000] [--metrics 60] [--poll-ms 3000]
//                   [--train-steps 40] [--work-ms 200]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/files.h"
#include "core/json.h"
#include "core/run_store.h"
#include "dashboard/server.h"
#include "tools/cli.h"

namespace {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// One keep-alive HTTP connection, as a browser tab holds.
class Client {
 public:
  explicit Client(uint16_t port) : stream_(io_) {
    boost::asio::ip::tcp::resolver resolver(io_);
    stream_.connect(resolver.resolve("127.0.0.1", std::to_string(port)));
  }
  std::string get(const std::string& target) {
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "127.0.0.1");
    http::write(stream_, request);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1u << 30);
    http::read(stream_, buffer_, parser);
    if (parser.get().result_int() != 200) throw aha::Error(target + ": HTTP " + std::to_string(parser.get().result_int()));
    return parser.get().body();
  }

 private:
  boost::asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

std::vector<std::pair<std::string, double>> step_metrics(int64_t step, int metrics) {
  std::vector<std::pair<std::string, double>> m;
  for (int k = 0; k < metrics; ++k) m.emplace_back("bench/metric_" + std::to_string(k), std::sin(step * 0.01 + k));
  return m;
}

std::vector<aha::Sample> step_samples(int64_t step) {
  std::vector<aha::Sample> samples(64);
  for (int i = 0; i < 64; ++i)
    samples[i] = {.index = i, .group_index = i / 8, .prompt = "What is 12 * 7?",
                  .completion = "<think>Let me see. Wait, 12 * 7 = 84.</think> <answer>84</answer> step " + std::to_string(step),
                  .reward = 1.0, .reward_components = {{"accuracy", 1.0}}, .length = 40, .finish_reason = "stop"};
  return samples;
}

// Fixed CPU work: a count of iterations (not a wall time, which would hide CPU taken by the
// dashboard), returned so that the compiler keeps it.
double cpu_work(long iterations) {
  double x = 1.0;
  for (long i = 0; i < iterations; ++i) x = x * 1.0000001 + 1e-9;
  return x;
}

// The iterations that take about ms milliseconds on this machine, measured before any client.
long iterations_for(int ms) {
  const long probe = 20'000'000;
  const auto start = Clock::now();
  volatile double sink = cpu_work(probe);
  (void)sink;
  return static_cast<long>(probe * ms / std::max(1.0, ms_since(start)));
}

// Trainer steps: the fixed work, then the step's metrics and samples in one transaction.
// Appends each step's milliseconds to times.
void train_steps(aha::RunStore& store, int64_t stage, int64_t& step, int count, long iterations, int metrics,
                 std::vector<double>& times) {
  volatile double sink = 0;
  for (int s = 0; s < count; ++s) {
    const auto start = Clock::now();
    sink = sink + cpu_work(iterations);
    ++step;
    auto tx = store.transaction();
    store.write_step(stage, step, step_metrics(step, metrics), step_samples(step));
    tx.commit();
    times.push_back(ms_since(start));
  }
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(std::ceil(p * values.size())) - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const aha::cli::Args args(std::vector<std::string>(argv + 1, argv + argc),
                              aha::cli::Spec::of_names({"dir", "clients", "steps", "metrics", "poll-ms", "train-steps", "work-ms"}),
                              "bench_dashboard");
    const fs::path dir = args.get("dir", "/tmp/aha-bench-dashboard");
    const int clients = static_cast<int>(args.get_int("clients", 50, 1, 1000));
    const int64_t steps = args.get_int("steps", 10000, 1);
    const int metrics = static_cast<int>(args.get_int("metrics", 60, 1, 1000));
    const int poll_ms = static_cast<int>(args.get_int("poll-ms", 3000, 10));
    const int train_count = static_cast<int>(args.get_int("train-steps", 40, 1));
    const int work_ms = static_cast<int>(args.get_int("work-ms", 200, 0));

    aha::remove_tree(dir);
    fs::create_directories(dir / "bench");
    aha::RunStore store(dir / "bench" / "run.db", {.retention = {.keep_last_steps = 5, .keep_every = 100}});
    store.set_config("recipe", R"({"name": "bench", "schedule": {"steps": 1000000}})");
    const int64_t stage = store.begin_stage("grpo", "grpo", "{}");
    auto start = Clock::now();
    for (int64_t step = 1; step <= steps; step += 500) {
      auto tx = store.transaction();
      for (int64_t s = step; s < std::min(steps + 1, step + 500); ++s) store.write_metrics(stage, s, step_metrics(s, metrics));
      tx.commit();
    }
    std::printf("wrote %lld steps x %d metrics in %.1f s\n", static_cast<long long>(steps), metrics, ms_since(start) / 1000);
    int64_t step = steps;

    aha::dashboard::ServerOptions options{.runs_dirs = {dir}, .port = 0};
    aha::dashboard::DashboardServer server(options);
    std::thread serving([&] { server.run(); });

    start = Clock::now();
    const size_t full_bytes = Client(server.port()).get("/api/runs/bench/metrics").size();
    std::printf("full load (every metric, every step: %.1f MB): %.0f ms\n", full_bytes / 1e6, ms_since(start));

    const long iterations = iterations_for(work_ms);

    // The trainer alternates between rounds without and with the clients polling, so that a
    // change in the machine's other load falls on both sides alike.
    std::atomic<bool> stop{false}, polling{false};
    std::atomic<int64_t> published{step};
    std::mutex mutex;
    std::vector<double> latencies;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        try {
          Client client(server.port());
          int64_t last = published - 1;
          std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms * c / clients));  // tabs opened at different times
          while (!stop) {
            if (!polling) {
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
              continue;
            }
            client.get("/api/runs/bench");
            const auto t = Clock::now();
            auto doc = aha::json::parse(client.get("/api/runs/bench/metrics?since_step=" + std::to_string(last)), "metrics");
            const double ms = ms_since(t);
            for (const auto& m : doc["series"].GetObject())
              if (m.value["step"].Size()) last = std::max(last, m.value["step"][m.value["step"].Size() - 1].GetInt64());
            {
              std::lock_guard lock(mutex);
              latencies.push_back(ms);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
          }
        } catch (const std::exception& e) {
          ++failures;
          std::fprintf(stderr, "client %d: %s\n", c, e.what());
        }
      });
    std::vector<double> alone, with;
    const int rounds = 4;
    for (int round = 0; round < rounds; ++round) {
      polling = false;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // requests in flight finish
      train_steps(store, stage, step, train_count / rounds, iterations, metrics, alone);
      polling = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));  // every client is polling
      train_steps(store, stage, step, train_count / rounds, iterations, metrics, with);
    }
    stop = true;
    for (auto& t : threads) t.join();
    server.stop();
    serving.join();
    const double alone_ms = percentile(alone, 0.5), with_ms = percentile(with, 0.5);

    std::printf("metrics endpoint, %d clients polling every %d ms: %zu requests, p50 %.1f ms, p95 %.1f ms, max %.1f ms, %d failed\n",
                clients, poll_ms, latencies.size(), percentile(latencies, 0.5), percentile(latencies, 0.95),
                latencies.empty() ? NAN : *std::max_element(latencies.begin(), latencies.end()), failures.load());
    std::printf("trainer step (%d ms of work + write, median of %zu): %.1f ms alone, %.1f ms with the dashboard polled: "
                "ratio %.3f (%+.1f%%)\n",
                work_ms, alone.size(), alone_ms, with_ms, with_ms / alone_ms, 100 * (with_ms / alone_ms - 1));
    aha::remove_tree(dir);
    return failures.load() ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_dashboard: %s\n", e.what());
    return 1;
  }
}

#include "recipes/runner/rollout_controller.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "core/json.h"
#include "policy/parallel/weight_sync.h"
#include "policy/parallel/world.h"

namespace aha::recipes {
namespace {

using Clock = std::chrono::steady_clock;

std::string get_text(c10d::Store& store, const std::string& key) {
  auto bytes = store.get(key);
  return std::string(bytes.begin(), bytes.end());
}

void set_text(c10d::Store& store, const std::string& key, const std::string& value) {
  store.set(key, std::vector<uint8_t>(value.begin(), value.end()));
}

std::string prefix(int i) { return "aha/rollout/worker/" + std::to_string(i) + "/"; }

}  // namespace

RolloutController::RolloutController(const RolloutControllerOptions& options, std::vector<torch::Tensor> tensors,
                                     int64_t version)
    : options_(options), tensors_(std::move(tensors)) {
  require(options_.workers >= 1, "layout.rollout_workers must be >= 1");
  require(options_.worker_config != nullptr, "rollout controller: no worker configuration");
  c10d::TCPStoreOptions so;
  so.port = 0;  // the kernel's choice, made as the server binds: no other process can take it
  so.isServer = true;
  so.waitWorkers = false;
  so.timeout = std::chrono::milliseconds(static_cast<int64_t>(options_.connect_timeout_seconds * 1000));
  auto control = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", so);
  control_ = "127.0.0.1:" + std::to_string(control->getPort());
  store_ = control;
  workers_.resize(static_cast<size_t>(options_.workers));
  try {
    for (int i = 0; i < options_.workers; ++i) start_worker(i, version);
  } catch (...) {
    for (auto& w : workers_)
      if (w.pid > 0) ::kill(w.pid, SIGKILL), ::waitpid(w.pid, nullptr, 0), w.pid = -1;
    throw;
  }
}

void RolloutController::start_worker(int i, int64_t version) {
  Worker& w = workers_[static_cast<size_t>(i)];
  w.sync_store = std::make_unique<parallel::StoreHost>();
  const int sync_port = w.sync_store->port();
  auto config = json::parse(options_.worker_config(i), "rollout worker config");
  auto& a = config.GetAllocator();
  config.AddMember("sync_port", sync_port, a);
  config.AddMember("bucket_bytes", static_cast<int64_t>(options_.bucket_bytes), a);
  config.AddMember("backend", rapidjson::Value(options_.backend.c_str(), a), a);
  set_text(*store_, prefix(i) + "config", json::to_string(config));

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  require(pid >= 0, "layout split: cannot start rollout worker " + std::to_string(i) + ": " + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the controller died before the line above
    setenv("AHA_ROLLOUT_CONTROL", control_.c_str(), 1);
    setenv("AHA_ROLLOUT_WORKER", std::to_string(i).c_str(), 1);
    for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}) unsetenv(v);
    std::vector<char*> argv = {const_cast<char*>(options_.program.c_str()), const_cast<char*>("rollout-worker"),
                               nullptr};
    ::execv(options_.program.c_str(), argv.data());
    std::fprintf(stderr, "aha train: cannot start rollout worker %d (%s): %s\n", i, options_.program.c_str(),
                 std::strerror(errno));
    ::_exit(127);
  }
  w.pid = pid;
  w.alive = true;
  // The worker joins its pair group once its model is loaded; then the first weights.
  parallel::World pair;
  pair.rank = 0;
  pair.world_size = 2;
  pair.local_world_size = 1;
  pair.master_addr = "127.0.0.1";
  pair.master_port = sync_port;
  pair.launcher = "rollout";
  pair.agent_store = true;  // w.sync_store
  parallel::ParallelOptions po;
  po.backend = parallel::parse_backend(options_.backend);
  po.timeout_seconds = options_.connect_timeout_seconds;
  po.heartbeat_timeout_seconds = 1e6;  // a worker's death is seen as its process's (reap_dead)
  po.heartbeat_interval_seconds = 0.5;
  const torch::Device device = tensors_.empty() ? torch::Device(torch::kCPU) : tensors_.front().device();
  try {
    // The worker says when its model is loaded and it joins; until then its exit is watched, so
    // a worker that cannot start is an error at once rather than after the rendezvous timeout.
    const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(options_.connect_timeout_seconds * 1000));
    while (!store_->check({prefix(i) + "joining"})) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        w.pid = -1;
        w.alive = false;
        throw Error(WIFSIGNALED(status) ? "it was killed by signal " + std::to_string(WTERMSIG(status))
                                        : "it exited with status " + std::to_string(WEXITSTATUS(status)));
      }
      if (Clock::now() > deadline)
        throw Error("it did not load its model within " + std::to_string(int64_t(options_.connect_timeout_seconds)) + " s");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    w.comm = parallel::Communicator::connect(pair, po, device);
    const auto sent = parallel::sync_weights(*w.comm, tensors_, version, 0, options_.bucket_bytes);
    stats_.sync_bytes = sent.bytes;
    while (!store_->check({prefix(i) + "ready"})) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        w.pid = -1;
        w.alive = false;
        throw Error("it exited before it was ready");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } catch (const std::exception& e) {
    throw Error("layout split: rollout worker " + std::to_string(i) + " did not start: " + e.what() +
                " (its own error, if any, is on stderr above)");
  }
  ++stats_.workers_alive;
}

RolloutController::~RolloutController() {
  try {
    set_text(*store_, "aha/rollout/shutdown", "1");
  } catch (...) {
  }
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (auto& w : workers_) {
    while (w.pid > 0) {
      if (::waitpid(w.pid, nullptr, WNOHANG) == w.pid) {
        w.pid = -1;
        break;
      }
      if (Clock::now() > deadline) {
        ::kill(w.pid, SIGKILL);
        ::waitpid(w.pid, nullptr, 0);
        w.pid = -1;
        w.alive = false;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (w.comm && w.alive) w.comm->finish();
    w.comm.reset();
  }
}

void RolloutController::assign(RolloutTask task) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(workers_.size()); ++i) {
    const auto& w = workers_[static_cast<size_t>(i)];
    if (w.alive && (best < 0 || w.pending.size() < workers_[static_cast<size_t>(best)].pending.size())) best = i;
  }
  require(best >= 0, "layout split: every rollout worker has died (their errors are on stderr above); "
                     "continue the run with --resume");
  Worker& w = workers_[static_cast<size_t>(best)];
  const int64_t seq = w.next_task++;
  set_text(*store_, prefix(best) + "task/" + std::to_string(seq), task_to_json(task));
  w.pending.emplace_back(seq, std::move(task));
}

int64_t RolloutController::submit(int64_t batch, int64_t min_version, uint64_t seed, std::vector<std::string> prompts) {
  RolloutTask task;
  task.id = next_id_++;
  task.batch = batch;
  task.min_version = min_version;
  task.seed = seed;
  task.prompts = std::move(prompts);
  assign(std::move(task));
  return next_id_ - 1;
}

void RolloutController::collect(int i) {
  Worker& w = workers_[static_cast<size_t>(i)];
  while (!w.pending.empty()) {
    const std::string key = prefix(i) + "result/" + std::to_string(w.pending.front().first);
    if (!store_->check({key})) break;
    auto result = result_from_json(get_text(*store_, key));
    store_->deleteKey(key);
    store_->deleteKey(prefix(i) + "task/" + std::to_string(w.pending.front().first));
    const auto& task = w.pending.front().second;
    require(result.id == task.id && result.batch == task.batch,
            "rollout worker " + std::to_string(i) + " answered task " + std::to_string(task.id) + " (batch " +
                std::to_string(task.batch) + ") with task " + std::to_string(result.id) + " (batch " +
                std::to_string(result.batch) + ")");
    stats_.busy_seconds += result.seconds;
    done_.emplace(result.id, std::move(result));  // the first result of a task stays
    w.pending.pop_front();
  }
}

void RolloutController::mark_dead(int i, const std::string& why) {
  Worker& w = workers_[static_cast<size_t>(i)];
  if (!w.alive) return;
  w.alive = false;
  --stats_.workers_alive;
  std::fprintf(stderr, "\nwarning: rollout worker %d %s; its %zu unfinished task(s) go to the others\n", i,
               why.c_str(), w.pending.size());
  if (w.pid > 0) ::kill(w.pid, SIGKILL), ::waitpid(w.pid, nullptr, 0), w.pid = -1;
  collect(i);  // results it posted before it died count
  auto pending = std::move(w.pending);
  w.pending.clear();
  w.comm.reset();
  w.sync_store.reset();
  for (auto& [seq, task] : pending) {
    ++stats_.requeued_tasks;
    assign(std::move(task));
  }
}

void RolloutController::reap_dead() {
  for (int i = 0; i < static_cast<int>(workers_.size()); ++i) {
    Worker& w = workers_[static_cast<size_t>(i)];
    if (!w.alive || w.pid <= 0) continue;
    int status = 0;
    if (::waitpid(w.pid, &status, WNOHANG) == w.pid) {
      w.pid = -1;
      mark_dead(i, WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                       : "exited with status " + std::to_string(WEXITSTATUS(status)));
    }
  }
}

void RolloutController::serve_syncs(int64_t version) {
  for (int i = 0; i < static_cast<int>(workers_.size()); ++i) {
    Worker& w = workers_[static_cast<size_t>(i)];
    if (!w.alive) continue;
    const int64_t asked = store_->add(prefix(i) + "sync_requests", 0);
    while (w.alive && w.syncs_served < asked) {
      try {
        const auto sent = parallel::sync_weights(*w.comm, tensors_, version, 0, options_.bucket_bytes);
        ++w.syncs_served;
        ++stats_.syncs;
        stats_.sync_seconds += sent.seconds;
        stats_.sync_bytes = sent.bytes;
      } catch (const std::exception& e) {
        mark_dead(i, std::string("failed during a weight sync (") + e.what() + ")");
      }
    }
  }
}

RolloutResult RolloutController::wait(int64_t task, int64_t version) {
  while (true) {
    reap_dead();
    serve_syncs(version);
    for (int i = 0; i < static_cast<int>(workers_.size()); ++i)
      if (workers_[static_cast<size_t>(i)].alive) collect(i);
    auto it = done_.find(task);
    if (it != done_.end()) {
      RolloutResult r = std::move(it->second);
      done_.erase(it);
      return r;
    }
    require(stats_.workers_alive > 0, "layout split: every rollout worker has died (their errors are on stderr "
                                      "above); continue the run with --resume");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace aha::recipes

#include "policy/parallel/heartbeat.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace aha::parallel {
namespace {

using Clock = std::chrono::steady_clock;

std::string text_of(const std::vector<uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }
std::vector<uint8_t> bytes_of(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }
std::string key(const char* kind, int rank) { return std::string("aha/") + kind + "/" + std::to_string(rank); }

std::string seconds_text(Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", std::chrono::duration<double>(d).count());
  return text;
}

}  // namespace

std::string short_cause(const std::string& what) {
  // c10::Error appends "Exception raised from ... frame #0 ..." (a backtrace) to its message.
  std::string text = what.substr(0, what.find("\nException raised from"));
  if (text.size() > 400) text = text.substr(0, 400) + "...";
  return text;
}

Heartbeat::Heartbeat(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
                     std::chrono::milliseconds interval, std::chrono::milliseconds timeout,
                     bool stop_process_on_dead_peer, bool agent_store)
    : store_(std::move(store)),
      rank_(rank),
      world_size_(world_size),
      interval_(interval),
      timeout_(timeout),
      stop_process_(stop_process_on_dead_peer),
      agent_store_(agent_store),
      peers_(static_cast<size_t>(world_size), Peer{"", Clock::now(), "", false}) {
  beat_once();
  thread_ = std::thread([this] { loop(); });
}

Heartbeat::~Heartbeat() { stop_thread(); }

void Heartbeat::finish() {
  stop_thread();
  try {
    store_->set(key("done", rank_), bytes_of("1"));
  } catch (...) {
  }
}

void Heartbeat::stop_thread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Heartbeat::set_activity(const std::string& what) {
  std::lock_guard<std::mutex> lock(mutex_);
  activity_ = what;
}

std::string Heartbeat::activity() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return activity_;
}

void Heartbeat::publish_failure(const std::string& message) {
  try {
    store_->set(key("failed", rank_), bytes_of(message));
  } catch (...) {
  }
}

void Heartbeat::beat_once() {
  std::string value;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    value = std::to_string(++beats_) + " " + activity_;
  }
  try {
    store_->set(key("heartbeat", rank_), bytes_of(value));
    std::vector<std::string> keys;
    for (int r = 0; r < world_size_; ++r) keys.push_back(key("heartbeat", r));
    std::vector<std::string> failed_keys;
    for (int r = 0; r < world_size_; ++r) failed_keys.push_back(key("failed", r));
    const auto now = Clock::now();
    for (int r = 0; r < world_size_; ++r) {
      if (r == rank_) continue;
      std::string seen, failure;
      if (store_->check({keys[r]})) seen = text_of(store_->get(keys[r]));
      if (store_->check({failed_keys[r]})) failure = text_of(store_->get(failed_keys[r]));
      const bool done = store_->check({key("done", r)});
      std::lock_guard<std::mutex> lock(mutex_);
      auto& p = peers_[static_cast<size_t>(r)];
      if (seen != p.value) {
        p.value = seen;
        p.changed = now;
      }
      p.failure = failure;
      p.done = done;
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (store_error_.empty()) store_error_ = short_cause(e.what());
  }
}

std::string Heartbeat::dead_peer() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int r = 0; r < world_size_; ++r)
    if (r != rank_ && !peers_[static_cast<size_t>(r)].failure.empty())
      return "rank " + std::to_string(r) + " failed: " + peers_[static_cast<size_t>(r)].failure;
  if (!store_error_.empty() && agent_store_)
    return "the launcher (the rendezvous store's host) is unreachable: " + store_error_;
  if (!store_error_.empty() && rank_ != 0)
    return "rank 0 (the rendezvous store's host) is unreachable: " + store_error_;
  const auto now = Clock::now();
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) continue;
    const auto& p = peers_[static_cast<size_t>(r)];
    if (p.done || now - p.changed < timeout_) continue;
    const auto space = p.value.find(' ');
    const std::string last = space == std::string::npos ? "nothing yet" : p.value.substr(space + 1);
    return "rank " + std::to_string(r) + " stopped responding (no heartbeat for " + seconds_text(now - p.changed) +
           "; its last activity: " + last + ")";
  }
  return "";
}

std::string Heartbeat::diagnose(std::chrono::milliseconds patience) {
  // A peer that just died still has a fresh heartbeat: give it a few intervals to go stale,
  // judging staleness by a shorter window than the watchdog's.
  const auto deadline = Clock::now() + patience;
  const auto window = std::max(interval_ * 3, std::chrono::milliseconds(1500));
  while (true) {
    auto dead = dead_peer();
    if (!dead.empty()) return dead;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto now = Clock::now();
      for (int r = 0; r < world_size_; ++r) {
        if (r == rank_) continue;
        const auto& p = peers_[static_cast<size_t>(r)];
        if (!p.done && now - p.changed >= window) {
          const auto space = p.value.find(' ');
          const std::string last = space == std::string::npos ? "nothing yet" : p.value.substr(space + 1);
          return "rank " + std::to_string(r) + " stopped responding (no heartbeat for " +
                 seconds_text(now - p.changed) + "; its last activity: " + last + ")";
        }
      }
    }
    if (Clock::now() >= deadline) return "";
    std::this_thread::sleep_for(interval_ / 2);
    beat_once();
  }
}

void Heartbeat::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    beat_once();
    if (stop_process_) {
      const std::string dead = dead_peer();
      if (!dead.empty()) {
        // The main thread may be blocked where no exception can reach it (a collective without
        // a timeout, a store wait): end the process here, with the reason, within the timeout.
        std::fprintf(stderr, "\nerror: rank %d stops: %s; this rank was %s\n", rank_, dead.c_str(),
                     activity().c_str());
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
    lock.lock();
  }
}

}  // namespace aha::parallel

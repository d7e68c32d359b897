#include "reward/reward_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/thread_pool.h"
#include "reward/deadline.h"

namespace aha::reward {
namespace {

using Clock = std::chrono::steady_clock;

// What one reward call shares with the runner; owned jointly, so a call the runner gave up
// on can still finish safely.
struct Call {
  std::mutex mutex;
  std::condition_variable changed;
  bool started = false, done = false;
  Clock::time_point start;
  RewardOutput output;
  std::string error;
  bool timed_out = false;  // the call stopped itself at its deadline (reward/deadline.h)
};

bool out_of_process(const RewardSpec& spec) {
  return spec.kind == "process" || spec.kind == "plugin" || spec.kind == "code";
}

Clock::duration as_duration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// threads == 0: one per CPU; never more than kMaxThreads (see the header).
size_t capped_threads(size_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  return std::min(threads, RewardRunner::kMaxThreads);
}

std::string format_seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

}  // namespace

RewardRunner::RewardRunner(const std::vector<RewardSpec>& specs, size_t threads) : specs_(specs) {
  for (auto& spec : specs_) rewards_.push_back(create_reward(spec));
  pool_ = std::make_unique<ThreadPool>(capped_threads(threads));
}

RewardRunner::RewardRunner(const std::vector<RewardSpec>& specs,
                           std::vector<std::shared_ptr<const Reward>> rewards, size_t threads)
    : specs_(specs), rewards_(std::move(rewards)) {
  require(specs_.size() == rewards_.size(), "RewardRunner: " + std::to_string(specs_.size()) + " specs for " +
                                                std::to_string(rewards_.size()) + " rewards");
  pool_ = std::make_unique<ThreadPool>(capped_threads(threads));
}

RewardRunner::~RewardRunner() = default;

size_t RewardRunner::threads() const { return pool_->size(); }

std::vector<ScoredSample> RewardRunner::score(std::vector<ScoringInput> inputs) {
  auto shared_inputs = std::make_shared<const std::vector<ScoringInput>>(std::move(inputs));
  const size_t n = shared_inputs->size(), r = rewards_.size();
  std::vector<std::shared_ptr<Call>> calls(n * r);
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < r; ++k) {
      auto call = std::make_shared<Call>();
      calls[i * r + k] = call;
      const bool in_process = !out_of_process(specs_[k]);
      const Clock::duration timeout = as_duration(specs_[k].timeout_seconds);
      pool_->submit([call, shared_inputs, reward = rewards_[k], i, in_process, timeout] {
        const Clock::time_point start = Clock::now();
        {
          std::lock_guard<std::mutex> lock(call->mutex);
          call->started = true;
          call->start = start;
        }
        call->changed.notify_all();
        RewardOutput output;
        std::string error;
        bool timed_out = false;
        try {
          const auto& input = (*shared_inputs)[i];
          if (in_process) {
            DeadlineScope deadline(start + timeout);  // the work itself stops at the timeout
            output = reward->score(input.example, input.completion);
          } else {
            output = reward->score(input.example, input.completion);
          }
          if (!std::isfinite(output.value)) error = "reward returned a non-finite value";
        } catch (const DeadlineExceeded&) {
          timed_out = true;
        } catch (const std::exception& e) {
          error = e.what();
        } catch (...) {
          error = "unknown exception";
        }
        {
          std::lock_guard<std::mutex> lock(call->mutex);
          call->output = std::move(output);
          call->error = std::move(error);
          call->timed_out = timed_out;
          call->done = true;
        }
        call->changed.notify_all();
      });
    }
  }

  std::vector<ScoredSample> results(n);
  for (size_t i = 0; i < n; ++i) {
    ScoredSample& sample = results[i];
    for (size_t k = 0; k < r; ++k) {
      const RewardSpec& spec = specs_[k];
      Call& call = *calls[i * r + k];
      std::unique_lock<std::mutex> lock(call.mutex);
      call.changed.wait(lock, [&] { return call.started; });
      bool finished = true;
      if (out_of_process(spec)) {
        call.changed.wait(lock, [&] { return call.done; });  // it kills its own process in time
      } else {
        finished = call.changed.wait_until(lock, call.start + as_duration(spec.timeout_seconds),
                                           [&] { return call.done; });
      }
      double value = 0;
      if (!finished || call.timed_out) {
        sample.errors[spec.name] = "timed out after " + format_seconds(spec.timeout_seconds) + " s";
      } else if (!call.error.empty()) {
        sample.errors[spec.name] = call.error;
      } else {
        value = call.output.value;
        for (auto& [name, v] : call.output.components) sample.components[spec.name + "." + name] = v;
        if (!call.output.diagnostic.empty()) sample.diagnostics[spec.name] = call.output.diagnostic;
      }
      if (sample.errors.count(spec.name))
        sample.diagnostics[spec.name] = "error: " + sample.errors[spec.name];
      sample.components[spec.name] = value;
      sample.total += spec.weight * value;
    }
  }
  return results;
}

}  // namespace aha::reward

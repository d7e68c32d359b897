#include "reward/deadline.h"

#include <algorithm>

namespace aha::reward {
namespace {

using Clock = std::chrono::steady_clock;

struct ThreadDeadline {
  bool active = false;
  Clock::time_point at;
};
thread_local ThreadDeadline current;

}  // namespace

DeadlineScope::DeadlineScope(Clock::time_point deadline)
    : had_previous_(current.active), previous_(current.at) {
  // A nested scope never extends the enclosing one.
  current.at = current.active ? std::min(current.at, deadline) : deadline;
  current.active = true;
}

DeadlineScope::~DeadlineScope() {
  current.active = had_previous_;
  current.at = previous_;
}

void check_deadline() {
  if (current.active && Clock::now() >= current.at) throw DeadlineExceeded();
}

}  // namespace aha::reward

#include "policy/learner/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace aha::policy {

LrDecay parse_lr_decay(const std::string& name) {
  if (name == "constant") return LrDecay::constant;
  if (name == "cosine") return LrDecay::cosine;
  throw Error("lr schedule: unknown decay '" + name + "' (known: constant, cosine)");
}

LrSchedule::LrSchedule(const LrScheduleOptions& options) : options_(options) {
  require(options.warmup_steps >= 0,
          "lr schedule: warmup_steps must be >= 0, got " + std::to_string(options.warmup_steps));
  if (options.decay == LrDecay::cosine) {
    require(options.total_steps > options.warmup_steps,
            "lr schedule: cosine decay needs total_steps > warmup_steps, got total_steps=" +
                std::to_string(options.total_steps) +
                ", warmup_steps=" + std::to_string(options.warmup_steps));
    require(
        options.min_lr_ratio >= 0.0 && options.min_lr_ratio <= 1.0,
        "lr schedule: min_lr_ratio must be in [0, 1], got " + std::to_string(options.min_lr_ratio));
  }
}

double LrSchedule::lr_factor(int64_t step) const {
  require(step >= 0, "lr schedule: step must be >= 0, got " + std::to_string(step));
  const auto& o = options_;
  if (step < o.warmup_steps) return static_cast<double>(step) / static_cast<double>(o.warmup_steps);
  if (o.decay == LrDecay::constant) return 1.0;
  double progress = static_cast<double>(step - o.warmup_steps) /
                    static_cast<double>(o.total_steps - o.warmup_steps);
  progress = std::clamp(progress, 0.0, 1.0);
  return o.min_lr_ratio +
         (1.0 - o.min_lr_ratio) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace aha::policy

// Learning-rate schedule for the learner: linear warm-up, then constant or cosine decay to a
// floor. lr_factor(step) multiplies each parameter group's base learning rate.
//
// Contract (the same curve as transformers' get_constant_schedule_with_warmup /
// get_cosine_schedule_with_warmup with verl's min_lr_ratio, so runs line up with verl/TRL):
//   step < warmup_steps:  factor = step / warmup_steps          (step 0 trains with factor 0)
//   constant:             factor = 1
//   cosine:               progress = (step - warmup) / (total_steps - warmup), clamped to [0, 1]
//                         factor = min_ratio + (1 - min_ratio) * 0.5 * (1 + cos(pi * progress))
// Unlike transformers, steps past total_steps stay at min_ratio instead of rising again.
// `step` counts optimizer steps from 0.
#pragma once
#include <cstdint>
#include <string>

namespace aha::policy {

enum class LrDecay { constant, cosine };

struct LrScheduleOptions {
  LrDecay decay = LrDecay::constant;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;    // needed by cosine: the step at which the floor is reached
  double min_lr_ratio = 0.0;  // cosine floor, in [0, 1]
};

// "constant" or "cosine"; throws aha::Error listing the known names otherwise.
LrDecay parse_lr_decay(const std::string& name);

class LrSchedule {
 public:
  // Throws aha::Error naming the option at fault (negative warm-up, total_steps <= warmup_steps
  // for cosine, min_lr_ratio outside [0, 1]).
  explicit LrSchedule(const LrScheduleOptions& options);
  double lr_factor(int64_t step) const;
  const LrScheduleOptions& options() const { return options_; }

 private:
  LrScheduleOptions options_;
};

}  // namespace aha::policy

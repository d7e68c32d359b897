#include "reward/reward.h"

#include "core/error.h"

namespace aha::reward {

const char* to_string(TaskKind kind) {
  switch (kind) {
    case TaskKind::math:
      return "math";
    case TaskKind::code:
      return "code";
    case TaskKind::custom:
      return "custom";
  }
  return "custom";
}

TaskKind parse_task_kind(const std::string& text, const std::string& what) {
  if (text == "math") return TaskKind::math;
  if (text == "code") return TaskKind::code;
  if (text == "custom") return TaskKind::custom;
  throw Error(what + ": task must be \"math\", \"code\" or \"custom\", got \"" + text + "\"");
}

}  // namespace aha::reward

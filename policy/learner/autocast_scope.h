// AutocastScope: CUDA autocast to bfloat16 for the scope of a forward pass (its backward needs
// no guard: autograd records the casts). Restores the previous state and clears the cast cache
// when the outermost scope ends. Disabled scopes do nothing, so CPU code paths can hold one.
#pragma once
#include <ATen/autocast_mode.h>

namespace aha::policy {

class AutocastScope {
 public:
  explicit AutocastScope(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
    was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    old_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, old_dtype_);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_, was_enabled_ = false;
  at::ScalarType old_dtype_ = at::kBFloat16;
};

}  // namespace aha::policy

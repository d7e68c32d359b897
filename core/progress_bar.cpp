#include "core/progress_bar.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace aha {

ProgressBar::ProgressBar(int64_t total, std::string unit, double min_interval_seconds)
    : total_(total), unit_(std::move(unit)), min_interval_(min_interval_seconds),
      terminal_(isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

void ProgressBar::restart_clock(int64_t done) {
  first_done_ = done;
  start_ = std::chrono::steady_clock::now();
}

std::string ProgressBar::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(text, sizeof text, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return text;
}

void ProgressBar::update(int64_t done, const std::vector<std::pair<std::string, std::string>>& fields) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const bool last = done >= total_;
  if (!terminal_ && !last && elapsed - last_print_ < min_interval_) return;
  last_print_ = elapsed;

  const int width = 20;
  const int filled = total_ > 0 ? static_cast<int>(width * std::min(done, total_) / total_) : width;
  std::string line = "[" + std::string(filled, '#') + std::string(width - filled, ' ') + "] " +
                     std::to_string(done) + "/" + std::to_string(total_) + " " + unit_ + "  " +
                     format_duration(elapsed) + " elapsed";
  const int64_t units = done - first_done_;
  if (units > 0 && !last) line += "  ETA " + format_duration(elapsed / units * (total_ - done));
  for (const auto& [name, value] : fields) line += "  " + name + " " + value;
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
    open_line_ = true;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (open_line_) std::fprintf(stderr, "\n");
  open_line_ = false;
}

}  // namespace aha

// A one-line progress display on stderr for long commands (training, generation, evaluation):
//
//   [##########          ] 40/120 steps  2:31 elapsed  ETA 4:10  reward 0.53  acc 0.41
//
// Contract: update() redraws the line in place ("\r") with the bar, done/total, elapsed time, an
// ETA from the average time per unit so far (measured from construction or the last
// restart_clock(), so that units done before a resume do not count), and the caller's fields
// in the order given. finish() ends the line. When stderr is not a terminal the line is written
// at most every `min_interval_seconds` (and always for the last unit), one line each time, so a
// log file gets a readable trace rather than thousands of carriage returns.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace aha {

class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string unit, double min_interval_seconds = 10.0);

  // fields: ("reward", "0.53"), ... shown as "reward 0.53".
  void update(int64_t done, const std::vector<std::pair<std::string, std::string>>& fields = {});
  // Elapsed time and ETA count from now, with `done` units already behind (a resumed run).
  void restart_clock(int64_t done);
  void finish();

  // "1:05:09", "4:10", "0:07" for seconds.
  static std::string format_duration(double seconds);

 private:
  int64_t total_;
  std::string unit_;
  double min_interval_;
  bool terminal_;
  int64_t first_done_ = 0;
  std::chrono::steady_clock::time_point start_;
  double last_print_ = -1e30;
  bool open_line_ = false;
};

}  // namespace aha

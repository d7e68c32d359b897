// RunReader: what the dashboard reads from one run.db (core/run_store.h has the schema),
// through a read-only connection. Each call reads inside one read transaction, so an answer
// that spans several tables or metrics is one consistent snapshot (no step half-written), and
// a WAL reader never blocks the writer. ReaderPool keeps connections open between requests.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/reflection_words.h"
#include "core/run_store.h"

namespace aha {
class SqliteDb;
}

namespace aha::dashboard {

struct StageSummary {
  int64_t id = 0;
  std::string name, kind, status;  // status as the writer left it: running, done, stopped, failed
  double started_at = 0, finished_at = 0;  // finished_at NaN while running
  std::optional<int64_t> last_step;        // highest step with metrics
  double updated_at = 0;                   // time of the latest metric, else started_at
  std::map<std::string, double> headline;  // last value of a few metrics (kHeadlineMetrics)
};

struct RunSummary {
  std::string recipe_name;              // the recipe's "name", "" when the run stored none
  std::optional<int64_t> total_steps;   // the recipe's schedule.steps
  std::string accuracy_reward;          // the recipe's accuracy_reward: the component that says "correct"
  std::vector<StageSummary> stages;     // by id
};

struct MetricSeries {
  std::string name;
  std::vector<MetricPoint> points;  // by step
};

// Per sample step: the share of completions with at least one reflection word, and the mean
// number of reflection words per completion.
struct ReflectionSeries {
  std::vector<int64_t> steps;
  std::vector<double> rate, per_completion;
};

// The metrics a stage's row shows (last values).
extern const std::vector<std::string> kHeadlineMetrics;

class RunReader {
 public:
  explicit RunReader(const std::filesystem::path& db_path);  // throws aha::Error naming it
  ~RunReader();

  RunSummary summary();
  // The stages' ids, names, kinds and statuses only (no figures): what a data request needs.
  std::vector<StageSummary> stage_list();
  std::vector<std::string> metric_names(int64_t stage);
  // names empty: every metric of the stage.
  std::vector<MetricSeries> metrics(int64_t stage, const std::vector<std::string>& names, int64_t since_step);
  std::vector<int64_t> sample_steps(int64_t stage);
  std::vector<Sample> samples(int64_t stage, int64_t step);
  ReflectionSeries reflection(int64_t stage, const std::vector<std::string>& words, int64_t since_step);

 private:
  template <typename F>
  auto in_snapshot(F&& body);
  std::filesystem::path path_;  // names the database in errors
  std::unique_ptr<SqliteDb> db_;
};

// Open read-only connections, a few per run, reused across requests and threads (one thread
// at a time per connection).
class ReaderPool {
 public:
  class Lease {
   public:
    Lease(ReaderPool* pool, std::filesystem::path path, std::unique_ptr<RunReader> reader)
        : pool_(pool), path_(std::move(path)), reader_(std::move(reader)) {}
    Lease(Lease&&) = default;
    ~Lease();
    RunReader* operator->() { return reader_.get(); }

   private:
    ReaderPool* pool_;
    std::filesystem::path path_;
    std::unique_ptr<RunReader> reader_;
  };
  Lease acquire(const std::filesystem::path& db_path);

 private:
  std::mutex mutex_;
  std::map<std::filesystem::path, std::vector<std::unique_ptr<RunReader>>> idle_;
};

}  // namespace aha::dashboard

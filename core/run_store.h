// RunStore: the run's SQLite database, runs/<name>/run.db, the one record of a run that the
// dashboard, the exports and the `aha` tools read (nothing parses log text).
//
// What it holds (schema version 1, PRAGMA user_version):
//   config(key, value)            run configuration sections, JSON text
//   stages(id, name, kind, config, status, started_at, finished_at)
//   metrics(stage, name, step, value, time)     one number per (stage, name, step)
//   metric_names(stage, name)                   index of the names a stage has written
//   samples(stage, step, idx, group_index, prompt, completion, reward, reward_components,
//           advantage, length, finish_reason)  reward_components is a JSON object
//   checkpoints(stage, step, path, time)
//   events(id, time, stage, step, level, kind, message)   e.g. skipped non-finite steps
// Times are seconds since the Unix epoch. A NaN metric is stored as NULL and reads back as NaN.
//
// Metric names are namespaced strings "<namespace>/<name>" so that tools can find them:
// reward/<component>, train/kl, train/clip_frac_high, response/length_mean, eval/accuracy,
// perf/tokens_per_s, ... (no whitespace, at least one '/', no leading or trailing '/').
//
// Consistency and concurrency:
// - WAL journal, synchronous=NORMAL: a process crash loses nothing committed; a power cut can
//   lose the last commits but never leaves the database inconsistent.
// - Every write runs in a transaction taken with BEGIN IMMEDIATE (the write lock up front)
//   under a busy timeout, so a reader (the dashboard, another process) never makes a write
//   fail, and two writer processes queue instead of failing. Group the writes of one step with
//   transaction(): they become visible together or, if the process dies first, not at all.
// - Rewriting a step (a resumed run redoing it) replaces its metrics and samples.
// - A RunStore may be used from several threads (calls are serialised; a Transaction holds the
//   store for its thread until it ends). It must not be used across fork(): every call in a
//   forked child throws aha::Error; the child opens its own RunStore.
//
// Sample retention (RetentionOptions): after writing the samples of step s, samples of
// earlier steps t of the stage are deleted unless t > s - keep_last_steps or (keep_every > 0
// and t % keep_every == 0). keep_last_steps = 0 keeps every step's samples.
#pragma once
#include <climits>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aha {

class SqliteDb;

struct RetentionOptions {
  int64_t keep_last_steps = 0;  // 0: keep all
  int64_t keep_every = 0;       // 0: none beyond the last steps
};

struct RunStoreOptions {
  bool read_only = false;
  int busy_timeout_ms = 30000;
  RetentionOptions retention = {};
};

struct Sample {
  int64_t index = 0;        // position within the step's batch
  int64_t group_index = 0;  // which prompt group it belongs to
  std::string prompt;
  std::string completion;
  double reward = 0.0;
  std::vector<std::pair<std::string, double>> reward_components;
  double advantage = 0.0;
  int64_t length = 0;         // completion tokens
  std::string finish_reason;  // "stop", "length", ...
};

struct MetricPoint {
  int64_t step = 0;
  double value = 0.0;
  double time = 0.0;
};

struct StageRecord {
  int64_t id = 0;
  std::string name, kind, config, status;
  double started_at = 0.0;
  double finished_at = 0.0;  // NaN while running
};

struct CheckpointRecord {
  int64_t step = 0;
  std::string path;
  double time = 0.0;
};

struct EventRecord {
  int64_t id = 0;
  double time = 0.0;
  std::optional<int64_t> stage, step;
  std::string level, kind, message;
};

class RunStore {
 public:
  // Opens (creating unless read_only) the database file. Throws aha::Error naming the path on
  // failure, or when the file was written by a newer schema version.
  explicit RunStore(const std::filesystem::path& db_path, const RunStoreOptions& options = {});
  // runs/<name>/run.db under runs_root, creating the run directory unless read_only.
  static std::unique_ptr<RunStore> open_run(const std::filesystem::path& runs_root,
                                            const std::string& name,
                                            const RunStoreOptions& options = {});
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  // Groups writes atomically: BEGIN IMMEDIATE now, COMMIT in commit(), ROLLBACK when
  // destroyed uncommitted. Writes of this thread inside it join it; other threads wait.
  class Transaction {
   public:
    Transaction(Transaction&& other) noexcept;
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    void commit();

   private:
    friend class RunStore;
    explicit Transaction(RunStore& store);
    RunStore* store_;
    std::unique_lock<std::recursive_mutex> lock_;
  };
  [[nodiscard]] Transaction transaction();

  // ---- writing (each call is atomic on its own, or part of an open Transaction)
  void set_config(const std::string& key, const std::string& json);  // value must be JSON
  // Starts (or, when a stage of that name exists, resumes) a stage; returns its id.
  int64_t begin_stage(const std::string& name, const std::string& kind,
                      const std::string& config_json);
  void finish_stage(int64_t stage, const std::string& status);  // "done", "failed", ...
  void write_metrics(int64_t stage, int64_t step,
                     const std::vector<std::pair<std::string, double>>& metrics);
  // Replaces the step's samples, then applies the retention setting.
  void write_samples(int64_t stage, int64_t step, const std::vector<Sample>& samples);
  // One step's metrics and samples in one transaction (joins an open one).
  void write_step(int64_t stage, int64_t step,
                  const std::vector<std::pair<std::string, double>>& metrics,
                  const std::vector<Sample>& samples);
  void add_checkpoint(int64_t stage, int64_t step, const std::string& path);
  // level: "info", "warning" or "error".
  void add_event(std::optional<int64_t> stage, std::optional<int64_t> step,
                 const std::string& level, const std::string& kind, const std::string& message);

  // ---- reading (for tools; each call sees one consistent snapshot)
  std::optional<std::string> config(const std::string& key) const;
  std::vector<StageRecord> stages() const;
  std::vector<std::string> metric_names(int64_t stage) const;  // sorted
  // Points with step >= from_step, by step (a dashboard polls with its last step + 1).
  std::vector<MetricPoint> metric_series(int64_t stage, const std::string& name,
                                         int64_t from_step = INT64_MIN) const;
  std::optional<int64_t> latest_step(int64_t stage) const;         // highest step with metrics
  std::vector<int64_t> sample_steps(int64_t stage) const;          // steps that have samples
  std::vector<Sample> samples(int64_t stage, int64_t step) const;  // ordered by index
  std::vector<CheckpointRecord> checkpoints(int64_t stage) const;
  std::vector<EventRecord> events(std::optional<int64_t> stage = std::nullopt) const;

  // PRAGMA integrity_check: "ok" for a sound database.
  std::string integrity_check() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  void create_schema();
  void require_writable() const;
  void check_stage(int64_t stage);  // throws naming a stage id that does not exist
  template <typename F>
  void write(F&& body);  // runs body inside the open transaction or a new one

  std::filesystem::path path_;
  RunStoreOptions options_;
  std::unique_ptr<SqliteDb> db_;
  mutable std::recursive_mutex mutex_;
  bool in_transaction_ = false;
};

// The sample queries on a connection of the caller's own, for readers that answer from one read
// transaction of theirs (dashboard/run_reader.h); RunStore's readers use them too, so every
// reader maps rows to Sample alike. `source` names the database in errors.
std::vector<int64_t> read_sample_steps(SqliteDb& db, int64_t stage);
std::vector<Sample> read_samples(SqliteDb& db, int64_t stage, int64_t step, const std::string& source);

}  // namespace aha

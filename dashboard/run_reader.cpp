#include "dashboard/run_reader.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "core/json.h"
#include "core/reflection_words.h"
#include "core/sqlite_db.h"

namespace aha::dashboard {

const std::vector<std::string> kHeadlineMetrics = {"reward/total", "train/accuracy", "eval/accuracy",
                                                   "response/length_mean"};

namespace {

constexpr int kBusyTimeoutMs = 5000;  // only a WAL recovery by another connection waits here
constexpr size_t kIdlePerRun = 8;

}  // namespace

RunReader::RunReader(const std::filesystem::path& db_path)
    : path_(db_path), db_(std::make_unique<SqliteDb>(db_path, /*read_only=*/true, kBusyTimeoutMs)) {
  db_->exec("PRAGMA query_only=ON");
  const std::string version = db_->query_text("PRAGMA user_version");
  require(version == "1", db_path.string() + ": not an aha run database of schema version 1 (user_version " +
                              version + ")");
}

RunReader::~RunReader() = default;

// One read transaction: every SELECT in body sees the same committed state.
template <typename F>
auto RunReader::in_snapshot(F&& body) {
  db_->exec("BEGIN");
  try {
    auto result = body();
    db_->exec("COMMIT");
    return result;
  } catch (...) {
    try {
      db_->exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
}

RunSummary RunReader::summary() {
  return in_snapshot([&] {
    RunSummary run;
    auto config = db_->prepare("SELECT value FROM config WHERE key = 'recipe'");
    if (config.step()) {
      try {
        auto recipe = json::parse(config.get_text(0), "recipe");
        if (recipe.IsObject() && recipe.HasMember("name") && recipe["name"].IsString())
          run.recipe_name = recipe["name"].GetString();
        if (recipe.IsObject() && recipe.HasMember("schedule") && recipe["schedule"].IsObject() &&
            recipe["schedule"].HasMember("steps") && recipe["schedule"]["steps"].IsInt64())
          run.total_steps = recipe["schedule"]["steps"].GetInt64();
        if (recipe.IsObject() && recipe.HasMember("accuracy_reward") && recipe["accuracy_reward"].IsString())
          run.accuracy_reward = recipe["accuracy_reward"].GetString();
      } catch (const Error&) {
        // a recipe that does not parse shows as a run without name and total
      }
    }
    auto stages = db_->prepare("SELECT id, name, kind, status, started_at, finished_at FROM stages ORDER BY id");
    while (stages.step()) {
      StageSummary s;
      s.id = stages.get_int(0);
      s.name = stages.get_text(1);
      s.kind = stages.get_text(2);
      s.status = stages.get_text(3);
      s.started_at = stages.get_double(4);
      s.finished_at = stages.get_double(5);
      run.stages.push_back(std::move(s));
    }
    for (auto& s : run.stages) {
      s.updated_at = s.started_at;
      // INDEXED BY: without statistics the planner may walk the primary key (every metric of
      // the stage, 600,000 rows for a long run) instead of the (stage, step) index.
      auto last = db_->prepare(
          "SELECT step FROM metrics INDEXED BY metrics_by_step WHERE stage = ? ORDER BY step DESC LIMIT 1");
      last.bind(1, s.id);
      if (last.step()) s.last_step = last.get_int(0);
      if (s.last_step) {
        auto time = db_->prepare("SELECT time FROM metrics INDEXED BY metrics_by_step WHERE stage = ? AND step = ?");
        time.bind(1, s.id).bind(2, *s.last_step);
        while (time.step()) s.updated_at = std::max(s.updated_at, time.get_double(0));
      }
      for (const auto& name : kHeadlineMetrics) {
        auto q = db_->prepare("SELECT value FROM metrics WHERE stage = ? AND name = ? ORDER BY step DESC LIMIT 1");
        q.bind(1, s.id).bind(2, name);
        if (q.step()) s.headline[name] = q.get_double(0);
      }
    }
    return run;
  });
}

std::vector<StageSummary> RunReader::stage_list() {
  return in_snapshot([&] {
    std::vector<StageSummary> stages;
    auto q = db_->prepare("SELECT id, name, kind, status FROM stages ORDER BY id");
    while (q.step()) {
      StageSummary s;
      s.id = q.get_int(0);
      s.name = q.get_text(1);
      s.kind = q.get_text(2);
      s.status = q.get_text(3);
      stages.push_back(std::move(s));
    }
    return stages;
  });
}

std::vector<std::string> RunReader::metric_names(int64_t stage) {
  return in_snapshot([&] {
    std::vector<std::string> names;
    auto q = db_->prepare("SELECT name FROM metric_names WHERE stage = ? ORDER BY name");
    q.bind(1, stage);
    while (q.step()) names.push_back(q.get_text(0));
    return names;
  });
}

std::vector<MetricSeries> RunReader::metrics(int64_t stage, const std::vector<std::string>& names,
                                             int64_t since_step) {
  return in_snapshot([&] {
    std::vector<std::string> wanted = names;
    if (wanted.empty()) {
      auto q = db_->prepare("SELECT name FROM metric_names WHERE stage = ? ORDER BY name");
      q.bind(1, stage);
      while (q.step()) wanted.push_back(q.get_text(0));
    }
    std::vector<MetricSeries> out;
    for (const auto& name : wanted) {
      MetricSeries series{name, {}};
      auto q = db_->prepare("SELECT step, value, time FROM metrics WHERE stage = ? AND name = ? AND step >= ? ORDER BY step");
      q.bind(1, stage).bind(2, name).bind(3, since_step);
      while (q.step()) series.points.push_back({q.get_int(0), q.get_double(1), q.get_double(2)});
      out.push_back(std::move(series));
    }
    return out;
  });
}

std::vector<int64_t> RunReader::sample_steps(int64_t stage) {
  return in_snapshot([&] { return read_sample_steps(*db_, stage); });
}

std::vector<Sample> RunReader::samples(int64_t stage, int64_t step) {
  return in_snapshot([&] { return read_samples(*db_, stage, step, path_.string()); });
}

ReflectionSeries RunReader::reflection(int64_t stage, const std::vector<std::string>& words, int64_t since_step) {
  return in_snapshot([&] {
    ReflectionSeries out;
    auto q = db_->prepare("SELECT step, completion FROM samples WHERE stage = ? AND step >= ? ORDER BY step, idx");
    q.bind(1, stage).bind(2, since_step);
    int64_t completions = 0, with_word = 0, total_words = 0;
    auto close_step = [&] {
      if (completions == 0) return;
      out.rate.push_back(static_cast<double>(with_word) / completions);
      out.per_completion.push_back(static_cast<double>(total_words) / completions);
      completions = with_word = total_words = 0;
    };
    while (q.step()) {
      const int64_t step = q.get_int(0);
      if (out.steps.empty() || out.steps.back() != step) {
        close_step();
        out.steps.push_back(step);
      }
      const int64_t n = count_reflection_words(q.get_text(1), words);
      ++completions;
      with_word += n > 0;
      total_words += n;
    }
    close_step();
    return out;
  });
}

ReaderPool::Lease::~Lease() {
  if (!pool_ || !reader_) return;
  std::lock_guard lock(pool_->mutex_);
  auto& idle = pool_->idle_[path_];
  if (idle.size() < kIdlePerRun) idle.push_back(std::move(reader_));
}

ReaderPool::Lease ReaderPool::acquire(const std::filesystem::path& db_path) {
  {
    std::lock_guard lock(mutex_);
    auto& idle = idle_[db_path];
    if (!idle.empty()) {
      auto reader = std::move(idle.back());
      idle.pop_back();
      return Lease(this, db_path, std::move(reader));
    }
  }
  return Lease(this, db_path, std::make_unique<RunReader>(db_path));
}

}  // namespace aha::dashboard

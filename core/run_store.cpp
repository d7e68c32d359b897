#include "core/run_store.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/json.h"
#include "core/sqlite_db.h"

namespace aha {
namespace {

constexpr int64_t kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE config(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE stages(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, config TEXT NOT NULL,
  status TEXT NOT NULL, started_at REAL NOT NULL, finished_at REAL);
CREATE TABLE metrics(
  stage INTEGER NOT NULL REFERENCES stages(id), name TEXT NOT NULL, step INTEGER NOT NULL,
  value REAL, time REAL NOT NULL, PRIMARY KEY(stage, name, step)) WITHOUT ROWID;
CREATE INDEX metrics_by_step ON metrics(stage, step);
CREATE TABLE metric_names(
  stage INTEGER NOT NULL REFERENCES stages(id), name TEXT NOT NULL,
  PRIMARY KEY(stage, name)) WITHOUT ROWID;
CREATE TABLE samples(
  stage INTEGER NOT NULL REFERENCES stages(id), step INTEGER NOT NULL, idx INTEGER NOT NULL,
  group_index INTEGER NOT NULL, prompt TEXT NOT NULL, completion TEXT NOT NULL, reward REAL,
  reward_components TEXT NOT NULL, advantage REAL, length INTEGER NOT NULL,
  finish_reason TEXT NOT NULL, PRIMARY KEY(stage, step, idx));
CREATE TABLE checkpoints(
  stage INTEGER NOT NULL REFERENCES stages(id), step INTEGER NOT NULL, path TEXT NOT NULL,
  time REAL NOT NULL, PRIMARY KEY(stage, step));
CREATE TABLE events(
  id INTEGER PRIMARY KEY, time REAL NOT NULL, stage INTEGER REFERENCES stages(id),
  step INTEGER, level TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
)sql";

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

void check_metric_name(const std::string& db, const std::string& name) {
  bool ok = !name.empty() && name.find('/') != std::string::npos && name.front() != '/' &&
            name.back() != '/';
  for (char c : name) ok = ok && static_cast<unsigned char>(c) > ' ' && c != 0x7f;
  require(ok, db + ": metric name '" + name +
                  "' is not a namespaced name like 'train/kl' (no whitespace, at least one '/', "
                  "none at either end)");
}

// Components as a JSON object; non-finite values become null (JSON has no NaN).
std::string components_json(const std::vector<std::pair<std::string, double>>& components) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  for (const auto& [name, value] : components) {
    writer.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    if (std::isfinite(value))
      writer.Double(value);
    else
      writer.Null();
  }
  writer.EndObject();
  return json::text_of(buffer);
}

std::vector<std::pair<std::string, double>> parse_components(const std::string& text,
                                                             const std::string& what) {
  auto doc = json::parse(text, what);
  require(doc.IsObject(), what + ": reward_components is not a JSON object");
  std::vector<std::pair<std::string, double>> out;
  for (const auto& m : doc.GetObject())
    out.emplace_back(m.name.GetString(), m.value.IsNumber() ? m.value.GetDouble() : NAN);
  return out;
}

}  // namespace

namespace {

// A new run database is made whole under a temporary name, then linked into place: a reader
// polling the run directory (the dashboard, `aha runs`) either finds no run.db or one with its
// schema, never an empty file that is not yet an aha database. link() rather than rename():
// if another process created run.db meanwhile, theirs is kept and this copy is dropped.
void create_database_atomically(const std::filesystem::path& db_path, int busy_timeout_ms) {
  auto temp = db_path;
  temp += ".creating-" + std::to_string(::getpid());
  std::error_code ec;
  std::filesystem::remove(temp, ec);
  {
    SqliteDb fresh(temp, /*read_only=*/false, busy_timeout_ms);
    fresh.exec(kSchema);
    fresh.exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
  }
  const bool linked = ::link(temp.c_str(), db_path.c_str()) == 0;
  const int link_error = errno;
  if (!linked && link_error != EEXIST && !std::filesystem::exists(db_path)) {
    // A file system without hard links: rename, which cannot replace what is not there.
    std::filesystem::rename(temp, db_path, ec);
    require(!ec, db_path.string() + ": cannot create the run database: " + ec.message());
    return;
  }
  std::filesystem::remove(temp, ec);
}

}  // namespace

RunStore::RunStore(const std::filesystem::path& db_path, const RunStoreOptions& options)
    : path_(db_path), options_(options) {
  require(options.retention.keep_last_steps >= 0 && options.retention.keep_every >= 0,
          db_path.string() + ": retention keep_last_steps and keep_every must be >= 0");
  require(!options.read_only || std::filesystem::exists(db_path),
          db_path.string() + ": no such run database");
  if (!options.read_only && !std::filesystem::exists(db_path))
    create_database_atomically(db_path, options.busy_timeout_ms);
  db_ = std::make_unique<SqliteDb>(db_path, options.read_only, options.busy_timeout_ms);
  if (options.read_only) {
    db_->exec("PRAGMA query_only=ON");
  } else {
    std::string mode = db_->query_text("PRAGMA journal_mode=WAL");
    require(mode == "wal", path_.string() + ": cannot switch to WAL mode (got '" + mode + "')");
    db_->exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON");
    create_schema();
  }
  int64_t version = std::stoll(db_->query_text("PRAGMA user_version"));
  require(version == kSchemaVersion, path_.string() + ": run database schema version " +
                                         std::to_string(version) + ", this aha reads version " +
                                         std::to_string(kSchemaVersion) +
                                         (version == 0 ? " (not an aha run database)" : ""));
}

std::unique_ptr<RunStore> RunStore::open_run(const std::filesystem::path& runs_root,
                                             const std::string& name,
                                             const RunStoreOptions& options) {
  require(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
          "run name '" + name + "' must be a single directory name");
  auto dir = runs_root / name;
  if (!options.read_only) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    require(!ec, dir.string() + ": cannot create run directory: " + ec.message());
  }
  return std::make_unique<RunStore>(dir / "run.db", options);
}

RunStore::~RunStore() = default;

void RunStore::create_schema() {
  auto tx = transaction();
  int64_t version = std::stoll(db_->query_text("PRAGMA user_version"));
  if (version == 0) {
    db_->exec(kSchema);
    db_->exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
  }
  tx.commit();
}

void RunStore::check_stage(int64_t stage) {
  auto q = db_->prepare("SELECT 1 FROM stages WHERE id = ?");
  q.bind(1, stage);
  require(q.step(), path_.string() + ": no stage with id " + std::to_string(stage) +
                        " (call begin_stage first)");
}

void RunStore::require_writable() const {
  require(!options_.read_only, path_.string() + ": opened read-only, cannot write");
}

// ---- transactions

RunStore::Transaction::Transaction(RunStore& store) : store_(&store), lock_(store.mutex_) {
  store.db_->check_process();
  store.require_writable();
  require(!store.in_transaction_, store.path_.string() + ": a transaction is already open");
  store.db_->exec("BEGIN IMMEDIATE");
  store.in_transaction_ = true;
}

RunStore::Transaction::Transaction(Transaction&& other) noexcept
    : store_(other.store_), lock_(std::move(other.lock_)) {
  other.store_ = nullptr;
}

RunStore::Transaction::~Transaction() {
  if (!store_ || !store_->in_transaction_) return;
  store_->in_transaction_ = false;
  try {
    store_->db_->exec("ROLLBACK");
  } catch (const Error&) {
    // In a forked child, or the connection is gone: SQLite rolls back on its own.
  }
}

void RunStore::Transaction::commit() {
  require(store_ && store_->in_transaction_, "run store: commit without an open transaction");
  store_->db_->exec("COMMIT");
  store_->in_transaction_ = false;
  lock_.unlock();
}

RunStore::Transaction RunStore::transaction() { return Transaction(*this); }

template <typename F>
void RunStore::write(F&& body) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  db_->check_process();
  require_writable();
  if (in_transaction_) {
    body();
    return;
  }
  auto tx = transaction();
  body();
  tx.commit();
}

// ---- writing

void RunStore::set_config(const std::string& key, const std::string& json_text) {
  json::parse(json_text, path_.string() + " config '" + key + "'");
  write([&] {
    db_->prepare("INSERT OR REPLACE INTO config(key, value) VALUES(?, ?)")
        .bind(1, key)
        .bind(2, json_text)
        .run();
  });
}

int64_t RunStore::begin_stage(const std::string& name, const std::string& kind,
                              const std::string& config_json) {
  json::parse(config_json, path_.string() + " stage '" + name + "' config");
  int64_t id = 0;
  write([&] {
    {
      auto find = db_->prepare("SELECT id FROM stages WHERE name = ?");
      find.bind(1, name);
      if (find.step()) id = find.get_int(0);
    }
    if (id != 0) {
      db_->prepare("UPDATE stages SET status = 'running', finished_at = NULL WHERE id = ?")
          .bind(1, id)
          .run();
      return;
    }
    auto insert = db_->prepare(
        "INSERT INTO stages(name, kind, config, status, started_at) "
        "VALUES(?, ?, ?, 'running', ?) RETURNING id");
    insert.bind(1, name).bind(2, kind).bind(3, config_json).bind(4, now_seconds());
    insert.step();
    id = insert.get_int(0);
    insert.run();
  });
  return id;
}

void RunStore::finish_stage(int64_t stage, const std::string& status) {
  write([&] {
    db_->prepare("UPDATE stages SET status = ?, finished_at = ? WHERE id = ?")
        .bind(1, status)
        .bind(2, now_seconds())
        .bind(3, stage)
        .run();
    require(db_->changes() == 1, path_.string() + ": no stage with id " + std::to_string(stage));
  });
}

void RunStore::write_metrics(int64_t stage, int64_t step,
                             const std::vector<std::pair<std::string, double>>& metrics) {
  for (const auto& [name, value] : metrics) check_metric_name(path_.string(), name);
  double time = now_seconds();
  write([&] {
    check_stage(stage);
    for (const auto& [name, value] : metrics) {
      db_->prepare(
             "INSERT OR REPLACE INTO metrics(stage, name, step, value, time) "
             "VALUES(?, ?, ?, ?, ?)")
          .bind(1, stage)
          .bind(2, name)
          .bind(3, step)
          .bind(4, value)
          .bind(5, time)
          .run();
      db_->prepare("INSERT OR IGNORE INTO metric_names(stage, name) VALUES(?, ?)")
          .bind(1, stage)
          .bind(2, name)
          .run();
    }
  });
}

void RunStore::write_samples(int64_t stage, int64_t step, const std::vector<Sample>& samples) {
  write([&] {
    check_stage(stage);
    db_->prepare("DELETE FROM samples WHERE stage = ? AND step = ?")
        .bind(1, stage)
        .bind(2, step)
        .run();
    for (const auto& s : samples) {
      db_->prepare(
             "INSERT INTO samples(stage, step, idx, group_index, prompt, completion, reward, "
             "reward_components, advantage, length, finish_reason) "
             "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
          .bind(1, stage)
          .bind(2, step)
          .bind(3, s.index)
          .bind(4, s.group_index)
          .bind(5, s.prompt)
          .bind(6, s.completion)
          .bind(7, s.reward)
          .bind(8, components_json(s.reward_components))
          .bind(9, s.advantage)
          .bind(10, s.length)
          .bind(11, s.finish_reason)
          .run();
    }
    const auto& r = options_.retention;
    if (r.keep_last_steps > 0) {
      db_->prepare("DELETE FROM samples WHERE stage = ? AND step <= ? AND (? = 0 OR step % ? != 0)")
          .bind(1, stage)
          .bind(2, step - r.keep_last_steps)
          .bind(3, r.keep_every)
          .bind(4, r.keep_every)
          .run();
    }
  });
}

void RunStore::write_step(int64_t stage, int64_t step,
                          const std::vector<std::pair<std::string, double>>& metrics,
                          const std::vector<Sample>& samples) {
  write([&] {
    write_metrics(stage, step, metrics);
    write_samples(stage, step, samples);
  });
}

void RunStore::add_checkpoint(int64_t stage, int64_t step, const std::string& path) {
  write([&] {
    check_stage(stage);
    db_->prepare("INSERT OR REPLACE INTO checkpoints(stage, step, path, time) VALUES(?, ?, ?, ?)")
        .bind(1, stage)
        .bind(2, step)
        .bind(3, path)
        .bind(4, now_seconds())
        .run();
  });
}

void RunStore::add_event(std::optional<int64_t> stage, std::optional<int64_t> step,
                         const std::string& level, const std::string& kind,
                         const std::string& message) {
  require(level == "info" || level == "warning" || level == "error",
          path_.string() + ": event level '" + level + "' (known: info, warning, error)");
  write([&] {
    db_->prepare(
           "INSERT INTO events(time, stage, step, level, kind, message) VALUES(?, ?, ?, ?, ?, ?)")
        .bind(1, now_seconds())
        .bind(2, stage)
        .bind(3, step)
        .bind(4, level)
        .bind(5, kind)
        .bind(6, message)
        .run();
  });
}

// ---- reading

std::optional<std::string> RunStore::config(const std::string& key) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto q = db_->prepare("SELECT value FROM config WHERE key = ?");
  q.bind(1, key);
  if (!q.step()) return std::nullopt;
  return q.get_text(0);
}

std::vector<StageRecord> RunStore::stages() const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto q = db_->prepare(
      "SELECT id, name, kind, config, status, started_at, finished_at FROM stages ORDER BY id");
  std::vector<StageRecord> out;
  while (q.step())
    out.push_back({q.get_int(0), q.get_text(1), q.get_text(2), q.get_text(3), q.get_text(4),
                   q.get_double(5), q.get_double(6)});
  return out;
}

std::vector<std::string> RunStore::metric_names(int64_t stage) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto q = db_->prepare("SELECT name FROM metric_names WHERE stage = ? ORDER BY name");
  q.bind(1, stage);
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.get_text(0));
  return out;
}

std::vector<MetricPoint> RunStore::metric_series(int64_t stage, const std::string& name,
                                                 int64_t from_step) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto q = db_->prepare(
      "SELECT step, value, time FROM metrics WHERE stage = ? AND name = ? AND step >= ? "
      "ORDER BY step");
  q.bind(1, stage).bind(2, name).bind(3, from_step);
  std::vector<MetricPoint> out;
  while (q.step()) out.push_back({q.get_int(0), q.get_double(1), q.get_double(2)});
  return out;
}

std::optional<int64_t> RunStore::latest_step(int64_t stage) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto q = db_->prepare("SELECT MAX(step) FROM metrics WHERE stage = ?");
  q.bind(1, stage);
  if (!q.step() || q.is_null(0)) return std::nullopt;
  return q.get_int(0);
}

std::vector<int64_t> RunStore::sample_steps(int64_t stage) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  return read_sample_steps(*db_, stage);
}

std::vector<Sample> RunStore::samples(int64_t stage, int64_t step) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  return read_samples(*db_, stage, step, path_.string());
}

std::vector<CheckpointRecord> RunStore::checkpoints(int64_t stage) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto q = db_->prepare("SELECT step, path, time FROM checkpoints WHERE stage = ? ORDER BY step");
  q.bind(1, stage);
  std::vector<CheckpointRecord> out;
  while (q.step()) out.push_back({q.get_int(0), q.get_text(1), q.get_double(2)});
  return out;
}

std::vector<EventRecord> RunStore::events(std::optional<int64_t> stage) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  auto q = db_->prepare(
      "SELECT id, time, stage, step, level, kind, message FROM events "
      "WHERE ?1 IS NULL OR stage = ?1 ORDER BY id");
  q.bind(1, stage);
  std::vector<EventRecord> out;
  while (q.step()) {
    EventRecord e;
    e.id = q.get_int(0);
    e.time = q.get_double(1);
    if (!q.is_null(2)) e.stage = q.get_int(2);
    if (!q.is_null(3)) e.step = q.get_int(3);
    e.level = q.get_text(4);
    e.kind = q.get_text(5);
    e.message = q.get_text(6);
    out.push_back(std::move(e));
  }
  return out;
}

std::string RunStore::integrity_check() const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  return db_->query_text("PRAGMA integrity_check");
}

std::vector<int64_t> read_sample_steps(SqliteDb& db, int64_t stage) {
  auto q = db.prepare("SELECT DISTINCT step FROM samples WHERE stage = ? ORDER BY step");
  q.bind(1, stage);
  std::vector<int64_t> out;
  while (q.step()) out.push_back(q.get_int(0));
  return out;
}

std::vector<Sample> read_samples(SqliteDb& db, int64_t stage, int64_t step, const std::string& source) {
  auto q = db.prepare(
      "SELECT idx, group_index, prompt, completion, reward, reward_components, advantage, "
      "length, finish_reason FROM samples WHERE stage = ? AND step = ? ORDER BY idx");
  q.bind(1, stage).bind(2, step);
  std::vector<Sample> out;
  while (q.step()) {
    Sample s;
    s.index = q.get_int(0);
    s.group_index = q.get_int(1);
    s.prompt = q.get_text(2);
    s.completion = q.get_text(3);
    s.reward = q.get_double(4);
    s.reward_components = parse_components(q.get_text(5), source + " sample " + std::to_string(s.index));
    s.advantage = q.get_double(6);
    s.length = q.get_int(7);
    s.finish_reason = q.get_text(8);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace aha

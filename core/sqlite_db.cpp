#include "core/sqlite_db.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cmath>

#include "core/error.h"

namespace aha {

SqliteStatement::SqliteStatement(sqlite3_stmt* stmt, const std::string* db_name)
    : stmt_(stmt), db_name_(db_name) {}

SqliteStatement::~SqliteStatement() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void SqliteStatement::fail(const char* what) const {
  sqlite3* db = sqlite3_db_handle(stmt_);
  throw Error(*db_name_ + ": " + what + " failed: " + sqlite3_errmsg(db) +
              " (SQL: " + sqlite3_sql(stmt_) + ")");
}

SqliteStatement& SqliteStatement::bind(int index, int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) fail("bind");
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, double value) {
  if (std::isnan(value)) return bind_null(index);
  if (sqlite3_bind_double(stmt_, index, value) != SQLITE_OK) fail("bind");
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, std::string_view text) {
  if (sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8) !=
      SQLITE_OK)
    fail("bind");
  return *this;
}

SqliteStatement& SqliteStatement::bind_null(int index) {
  if (sqlite3_bind_null(stmt_, index) != SQLITE_OK) fail("bind");
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, const std::optional<int64_t>& value) {
  return value ? bind(index, *value) : bind_null(index);
}

bool SqliteStatement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail("step");
}

void SqliteStatement::run() {
  while (step()) {
  }
}

bool SqliteStatement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t SqliteStatement::get_int(int column) const { return sqlite3_column_int64(stmt_, column); }

double SqliteStatement::get_double(int column) const {
  return is_null(column) ? NAN : sqlite3_column_double(stmt_, column);
}

std::string SqliteStatement::get_text(int column) const {
  auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  return text ? std::string(text, sqlite3_column_bytes(stmt_, column)) : std::string();
}

SqliteDb::SqliteDb(const std::filesystem::path& path, bool read_only, int busy_timeout_ms)
    : name_(path.string()), pid_(::getpid()) {
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;  // the owner serialises access
  int rc = sqlite3_open_v2(name_.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(name_ + ": cannot open database" + (read_only ? " read-only" : "") + ": " +
                message);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, busy_timeout_ms);
}

SqliteDb::~SqliteDb() {
  if (!db_ || ::getpid() != pid_) return;
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

void SqliteDb::check_process() const {
  if (::getpid() != pid_)
    throw Error(name_ + ": database connection opened in process " + std::to_string(pid_) +
                " used in forked process " + std::to_string(::getpid()) +
                "; open a new connection after fork()");
}

void SqliteDb::exec(const std::string& sql) {
  check_process();
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(db_);
    sqlite3_free(error);
    throw Error(name_ + ": " + message + " (SQL: " + sql + ")");
  }
}

SqliteStatement SqliteDb::prepare(const std::string& sql) {
  check_process();
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK)
      throw Error(name_ + ": cannot prepare: " + sqlite3_errmsg(db_) + " (SQL: " + sql + ")");
    it = statements_.emplace(sql, stmt).first;
  }
  return SqliteStatement(it->second, &name_);
}

std::string SqliteDb::query_text(const std::string& sql) {
  auto stmt = prepare(sql);
  return stmt.step() ? stmt.get_text(0) : std::string();
}

int64_t SqliteDb::changes() const { return sqlite3_changes64(db_); }

}  // namespace aha

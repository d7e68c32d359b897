// A thin RAII layer over the SQLite C API for aha's databases (the run store): one connection
// with cached prepared statements, errors as aha::Error naming the database file and the SQL,
// and a guard against using a connection in a process forked from the one that opened it
// (SQLite forbids carrying a connection across fork(); the sandbox forks).
//
// Not thread-safe: the owner serialises access (RunStore holds a mutex).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace aha {

class SqliteStatement {
 public:
  SqliteStatement(sqlite3_stmt* stmt, const std::string* db_name);
  ~SqliteStatement();  // resets the statement and clears its bindings for reuse
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Parameters are 1-based, as in SQLite. A non-finite double NaN binds as NULL (SQLite
  // cannot store NaN); +-Inf are stored as such.
  SqliteStatement& bind(int index, int64_t value);
  SqliteStatement& bind(int index, double value);
  SqliteStatement& bind(int index, std::string_view text);
  SqliteStatement& bind_null(int index);
  SqliteStatement& bind(int index, const std::optional<int64_t>& value);

  // Advances: true while a row is available, false when done. Throws on error.
  bool step();
  void run();  // steps to completion, for statements without result rows

  bool is_null(int column) const;
  int64_t get_int(int column) const;
  double get_double(int column) const;  // NULL reads as NaN
  std::string get_text(int column) const;

 private:
  [[noreturn]] void fail(const char* what) const;
  sqlite3_stmt* stmt_;
  const std::string* db_name_;
};

class SqliteDb {
 public:
  // Opens path read-write (creating it) or read-only; sets the busy timeout. Throws
  // aha::Error naming the path.
  SqliteDb(const std::filesystem::path& path, bool read_only, int busy_timeout_ms);
  ~SqliteDb();  // closes, except in a forked child (where closing could disturb the parent)
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements without results.
  void exec(const std::string& sql);
  // A cached prepared statement for sql, reset for a new use.
  SqliteStatement prepare(const std::string& sql);
  // The single text value of a pragma query, e.g. "PRAGMA journal_mode=WAL" -> "wal".
  std::string query_text(const std::string& sql);

  int64_t changes() const;
  const std::string& name() const { return name_; }

  // Throws aha::Error when called in a process other than the one that opened the database.
  void check_process() const;

 private:
  sqlite3* db_ = nullptr;
  std::string name_;
  int pid_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace aha

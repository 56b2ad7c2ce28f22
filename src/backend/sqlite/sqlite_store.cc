// sqlite_store.cc — the storage contract on one SQLite file (shell). See
// sqlite_store.h for the layout, the pragmas, threading and the error rules.
#include "backend/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <utility>

#include "backend/sqlite/sqlite_status.h"

namespace cairn::backend {
namespace {

using store::Batch;
using store::BlobPut;
using store::CommitInfo;
using store::Entry;
using store::Mutation;
using store::Precondition;
using store::RangePage;
using store::Version;

// The schema, as an ordered journal of steps. Append only.
constexpr Migration kMigrations[] = {
    {1, "kv, meta and blobs",
     // kv: keys and values are BLOBs, compared with memcmp (the contract's
     // bytewise order); WITHOUT ROWID stores rows in key order in one b-tree.
     // meta 'version': the store-wide counter stamped on every mutating
     // commit. blobs: content-addressed, in this file so that a blob commits
     // atomically with the keys that reference it.
     "CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL)"
     " WITHOUT ROWID;"
     "CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER);"
     "INSERT INTO meta(name, value) VALUES ('version', 0);"
     "CREATE TABLE blobs(id TEXT PRIMARY KEY, bytes BLOB NOT NULL) WITHOUT ROWID;"},
};

constexpr const char* kJournalDdl =
    "CREATE TABLE IF NOT EXISTS _migrations(id INTEGER PRIMARY KEY, name TEXT, applied_at "
    "INTEGER)";

// Room for SQLite's record header and the other columns of a row, beside the
// largest key/value/blob, when checking limits against SQLITE_LIMIT_LENGTH.
constexpr std::size_t kRowOverheadBytes = 256;

// Resets a statement and clears its bindings when the scope ends, so a
// cached statement never stays active (which would block COMMIT/ROLLBACK)
// nor keeps pointers to the caller's buffers.
class StmtScope {
 public:
  explicit StmtScope(sqlite3_stmt* stmt) : stmt_(stmt) { CAIRN_ASSERT(stmt_ != nullptr); }
  ~StmtScope() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

// Binds `bytes` as a BLOB — never as NULL, also when empty (a null pointer
// would bind NULL), and never as TEXT (TEXT sorts before every BLOB).
int bind_bytes(sqlite3_stmt* stmt, int index, std::string_view bytes) {
  return sqlite3_bind_blob64(stmt, index, bytes.empty() ? "" : bytes.data(), bytes.size(),
                             SQLITE_STATIC);
}

int bind_text(sqlite3_stmt* stmt, int index, std::string_view text) {
  return sqlite3_bind_text64(stmt, index, text.empty() ? "" : text.data(), text.size(),
                             SQLITE_STATIC, SQLITE_UTF8);
}

int bind_version(sqlite3_stmt* stmt, int index, Version v) {
  CAIRN_ASSERT(v <= static_cast<Version>(std::numeric_limits<std::int64_t>::max()));
  return sqlite3_bind_int64(stmt, index, static_cast<sqlite3_int64>(v));
}

std::string column_bytes(sqlite3_stmt* stmt, int col) {
  // column_blob first, then column_bytes (the order SQLite documents).
  const void* p = sqlite3_column_blob(stmt, col);
  const int n = sqlite3_column_bytes(stmt, col);
  if (p == nullptr || n <= 0) return std::string();
  return std::string(static_cast<const char*>(p), static_cast<std::size_t>(n));
}

std::string column_text(sqlite3_stmt* stmt, int col) {
  const unsigned char* p = sqlite3_column_text(stmt, col);
  const int n = sqlite3_column_bytes(stmt, col);
  if (p == nullptr || n <= 0) return std::string();
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

Version column_version(sqlite3_stmt* stmt, int col) {
  const sqlite3_int64 v = sqlite3_column_int64(stmt, col);
  CAIRN_ASSERT(v >= 0);
  return static_cast<Version>(v);
}

// The smallest byte string greater than every string starting with
// `prefix`, or nullopt when there is none (empty or all-0xFF prefix).
std::optional<std::string> prefix_successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xFF) s.pop_back();
  if (s.empty()) return std::nullopt;
  s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Maps an SQLite result code to a cairn Status (see sqlite_status.h).
Status map_error(sqlite3* db, int rc, std::string_view what) {
  return sqlite_status(db, rc, "sqlite: " + std::string(what));
}

// Runs SQL without results (pragmas, transaction control, migrations).
Status exec(sqlite3* db, const std::string& sql, std::string_view what) {
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return map_error(db, rc, what);
  return Status();
}

// The first column of the first row of a one-off statement, as text
// (nullopt when there is no row).
Result<std::optional<std::string>> query_text(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr);
  if (rc != SQLITE_OK) return map_error(db, rc, sql);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
  rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return map_error(db, rc, sql);
  return std::optional<std::string>(column_text(stmt.get(), 0));
}

const char* const kStmtSql[] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SELECT value, version FROM kv WHERE key = ?1",
    "SELECT version FROM kv WHERE key = ?1",
    "SELECT key, value, version FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
    "SELECT key, value, version FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?2",
    "INSERT INTO kv(key, value, version) VALUES (?1, ?2, ?3)"
    " ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version",
    "DELETE FROM kv WHERE key = ?1",
    "INSERT OR IGNORE INTO blobs(id, bytes) VALUES (?1, ?2)",
    "SELECT bytes FROM blobs WHERE id = ?1",
    "SELECT value FROM meta WHERE name = 'version'",
    "UPDATE meta SET value = ?1 WHERE name = 'version'",
};

}  // namespace

std::span<const Migration> builtin_migrations() {
  return kMigrations;
}

void SqliteStore::DbClose::operator()(sqlite3* db) const noexcept {
  sqlite3_close_v2(db);
}

void SqliteStore::StmtFinalize::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

SqliteStore::SqliteStore(Token, std::string path, store::StoreLimits limits, bool read_only)
    : path_(std::move(path)), limits_(limits), read_only_(read_only) {}

SqliteStore::~SqliteStore() = default;

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(std::string path,
                                                       store::StoreLimits limits) {
  return open_impl(std::move(path), limits, SqliteOptions{}, /*read_only=*/false);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(std::string path, store::StoreLimits limits,
                                                       const SqliteOptions& options) {
  return open_impl(std::move(path), limits, options, /*read_only=*/false);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open_reader(std::string path,
                                                              store::StoreLimits limits,
                                                              const SqliteOptions& options) {
  return open_impl(std::move(path), limits, options, /*read_only=*/true);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open_impl(std::string path,
                                                            store::StoreLimits limits,
                                                            const SqliteOptions& options,
                                                            bool read_only) {
  auto s = std::make_unique<SqliteStore>(Token{}, std::move(path), limits, read_only);
  // NOMUTEX: one thread uses a connection at a time (see the header), so
  // SQLite's per-connection mutex would only cost time.
  const int flags = SQLITE_OPEN_NOMUTEX |
                    (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(s->path_.c_str(), &raw, flags,
                                 options.vfs.empty() ? nullptr : options.vfs.c_str());
  s->db_.reset(raw);  // closed on every path, also when opening failed
  if (rc != SQLITE_OK) return map_error(raw, rc, "open " + s->path_);

  CAIRN_RETURN_IF_ERROR(s->configure(options, read_only));
  const std::span<const Migration> migrations =
      options.migrations.empty() ? builtin_migrations() : options.migrations;
  if (read_only) {
    CAIRN_RETURN_IF_ERROR(s->check_schema(migrations, /*allow_pending=*/false).take_status());
  } else {
    CAIRN_RETURN_IF_ERROR(s->migrate(migrations));
  }
  CAIRN_RETURN_IF_ERROR(s->prepare_statements());
  return s;
}

Status SqliteStore::configure(const SqliteOptions& options, bool read_only) {
  sqlite3* db = db_.get();
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);

  // The limits must fit what this SQLite build stores in one value and row.
  const auto length_max = static_cast<std::size_t>(sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1));
  if (limits_.key_bytes_max + limits_.value_bytes_max + kRowOverheadBytes > length_max ||
      limits_.blob_bytes_max + kRowOverheadBytes > length_max) {
    return invalid("store limits exceed SQLite's SQLITE_LIMIT_LENGTH of " +
                       std::to_string(length_max) + " bytes",
                   "limits_too_large");
  }

  // WAL: readers never block the writer nor the writer them, and a commit is
  // one append + fsync. A reader cannot switch modes; it only checks.
  CAIRN_ASSIGN_OR_RETURN(
      std::optional<std::string> mode,
      query_text(db, read_only ? "PRAGMA journal_mode" : "PRAGMA journal_mode=WAL"));
  if (mode.value_or("") != "wal") {
    return unavailable(
        "SQLite did not enable WAL on " + path_ + " (journal_mode is '" + mode.value_or("") + "')",
        "wal_unavailable");
  }
  if (!read_only) {
    // FULL: the WAL is fsynced at every commit, so an ok commit is on disk.
    CAIRN_RETURN_IF_ERROR(exec(db, "PRAGMA synchronous=FULL", "set synchronous"));
    CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> sync, query_text(db, "PRAGMA synchronous"));
    if (sync.value_or("") != "2") {
      return unavailable(
          "SQLite did not accept synchronous=FULL (it is '" + sync.value_or("") + "')",
          "sync_unavailable");
    }
  }
  CAIRN_RETURN_IF_ERROR(exec(db, "PRAGMA foreign_keys=ON", "set foreign_keys"));
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> fk, query_text(db, "PRAGMA foreign_keys"));
  if (fk.value_or("") != "1") {
    return unavailable("SQLite did not accept foreign_keys=ON", "foreign_keys_unavailable");
  }
  if (read_only) CAIRN_RETURN_IF_ERROR(exec(db, "PRAGMA query_only=ON", "set query_only"));
  return Status();
}

Result<std::size_t> SqliteStore::check_schema(std::span<const Migration> migrations,
                                              bool allow_pending) {
  sqlite3* db = db_.get();
  CAIRN_ASSIGN_OR_RETURN(
      std::optional<std::string> has_journal,
      query_text(db,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
                 "'_migrations'"));
  std::size_t applied = 0;
  if (has_journal.value_or("0") != "0") {
    sqlite3_stmt* raw = nullptr;
    int rc =
        sqlite3_prepare_v2(db, "SELECT id, name FROM _migrations ORDER BY id", -1, &raw, nullptr);
    if (rc != SQLITE_OK) return map_error(db, rc, "read the migration journal");
    StmtPtr stmt(raw);
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      const std::int64_t id = sqlite3_column_int64(stmt.get(), 0);
      const std::string name = column_text(stmt.get(), 1);
      if (id > static_cast<std::int64_t>(migrations.size())) {
        return unavailable(path_ + " has schema migration " + std::to_string(id) + " '" + name +
                               "', which this binary does not know (the database is newer)",
                           "schema_too_new");
      }
      if (id != static_cast<std::int64_t>(applied) + 1 || name != migrations[applied].name) {
        return internal_error(
            path_ + ": migration journal entry " + std::to_string(id) + " '" + name +
                "' does not match this binary's migration " + std::to_string(applied + 1) + " '" +
                (applied < migrations.size() ? std::string(migrations[applied].name)
                                             : std::string()) +
                "'",
            "schema_mismatch");
      }
      ++applied;
    }
    if (rc != SQLITE_DONE) return map_error(db, rc, "read the migration journal");
  }
  if (!allow_pending && applied != migrations.size()) {
    return unavailable(path_ + " is not an initialised cairn database (" + std::to_string(applied) +
                           " of " + std::to_string(migrations.size()) +
                           " migrations applied); open it for writing first",
                       "schema_pending");
  }
  return applied;
}

Status SqliteStore::migrate(std::span<const Migration> migrations) {
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    CAIRN_ASSERT_MSG(migrations[i].id == static_cast<std::int64_t>(i) + 1,
                     "migration ids must be 1, 2, 3, ... in order");
  }
  sqlite3* db = db_.get();
  CAIRN_RETURN_IF_ERROR(exec(db, kJournalDdl, "create the migration journal"));
  CAIRN_ASSIGN_OR_RETURN(const std::size_t applied,
                         check_schema(migrations, /*allow_pending=*/true));

  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT name FROM _migrations WHERE id = ?1", -1, &raw, nullptr);
  if (rc != SQLITE_OK) return map_error(db, rc, "prepare the migration journal lookup");
  StmtPtr lookup(raw);
  rc = sqlite3_prepare_v2(db, "INSERT INTO _migrations(id, name, applied_at) VALUES (?1, ?2, ?3)",
                          -1, &raw, nullptr);
  if (rc != SQLITE_OK) return map_error(db, rc, "prepare the migration journal insert");
  StmtPtr record(raw);

  // Only pending steps take the write lock: opening a current database
  // writes nothing and never waits for another writer.
  for (const Migration& m : migrations.subspan(applied)) {
    const std::string what = "migration " + std::to_string(m.id) + " '" + std::string(m.name) + "'";
    // The write lock first, then the check: another process opening the same
    // file may have applied this step since check_schema() read the journal.
    CAIRN_RETURN_IF_ERROR(exec(db, "BEGIN IMMEDIATE", what + ": begin"));
    Status st;
    bool done = false;
    {
      StmtScope q(lookup.get());
      sqlite3_bind_int64(q.get(), 1, m.id);
      rc = sqlite3_step(q.get());
      if (rc == SQLITE_ROW) {
        done = true;
        if (column_text(q.get(), 0) != m.name) {
          st = internal_error(what + " is recorded under another name", "schema_mismatch");
        }
      } else if (rc != SQLITE_DONE) {
        st = map_error(db, rc, what + ": read the journal");
      }
    }
    if (st.ok() && !done) st = exec(db, std::string(m.sql), what);
    if (st.ok() && !done) {
      StmtScope ins(record.get());
      sqlite3_bind_int64(ins.get(), 1, m.id);
      bind_text(ins.get(), 2, m.name);
      sqlite3_bind_int64(ins.get(), 3, unix_ms_now());
      rc = sqlite3_step(ins.get());
      if (rc != SQLITE_DONE) st = map_error(db, rc, what + ": record it");
    }
    if (st.ok()) st = exec(db, "COMMIT", what + ": commit");
    if (!st.ok()) {
      // Nothing of this step (neither its changes nor its journal row)
      // survives; the steps before it stay applied and recorded.
      if (sqlite3_get_autocommit(db) == 0) exec(db, "ROLLBACK", what + ": rollback").ignore();
      return st;
    }
    if (!done) migrations_applied_.push_back(m.id);
  }
  return Status();
}

Status SqliteStore::prepare_statements() {
  static_assert(std::size(kStmtSql) == kStmtCount);
  for (int i = 0; i < kStmtCount; ++i) {
    sqlite3_stmt* raw = nullptr;
    const int rc =
        sqlite3_prepare_v3(db_.get(), kStmtSql[i], -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (rc != SQLITE_OK) return map_error(db_.get(), rc, kStmtSql[i]);
    stmts_[i].reset(raw);
  }
  return Status();
}

Status SqliteStore::error(int rc, std::string_view what) const {
  return map_error(db_.get(), rc, what);
}

Result<std::optional<Entry>> SqliteStore::get(std::string_view key) {
  StmtScope q(stmts_[kGet].get());
  int rc = bind_bytes(q.get(), 1, key);
  if (rc != SQLITE_OK) return error(rc, "get: bind");
  rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE) return std::optional<Entry>();
  if (rc != SQLITE_ROW) return error(rc, "get");
  return std::optional<Entry>(
      Entry{std::string(key), column_bytes(q.get(), 0), column_version(q.get(), 1)});
}

Result<RangePage> SqliteStore::range(std::string_view prefix, std::string_view after,
                                     std::size_t limit) {
  if (limit == 0 || limit > limits_.range_limit_max) {
    return invalid("range limit must be in 1.." + std::to_string(limits_.range_limit_max),
                   "bad_limit");
  }
  // One inclusive lower bound: the prefix itself, or the smallest key above
  // `after` (after + "\0") when `after` is not below the prefix.
  std::string lo;
  if (after.empty() || after < prefix) {
    lo = prefix;
  } else {
    lo.reserve(after.size() + 1);
    lo = after;
    lo.push_back('\0');
  }
  const std::optional<std::string> hi = prefix_successor(prefix);
  StmtScope q(stmts_[hi ? kRangeBounded : kRangeOpen].get());
  int rc = bind_bytes(q.get(), 1, lo);
  int limit_index = 2;
  if (rc == SQLITE_OK && hi) {
    rc = bind_bytes(q.get(), 2, *hi);
    limit_index = 3;
  }
  // One row past the page tells whether there is more.
  if (rc == SQLITE_OK) {
    rc = sqlite3_bind_int64(q.get(), limit_index, static_cast<sqlite3_int64>(limit) + 1);
  }
  if (rc != SQLITE_OK) return error(rc, "range: bind");
  RangePage page;
  page.entries.reserve(limit < 64 ? limit : 64);
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    if (page.entries.size() == limit) {
      page.more = true;
      break;
    }
    page.entries.push_back(
        Entry{column_bytes(q.get(), 0), column_bytes(q.get(), 1), column_version(q.get(), 2)});
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return error(rc, "range");
  return page;
}

Result<std::optional<std::string>> SqliteStore::get_blob(std::string_view id) {
  StmtScope q(stmts_[kGetBlob].get());
  int rc = bind_text(q.get(), 1, id);
  if (rc != SQLITE_OK) return error(rc, "get_blob: bind");
  rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return error(rc, "get_blob");
  return std::optional<std::string>(column_bytes(q.get(), 0));
}

Result<Version> SqliteStore::last_version() {
  return read_counter();
}

Result<Version> SqliteStore::read_counter() {
  StmtScope q(stmts_[kGetCounter].get());
  const int rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE) {
    return internal_error(path_ + ": meta holds no 'version' row", "storage_corrupt");
  }
  if (rc != SQLITE_ROW) return error(rc, "read the version counter");
  return column_version(q.get(), 0);
}

Result<Version> SqliteStore::version_of(std::string_view key) {
  StmtScope q(stmts_[kVersionOf].get());
  int rc = bind_bytes(q.get(), 1, key);
  if (rc != SQLITE_OK) return error(rc, "precondition: bind");
  rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE) return store::kAbsent;
  if (rc != SQLITE_ROW) return error(rc, "precondition");
  return column_version(q.get(), 0);
}

void SqliteStore::rollback_quietly() {
  if (sqlite3_get_autocommit(db_.get()) != 0) return;  // no transaction open
  StmtScope q(stmts_[kRollback].get());
  sqlite3_step(q.get());
}

Result<CommitInfo> SqliteStore::commit(const Batch& batch) {
  CAIRN_RETURN_IF_ERROR(validate_batch(batch, limits_));
  if (read_only_) {
    return forbidden("commit on a read-only SQLite connection (" + path_ + ")", "read_only");
  }
  if (batch.empty()) {
    CAIRN_ASSIGN_OR_RETURN(Version v, read_counter());
    return CommitInfo{v};
  }
  // A transaction left open by an earlier failure would make BEGIN fail.
  rollback_quietly();
  {
    StmtScope q(stmts_[kBegin].get());
    const int rc = sqlite3_step(q.get());
    if (rc != SQLITE_DONE) return error(rc, "begin");  // busy: another writer holds the lock
  }
  Result<CommitInfo> out = apply(batch);
  if (!out.ok()) {
    rollback_quietly();
    return out;
  }
  Status failed;
  {
    StmtScope q(stmts_[kCommit].get());
    const int rc = sqlite3_step(q.get());
    if (rc == SQLITE_DONE) return out;
    failed = error(rc, "commit");
  }
  if (sqlite3_get_autocommit(db_.get()) == 0) {
    // SQLite kept the transaction open: nothing reached the file.
    rollback_quietly();
    return failed;
  }
  // SQLite ended the transaction itself while committing (an I/O error or a
  // full disk writing or syncing the WAL): the commit record may be on disk.
  Json details = failed.details();
  return outcome_unknown("commit of version " + std::to_string(out->version) +
                             " may or may not be durable: " + failed.message(),
                         "commit_unknown", std::move(details));
}

Result<CommitInfo> SqliteStore::apply(const Batch& batch) {
  std::vector<std::string> failed;
  for (const Precondition& p : batch.preconditions) {
    CAIRN_ASSIGN_OR_RETURN(Version now, version_of(p.key));
    const bool holds =
        p.kind == Precondition::Kind::kAbsent ? now == store::kAbsent : now == p.version;
    if (!holds) failed.push_back(p.key);
  }
  if (!failed.empty()) return store::precondition_failed(failed);

  CAIRN_ASSIGN_OR_RETURN(Version version, read_counter());
  if (!batch.mutations.empty()) {
    ++version;
    for (const Mutation& m : batch.mutations) {
      const bool put = m.op == Mutation::Op::kPut;
      StmtScope q(stmts_[put ? kPut : kDelete].get());
      int rc = bind_bytes(q.get(), 1, m.key);
      if (put && rc == SQLITE_OK) rc = bind_bytes(q.get(), 2, m.value);
      if (put && rc == SQLITE_OK) rc = bind_version(q.get(), 3, version);
      if (rc == SQLITE_OK) rc = sqlite3_step(q.get());
      if (rc != SQLITE_DONE) return error(rc, put ? "put" : "delete");
    }
    StmtScope q(stmts_[kSetCounter].get());
    int rc = bind_version(q.get(), 1, version);
    if (rc == SQLITE_OK) rc = sqlite3_step(q.get());
    if (rc != SQLITE_DONE) return error(rc, "advance the version counter");
    if (sqlite3_changes(db_.get()) != 1) {
      return internal_error(path_ + ": meta holds no 'version' row", "storage_corrupt");
    }
  }
  for (const BlobPut& b : batch.blobs) {
    StmtScope q(stmts_[kPutBlob].get());
    int rc = bind_text(q.get(), 1, b.id);
    if (rc == SQLITE_OK) rc = bind_bytes(q.get(), 2, b.bytes);
    if (rc == SQLITE_OK) rc = sqlite3_step(q.get());
    if (rc != SQLITE_DONE) return error(rc, "put blob");
  }
  return CommitInfo{version};
}

Result<std::string> SqliteStore::pragma(std::string_view name) {
  if (name.empty()) return invalid("pragma name must not be empty");
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return invalid("pragma name must be [a-z_]+");
  }
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> v,
                         query_text(db_.get(), "PRAGMA " + std::string(name)));
  return v.value_or("");
}

}  // namespace cairn::backend

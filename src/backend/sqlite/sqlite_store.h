// sqlite_store.h — the embedded default backend: the storage contract
// (store/store.h) on one SQLite database file (shell: does file I/O).
//
// File layout: one database file, in WAL mode, holding
//   _migrations(id, name, applied_at)  the schema journal (see Migration)
//   kv(key, value, version)            the ordered map; keys are BLOBs, which
//                                      SQLite compares with memcmp, so range
//                                      order is the contract's bytewise order
//   meta(name, value)                  'version' = the store-wide counter
//   blobs(id, bytes)                   content-addressed blobs
// Blobs live in the same file as the keys on purpose: one file is one fsync
// domain, so a blob and the keys that reference it commit in one transaction
// (a crash can never leave a key pointing at a missing blob, and no orphan
// files need collecting). blob_bytes_max (64 MiB) keeps such rows to a
// bounded chain of overflow pages.
//
// Durability: journal_mode=WAL with synchronous=FULL, so a commit that
// returned ok has been fsynced; open() verifies both pragmas took effect and
// fails `unavailable` otherwise. A commit is one BEGIN IMMEDIATE transaction.
//
// Errors (see commit() for the outcome_unknown rule): SQLite's codes map as
// sqlite_status.h says — BUSY/LOCKED, FULL, IOERR, CANTOPEN, NOMEM, … →
// unavailable; CORRUPT, CONSTRAINT, MISUSE and SQL errors → internal.
//
// Threading: a SqliteStore (its connection and its cached statements) is used
// by one thread at a time — the engine's commit thread. It may be handed to
// another thread, never shared. Readers on other threads (HTTP reads, the
// CLI) open their own connection with open_reader(): WAL lets them read a
// committed snapshot per call while the writer commits; commit() on a reader
// returns `forbidden`. Writes from several processes are serialised by
// SQLite's write lock (a second writer waits up to the busy timeout, then
// gets `unavailable`), but the engine assumes it is the only writer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/status.h"
#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace cairn::backend {

// One schema step. The list compiled into the binary is ordered by id (1, 2,
// 3, ... without gaps); each step runs exactly once per database, inside its
// own BEGIN IMMEDIATE transaction that also records it in _migrations, so a
// failing step leaves neither its changes nor a journal row behind. Append
// new steps; never edit or reorder applied ones (open() refuses a database
// whose journal disagrees with the binary's list, or that holds steps the
// binary does not know).
struct Migration {
  std::int64_t id = 0;
  std::string_view name;
  std::string_view sql;  // one or more statements
};

// The migrations of this build, in order.
std::span<const Migration> builtin_migrations();

struct SqliteOptions {
  // How long a statement waits for another connection's lock before the
  // call fails `unavailable`.
  int busy_timeout_ms = 5'000;
  // Replaces builtin_migrations() (tests only: simulate a failing step or a
  // newer binary). Empty: the built-in list.
  std::span<const Migration> migrations = {};
  // The name of a registered sqlite3_vfs to open the file through (tests:
  // fault injection). Empty: SQLite's default VFS.
  std::string vfs;
};

class SqliteStore final : public store::Store {
  struct Token {
    explicit Token() = default;
  };

 public:
  // Opens (creating if needed) the database at `path` for reading and
  // writing, sets and verifies the pragmas, and applies pending migrations.
  // Errors: unavailable (cannot open, WAL or synchronous=FULL not in effect,
  // database locked, schema newer than this binary), internal (a migration
  // failed, the journal disagrees with the binary), invalid (limits beyond
  // what this SQLite build can store).
  static Result<std::unique_ptr<SqliteStore>> open(std::string path,
                                                   store::StoreLimits limits = {});
  static Result<std::unique_ptr<SqliteStore>> open(std::string path, store::StoreLimits limits,
                                                   const SqliteOptions& options);

  // A read-only connection to an existing, fully migrated database (for
  // reader threads). commit() returns forbidden "read_only". Each call reads
  // one committed snapshot; successive calls may see newer commits.
  static Result<std::unique_ptr<SqliteStore>> open_reader(std::string path,
                                                          store::StoreLimits limits = {},
                                                          const SqliteOptions& options = {});

  // Use open() / open_reader() (only they can make a Token).
  SqliteStore(Token, std::string path, store::StoreLimits limits, bool read_only);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Result<std::optional<store::Entry>> get(std::string_view key) override;
  Result<store::RangePage> range(std::string_view prefix, std::string_view after,
                                 std::size_t limit) override;
  // One BEGIN IMMEDIATE transaction: validate_batch, every precondition
  // (all failing keys reported), mutations in order, blobs (INSERT OR
  // IGNORE), the version counter (only when something mutated), COMMIT.
  //
  // outcome_unknown rule: every failure before COMMIT, and a COMMIT that
  // fails while SQLite still holds the transaction open (busy, a deferred
  // constraint), rolls back and is definite — unavailable or internal,
  // nothing applied. A COMMIT that fails after SQLite has already ended the
  // transaction (an I/O error or full disk while writing or syncing the WAL)
  // is ambiguous — the commit frame may have reached the file and reappear
  // after a restart — and reports outcome_unknown: read back before retrying.
  Result<store::CommitInfo> commit(const store::Batch& batch) override;
  Result<std::optional<std::string>> get_blob(std::string_view id) override;
  Result<store::Version> last_version() override;
  const store::StoreLimits& limits() const override { return limits_; }

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  // Ids of the migrations this open() applied (empty when the schema was
  // already current).
  const std::vector<std::int64_t>& migrations_applied() const { return migrations_applied_; }
  // The value of `PRAGMA <name>` on this connection, as text (diagnostics
  // and tests). `name` must be a plain identifier ([a-z_]+).
  Result<std::string> pragma(std::string_view name);

 private:
  struct DbClose {
    void operator()(sqlite3* db) const noexcept;
  };
  struct StmtFinalize {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbClose>;
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

  // The cached statements, prepared once per connection.
  enum Stmt : int {
    kBegin,
    kCommit,
    kRollback,
    kGet,
    kVersionOf,
    kRangeBounded,  // lo <= key < hi
    kRangeOpen,     // lo <= key
    kPut,
    kDelete,
    kPutBlob,
    kGetBlob,
    kGetCounter,
    kSetCounter,
    kStmtCount,
  };

  static Result<std::unique_ptr<SqliteStore>> open_impl(std::string path, store::StoreLimits limits,
                                                        const SqliteOptions& options,
                                                        bool read_only);
  Status configure(const SqliteOptions& options, bool read_only);
  Status migrate(std::span<const Migration> migrations);
  // Checks the journal against `migrations`; returns how many are applied.
  Result<std::size_t> check_schema(std::span<const Migration> migrations, bool allow_pending);
  Status prepare_statements();
  Result<store::CommitInfo> apply(const store::Batch& batch);
  Result<store::Version> version_of(std::string_view key);
  Result<store::Version> read_counter();
  // Ends an open transaction, ignoring errors (the caller reports its own).
  void rollback_quietly();
  Status error(int rc, std::string_view what) const;

  DbPtr db_;  // declared first: destroyed after the statements
  StmtPtr stmts_[kStmtCount];
  std::string path_;
  store::StoreLimits limits_;
  bool read_only_ = false;
  std::vector<std::int64_t> migrations_applied_;
};

}  // namespace cairn::backend

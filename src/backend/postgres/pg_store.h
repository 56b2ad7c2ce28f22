// pg_store.h — the storage contract (store/store.h) on PostgreSQL through
// libpq (shell: network I/O). Several processes may share one database: the
// server is the arbiter of every compare-and-swap.
//
// Schema (in the connection's schema, PgOptions::schema or search_path):
//   _migrations(id, name, applied_at)  the schema journal (see PgMigration)
//   kv(key bytea PK, value bytea, version bigint)
//                                      the ordered map; bytea compares with
//                                      memcmp (then length), which is the
//                                      contract's bytewise order
//   meta(name text PK, value bigint)   'version' = the store-wide counter
//   blobs(id text PK, bytes bytea)     content-addressed blobs
//
// Transactions: READ COMMITTED, and every commit first locks the counter row
// (SELECT ... FROM meta WHERE name = 'version' FOR UPDATE). Commits are thus
// serialised in one total order that is also the version order, and the
// precondition checks that follow the lock see every earlier commit (each
// READ COMMITTED statement takes a fresh snapshot, after the lock was
// granted). Writers queue on the row lock instead of failing, which
// SERIALIZABLE would make them do on the hot counter row. Serialization
// failures and deadlocks (40001, 40P01: e.g. a foreign session locking kv
// rows, or a server defaulting to SERIALIZABLE) are still retried, up to
// PgOptions::serialization_retries_max times with doubling backoff.
//
// Errors: connection refused or lost, 08xxx, 57P01..57P03, 53xxx (disk
// full, out of memory, too many connections), 55P03, 57014 → unavailable
// (nothing applied); retries exhausted → unavailable "storage_busy"; other
// SQL errors → internal. A COMMIT whose reply never arrives (the connection
// broke while committing) → outcome_unknown: read back before retrying.
//
// Pool and threads: a PgStore holds up to PgOptions::pool_size connections
// and is safe to use from several threads at once; each call checks one
// connection out for its duration (waiting when all are busy). A broken
// connection is reopened on its next use, so the store recovers by itself
// after a server restart; a call that finds its connection dead before it
// sent anything (reads, or a commit before BEGIN) reconnects and retries once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "model/status.h"
#include "store/store.h"

namespace cairn::backend {

// One schema step; the same rules as SQLite's Migration: ids 1, 2, 3, ...;
// each runs once per schema, in its own transaction together with its
// journal row; append only.
struct PgMigration {
  std::int64_t id = 0;
  std::string_view name;
  std::string_view sql;
};

std::span<const PgMigration> pg_builtin_migrations();

inline constexpr std::size_t kPgPoolSizeDefault = 4;
inline constexpr int kPgSerializationRetriesMax = 8;
inline constexpr int kPgRetryBackoffFirstMs = 2;
inline constexpr int kPgRetryBackoffMaxMs = 200;
inline constexpr int kPgConnectTimeoutS = 5;
// Every connection (the pool's, the locks', the listener's) turns on TCP
// keepalives and a TCP user timeout, so that a database host that vanishes
// without closing its connections (a network partition, a powered-off
// machine) is noticed within seconds, not after the kernel's retransmission
// timeout (minutes): an idle or waiting connection after
// idle + interval * count seconds, one with unacknowledged data after the
// user timeout. Both are answered by the server's kernel, so a slow query
// is never cut short.
inline constexpr int kPgKeepalivesIdleS = 5;
inline constexpr int kPgKeepalivesIntervalS = 2;
inline constexpr int kPgKeepalivesCount = 3;
inline constexpr int kPgTcpUserTimeoutMs = 10'000;

struct PgOptions {
  // Connections the store opens at most (>= 1).
  std::size_t pool_size = kPgPoolSizeDefault;
  // Retries of a commit that failed with 40001 / 40P01 (0: none).
  int serialization_retries_max = kPgSerializationRetriesMax;
  // libpq connect_timeout, seconds (libpq waits at least 2 s).
  int connect_timeout_s = kPgConnectTimeoutS;
  // The schema holding the tables ([a-z_][a-z0-9_]*, created when missing).
  // Empty: the server's search_path (normally `public`).
  std::string schema;
  // Replaces pg_builtin_migrations() (tests only). Empty: the built-in list.
  std::span<const PgMigration> migrations = {};
  // Hold a session advisory lock on a connection of its own for the store's
  // life, and refuse to open (unavailable/store_in_use) while another store
  // holds it: one cairnd per database.
  bool exclusive_owner = false;
  // Shared mode: several stores (cairnd nodes) on one database, each with a
  // distinct name ([a-z0-9][a-z0-9_-]{0,62}). The store holds the owner lock
  // shared (so an exclusive owner and shared nodes exclude each other) and a
  // lock on its node name (unavailable/node_in_use while another store runs
  // under that name). Empty: not shared.
  std::string shared_node;
  // Every commit with mutations sends NOTIFY <channel>, '<version>' in its
  // transaction (delivered only if it commits). Empty: no notification.
  // [a-z_][a-z0-9_]{0,62}.
  std::string notify_channel;
};

struct PgStats {
  std::uint64_t commits = 0;
  std::uint64_t serialization_retries = 0;  // 40001/40P01 retried
  std::uint64_t connections_opened = 0;     // since open(), the first included
};

class PgStore final : public store::Store {
  struct Token {
    explicit Token() = default;
  };

 public:
  // Connects to `url` (a libpq URL or conninfo string), creates the schema
  // when PgOptions::schema names one, and applies pending migrations (under
  // an advisory lock, so processes opening one database at once apply each
  // step once). Errors: unavailable (cannot connect, schema newer than this
  // binary), internal (a migration failed, the journal disagrees), invalid
  // (bad options).
  static Result<std::unique_ptr<PgStore>> open(std::string url, store::StoreLimits limits = {},
                                               PgOptions options = {});

  PgStore(Token, std::string url, store::StoreLimits limits, PgOptions options);
  ~PgStore() override;
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  Result<std::optional<store::Entry>> get(std::string_view key) override;
  Result<store::RangePage> range(std::string_view prefix, std::string_view after,
                                 std::size_t limit) override;
  Result<store::CommitInfo> commit(const store::Batch& batch) override;
  Result<std::vector<std::optional<store::Entry>>> get_many(
      std::span<const std::string> keys) override;
  Result<std::optional<std::string>> get_blob(std::string_view id) override;
  Result<store::Version> last_version() override;

  // The database server's clock (clock_timestamp()), Unix ms.
  Result<std::int64_t> server_time_ms();

  // Shared mode: the writer turn, a cluster-wide advisory lock that nodes
  // take around catch-up + decide + commit so that their optimistic commits
  // rarely collide. Waits at most `wait_ms`; false when the wait ran out or
  // the database cannot be reached (the caller then goes on without the
  // turn: the commit's preconditions keep it correct either way). Held on a
  // connection of its own (reopened when lost; a lost session releases it).
  // REQUIRES: shared_node set; one thread at a time.
  bool begin_writer_turn(int wait_ms);
  void end_writer_turn();
  const store::StoreLimits& limits() const override { return limits_; }

  const std::vector<std::int64_t>& migrations_applied() const { return migrations_applied_; }
  PgStats stats() const;

  class Conn;    // one libpq connection with its prepared statements
  struct Lease;  // a connection checked out of the pool

 private:
  Result<Lease> checkout();
  void checkin(std::unique_ptr<Conn> c);
  Status migrate(Conn& c);
  Result<store::CommitInfo> commit_once(Conn& c, const store::Batch& batch);

  std::string url_;
  store::StoreLimits limits_;
  PgOptions options_;
  std::vector<std::int64_t> migrations_applied_;

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::size_t open_ = 0;         // connections checked out or idle
  std::unique_ptr<Conn> owner_;  // holds the owner / node locks (exclusive_owner, shared_node)
  std::unique_ptr<Conn> turn_;   // shared mode: the writer turn's session
  bool turn_held_ = false;
  PgStats stats_;
};

// The channel name for a schema's commit notifications: "cairn_commits" or
// "cairn_commits_<schema>" (NOTIFY is per database, schemas share it).
std::string pg_notify_channel(std::string_view schema);

// A LISTEN connection on its own thread: calls `on_commit(version)` for every
// notification on `channel`, and `on_gap()` after every (re)connection, when
// notifications may have been missed (the first connection included). A lost
// connection is reopened with doubling waits (100 ms .. 2 s). The callbacks
// run on the listener's thread and must not block.
class PgListener {
 public:
  using CommitFn = std::function<void(std::uint64_t version)>;
  using GapFn = std::function<void()>;

  PgListener(std::string url, std::string channel, CommitFn on_commit, GapFn on_gap);
  ~PgListener();  // stops and joins the thread
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;

  void start();
  void stop();
  bool connected() const { return connected_.load(); }

 private:
  void run();

  std::string url_;
  std::string channel_;
  CommitFn on_commit_;
  GapFn on_gap_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  int wake_[2] = {-1, -1};  // a pipe: stop() writes, the thread's poll() returns
  std::thread thread_;
};

}  // namespace cairn::backend

// pg_store.cc — the storage contract on PostgreSQL (shell). See pg_store.h
// for the schema, the transaction rule, the error mapping and threading.
#include "backend/postgres/pg_store.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <utility>

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

constexpr PgMigration kMigrations[] = {
    {1, "kv, meta and blobs",
     // bytea compares with memcmp, then length: the contract's bytewise order.
     "CREATE TABLE kv(key bytea PRIMARY KEY, value bytea NOT NULL, version bigint NOT NULL);"
     "CREATE TABLE meta(name text PRIMARY KEY, value bigint NOT NULL);"
     "INSERT INTO meta(name, value) VALUES ('version', 0);"
     "CREATE TABLE blobs(id text PRIMARY KEY, bytes bytea NOT NULL);"},
};

constexpr const char* kJournalDdl =
    "CREATE TABLE IF NOT EXISTS _migrations(id bigint PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

// Every migration runs under this session advisory lock ("cairn").
constexpr const char* kMigrationLockKey = "426970608238";  // 0x636169726e
constexpr const char* kOwnerLockKey = "426970608239";      // exclusive_owner / shared_node
constexpr const char* kNodeLockClass = "1667330418";       // (class, hashtext(node)) 0x6361726e
constexpr const char* kWriterTurnKey = "426970608240";     // shared mode's writer turn

constexpr unsigned kByteaOid = 17;
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kTextOid = 25;
constexpr unsigned kByteaArrayOid = 1001;
constexpr unsigned kInt8ArrayOid = 1016;

enum Stmt : int {
  kGet,
  kRangeBounded,
  kRangeOpen,
  kPutBlob,
  kGetBlob,
  kGetCounter,
  kLockCounter,
  kBumpCounter,
  kCheckMany,
  kGetMany,
  kPutMany,
  kDeleteMany,
  kNotify,
  kNow,
  kStmtCount,
};

struct StmtDef {
  const char* sql;
  int nparams;
  unsigned types[3];
};

const StmtDef kStmts[kStmtCount] = {
    {"SELECT value, version FROM kv WHERE key = $1", 1, {kByteaOid}},
    {"SELECT key, value, version FROM kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3",
     3,
     {kByteaOid, kByteaOid, kInt8Oid}},
    {"SELECT key, value, version FROM kv WHERE key >= $1 ORDER BY key LIMIT $2",
     2,
     {kByteaOid, kInt8Oid}},
    {"INSERT INTO blobs(id, bytes) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
     2,
     {kTextOid, kByteaOid}},
    {"SELECT bytes FROM blobs WHERE id = $1", 1, {kTextOid}},
    {"SELECT value FROM meta WHERE name = 'version'", 0, {}},
    {"SELECT value FROM meta WHERE name = 'version' FOR UPDATE", 0, {}},
    // Locks the counter row and takes the next version in one statement (a
    // batch with mutations; a failed precondition rolls the increment back).
    {"UPDATE meta SET value = value + 1 WHERE name = 'version' RETURNING value", 0, {}},
    // The positions (1-based, in batch order) of the preconditions that fail;
    // version 0 stands for "absent".
    {"SELECT p.ord FROM unnest($1::bytea[], $2::int8[]) WITH ORDINALITY AS p(key, ver, ord)"
     " LEFT JOIN kv ON kv.key = p.key WHERE coalesce(kv.version, 0) <> p.ver ORDER BY p.ord",
     2,
     {kByteaArrayOid, kInt8ArrayOid}},
    {"SELECT p.ord, kv.value, kv.version FROM unnest($1::bytea[]) WITH ORDINALITY AS p(key, ord)"
     " JOIN kv ON kv.key = p.key",
     1,
     {kByteaArrayOid}},
    {"INSERT INTO kv(key, value, version) SELECT k, v, $3 FROM unnest($1::bytea[], $2::bytea[])"
     " AS t(k, v) ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
     " version = excluded.version",
     3,
     {kByteaArrayOid, kByteaArrayOid, kInt8Oid}},
    {"DELETE FROM kv WHERE key = ANY($1::bytea[])", 1, {kByteaArrayOid}},
    {"SELECT pg_notify($1, $2)", 2, {kTextOid, kTextOid}},
    {"SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8", 0, {}},
};

struct ResultClear {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;

std::string encode_int8(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return s;
}

void append_int4(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// A one-dimensional array in PostgreSQL's binary format: ndim, has-nulls,
// element type, then (length, lower bound), then each element as (length,
// bytes). `n` elements, `elem(i)` gives element i.
template <typename Elem>
std::string encode_array(unsigned elem_oid, std::size_t n, Elem elem) {
  std::string out;
  append_int4(out, 1);  // ndim
  append_int4(out, 0);  // no nulls
  append_int4(out, elem_oid);
  append_int4(out, static_cast<std::uint32_t>(n));
  append_int4(out, 1);  // lower bound
  for (std::size_t i = 0; i < n; ++i) {
    const std::string_view e = elem(i);
    append_int4(out, static_cast<std::uint32_t>(e.size()));
    out.append(e);
  }
  return out;
}

std::string cell(const PGresult* r, int row, int col) {
  const int n = PQgetlength(r, row, col);
  if (n <= 0) return std::string();
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(n));
}

Version cell_version(const PGresult* r, int row, int col) {
  const char* p = PQgetvalue(r, row, col);
  CAIRN_ASSERT(PQgetlength(r, row, col) == 8);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  CAIRN_ASSERT(static_cast<std::int64_t>(v) >= 0);
  return v;
}

std::optional<std::string> prefix_successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xFF) s.pop_back();
  if (s.empty()) return std::nullopt;
  s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

bool valid_schema_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_node_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!(alnum || (i > 0 && (c == '_' || c == '-')))) return false;
  }
  return true;
}

void ignore_notice(void*, const char*) {}

// Opens a connection with the connect timeout and the keepalives of
// pg_store.h; `options` is libpq's `options` (server settings), may be empty.
PGconn* connect_pg(const std::string& url, int connect_timeout_s, const std::string& options) {
  const std::string timeout = std::to_string(connect_timeout_s);
  const std::string idle = std::to_string(kPgKeepalivesIdleS);
  const std::string interval = std::to_string(kPgKeepalivesIntervalS);
  const std::string count = std::to_string(kPgKeepalivesCount);
  const std::string user_timeout = std::to_string(kPgTcpUserTimeoutMs);
  const char* keys[] = {"dbname",
                        "connect_timeout",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "application_name",
                        "options",
                        nullptr};
  const char* vals[] = {
      url.c_str(),   timeout.c_str(),      "1",     idle.c_str(),    interval.c_str(),
      count.c_str(), user_timeout.c_str(), "cairn", options.c_str(), nullptr};
  if (options.empty()) keys[8] = nullptr;
  return PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
}

bool retryable_sqlstate(std::string_view s) {
  return s == "40001" || s == "40P01";
}

// SQLSTATEs that mean the server cannot serve now (pg_store.h).
bool unavailable_sqlstate(std::string_view s) {
  return s.starts_with("08") || s.starts_with("53") || s == "57P01" || s == "57P02" ||
         s == "57P03" || s == "55P03" || s == "57014";
}

}  // namespace

std::span<const PgMigration> pg_builtin_migrations() {
  return kMigrations;
}

// One connection and its prepared statements. Records the SQLSTATE of the
// last failure and whether the connection broke.
class PgStore::Conn {
 public:
  ~Conn() {
    if (pg_ != nullptr) PQfinish(pg_);
  }

  static Result<std::unique_ptr<Conn>> connect(const std::string& url, const PgOptions& o) {
    auto c = std::make_unique<Conn>();
    // Every statement reads kv by its primary key (a key or a key range). A
    // fresh or fast-growing table's statistics lag behind it (autovacuum
    // analyzes it a minute later at the earliest), and the planner then
    // picks sequential scans and hash joins over 100,000 rows: in a 3-node
    // storm every commit took 20-50 ms for its first 80 s. Sequential scans
    // are therefore off for the store's sessions; the index is always used.
    std::string opts = "-c client_min_messages=warning -c enable_seqscan=off";
    if (!o.schema.empty()) opts += " -c search_path=" + o.schema;
    c->pg_ = connect_pg(url, o.connect_timeout_s, opts);
    if (c->pg_ == nullptr || PQstatus(c->pg_) != CONNECTION_OK) {
      std::string msg = c->pg_ != nullptr ? PQerrorMessage(c->pg_) : "out of memory";
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      return unavailable("postgres: cannot connect: " + msg, "storage_unreachable");
    }
    PQsetNoticeProcessor(c->pg_, ignore_notice, nullptr);
    return c;
  }

  Status prepare_all() {
    for (int i = 0; i < kStmtCount; ++i) {
      const std::string name = "cairn_s" + std::to_string(i);
      ResultPtr r(PQprepare(pg_, name.c_str(), kStmts[i].sql, kStmts[i].nparams, kStmts[i].types));
      CAIRN_RETURN_IF_ERROR(check(r.get(), PGRES_COMMAND_OK, kStmts[i].sql));
    }
    return Status();
  }

  bool broken() const { return pg_ == nullptr || PQstatus(pg_) != CONNECTION_OK; }
  const std::string& sqlstate() const { return sqlstate_; }
  bool in_transaction() const { return PQtransactionStatus(pg_) != PQTRANS_IDLE; }

  // A simple (text) query; `want` is the expected result status.
  Result<ResultPtr> exec(const std::string& sql, ExecStatusType want = PGRES_COMMAND_OK) {
    ResultPtr r(PQexec(pg_, sql.c_str()));
    CAIRN_RETURN_IF_ERROR(check(r.get(), want, sql));
    return r;
  }

  // A prepared statement with binary parameters and binary results.
  Result<ResultPtr> run(Stmt s, std::initializer_list<std::string_view> params,
                        ExecStatusType want = PGRES_TUPLES_OK) {
    const char* values[3] = {};
    int lengths[3] = {};
    int formats[3] = {1, 1, 1};
    CAIRN_ASSERT(params.size() == static_cast<std::size_t>(kStmts[s].nparams));
    int i = 0;
    for (std::string_view p : params) {
      values[i] = p.empty() ? "" : p.data();
      lengths[i] = static_cast<int>(p.size());
      ++i;
    }
    const std::string name = "cairn_s" + std::to_string(static_cast<int>(s));
    ResultPtr r(PQexecPrepared(pg_, name.c_str(), i, values, lengths, formats, /*binary=*/1));
    CAIRN_RETURN_IF_ERROR(check(r.get(), want, kStmts[s].sql));
    return r;
  }

  void rollback_quietly() {
    if (!broken() && in_transaction()) PQclear(PQexec(pg_, "ROLLBACK"));
  }

  // Maps a failed result (pg_store.h).
  Status check(const PGresult* r, ExecStatusType want, std::string_view what) {
    sqlstate_.clear();
    if (r != nullptr && PQresultStatus(r) == want) return Status();
    const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    if (state != nullptr) sqlstate_ = state;
    std::string msg = "postgres: ";
    msg += what;
    msg += ": ";
    msg += r != nullptr && *PQresultErrorMessage(r) != '\0' ? PQresultErrorMessage(r)
                                                            : PQerrorMessage(pg_);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    Json details = Json::object();
    details.set("sqlstate", Json(sqlstate_));
    if (broken()) return unavailable(std::move(msg), "storage_unreachable", std::move(details));
    if (retryable_sqlstate(sqlstate_)) {
      return unavailable(std::move(msg), "storage_busy", std::move(details));
    }
    if (unavailable_sqlstate(sqlstate_) || sqlstate_.empty()) {
      return unavailable(std::move(msg), "storage_unavailable", std::move(details));
    }
    return internal_error(std::move(msg), "storage_error", std::move(details));
  }

 private:
  PGconn* pg_ = nullptr;
  std::string sqlstate_;
};

// A connection checked out of the pool; returned when destroyed.
struct PgStore::Lease {
  PgStore* store = nullptr;
  std::unique_ptr<Conn> conn;
  bool fresh = false;  // opened by this checkout (no point in reconnecting)

  Lease(PgStore* s, std::unique_ptr<Conn> c, bool f) : store(s), conn(std::move(c)), fresh(f) {}
  Lease(Lease&& o) noexcept
      : store(std::exchange(o.store, nullptr)), conn(std::move(o.conn)), fresh(o.fresh) {}
  Lease& operator=(Lease&&) = delete;
  // Returns the connection, or — when a reconnect failed and left none —
  // frees its pool slot (checkin(nullptr)); a moved-from lease does nothing.
  ~Lease() {
    if (store != nullptr) store->checkin(std::move(conn));
  }
  // Replaces a broken connection by a new one.
  Status reconnect() {
    conn.reset();
    CAIRN_ASSIGN_OR_RETURN(conn, Conn::connect(store->url_, store->options_));
    CAIRN_RETURN_IF_ERROR(conn->prepare_all());
    fresh = true;
    std::lock_guard<std::mutex> lock(store->mu_);
    ++store->stats_.connections_opened;
    return Status();
  }
};

PgStore::PgStore(Token, std::string url, store::StoreLimits limits, PgOptions options)
    : url_(std::move(url)), limits_(limits), options_(std::move(options)) {}

PgStore::~PgStore() = default;

Result<std::unique_ptr<PgStore>> PgStore::open(std::string url, store::StoreLimits limits,
                                               PgOptions options) {
  if (options.pool_size == 0) return invalid("pool_size must be at least 1", "bad_options");
  if (options.serialization_retries_max < 0) {
    return invalid("serialization_retries_max must not be negative", "bad_options");
  }
  if (!options.schema.empty() && !valid_schema_name(options.schema)) {
    return invalid("schema must match [a-z_][a-z0-9_]{0,62}", "bad_options");
  }
  // bytea holds at most 1 GiB; a btree entry at most ~2.7 kB.
  if (limits.key_bytes_max > 2'000 || limits.value_bytes_max > (1u << 30) ||
      limits.blob_bytes_max > (1u << 30)) {
    return invalid("store limits exceed what PostgreSQL stores in one key or value",
                   "limits_too_large");
  }
  if (options.exclusive_owner && !options.shared_node.empty()) {
    return invalid("a store is either the exclusive owner or a shared node", "bad_options");
  }
  if (!options.shared_node.empty() && !valid_node_name(options.shared_node)) {
    return invalid("shared_node must match [a-z0-9][a-z0-9_-]{0,62}", "bad_options");
  }
  if (!options.notify_channel.empty() && !valid_schema_name(options.notify_channel)) {
    return invalid("notify_channel must match [a-z_][a-z0-9_]{0,62}", "bad_options");
  }
  auto s = std::make_unique<PgStore>(Token{}, std::move(url), limits, std::move(options));
  if (s->options_.exclusive_owner || !s->options_.shared_node.empty()) {
    const bool shared = !s->options_.shared_node.empty();
    CAIRN_ASSIGN_OR_RETURN(s->owner_, Conn::connect(s->url_, s->options_));
    auto try_lock = [&](const std::string& sql) -> Result<bool> {
      CAIRN_ASSIGN_OR_RETURN(ResultPtr r, s->owner_->exec(sql, PGRES_TUPLES_OK));
      return PQntuples(r.get()) == 1 && std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
    };
    CAIRN_ASSIGN_OR_RETURN(bool owner,
                           try_lock(std::string(shared ? "SELECT pg_try_advisory_lock_shared("
                                                       : "SELECT pg_try_advisory_lock(") +
                                    kOwnerLockKey + ")"));
    if (!owner) {
      return unavailable(shared ? "a single-owner cairnd holds this PostgreSQL database"
                                : "another store holds this PostgreSQL database (one cairnd per "
                                  "database unless nodes run in shared mode)",
                         "store_in_use");
    }
    if (shared) {
      // The node name is [a-z0-9_-] only: safe inside a literal.
      CAIRN_ASSIGN_OR_RETURN(bool node,
                             try_lock(std::string("SELECT pg_try_advisory_lock(") + kNodeLockClass +
                                      ", hashtext('" + s->options_.shared_node + "'))"));
      if (!node) {
        return unavailable("another cairnd runs as node '" + s->options_.shared_node +
                               "' on this database (node names must be distinct)",
                           "node_in_use");
      }
    }
  }
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Conn> c, Conn::connect(s->url_, s->options_));
  CAIRN_RETURN_IF_ERROR(s->migrate(*c));
  CAIRN_RETURN_IF_ERROR(c->prepare_all());
  s->open_ = 1;
  s->stats_.connections_opened = 1;
  s->idle_.push_back(std::move(c));
  return s;
}

Status PgStore::migrate(Conn& c) {
  const std::span<const PgMigration> migrations =
      options_.migrations.empty() ? pg_builtin_migrations() : options_.migrations;
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    CAIRN_ASSERT_MSG(migrations[i].id == static_cast<std::int64_t>(i) + 1,
                     "migration ids must be 1, 2, 3, ... in order");
  }
  CAIRN_RETURN_IF_ERROR(
      c.exec(std::string("SELECT pg_advisory_lock(") + kMigrationLockKey + ")", PGRES_TUPLES_OK)
          .take_status());
  Status st = [&]() -> Status {
    if (!options_.schema.empty()) {
      CAIRN_RETURN_IF_ERROR(c.exec("CREATE SCHEMA IF NOT EXISTS " + options_.schema).take_status());
    }
    CAIRN_RETURN_IF_ERROR(c.exec(kJournalDdl).take_status());
    CAIRN_ASSIGN_OR_RETURN(ResultPtr r,
                           c.exec("SELECT id, name FROM _migrations ORDER BY id", PGRES_TUPLES_OK));
    const int rows = PQntuples(r.get());
    std::size_t applied = 0;
    for (int row = 0; row < rows; ++row) {
      const std::int64_t id = std::stoll(cell(r.get(), row, 0));
      const std::string name = cell(r.get(), row, 1);
      if (id > static_cast<std::int64_t>(migrations.size())) {
        return unavailable("the database has schema migration " + std::to_string(id) + " '" + name +
                               "', which this binary does not know (the database is newer)",
                           "schema_too_new");
      }
      if (id != static_cast<std::int64_t>(applied) + 1 || name != migrations[applied].name) {
        return internal_error("migration journal entry " + std::to_string(id) + " '" + name +
                                  "' does not match this binary's migration " +
                                  std::to_string(applied + 1),
                              "schema_mismatch");
      }
      ++applied;
    }
    for (const PgMigration& m : migrations.subspan(applied)) {
      Status step = [&]() -> Status {
        CAIRN_RETURN_IF_ERROR(c.exec("BEGIN").take_status());
        CAIRN_RETURN_IF_ERROR(c.exec(std::string(m.sql)).take_status());
        // The name is a compiled-in literal; quote it anyway.
        std::string name;
        for (char ch : m.name) {
          name += ch;
          if (ch == '\'') name += '\'';
        }
        CAIRN_RETURN_IF_ERROR(c.exec("INSERT INTO _migrations(id, name) VALUES (" +
                                     std::to_string(m.id) + ", '" + name + "')")
                                  .take_status());
        return c.exec("COMMIT").take_status();
      }();
      if (!step.ok()) {
        c.rollback_quietly();
        return step;
      }
      migrations_applied_.push_back(m.id);
    }
    return Status();
  }();
  if (!c.broken()) {
    c.exec(std::string("SELECT pg_advisory_unlock(") + kMigrationLockKey + ")", PGRES_TUPLES_OK)
        .status()
        .ignore();
  }
  return st;
}

Result<PgStore::Lease> PgStore::checkout() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [&] { return !idle_.empty() || open_ < options_.pool_size; });
    if (!idle_.empty()) {
      std::unique_ptr<Conn> c = std::move(idle_.back());
      idle_.pop_back();
      lock.unlock();
      Lease lease(this, std::move(c), false);
      if (lease.conn->broken()) CAIRN_RETURN_IF_ERROR(lease.reconnect());
      return lease;
    }
    ++open_;
  }
  auto c = Conn::connect(url_, options_);
  Status st = c.ok() ? (*c)->prepare_all() : c.status();
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    idle_cv_.notify_one();
    return st;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.connections_opened;
  }
  return Lease(this, std::move(c).value(), true);
}

void PgStore::checkin(std::unique_ptr<Conn> c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (c == nullptr) {
    --open_;  // a reconnect failed: the slot is free again
  } else {
    idle_.push_back(std::move(c));
  }
  idle_cv_.notify_one();
}

PgStats PgStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

namespace {

// Runs `fn(conn)` on a pooled connection; when it fails because the
// connection had died (e.g. the server restarted since its last use),
// reconnects and runs it once more. Only for calls that change nothing.
template <typename Fn>
auto with_conn(Result<PgStore::Lease> lease, Fn fn)
    -> decltype(fn(std::declval<PgStore::Conn&>())) {
  if (!lease.ok()) return lease.status();
  auto out = fn(*lease->conn);
  if (!out.ok() && lease->conn->broken() && !lease->fresh) {
    CAIRN_RETURN_IF_ERROR(lease->reconnect());
    out = fn(*lease->conn);
  }
  return out;
}

}  // namespace

Result<std::optional<Entry>> PgStore::get(std::string_view key) {
  return with_conn(checkout(), [&](Conn& c) -> Result<std::optional<Entry>> {
    CAIRN_ASSIGN_OR_RETURN(ResultPtr r, c.run(kGet, {key}));
    if (PQntuples(r.get()) == 0) return std::optional<Entry>();
    return std::optional<Entry>(
        Entry{std::string(key), cell(r.get(), 0, 0), cell_version(r.get(), 0, 1)});
  });
}

Result<RangePage> PgStore::range(std::string_view prefix, std::string_view after,
                                 std::size_t limit) {
  if (limit == 0 || limit > limits_.range_limit_max) {
    return invalid("range limit must be in 1.." + std::to_string(limits_.range_limit_max),
                   "bad_limit");
  }
  std::string lo;
  if (after.empty() || after < prefix) {
    lo = prefix;
  } else {
    lo = after;
    lo.push_back('\0');
  }
  const std::optional<std::string> hi = prefix_successor(prefix);
  const std::string n = encode_int8(limit + 1);  // one row past the page: `more`
  return with_conn(checkout(), [&](Conn& c) -> Result<RangePage> {
    Result<ResultPtr> res = hi ? c.run(kRangeBounded, {lo, *hi, n}) : c.run(kRangeOpen, {lo, n});
    CAIRN_ASSIGN_OR_RETURN(ResultPtr r, std::move(res));
    RangePage page;
    const int rows = PQntuples(r.get());
    for (int row = 0; row < rows; ++row) {
      if (page.entries.size() == limit) {
        page.more = true;
        break;
      }
      page.entries.push_back(
          Entry{cell(r.get(), row, 0), cell(r.get(), row, 1), cell_version(r.get(), row, 2)});
    }
    return page;
  });
}

Result<std::optional<std::string>> PgStore::get_blob(std::string_view id) {
  return with_conn(checkout(), [&](Conn& c) -> Result<std::optional<std::string>> {
    CAIRN_ASSIGN_OR_RETURN(ResultPtr r, c.run(kGetBlob, {id}));
    if (PQntuples(r.get()) == 0) return std::optional<std::string>();
    return std::optional<std::string>(cell(r.get(), 0, 0));
  });
}

Result<std::vector<std::optional<Entry>>> PgStore::get_many(std::span<const std::string> keys) {
  if (keys.size() > limits_.range_limit_max) {
    return invalid("get_many takes at most " + std::to_string(limits_.range_limit_max) + " keys",
                   "bad_limit");
  }
  std::vector<std::optional<Entry>> out(keys.size());
  if (keys.empty()) return out;
  const std::string a = encode_array(kByteaOid, keys.size(),
                                     [&](std::size_t i) -> std::string_view { return keys[i]; });
  return with_conn(checkout(), [&](Conn& c) -> Result<std::vector<std::optional<Entry>>> {
    CAIRN_ASSIGN_OR_RETURN(ResultPtr r, c.run(kGetMany, {a}));
    for (int row = 0; row < PQntuples(r.get()); ++row) {
      const Version ord = cell_version(r.get(), row, 0);
      CAIRN_ASSERT(ord >= 1 && ord <= keys.size());
      out[ord - 1] = Entry{keys[ord - 1], cell(r.get(), row, 1), cell_version(r.get(), row, 2)};
    }
    return out;
  });
}

Result<std::int64_t> PgStore::server_time_ms() {
  return with_conn(checkout(), [&](Conn& c) -> Result<std::int64_t> {
    CAIRN_ASSIGN_OR_RETURN(ResultPtr r, c.run(kNow, {}));
    if (PQntuples(r.get()) != 1) return internal_error("clock_timestamp() returned no row");
    return static_cast<std::int64_t>(cell_version(r.get(), 0, 0));
  });
}

bool PgStore::begin_writer_turn(int wait_ms) {
  CAIRN_ASSERT(!options_.shared_node.empty() && !turn_held_);
  if (turn_ == nullptr || turn_->broken()) {
    turn_.reset();
    auto c = Conn::connect(url_, options_);
    if (!c.ok()) return false;
    turn_ = std::move(c).value();
  }
  const std::string sql = "SET statement_timeout = " + std::to_string(std::max(1, wait_ms)) +
                          "; SELECT pg_advisory_lock(" + kWriterTurnKey + ")";
  turn_held_ = turn_->exec(sql, PGRES_TUPLES_OK).ok();
  return turn_held_;
}

void PgStore::end_writer_turn() {
  if (!turn_held_) return;
  turn_held_ = false;
  if (turn_->broken()) return;  // the server released it with the session
  turn_->exec(std::string("SELECT pg_advisory_unlock(") + kWriterTurnKey + ")", PGRES_TUPLES_OK)
      .status()
      .ignore();
}

Result<Version> PgStore::last_version() {
  return with_conn(checkout(), [&](Conn& c) -> Result<Version> {
    CAIRN_ASSIGN_OR_RETURN(ResultPtr r, c.run(kGetCounter, {}));
    if (PQntuples(r.get()) != 1) {
      return internal_error("meta holds no 'version' row", "storage_corrupt");
    }
    return cell_version(r.get(), 0, 0);
  });
}

Result<CommitInfo> PgStore::commit(const Batch& batch) {
  CAIRN_RETURN_IF_ERROR(validate_batch(batch, limits_));
  if (batch.empty()) {
    CAIRN_ASSIGN_OR_RETURN(Version v, last_version());
    return CommitInfo{v};
  }
  bool reconnected = false;
  for (int attempt = 0;; ++attempt) {
    CAIRN_ASSIGN_OR_RETURN(Lease lease, checkout());
    Result<CommitInfo> out = commit_once(*lease.conn, batch);
    if (out.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.commits;
      return out;
    }
    Conn& c = *lease.conn;
    if (out.status().code() == Code::kOutcomeUnknown) return out;
    if (c.broken()) {
      // Nothing was committed (the server rolls back an open transaction
      // whose connection dies). A connection that had died before this
      // commit began gets one more try on a new connection.
      if (!lease.fresh && !reconnected) {
        reconnected = true;
        CAIRN_RETURN_IF_ERROR(lease.reconnect());
        --attempt;
        continue;
      }
      return out;
    }
    if (!retryable_sqlstate(c.sqlstate())) return out;
    if (attempt >= options_.serialization_retries_max) {
      return unavailable("postgres: commit still failed after " + std::to_string(attempt) +
                             " retries: " + out.status().message(),
                         "storage_busy", out.status().details());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.serialization_retries;
    }
    // Doubling backoff with jitter, so racing writers do not meet again.
    const int base =
        std::min(kPgRetryBackoffMaxMs, kPgRetryBackoffFirstMs << std::min(attempt, 16));
    thread_local std::minstd_rand rng(std::random_device{}());
    const int wait = base / 2 + static_cast<int>(rng() % static_cast<unsigned>(base / 2 + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
  }
}

Result<CommitInfo> PgStore::commit_once(Conn& c, const Batch& batch) {
  c.rollback_quietly();
  CAIRN_RETURN_IF_ERROR(c.exec("BEGIN ISOLATION LEVEL READ COMMITTED").take_status());
  // A handful of statements whatever the batch's size: the preconditions,
  // the deletes and the puts each go as one array parameter.
  Result<CommitInfo> out = [&]() -> Result<CommitInfo> {
    // The counter row lock orders every commit (pg_store.h); a batch with
    // mutations takes its version with the same statement.
    const bool mutating = !batch.mutations.empty();
    CAIRN_ASSIGN_OR_RETURN(ResultPtr counter, c.run(mutating ? kBumpCounter : kLockCounter, {}));
    if (PQntuples(counter.get()) != 1) {
      return internal_error("meta holds no 'version' row", "storage_corrupt");
    }
    const Version version = cell_version(counter.get(), 0, 0);
    if (!batch.preconditions.empty()) {
      const auto& pre = batch.preconditions;
      const std::string keys = encode_array(
          kByteaOid, pre.size(), [&](std::size_t i) -> std::string_view { return pre[i].key; });
      std::vector<std::string> versions(pre.size());
      for (std::size_t i = 0; i < pre.size(); ++i) {
        versions[i] = encode_int8(pre[i].kind == Precondition::Kind::kAbsent ? store::kAbsent
                                                                             : pre[i].version);
      }
      const std::string vers = encode_array(
          kInt8Oid, pre.size(), [&](std::size_t i) -> std::string_view { return versions[i]; });
      CAIRN_ASSIGN_OR_RETURN(ResultPtr r, c.run(kCheckMany, {keys, vers}));
      std::vector<std::string> failed;
      for (int row = 0; row < PQntuples(r.get()); ++row) {
        const Version ord = cell_version(r.get(), row, 0);
        CAIRN_ASSERT(ord >= 1 && ord <= pre.size());
        const std::string& key = pre[ord - 1].key;
        if (std::find(failed.begin(), failed.end(), key) == failed.end()) failed.push_back(key);
      }
      if (!failed.empty()) return store::precondition_failed(failed);
    }
    if (mutating) {
      std::vector<std::string_view> del, put_k, put_v;
      for (const Mutation& m : batch.mutations) {
        if (m.op == Mutation::Op::kPut) {
          put_k.push_back(m.key);
          put_v.push_back(m.value);
        } else {
          del.push_back(m.key);
        }
      }
      // The contract applies deletes before puts; a key is in at most one
      // mutation, so the order between the two statements is all that matters.
      if (!del.empty()) {
        const std::string a =
            encode_array(kByteaOid, del.size(), [&](std::size_t i) { return del[i]; });
        CAIRN_RETURN_IF_ERROR(c.run(kDeleteMany, {a}, PGRES_COMMAND_OK).take_status());
      }
      if (!put_k.empty()) {
        const std::string ka =
            encode_array(kByteaOid, put_k.size(), [&](std::size_t i) { return put_k[i]; });
        const std::string va =
            encode_array(kByteaOid, put_v.size(), [&](std::size_t i) { return put_v[i]; });
        const std::string v = encode_int8(version);
        CAIRN_RETURN_IF_ERROR(c.run(kPutMany, {ka, va, v}, PGRES_COMMAND_OK).take_status());
      }
      if (!options_.notify_channel.empty()) {
        // Delivered to the listeners when (and only if) the commit lands.
        const std::string payload = std::to_string(version);
        CAIRN_RETURN_IF_ERROR(
            c.run(kNotify, {options_.notify_channel, payload}, PGRES_TUPLES_OK).take_status());
      }
    }
    for (const BlobPut& b : batch.blobs) {
      CAIRN_RETURN_IF_ERROR(c.run(kPutBlob, {b.id, b.bytes}, PGRES_COMMAND_OK).take_status());
    }
    return CommitInfo{version};
  }();
  if (!out.ok()) {
    c.rollback_quietly();
    return out;
  }
  Result<ResultPtr> done = c.exec("COMMIT");
  if (done.ok()) return out;
  // The server answered with an error and the connection is fine: COMMIT
  // failed definitely (the transaction is rolled back).
  if (!c.broken() && !c.sqlstate().empty() && !c.sqlstate().starts_with("08") &&
      !c.sqlstate().starts_with("57P")) {
    c.rollback_quietly();
    return done.status();
  }
  // The connection broke while committing: the commit may have happened.
  return outcome_unknown("postgres: commit of version " + std::to_string(out->version) +
                             " may or may not have been applied: " + done.status().message(),
                         "commit_unknown", done.status().details());
}

// ---- notifications ------------------------------------------------------------------------------

std::string pg_notify_channel(std::string_view schema) {
  std::string c = "cairn_commits";
  if (!schema.empty()) {
    c += '_';
    c += schema;
  }
  return c.substr(0, 63);
}

namespace {
constexpr int kListenRetryFirstMs = 100;
constexpr int kListenRetryMaxMs = 2'000;
}  // namespace

PgListener::PgListener(std::string url, std::string channel, CommitFn on_commit, GapFn on_gap)
    : url_(std::move(url)),
      channel_(std::move(channel)),
      on_commit_(std::move(on_commit)),
      on_gap_(std::move(on_gap)) {}

PgListener::~PgListener() {
  stop();
}

void PgListener::start() {
  CAIRN_ASSERT(!thread_.joinable());
  CAIRN_ASSERT_MSG(::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) == 0, "pipe2 failed");
  thread_ = std::thread([this] { run(); });
}

void PgListener::stop() {
  stopping_.store(true);
  if (wake_[1] >= 0) {
    const char b = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_[1], &b, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int& fd : wake_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

void PgListener::run() {
  int retry_ms = kListenRetryFirstMs;
  auto pause = [&](int ms) {
    pollfd p{wake_[0], POLLIN, 0};
    ::poll(&p, 1, ms);
  };
  while (!stopping_.load()) {
    PGconn* pg = connect_pg(url_, kPgConnectTimeoutS, "");
    if (pg == nullptr || PQstatus(pg) != CONNECTION_OK) {
      if (pg != nullptr) PQfinish(pg);
      pause(retry_ms);
      retry_ms = std::min(retry_ms * 2, kListenRetryMaxMs);
      continue;
    }
    PQsetNoticeProcessor(pg, ignore_notice, nullptr);
    // The channel is [a-z_][a-z0-9_]* (pg_notify_channel): no quoting needed.
    ResultPtr r(PQexec(pg, ("LISTEN " + channel_).c_str()));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      PQfinish(pg);
      pause(retry_ms);
      retry_ms = std::min(retry_ms * 2, kListenRetryMaxMs);
      continue;
    }
    retry_ms = kListenRetryFirstMs;
    connected_.store(true);
    on_gap_();  // commits made while we were not listening
    while (!stopping_.load()) {
      pollfd fds[2] = {{PQsocket(pg), POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
      if (fds[1].revents != 0) break;      // stop()
      if (PQconsumeInput(pg) == 0) break;  // the connection is gone
      while (PGnotify* n = PQnotifies(pg)) {
        std::uint64_t v = 0;
        for (const char* p = n->extra; *p >= '0' && *p <= '9'; ++p) {
          v = v * 10 + static_cast<std::uint64_t>(*p - '0');
        }
        PQfreemem(n);
        on_commit_(v);
      }
    }
    connected_.store(false);
    PQfinish(pg);
  }
}

}  // namespace cairn::backend

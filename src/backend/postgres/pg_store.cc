// pg_store.cc — the storage contract on PostgreSQL (shell). See pg_store.h
// for the schema, the transaction rule, the error mapping and threading.
#include "backend/postgres/pg_store.h"

#include <libpq-fe.h>

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
constexpr const char* kOwnerLockKey = "426970608239";      // exclusive_owner

constexpr unsigned kByteaOid = 17;
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kTextOid = 25;

enum Stmt : int {
  kGet,
  kVersionOf,
  kRangeBounded,
  kRangeOpen,
  kPut,
  kDelete,
  kPutBlob,
  kGetBlob,
  kGetCounter,
  kLockCounter,
  kSetCounter,
  kStmtCount,
};

struct StmtDef {
  const char* sql;
  int nparams;
  unsigned types[3];
};

const StmtDef kStmts[kStmtCount] = {
    {"SELECT value, version FROM kv WHERE key = $1", 1, {kByteaOid}},
    {"SELECT version FROM kv WHERE key = $1", 1, {kByteaOid}},
    {"SELECT key, value, version FROM kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3",
     3,
     {kByteaOid, kByteaOid, kInt8Oid}},
    {"SELECT key, value, version FROM kv WHERE key >= $1 ORDER BY key LIMIT $2",
     2,
     {kByteaOid, kInt8Oid}},
    {"INSERT INTO kv(key, value, version) VALUES ($1, $2, $3)"
     " ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version",
     3,
     {kByteaOid, kByteaOid, kInt8Oid}},
    {"DELETE FROM kv WHERE key = $1", 1, {kByteaOid}},
    {"INSERT INTO blobs(id, bytes) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
     2,
     {kTextOid, kByteaOid}},
    {"SELECT bytes FROM blobs WHERE id = $1", 1, {kTextOid}},
    {"SELECT value FROM meta WHERE name = 'version'", 0, {}},
    {"SELECT value FROM meta WHERE name = 'version' FOR UPDATE", 0, {}},
    {"UPDATE meta SET value = $1 WHERE name = 'version'", 1, {kInt8Oid}},
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

void ignore_notice(void*, const char*) {}

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
    const std::string timeout = std::to_string(o.connect_timeout_s);
    std::string opts = "-c client_min_messages=warning";
    if (!o.schema.empty()) opts += " -c search_path=" + o.schema;
    const char* keys[] = {"dbname", "connect_timeout", "options", "application_name", nullptr};
    const char* vals[] = {url.c_str(), timeout.c_str(), opts.c_str(), "cairn", nullptr};
    c->pg_ = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
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
  Lease(Lease&& o) noexcept : store(o.store), conn(std::move(o.conn)), fresh(o.fresh) {}
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (conn != nullptr) store->checkin(std::move(conn));
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
  auto s = std::make_unique<PgStore>(Token{}, std::move(url), limits, std::move(options));
  if (s->options_.exclusive_owner) {
    CAIRN_ASSIGN_OR_RETURN(s->owner_, Conn::connect(s->url_, s->options_));
    CAIRN_ASSIGN_OR_RETURN(
        ResultPtr r,
        s->owner_->exec(std::string("SELECT pg_try_advisory_lock(") + kOwnerLockKey + ")",
                        PGRES_TUPLES_OK));
    if (PQntuples(r.get()) != 1 || std::string_view(PQgetvalue(r.get(), 0, 0)) != "t") {
      return unavailable("another store holds this PostgreSQL database (one cairnd per database)",
                         "store_in_use");
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
  Result<CommitInfo> out = [&]() -> Result<CommitInfo> {
    // The counter row lock orders every commit (pg_store.h).
    CAIRN_ASSIGN_OR_RETURN(ResultPtr counter, c.run(kLockCounter, {}));
    if (PQntuples(counter.get()) != 1) {
      return internal_error("meta holds no 'version' row", "storage_corrupt");
    }
    Version version = cell_version(counter.get(), 0, 0);
    std::vector<std::string> failed;
    for (const Precondition& p : batch.preconditions) {
      CAIRN_ASSIGN_OR_RETURN(ResultPtr r, c.run(kVersionOf, {p.key}));
      const Version now = PQntuples(r.get()) == 0 ? store::kAbsent : cell_version(r.get(), 0, 0);
      const bool holds =
          p.kind == Precondition::Kind::kAbsent ? now == store::kAbsent : now == p.version;
      if (!holds && std::find(failed.begin(), failed.end(), p.key) == failed.end()) {
        failed.push_back(p.key);
      }
    }
    if (!failed.empty()) return store::precondition_failed(failed);
    if (!batch.mutations.empty()) {
      ++version;
      const std::string v = encode_int8(version);
      for (const Mutation& m : batch.mutations) {
        if (m.op == Mutation::Op::kPut) {
          CAIRN_RETURN_IF_ERROR(c.run(kPut, {m.key, m.value, v}, PGRES_COMMAND_OK).take_status());
        } else {
          CAIRN_RETURN_IF_ERROR(c.run(kDelete, {m.key}, PGRES_COMMAND_OK).take_status());
        }
      }
      CAIRN_ASSIGN_OR_RETURN(ResultPtr r, c.run(kSetCounter, {v}, PGRES_COMMAND_OK));
      if (std::strcmp(PQcmdTuples(r.get()), "1") != 0) {
        return internal_error("meta holds no 'version' row", "storage_corrupt");
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

}  // namespace cairn::backend

// sqlite_store_test.cc — what the contract suite cannot see: durability
// across close/reopen, the pragmas on the live connection, the migration
// journal (including a failing step), error mapping under a held write lock,
// read-only connections, and a randomised comparison against MemoryStore.
#include "backend/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/sqlite/temp_db.h"
#include "model/rng.h"
#include "model/sha256.h"
#include "store/memory_store.h"

namespace cairn::backend::testing {
namespace {

using store::Batch;
using store::Entry;
using store::MemoryStore;
using store::Mutation;
using store::Precondition;
using store::Version;

Batch puts(std::initializer_list<std::pair<std::string, std::string>> kv) {
  Batch b;
  for (const auto& [k, v] : kv) b.mutations.push_back({Mutation::Op::kPut, k, v});
  return b;
}

std::unique_ptr<SqliteStore> open_ok(const std::string& path, const SqliteOptions& options = {}) {
  auto r = SqliteStore::open(path, {}, options);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

// A raw connection for inspecting or locking the file behind the store.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errmsg(db_);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  int exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  // Every row of `sql`, columns joined with '|'.
  std::vector<std::string> rows(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        if (c > 0) row += '|';
        const unsigned char* t = sqlite3_column_text(st, c);
        row += t != nullptr ? reinterpret_cast<const char*>(t) : "NULL";
      }
      out.push_back(row);
    }
    sqlite3_finalize(st);
    return out;
  }
  bool has_table(const std::string& name) {
    return !rows("SELECT name FROM sqlite_master WHERE type='table' AND name='" + name + "'")
                .empty();
  }

 private:
  sqlite3* db_ = nullptr;
};

// ---- durability --------------------------------------------------------------------------

TEST(SqliteStore, WritesSurviveCloseAndReopenAndVersionsContinue) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  Version v1 = 0;
  Version v2 = 0;
  const std::string blob(100'000, 'b');
  {
    auto s = open_ok(path);
    ASSERT_NE(s, nullptr);
    Batch b = puts({{"a/1", "one"}, {"a/2", std::string("t\0o", 3)}, {"empty", ""}});
    b.blobs.push_back({to_hex(sha256(blob)), blob});
    auto r1 = s->commit(b);
    ASSERT_TRUE(r1.ok()) << r1.status().to_string();
    v1 = r1->version;
    Batch d;
    d.mutations.push_back({Mutation::Op::kDelete, "a/1", ""});
    d.mutations.push_back({Mutation::Op::kPut, "a/3", "three"});
    auto r2 = s->commit(d);
    ASSERT_TRUE(r2.ok());
    v2 = r2->version;
    EXPECT_GT(v2, v1);
  }
  auto s = open_ok(path);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->migrations_applied().empty());
  EXPECT_EQ(s->last_version().value(), v2);
  EXPECT_FALSE(s->get("a/1").value().has_value());
  EXPECT_EQ(s->get("a/2").value(), (Entry{"a/2", std::string("t\0o", 3), v1}));
  EXPECT_EQ(s->get("empty").value(), (Entry{"empty", "", v1}));
  EXPECT_EQ(dump(*s, "a/"),
            (std::vector<Entry>{{"a/2", std::string("t\0o", 3), v1}, {"a/3", "three", v2}}));
  EXPECT_EQ(s->get_blob(to_hex(sha256(blob))).value(), blob);
  auto r3 = s->commit(puts({{"a/4", "four"}}));
  ASSERT_TRUE(r3.ok());
  EXPECT_GT(r3->version, v2);
  EXPECT_EQ(s->get("a/4").value()->version, r3->version);
}

TEST(SqliteStore, LiveConnectionIsWalWithFullSync) {
  TempDir dir;
  auto s = open_ok(dir.file("cairn.db"));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->pragma("journal_mode").value(), "wal");
  EXPECT_EQ(s->pragma("synchronous").value(), "2");  // FULL
  EXPECT_EQ(s->pragma("foreign_keys").value(), "1");
  EXPECT_EQ(s->pragma("busy_timeout").value(), "5000");
  EXPECT_EQ(s->pragma("journal_mode;drop").status().code(), Code::kInvalid);
}

TEST(SqliteStore, InMemoryDatabaseIsRefusedForWantOfWal) {
  auto r = SqliteStore::open(":memory:");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().reason(), "wal_unavailable");
}

TEST(SqliteStore, UnopenablePathIsUnavailable) {
  auto r = SqliteStore::open("/nonexistent-dir-for-cairn/x.db");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
}

TEST(SqliteStore, LimitsBeyondSqliteAreRefused) {
  TempDir dir;
  store::StoreLimits huge;
  huge.blob_bytes_max = std::size_t{4} << 30;  // 4 GiB > SQLITE_MAX_LENGTH
  auto r = SqliteStore::open(dir.file("cairn.db"), huge);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
}

// ---- migrations --------------------------------------------------------------------------

TEST(SqliteMigrations, AppliedOnceAndRecorded) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  {
    auto s = open_ok(path);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->migrations_applied(), (std::vector<std::int64_t>{1}));
  }
  for (int i = 0; i < 3; ++i) {
    auto s = open_ok(path);
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->migrations_applied().empty());
  }
  RawDb raw(path);
  const auto journal = raw.rows("SELECT id, name, applied_at > 0 FROM _migrations ORDER BY id");
  ASSERT_EQ(journal.size(), builtin_migrations().size());
  EXPECT_EQ(journal[0], "1|" + std::string(builtin_migrations()[0].name) + "|1");
  EXPECT_EQ(raw.rows("SELECT name, value FROM meta"), (std::vector<std::string>{"version|0"}));
}

// The built-in steps followed by test steps numbered after them.
std::vector<Migration> with_builtin(
    std::initializer_list<std::pair<const char*, const char*>> extra) {
  std::vector<Migration> out(builtin_migrations().begin(), builtin_migrations().end());
  for (const auto& [name, sql] : extra) {
    out.push_back({static_cast<std::int64_t>(out.size()) + 1, name, sql});
  }
  return out;
}

std::vector<std::string> journal(RawDb& raw) {
  return raw.rows("SELECT id, name FROM _migrations WHERE id > " +
                  std::to_string(builtin_migrations().size()) + " ORDER BY id");
}

std::string step(std::size_t n, const char* name) {
  return std::to_string(builtin_migrations().size() + n) + "|" + name;
}

constexpr const char* kBrokenT2 =
    "CREATE TABLE t2(x); INSERT INTO t2 VALUES (1); INSERT INTO no_such_table VALUES (1);";
constexpr const char* kFixedT2 = "CREATE TABLE t2(x); INSERT INTO t2 VALUES (1);";

TEST(SqliteMigrations, AFailingStepLeavesTheJournalConsistent) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  const auto broken = with_builtin(
      {{"t1", "CREATE TABLE t1(x);"}, {"t2", kBrokenT2}, {"t3", "CREATE TABLE t3(x);"}});
  SqliteOptions opt;
  opt.migrations = broken;
  auto r = SqliteStore::open(path, {}, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInternal);
  EXPECT_NE(r.status().message().find("migration " +
                                      std::to_string(builtin_migrations().size() + 2) + " 't2'"),
            std::string::npos)
      << r.status().message();
  {
    RawDb raw(path);
    EXPECT_EQ(journal(raw), (std::vector<std::string>{step(1, "t1")}));
    EXPECT_TRUE(raw.has_table("t1"));
    EXPECT_FALSE(raw.has_table("t2"));  // the half-applied step rolled back whole
    EXPECT_FALSE(raw.has_table("t3"));  // and nothing after it ran
  }
  // A fixed binary resumes at step 2, then applies nothing on the next open.
  const auto fixed = with_builtin(
      {{"t1", "CREATE TABLE t1(x);"}, {"t2", kFixedT2}, {"t3", "CREATE TABLE t3(x);"}});
  opt.migrations = fixed;
  {
    auto s = open_ok(path, opt);
    ASSERT_NE(s, nullptr);
    const auto n = static_cast<std::int64_t>(builtin_migrations().size());
    EXPECT_EQ(s->migrations_applied(), (std::vector<std::int64_t>{n + 2, n + 3}));
  }
  {
    auto s = open_ok(path, opt);
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->migrations_applied().empty());
  }
  RawDb raw(path);
  EXPECT_EQ(journal(raw), (std::vector<std::string>{step(1, "t1"), step(2, "t2"), step(3, "t3")}));
  EXPECT_EQ(raw.rows("SELECT count(*) FROM t2"), (std::vector<std::string>{"1"}));
}

TEST(SqliteMigrations, ANewerDatabaseIsRefused) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  const auto three = with_builtin({{"t1", "CREATE TABLE t1(x);"}, {"t2", kFixedT2}});
  SqliteOptions opt;
  opt.migrations = three;
  ASSERT_NE(open_ok(path, opt), nullptr);
  const auto two = with_builtin({{"t1", "CREATE TABLE t1(x);"}});
  opt.migrations = two;
  auto r = SqliteStore::open(path, {}, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().reason(), "schema_too_new");
}

TEST(SqliteMigrations, AJournalThatDisagreesWithTheBinaryIsRefused) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  const auto one = with_builtin({{"t1", "CREATE TABLE t1(x);"}});
  SqliteOptions opt;
  opt.migrations = one;
  ASSERT_NE(open_ok(path, opt), nullptr);
  const auto renamed = with_builtin({{"something else", "CREATE TABLE t1(x);"}});
  opt.migrations = renamed;
  auto r = SqliteStore::open(path, {}, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInternal);
  EXPECT_EQ(r.status().reason(), "schema_mismatch");
}

// ---- errors under contention -------------------------------------------------------------

TEST(SqliteStore, AnotherWriterHoldingTheLockMakesCommitUnavailable) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  SqliteOptions opt;
  opt.busy_timeout_ms = 50;
  auto s = open_ok(path, opt);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->commit(puts({{"k", "1"}})).ok());
  const Version before = s->last_version().value();

  RawDb other(path);
  ASSERT_EQ(other.exec("BEGIN IMMEDIATE"), SQLITE_OK);  // holds the write lock
  auto r = s->commit(puts({{"k", "2"}, {"j", "1"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().reason(), "storage_busy");
  // Reads go on under WAL while the other connection writes; nothing applied.
  EXPECT_EQ(s->get("k").value()->value, "1");
  EXPECT_FALSE(s->get("j").value().has_value());
  EXPECT_EQ(s->last_version().value(), before);
  ASSERT_EQ(other.exec("ROLLBACK"), SQLITE_OK);

  auto again = s->commit(puts({{"k", "2"}, {"j", "1"}}));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_GT(again->version, before);
}

TEST(SqliteStore, OpeningACurrentDatabaseTakesNoWriteLock) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  ASSERT_NE(open_ok(path), nullptr);
  RawDb other(path);
  ASSERT_EQ(other.exec("BEGIN IMMEDIATE"), SQLITE_OK);
  SqliteOptions opt;
  opt.busy_timeout_ms = 50;
  auto s = open_ok(path, opt);  // nothing to migrate: no lock needed
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->commit(puts({{"k", "1"}})).status().code(), Code::kUnavailable);
  ASSERT_EQ(other.exec("COMMIT"), SQLITE_OK);
  EXPECT_TRUE(s->commit(puts({{"k", "1"}})).ok());
}

TEST(SqliteStore, FailedPreconditionsRollBackAndNameEveryKeyInBatchOrder) {
  TempDir dir;
  auto s = open_ok(dir.file("cairn.db"));
  ASSERT_NE(s, nullptr);
  auto v = s->commit(puts({{"a", "1"}, {"b", "1"}}));
  ASSERT_TRUE(v.ok());
  Batch b = puts({{"c", "1"}});
  b.preconditions.push_back(Precondition::absent("b"));
  b.preconditions.push_back(Precondition::version_equals("a", v->version));
  b.preconditions.push_back(Precondition::version_equals("z", 7));
  b.preconditions.push_back(Precondition::absent("b"));
  auto r = s->commit(b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "precondition_failed");
  EXPECT_EQ(r.status().details().find("keys")->size(), 2u);
  EXPECT_FALSE(s->get("c").value().has_value());
  EXPECT_EQ(s->last_version().value(), v->version);
  // The connection is usable after the rollback.
  EXPECT_TRUE(s->commit(puts({{"c", "1"}})).ok());
}

// ---- readers -----------------------------------------------------------------------------

TEST(SqliteReader, SeesCommitsAndRefusesToWrite) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  auto w = open_ok(path);
  ASSERT_NE(w, nullptr);
  auto rr = SqliteStore::open_reader(path);
  ASSERT_TRUE(rr.ok()) << rr.status().to_string();
  auto& reader = *rr.value();
  EXPECT_TRUE(reader.read_only());
  EXPECT_EQ(reader.last_version().value(), 0u);
  auto v = w->commit(puts({{"k/1", "a"}, {"k/2", "b"}}));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(reader.last_version().value(), v->version);
  EXPECT_EQ(reader.get("k/1").value()->value, "a");
  EXPECT_EQ(dump(reader, "k/").size(), 2u);
  auto c = reader.commit(puts({{"x", "1"}}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kForbidden);
  // A malformed batch is still invalid first, as on every backend.
  EXPECT_EQ(reader.commit(puts({{"", "1"}})).status().code(), Code::kInvalid);
}

TEST(SqliteReader, OpensAClosedDatabase) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  {
    auto w = open_ok(path);
    ASSERT_NE(w, nullptr);
    ASSERT_TRUE(w->commit(puts({{"k", "v"}})).ok());
  }
  auto rr = SqliteStore::open_reader(path);
  ASSERT_TRUE(rr.ok()) << rr.status().to_string();
  EXPECT_EQ(rr.value()->get("k").value()->value, "v");
}

TEST(SqliteReader, RefusesMissingOrUninitialisedDatabases) {
  TempDir dir;
  EXPECT_EQ(SqliteStore::open_reader(dir.file("missing.db")).status().code(), Code::kUnavailable);
  // A WAL database that is not a cairn database (no migration journal).
  const std::string path = dir.file("plain.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE x(a);", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  auto r = SqliteStore::open_reader(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().reason(), "schema_pending");
}

// ---- range edges -------------------------------------------------------------------------

TEST(SqliteStore, RangeWithAllFfPrefixAndEmptyPrefix) {
  TempDir dir;
  auto s = open_ok(dir.file("cairn.db"));
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->commit(puts({{"\xff", "1"},
                              {"\xff\xff", "2"},
                              {std::string("\xff\xff\x00", 3), "3"},
                              {"\xff\xfe", "4"},
                              {"a\xff", "5"},
                              {"b", "6"},
                              {std::string("\0", 1), "7"}}))
                  .ok());
  auto keys = [&](std::string_view prefix, std::string_view after, std::size_t limit) {
    std::vector<std::string> out;
    auto page = s->range(prefix, after, limit);
    EXPECT_TRUE(page.ok());
    for (const Entry& e : page->entries) out.push_back(e.key);
    if (page->more) out.push_back("<more>");
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(keys("\xff\xff", "", 10), (V{"\xff\xff", std::string("\xff\xff\x00", 3)}));
  EXPECT_EQ(keys("\xff", "", 10),
            (V{"\xff", "\xff\xfe", "\xff\xff", std::string("\xff\xff\x00", 3)}));
  EXPECT_EQ(keys("\xff", "\xff\xfe", 2), (V{"\xff\xff", std::string("\xff\xff\x00", 3)}));
  EXPECT_EQ(keys("a", "", 10), (V{"a\xff"}));
  EXPECT_EQ(keys("", "", 2), (V{std::string("\0", 1), "a\xff", "<more>"}));
  EXPECT_EQ(keys("", "b", 10), (V{"\xff", "\xff\xfe", "\xff\xff", std::string("\xff\xff\x00", 3)}));
  EXPECT_EQ(keys("", std::string("\xff\xff\x00", 3), 10), V{});
}

// ---- randomised comparison with MemoryStore ----------------------------------------------

std::string random_key(Rng& rng) {
  // A small alphabet with the edge bytes, so keys collide and share prefixes.
  static const char kBytes[] = {'a', 'b', '/', '\0', '\x7f', '\x80', '\xff'};
  const std::size_t len = 1 + rng.uniform(4);
  std::string k;
  for (std::size_t i = 0; i < len; ++i) k += kBytes[rng.uniform(sizeof kBytes)];
  return k;
}

TEST(SqliteStore, MatchesMemoryStoreOnRandomBatches) {
  TempSqliteStore sql;
  MemoryStore mem;
  SeededRng rng(20240601);
  constexpr int kSteps = 400;
  for (int step = 0; step < kSteps; ++step) {
    Batch b;
    std::map<std::string, bool> used;
    const std::size_t pre = rng.uniform(3);
    for (std::size_t i = 0; i < pre; ++i) {
      std::string k = random_key(rng);
      auto cur = mem.get(k).value();
      // Mostly true preconditions, sometimes false ones.
      const bool truthful = rng.uniform(4) != 0;
      const Version v = cur ? cur->version : store::kAbsent;
      b.preconditions.push_back(Precondition::unchanged(k, truthful ? v : v + 1));
    }
    const std::size_t muts = rng.uniform(5);
    for (std::size_t i = 0; i < muts; ++i) {
      std::string k = random_key(rng);
      if (used[k]) continue;
      used[k] = true;
      if (rng.uniform(3) == 0) {
        b.mutations.push_back({Mutation::Op::kDelete, k, ""});
      } else {
        b.mutations.push_back({Mutation::Op::kPut, k, "v" + std::to_string(step)});
      }
    }
    if (rng.uniform(5) == 0) {
      const std::string bytes = "blob" + std::to_string(rng.uniform(10));
      b.blobs.push_back({to_hex(sha256(bytes)), bytes});
    }
    auto want = mem.commit(b);
    auto got = sql.commit(b);
    ASSERT_EQ(got.ok(), want.ok()) << "step " << step << ": " << got.status().to_string();
    if (want.ok()) {
      ASSERT_EQ(got->version, want->version) << "step " << step;
    } else {
      ASSERT_EQ(got.status().to_string(), want.status().to_string()) << "step " << step;
    }
    if (step % 50 == 49) sql.reopen();
    // A random range read, compared page by page.
    const std::string prefix = rng.uniform(3) == 0 ? std::string() : random_key(rng).substr(0, 1);
    const std::string after = rng.uniform(2) == 0 ? std::string() : random_key(rng);
    const std::size_t limit = 1 + rng.uniform(6);
    auto wr = mem.range(prefix, after, limit);
    auto gr = sql.range(prefix, after, limit);
    ASSERT_TRUE(wr.ok() && gr.ok());
    ASSERT_EQ(gr->entries, wr->entries) << "step " << step;
    ASSERT_EQ(gr->more, wr->more) << "step " << step;
  }
  EXPECT_EQ(dump(sql), dump(mem));
  EXPECT_EQ(sql.last_version().value(), mem.last_version().value());
  for (int i = 0; i < 10; ++i) {
    const std::string bytes = "blob" + std::to_string(i);
    EXPECT_EQ(sql.get_blob(to_hex(sha256(bytes))).value(),
              mem.get_blob(to_hex(sha256(bytes))).value());
  }
}

}  // namespace
}  // namespace cairn::backend::testing

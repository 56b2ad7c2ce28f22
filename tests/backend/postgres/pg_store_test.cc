// pg_store_test.cc — what PostgreSQL adds to the contract suite: two racing
// writers (one wins), deadlock retry, the migration journal, a server that
// stops and comes back, a connection lost during COMMIT, blobs.
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "backend/postgres/pg_cluster.h"
#include "store/store.h"

namespace cairn::backend::testing {
namespace {

using store::Batch;
using store::Mutation;
using store::Precondition;

Batch put(std::string key, std::string value, std::vector<Precondition> pre = {}) {
  Batch b;
  b.preconditions = std::move(pre);
  b.mutations.push_back({Mutation::Op::kPut, std::move(key), std::move(value)});
  return b;
}

// Waits (without a deadline: ctest's timeout bounds it) until `sql` returns a row.
void wait_for_row(RawSession& s, const std::string& sql) {
  while (s.exec(sql).empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

TEST(PgStore, RacingWritersExactlyOneWins) {
  TempPgStore a;
  PgOptions o;
  o.schema = a.schema();
  auto b = PgStore::open(pg_url(), {}, o);  // a second store: other connections
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  for (int round = 0; round < 20; ++round) {
    const std::string key = "race/" + std::to_string(round);
    std::atomic<int> wins{0}, conflicts{0};
    auto writer = [&](store::Store& s, const std::string& who) {
      auto r = s.commit(put(key, who, {Precondition::absent(key)}));
      if (r.ok()) {
        ++wins;
      } else {
        EXPECT_EQ(r.status().reason(), "precondition_failed") << r.status().to_string();
        ++conflicts;
      }
    };
    std::thread t1([&] { writer(a, "a"); });
    std::thread t2([&] { writer(**b, "b"); });
    t1.join();
    t2.join();
    EXPECT_EQ(wins.load(), 1);
    EXPECT_EQ(conflicts.load(), 1);
    auto e = a.get(key);
    ASSERT_TRUE(e.ok() && e->has_value());
  }
  // Versions stayed one strictly increasing counter: 20 winning commits.
  EXPECT_EQ(a.last_version().value(), 20u);
}

TEST(PgStore, AnExclusiveOwnerKeepsOtherOwnersOut) {
  TempPgStore scratch;  // a fresh schema for the tables
  PgOptions o;
  o.schema = scratch.schema();
  o.exclusive_owner = true;
  auto first = PgStore::open(pg_url(), {}, o);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  auto second = PgStore::open(pg_url(), {}, o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_EQ(second.status().reason(), "store_in_use");
  PgOptions shared = o;
  shared.exclusive_owner = false;  // a plain store (a reader) may still open
  EXPECT_TRUE(PgStore::open(pg_url(), {}, shared).ok());
  first->reset();  // the owner goes: the lock with it
  auto third = PgStore::open(pg_url(), {}, o);
  EXPECT_TRUE(third.ok()) << third.status().to_string();
}

TEST(PgStore, PoolServesManyThreads) {
  PgOptions o;
  o.pool_size = 2;
  TempPgStore s({}, o);
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::string key = "k/" + std::to_string(t) + "/" + std::to_string(i);
        ASSERT_TRUE(s.commit(put(key, "v")).ok());
        ASSERT_TRUE(s.get(key).value().has_value());
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(s.last_version().value(), 120u);
  EXPECT_EQ(s.range("k/", "", 1000).value().entries.size(), 120u);
}

// A foreign session holds a kv row and then asks for the counter row the
// store's commit holds: a deadlock, which the store's backend detects first
// (its deadlock_timeout is the default 1 s, the foreign one 60 s). The store
// retries and its commit succeeds.
void deadlock_against(TempPgStore& s, Result<store::CommitInfo>& out) {
  RawSession raw;
  raw.exec("SET search_path = " + s.schema());
  raw.exec("BEGIN");
  raw.exec("SET LOCAL deadlock_timeout = '60s'");
  raw.exec("SELECT version FROM kv WHERE key = 'a'::bytea FOR UPDATE");
  std::thread writer([&] { out = s.commit(put("a", "2")); });
  RawSession watch;
  wait_for_row(watch,
               "SELECT 1 FROM pg_stat_activity WHERE application_name = 'cairn'"
               " AND wait_event_type = 'Lock'");
  // Blocks until the store's transaction is chosen as the deadlock victim.
  raw.exec("SELECT value FROM meta WHERE name = 'version' FOR UPDATE");
  raw.exec("COMMIT");
  writer.join();
}

TEST(PgStore, DeadlockIsRetried) {
  TempPgStore s;
  ASSERT_TRUE(s.commit(put("a", "1")).ok());
  Result<store::CommitInfo> out = internal_error("not run");
  deadlock_against(s, out);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->version, 2u);
  EXPECT_GE(s.db().stats().serialization_retries, 1u);
  EXPECT_EQ(s.get("a").value()->value, "2");
}

TEST(PgStore, DeadlockWithoutRetriesIsUnavailable) {
  PgOptions o;
  o.serialization_retries_max = 0;
  TempPgStore s({}, o);
  ASSERT_TRUE(s.commit(put("a", "1")).ok());
  Result<store::CommitInfo> out = internal_error("not run");
  deadlock_against(s, out);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kUnavailable) << out.status().to_string();
  EXPECT_EQ(out.status().reason(), "storage_busy");
  EXPECT_EQ(s.get("a").value()->value, "1");  // nothing applied
  EXPECT_EQ(s.last_version().value(), 1u);
}

TEST(PgStore, MigrationsAppliedOnce) {
  TempPgStore s;
  EXPECT_EQ(s.db().migrations_applied(), std::vector<std::int64_t>{1});
  ASSERT_TRUE(s.commit(put("k", "v")).ok());
  s.reopen();
  EXPECT_TRUE(s.db().migrations_applied().empty());
  EXPECT_EQ(s.get("k").value()->value, "v");
  RawSession raw;
  EXPECT_EQ(raw.exec("SELECT count(*) FROM " + s.schema() + "._migrations"),
            std::vector<std::string>{"1"});
  // A binary that knows fewer steps than the database refuses it.
  raw.exec("INSERT INTO " + s.schema() + "._migrations(id, name) VALUES (2, 'future')");
  PgOptions o;
  o.schema = s.schema();
  auto newer = PgStore::open(pg_url(), {}, o);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().reason(), "schema_too_new");
  raw.exec("DELETE FROM " + s.schema() + "._migrations WHERE id = 2");
}

TEST(PgStore, BlobsRoundTrip) {
  TempPgStore s;
  Batch b;
  b.blobs.push_back({"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "foo"});
  const std::string bin("\0\1\2\xff", 4);
  b.blobs.push_back({"3d1f57c984978ef98a18378c8166c1cb8ede02c03eeb6aee7e2f121dfeee3e56", bin});
  b.blobs.push_back({"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", ""});
  ASSERT_TRUE(s.commit(b).ok());
  EXPECT_EQ(s.last_version().value(), 0u);  // blobs alone do not advance the counter
  s.reopen();
  EXPECT_EQ(s.get_blob("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae").value(),
            std::optional<std::string>("foo"));
  EXPECT_EQ(s.get_blob("3d1f57c984978ef98a18378c8166c1cb8ede02c03eeb6aee7e2f121dfeee3e56").value(),
            std::optional<std::string>(bin));
  EXPECT_EQ(s.get_blob("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").value(),
            std::optional<std::string>(""));
  EXPECT_EQ(s.get_blob("00").value(), std::nullopt);
}

// The server stops: calls answer unavailable; it comes back: the store
// reconnects by itself and every acknowledged commit is there.
TEST(PgStore, ServerRestartUnavailableThenRecovers) {
  TempPgStore s;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s.commit(put("ack/" + std::to_string(i), "v")).ok());
  const std::uint64_t opened_before = s.db().stats().connections_opened;
  pg_cluster_down();
  auto c = s.commit(put("ack/down", "v"));
  EXPECT_EQ(c.status().code(), Code::kUnavailable) << c.status().to_string();
  auto g = s.get("ack/0");
  EXPECT_EQ(g.status().code(), Code::kUnavailable) << g.status().to_string();
  EXPECT_EQ(s.last_version().status().code(), Code::kUnavailable);
  pg_cluster_up();
  auto again = s.commit(put("ack/10", "v"));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->version, 11u);
  auto page = s.range("ack/", "", 100);
  ASSERT_TRUE(page.ok()) << page.status().to_string();
  EXPECT_EQ(page->entries.size(), 11u);
  EXPECT_FALSE(s.get("ack/down").value().has_value());
  EXPECT_GT(s.db().stats().connections_opened, opened_before);
}

// Reconnects that fail while the server is down give their pool slot back: a
// one-connection store (cairnd's single-owner writer) works again after more
// failed calls than it has connections. (It used to leak the slot and then
// wait for a free connection forever.)
TEST(PgStore, FailedReconnectsDoNotUseUpThePool) {
  PgOptions o;
  o.pool_size = 1;
  TempPgStore s({}, o);
  ASSERT_TRUE(s.commit(put("ack/0", "v")).ok());
  pg_cluster_down();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(s.get("ack/0").status().code(), Code::kUnavailable);
    EXPECT_EQ(s.commit(put("ack/x", "v")).status().code(), Code::kUnavailable);
  }
  pg_cluster_up();
  auto g = s.get("ack/0");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_TRUE(g->has_value());
  EXPECT_TRUE(s.commit(put("ack/1", "v")).ok());
}

// The connection dies while COMMIT runs (a deferred trigger makes COMMIT
// wait; the test terminates that backend): outcome_unknown, never ok or a
// definite error. The store works again on its next call.
TEST(PgStore, ConnectionLostDuringCommitIsOutcomeUnknown) {
  TempPgStore s;
  RawSession raw;
  const std::string sc = s.schema();
  raw.exec("CREATE FUNCTION " + sc +
           ".slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(60); RETURN "
           "NULL; END $$");
  raw.exec("CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON " + sc +
           ".kv DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.key = 'slow'::bytea) "
           "EXECUTE FUNCTION " +
           sc + ".slow()");
  Result<store::CommitInfo> out = internal_error("not run");
  std::thread writer([&] { out = s.commit(put("slow", "v")); });
  wait_for_row(raw,
               "SELECT 1 FROM pg_stat_activity WHERE application_name = 'cairn'"
               " AND query = 'COMMIT' AND wait_event = 'PgSleep'");
  raw.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cairn'"
      " AND query = 'COMMIT'");
  writer.join();
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kOutcomeUnknown) << out.status().to_string();
  raw.exec("DROP TRIGGER slow ON " + sc + ".kv");
  auto next = s.commit(put("after", "v"));
  EXPECT_TRUE(next.ok()) << next.status().to_string();
}

}  // namespace
}  // namespace cairn::backend::testing

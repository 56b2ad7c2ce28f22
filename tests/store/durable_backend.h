// durable_backend.h — checks shared by the tests of every durable Store
// backend (SQLite, PostgreSQL), beside the contract suite: a dump of a
// store's entries, and the core Blackboard committing each drained batch to
// the backend and resuming exactly after the database is closed and reopened
// (same state_hash, leases, deadlines, event sequence, version counter).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/blackboard.h"
#include "model/clock.h"
#include "model/rng.h"
#include "store/memory_store.h"
#include "store/store.h"

namespace cairn::testing {

// Every entry of `s` whose key starts with `prefix`, in key order.
inline std::vector<store::Entry> dump(store::Store& s, std::string_view prefix = "") {
  std::vector<store::Entry> out;
  std::string after;
  for (;;) {
    auto page = s.range(prefix, after, s.limits().range_limit_max);
    EXPECT_TRUE(page.ok()) << page.status().to_string();
    if (!page.ok()) return out;
    for (auto& e : page->entries) out.push_back(std::move(e));
    if (!page->more) return out;
    after = out.back().key;
  }
}

namespace restart_detail {

inline FactBody body(const std::string& kind, int n, std::vector<std::string> derived = {}) {
  FactBody b;
  b.kind = kind;
  b.content = Json(JsonObject{{"n", Json(n)}});
  b.creator = "tester";
  b.derived_from = std::move(derived);
  return b;
}

inline IntentDraft draft(const std::string& fact, const std::string& kind, std::int64_t priority) {
  IntentDraft d;
  d.kind = kind;
  d.from_facts = {fact};
  d.creator = "alice";
  d.priority = priority;
  d.lease_ttl_ms = 30'000;
  d.max_attempts = 3;
  return d;
}

// A blackboard whose batches go to the backend and, for comparison, to a
// MemoryStore fed the very same batches. `open` (re)opens the backend.
struct Env {
  explicit Env(std::function<std::unique_ptr<store::Store>()> opener)
      : open_store(std::move(opener)), rng(42), bb(clock, rng) {
    open();
  }

  void open() {
    db = open_store();
    ASSERT_NE(db, nullptr);
  }

  void flush() {
    PendingCommit p = bb.drain();
    auto got = db->commit(p.batch);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    auto want = mirror.commit(p.batch);
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(got->version, want->version);
    bb.accept();
  }

  std::function<std::unique_ptr<store::Store>()> open_store;
  SimClock clock;
  SeededRng rng;
  Blackboard bb;
  std::unique_ptr<store::Store> db;
  store::MemoryStore mirror;
};

}  // namespace restart_detail

// `open_store` opens the same database each time it is called (nullptr after
// a failed ASSERT).
inline void blackboard_restart_resumes_exactly(
    const std::function<std::unique_ptr<store::Store>()>& open_store) {
  using restart_detail::body;
  using restart_detail::draft;
  restart_detail::Env e(open_store);
  ASSERT_NE(e.db, nullptr);

  // Facts, a derived fact, intents of two kinds.
  std::vector<std::string> facts;
  for (int i = 0; i < 5; ++i) {
    auto f = e.bb.post_fact(body("obs", i));
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    facts.push_back(f->id);
  }
  ASSERT_TRUE(e.bb.post_fact(body("summary", 0, {facts[0], facts[1]})).ok());
  ASSERT_NO_FATAL_FAILURE(e.flush());
  std::vector<std::string> intents;
  for (int i = 0; i < 8; ++i) {
    auto c = e.bb.create_intent(draft(facts[i % facts.size()], i % 2 ? "crawl" : "build", i));
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    intents.push_back(c->id);
  }
  ASSERT_NO_FATAL_FAILURE(e.flush());

  // Claims, a heartbeat, conclusions, a retryable failure, a release, a
  // cancel, a hint with an expiry — several commands per batch.
  std::vector<ClaimReply> claims;
  for (int i = 0; i < 6; ++i) {
    auto c = e.bb.claim(intents[i], "agent-" + std::to_string(i % 3));
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    claims.push_back(*c);
  }
  ASSERT_NO_FATAL_FAILURE(e.flush());
  e.clock.advance_ms(1'000);
  ASSERT_TRUE(e.bb.heartbeat(intents[0], "agent-0", claims[0].epoch).ok());
  ASSERT_TRUE(e.bb.conclude(intents[1], "agent-1", claims[1].epoch, body("result", 1)).ok());
  ASSERT_TRUE(e.bb.conclude(intents[2], "agent-2", claims[2].epoch, body("result", 2)).ok());
  ASSERT_NO_FATAL_FAILURE(e.flush());
  ASSERT_TRUE(e.bb.fail(intents[3], "agent-0", claims[3].epoch, "flaky", true).ok());
  ASSERT_TRUE(e.bb.release(intents[4], "agent-1", claims[4].epoch).ok());
  ASSERT_TRUE(e.bb.cancel(intents[7], "alice").ok());
  HintDraft h;
  h.kind = "policy";
  h.selector.kind = "crawl";
  h.effect.type = HintEffectType::kDeny;
  h.creator = "ops";
  h.reason = "testing";
  h.expires_at = e.clock.wall_ms() + 60'000;
  ASSERT_TRUE(e.bb.create_hint(h).ok());
  ASSERT_NO_FATAL_FAILURE(e.flush());

  const Digest before = e.bb.state_hash();
  const std::uint64_t last_seq = e.bb.last_seq();
  const store::Version last_version = e.db->last_version().value();
  // The database holds exactly what the memory store holds.
  EXPECT_EQ(dump(*e.db), dump(e.mirror));

  // Restart: close the database, reopen it, load a fresh blackboard.
  e.db.reset();
  ASSERT_NO_FATAL_FAILURE(e.open());
  SeededRng rng2(7);
  Blackboard again(e.clock, rng2);
  ASSERT_TRUE(again.load(*e.db).ok());
  EXPECT_EQ(again.state_hash(), before);
  EXPECT_EQ(again.last_seq(), last_seq);
  EXPECT_EQ(again.next_deadline(), e.bb.next_deadline());
  EXPECT_EQ(again.intent(intents[0])->st.lease_expires_at,
            e.bb.intent(intents[0])->st.lease_expires_at);
  EXPECT_EQ(again.count(IntentState::kConcluded), 2u);
  EXPECT_EQ(again.fact_count(), e.bb.fact_count());
  auto events = Blackboard::read_events(*e.db, 0, 10'000);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), last_seq);
  for (std::size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].seq, i + 1);

  // It fences and continues like the original: no gap in the sequence, the
  // version counter goes on.
  EXPECT_EQ(again.heartbeat(intents[0], "agent-0", 0).status().reason(), "stale_epoch");
  ASSERT_TRUE(again.conclude(intents[0], "agent-0", claims[0].epoch, body("result", 0)).ok());
  PendingCommit p = again.drain();
  ASSERT_FALSE(p.events.empty());
  EXPECT_EQ(p.events.front().seq, last_seq + 1);
  auto v = e.db->commit(p.batch);
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_GT(v->version, last_version);
  again.accept();

  // Lease expiry after the restart uses the reloaded lease ends.
  e.clock.advance_ms(60'000);
  TickReport t = again.tick();
  EXPECT_EQ(t.leases_expired, 1u);  // intents[5], claimed before the restart
  EXPECT_EQ(t.hints_expired, 1u);
  PendingCommit q = again.drain();
  ASSERT_TRUE(e.db->commit(q.batch).ok());
  again.accept();
  const Digest after = again.state_hash();
  e.db.reset();
  ASSERT_NO_FATAL_FAILURE(e.open());
  Blackboard third(e.clock, rng2);
  ASSERT_TRUE(third.load(*e.db).ok());
  EXPECT_EQ(third.state_hash(), after);
}

}  // namespace cairn::testing

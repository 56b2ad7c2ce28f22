// engine_test.cc — the poll cycle, group commit, failure handling,
// idempotency, long-polls, gates and snapshots of the sans-IO engine.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <map>

#include "core/keys.h"
#include "engine/driver.h"
#include "store/fault_store.h"
#include "store/memory_store.h"

namespace cairn::engine {
namespace {

using testing::Driver;
using testing::kT0;

FactBody result_fact() {
  FactBody f;
  f.kind = "result";
  f.content = Json("done");
  return f;
}

TEST(EnginePoll, OneCycleOneCommitForManyWrites) {
  Driver d;
  std::vector<RequestId> ids;
  for (int i = 0; i < 10; ++i) {
    FactBody f;
    f.kind = "obs";
    f.content = Json(i);
    ids.push_back(d.send("p", PostFact{f}));
  }
  d.auto_commit = false;
  d.step();
  EXPECT_EQ(d.commits, 1);
  EXPECT_EQ(d.held.size(), 1u);
  // No reply is released before the commit completes.
  for (RequestId id : ids) EXPECT_FALSE(d.replied(id));
  EXPECT_TRUE(d.engine.busy());
  d.commit_pending();
  d.step();
  for (RequestId id : ids) {
    ASSERT_TRUE(d.replied(id));
    EXPECT_TRUE(d.reply(id).status.ok());
  }
  ASSERT_EQ(d.events.size(), 10u);
  for (std::size_t i = 0; i < d.events.size(); ++i) EXPECT_EQ(d.events[i].seq, i + 1);
}

TEST(EnginePoll, ReadsOnlyCyclesReplyAtOnceWithoutACommit) {
  Driver d;
  const std::string id = d.make_intent();
  const int commits = d.commits;
  const RequestId r = d.send("x", GetIntent{id});
  d.step();
  EXPECT_EQ(d.commits, commits);
  ASSERT_TRUE(d.replied(r));
  EXPECT_EQ(d.reply(r).body.find("state")->as_string(), "open");
  const RequestId s = d.send("x", GetState{});
  const RequestId missing = d.send("x", GetIntent{"nope"});
  d.step();
  EXPECT_EQ(d.reply(s).body.find("intents")->find("open")->as_number(), 1);
  EXPECT_EQ(d.reply(missing).status.code(), Code::kNotFound);
}

TEST(EnginePoll, PerCycleBudgetBoundsOnePoll) {
  EngineConfig cfg;
  cfg.commands_per_cycle_max = 3;
  Driver d(cfg);
  for (int i = 0; i < 7; ++i) d.send("x", GetState{});
  d.step();
  EXPECT_EQ(d.replies.size(), 3u);
  EXPECT_EQ(d.engine.ingress_depth(), 4u);
  d.step();
  d.step();
  EXPECT_EQ(d.replies.size(), 7u);
}

TEST(EnginePoll, IngressPastCapacityIsRefusedAsOverloaded) {
  EngineConfig cfg;
  cfg.ingress_max = 2;
  Driver d(cfg);
  const RequestId a = d.send("x", GetState{});
  const RequestId b = d.send("x", GetState{});
  const RequestId c = d.send("x", GetState{});
  ASSERT_TRUE(d.replied(c));  // refused at submit, not dropped
  EXPECT_EQ(d.reply(c).status.code(), Code::kUnavailable);
  EXPECT_EQ(d.reply(c).status.reason(), "overloaded");
  d.step();
  EXPECT_TRUE(d.reply(a).status.ok());
  EXPECT_TRUE(d.reply(b).status.ok());
  EXPECT_EQ(d.engine.counters().get("ingress.overloaded"), 1u);
}

TEST(EngineCommit, FailedCommitFailsEveryReplyAndRollsBack) {
  Driver d;
  const std::string id = d.make_intent();
  const Digest before = d.engine.blackboard().state_hash();
  const std::uint64_t seq = d.engine.blackboard().last_seq();
  d.faulty.fail_next_commit(store::CommitFault::kUnavailable);
  const RequestId c = d.send("a1", Claim{id});
  FactBody f;
  f.kind = "obs";
  f.content = Json("x");
  const RequestId p = d.send("p", PostFact{f});
  d.settle();
  EXPECT_EQ(d.reply(c).status.code(), Code::kUnavailable);
  EXPECT_EQ(d.reply(p).status.code(), Code::kUnavailable);
  EXPECT_EQ(d.engine.blackboard().state_hash(), before);
  EXPECT_EQ(d.engine.blackboard().last_seq(), seq);
  // The next batch waits out the commit backoff (no spinning on a down
  // store): nothing is dispatched before it ends, and the deadline says when.
  const RequestId c2 = d.send("a1", Claim{id});
  d.settle();
  EXPECT_FALSE(d.replied(c2));
  EXPECT_EQ(d.deadline, d.engine.commit_retry_at());
  EXPECT_EQ(d.engine.commit_retry_at(), d.now + 10);
  d.now = d.engine.commit_retry_at();
  d.settle();
  // Then it succeeds and the sequence continues without a gap.
  ASSERT_TRUE(d.reply(c2).status.ok());
  EXPECT_EQ(d.events.back().seq, seq + 1);
}

TEST(EngineCommit, RepeatedFailuresBackOffExponentiallyUpToTheCap) {
  Driver d;
  const std::string id = d.make_intent();
  std::vector<std::int64_t> waits;
  for (int i = 0; i < 9; ++i) {
    d.faulty.fail_next_commit(store::CommitFault::kUnavailable);
    d.send("a1", Claim{id});
    d.settle();
    waits.push_back(d.engine.commit_retry_at() - d.now);
    d.now = d.engine.commit_retry_at();
  }
  EXPECT_EQ(waits, (std::vector<std::int64_t>{10, 20, 40, 80, 160, 320, 640, 1000, 1000}));
  const RequestId ok = d.send("a1", Claim{id});
  d.settle();
  EXPECT_TRUE(d.reply(ok).status.ok());
  EXPECT_EQ(d.engine.commit_retry_at(), 0);  // a success resets it
}

TEST(EngineCommit, OutcomeUnknownAppliedIsResyncedAndPublished) {
  Driver d;
  const std::string id = d.make_intent();
  d.faulty.fail_next_commit(store::CommitFault::kUnknownApplied);
  const std::size_t events_before = d.events.size();
  const RequestId c = d.send("a1", Claim{id});
  d.settle();
  EXPECT_EQ(d.reply(c).status.code(), Code::kOutcomeUnknown);
  EXPECT_EQ(d.resyncs, 1);
  // The batch did land: the hot state keeps it, and its events are published.
  EXPECT_EQ(d.engine.blackboard().intent(id)->st.state, IntentState::kClaimed);
  ASSERT_EQ(d.events.size(), events_before + 1);
  EXPECT_EQ(d.events.back().type, "intent.claimed");
  SeededRng rng(1);
  Blackboard again(d.engine.blackboard().clock(), rng);
  ASSERT_TRUE(again.load(d.store).ok());
  EXPECT_EQ(again.state_hash(), d.engine.blackboard().state_hash());
}

TEST(EngineCommit, OutcomeUnknownNotAppliedIsRolledBack) {
  Driver d;
  const std::string id = d.make_intent();
  const Digest before = d.engine.blackboard().state_hash();
  d.faulty.fail_next_commit(store::CommitFault::kUnknownNotApplied);
  const RequestId c = d.send("a1", Claim{id});
  d.settle();
  EXPECT_EQ(d.reply(c).status.code(), Code::kOutcomeUnknown);
  EXPECT_EQ(d.engine.blackboard().state_hash(), before);
  EXPECT_EQ(d.engine.blackboard().intent(id)->st.state, IntentState::kOpen);
  // The retry works.
  const RequestId c2 = d.send("a1", Claim{id});
  d.settle();
  EXPECT_TRUE(d.reply(c2).status.ok());
}

TEST(EngineIdempotency, RetryGetsTheOriginalReplyAndNoSecondEffect) {
  Driver d;
  const std::string id = d.make_intent();
  const RequestId a = d.send("a1", Claim{id}, "k1");
  d.settle();
  ASSERT_TRUE(d.reply(a).status.ok());
  const std::size_t events = d.events.size();
  const RequestId b = d.send("a1", Claim{id}, "k1");
  d.settle();
  ASSERT_TRUE(d.reply(b).status.ok()) << d.reply(b).status.to_string();
  EXPECT_EQ(to_json(d.reply(b).body), to_json(d.reply(a).body));
  EXPECT_EQ(d.events.size(), events);  // no second claim
  // Another agent's identical key is a different request.
  const RequestId c = d.send("a2", Claim{id}, "k1");
  d.settle();
  EXPECT_EQ(d.reply(c).status.reason(), "already_claimed");
}

TEST(EngineIdempotency, RetryWhileTheOriginalIsInFlightJoinsIt) {
  Driver d;
  FactBody f;
  f.kind = "obs";
  f.content = Json("once");
  d.auto_commit = false;
  const RequestId a = d.send("p", PostFact{f}, "post-1");
  d.step();  // a is now in flight
  const RequestId b = d.send("p", PostFact{f}, "post-1");
  d.step();  // b waits for a
  EXPECT_FALSE(d.replied(a));
  EXPECT_FALSE(d.replied(b));
  d.commit_pending();
  d.step();
  ASSERT_TRUE(d.replied(a));
  ASSERT_TRUE(d.replied(b));
  EXPECT_EQ(to_json(d.reply(a).body), to_json(d.reply(b).body));
  EXPECT_EQ(d.commits, 1);
}

TEST(EngineIdempotency, AFailedCommitForgetsTheKeySoTheRetryRuns) {
  Driver d;
  FactBody f;
  f.kind = "obs";
  f.content = Json("retry me");
  d.faulty.fail_next_commit(store::CommitFault::kUnavailable);
  const RequestId a = d.send("p", PostFact{f}, "k");
  d.settle();
  EXPECT_EQ(d.reply(a).status.code(), Code::kUnavailable);
  d.now += 10;  // the commit backoff after a failure
  const RequestId b = d.send("p", PostFact{f}, "k");
  d.settle();
  ASSERT_TRUE(d.reply(b).status.ok());
  EXPECT_TRUE(d.reply(b).body.find("created")->as_bool());
}

// ---- durable idempotency records -----------------------------------------------------------

std::size_t idempotency_records(store::Store& s) {
  auto page = s.range(keys::kIdempotency, "", 1000);
  CAIRN_ASSERT(page.ok());
  return page->entries.size();
}

// A crash loses the engine's memory: a new engine loaded from the store must
// still answer a retry with the original reply, for a success and a refusal.
TEST(EngineIdempotency, RepliesSurviveACrashAndALoadFromTheStore) {
  Driver d;
  const std::string id = d.make_intent();
  const RequestId a = d.send("a1", Claim{id}, "claim-1");
  const RequestId bad = d.send("a1", Claim{"no-such-intent"}, "claim-2");
  d.settle();
  ASSERT_TRUE(d.reply(a).status.ok());
  ASSERT_EQ(d.reply(bad).status.code(), Code::kNotFound);
  EXPECT_EQ(idempotency_records(d.store), 2u);

  Engine fresh(EngineConfig{}, 99, d.now);  // no snapshot: only the store
  ASSERT_TRUE(fresh.load(d.store).ok());
  ASSERT_TRUE(fresh.submit(Request{100, "a1", "claim-1", Claim{id}}).ok());
  ASSERT_TRUE(fresh.submit(Request{101, "a1", "claim-2", Claim{"no-such-intent"}}).ok());
  ASSERT_TRUE(fresh.submit(Request{102, "a2", "claim-1", Claim{id}}).ok());  // another caller
  std::map<RequestId, ReplyEffect> got;
  for (int i = 0; i < 10; ++i) {
    PollResult r = fresh.poll(d.now);
    for (Effect& e : r.effects) {
      if (auto* re = std::get_if<ReplyEffect>(&e)) got[re->request] = std::move(*re);
      if (auto* c = std::get_if<CommitEffect>(&e)) {
        fresh.complete_commit(c->commit_id, d.store.commit(c->batch));
      }
    }
  }
  ASSERT_EQ(got.count(100), 1u);
  EXPECT_TRUE(got[100].status.ok());
  EXPECT_EQ(to_json(got[100].body), to_json(d.reply(a).body));  // same epoch and expiry
  ASSERT_EQ(got.count(101), 1u);
  EXPECT_EQ(got[101].status.code(), Code::kNotFound);
  EXPECT_EQ(got[101].status.message(), d.reply(bad).status.message());
  // a2's claim-1 is its own request: it runs, and a1 holds the lease.
  ASSERT_EQ(got.count(102), 1u);
  EXPECT_EQ(got[102].status.reason(), "already_claimed");
  EXPECT_EQ(fresh.counters().get("dedup.replayed"), 2u);
  EXPECT_EQ(fresh.blackboard().intent(id)->st.epoch, 1u);  // claimed once
}

TEST(EngineIdempotency, ARefusalWithAKeyIsCommittedEvenWhenNothingElseChanged) {
  Driver d;
  const int commits = d.commits;
  const std::uint64_t seq = d.engine.blackboard().last_seq();
  const RequestId a = d.send("a1", Cancel{"missing"}, "k");
  const RequestId b = d.send("a1", Cancel{"missing"});  // no key: nothing to write
  d.settle();
  EXPECT_EQ(d.reply(a).status.code(), Code::kNotFound);
  EXPECT_EQ(d.reply(b).status.code(), Code::kNotFound);
  EXPECT_EQ(d.commits, commits + 1);                 // only the record
  EXPECT_EQ(d.engine.blackboard().last_seq(), seq);  // no event
  EXPECT_EQ(idempotency_records(d.store), 1u);
}

TEST(EngineIdempotency, AKeysOnlyBatchInDoubtIsResolvedByItsRecord) {
  for (const auto fault :
       {store::CommitFault::kUnknownApplied, store::CommitFault::kUnknownNotApplied}) {
    Driver d;
    d.faulty.fail_next_commit(fault);
    const RequestId a = d.send("a1", Cancel{"missing"}, "k");
    d.settle();
    EXPECT_EQ(d.reply(a).status.code(), Code::kOutcomeUnknown);
    EXPECT_EQ(d.resyncs, 1);
    const bool applied = fault == store::CommitFault::kUnknownApplied;
    EXPECT_EQ(d.engine.counters().get(applied ? "resync.applied" : "resync.not_applied"), 1u);
    EXPECT_EQ(idempotency_records(d.store), applied ? 1u : 0u);
    const RequestId b = d.send("a1", Cancel{"missing"}, "k");
    d.settle();
    EXPECT_EQ(d.reply(b).status.code(), Code::kNotFound);
    EXPECT_EQ(d.engine.counters().get("dedup.replayed"), applied ? 1u : 0u);
  }
}

TEST(EngineIdempotency, EvictedRecordsAreDeletedSoTheStoreKeepsTheWindowSize) {
  EngineConfig cfg;
  cfg.dedup_capacity = 4;
  Driver d(cfg);
  for (int i = 0; i < 20; ++i) {
    FactBody f;
    f.kind = "obs";
    f.content = Json(static_cast<std::int64_t>(i));
    d.send("p", PostFact{f}, "k" + std::to_string(i));
    d.settle();
  }
  // The window holds 4; the newest batch deleted the ones evicted before it.
  EXPECT_LE(idempotency_records(d.store), 5u);
  EXPECT_GE(idempotency_records(d.store), 4u);
  Engine fresh(cfg, 1, d.now);
  ASSERT_TRUE(fresh.load(d.store).ok());
  EXPECT_EQ(fresh.counters().get("dedup.loaded"), 4u);
  // The newest key is still answered from the store after a reload.
  FactBody f;
  f.kind = "obs";
  f.content = Json(static_cast<std::int64_t>(19));
  ASSERT_TRUE(fresh.submit(Request{1, "p", "k19", PostFact{f}}).ok());
  PollResult r = fresh.poll(d.now);
  ASSERT_EQ(r.effects.size(), 1u);
  const auto* re = std::get_if<ReplyEffect>(&r.effects[0]);
  ASSERT_NE(re, nullptr);
  EXPECT_TRUE(re->body.find("created")->as_bool());  // the original reply, not "already there"
}

TEST(EngineIdempotency, CorruptRecordsFailTheLoad) {
  Driver d;
  store::Batch b;
  b.mutations.push_back(
      store::Mutation{store::Mutation::Op::kPut, keys::idempotency_record(1), "{not json"});
  ASSERT_TRUE(d.store.commit(b).ok());
  Engine fresh(EngineConfig{}, 1, d.now);
  EXPECT_EQ(fresh.load(d.store).code(), Code::kInternal);
}

// Found by the simulator: after outcome_unknown the key must not be
// forgotten before the resync, or a retried create makes a second intent.
TEST(EngineIdempotency, AfterOutcomeUnknownTheRetryGetsTheRealOutcome) {
  for (const auto fault :
       {store::CommitFault::kUnknownApplied, store::CommitFault::kUnknownNotApplied}) {
    Driver d;
    FactBody f;
    f.kind = "seed";
    f.content = Json("g");
    const RequestId fr = d.send("p", PostFact{f});
    d.settle();
    IntentDraft draft;
    draft.kind = "work";
    draft.from_facts = {d.reply(fr).body.find("id")->as_string()};
    d.faulty.fail_next_commit(fault);
    const RequestId a = d.send("p", CreateIntent{draft}, "create-1");
    d.settle();
    EXPECT_EQ(d.reply(a).status.code(), Code::kOutcomeUnknown);
    const RequestId b = d.send("p", CreateIntent{draft}, "create-1");
    d.settle();
    ASSERT_TRUE(d.reply(b).status.ok()) << d.reply(b).status.to_string();
    // Exactly one intent exists either way: the original (applied) or the
    // retry (not applied).
    EXPECT_EQ(d.engine.blackboard().intent_count(), 1u);
    const std::string id = d.reply(b).body.find("id")->as_string();
    EXPECT_NE(d.engine.blackboard().intent(id), nullptr);
  }
}

TEST(EngineLongPoll, ParksUntilACommitMakesWorkAvailable) {
  Driver d;
  ClaimNext cn;
  cn.wait_ms = 10'000;
  const RequestId w = d.send("a1", cn);
  d.settle();
  EXPECT_FALSE(d.replied(w));
  EXPECT_EQ(d.engine.parked(), 1u);
  EXPECT_EQ(d.deadline, kT0 + 10'000);
  const std::string id = d.make_intent();  // the commit that creates work wakes it
  ASSERT_TRUE(d.replied(w));
  const Json& claims = *d.reply(w).body.find("claims");
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims.as_array()[0].find("intent")->find("id")->as_string(), id);
  EXPECT_EQ(d.engine.parked(), 0u);
}

// A keyed long-poll that is woken runs again under its own key: it must be
// answered (not parked behind itself), and a retry gets the same claims.
TEST(EngineLongPoll, AKeyedLongPollIsAnsweredWhenWoken) {
  Driver d;
  ClaimNext cn;
  cn.wait_ms = 10'000;
  const RequestId w = d.send("a1", cn, "poll-1");
  d.settle();
  EXPECT_FALSE(d.replied(w));
  const std::string id = d.make_intent();
  ASSERT_TRUE(d.replied(w));
  ASSERT_EQ(d.reply(w).body.find("claims")->size(), 1u);
  const RequestId retry = d.send("a1", cn, "poll-1");
  d.settle();
  ASSERT_TRUE(d.replied(retry));
  EXPECT_EQ(to_json(d.reply(retry).body), to_json(d.reply(w).body));
  EXPECT_EQ(d.engine.blackboard().intent(id)->st.epoch, 1u);  // claimed once
}

TEST(EngineLongPoll, TimesOutWithAnEmptyList) {
  Driver d;
  ClaimNext cn;
  cn.wait_ms = 2'000;
  const RequestId w = d.send("a1", cn);
  d.settle();
  EXPECT_FALSE(d.replied(w));
  d.now += 1'999;
  d.settle();
  EXPECT_FALSE(d.replied(w));
  d.now += 1;
  d.settle();
  ASSERT_TRUE(d.replied(w));
  EXPECT_TRUE(d.reply(w).status.ok());
  EXPECT_EQ(d.reply(w).body.find("claims")->size(), 0u);
}

TEST(EngineLongPoll, BoundsAreChecked) {
  Driver d;
  ClaimNext too_many;
  too_many.max = 257;
  ClaimNext too_long;
  too_long.wait_ms = 30'001;
  const RequestId a = d.send("a1", too_many);
  const RequestId b = d.send("a1", too_long);
  d.settle();
  EXPECT_EQ(d.reply(a).status.code(), Code::kInvalid);
  EXPECT_EQ(d.reply(b).status.code(), Code::kInvalid);
}

TEST(EngineGates, LeasesPerAgentAreCapped) {
  EngineConfig cfg;
  cfg.leases_per_agent_max = 2;
  Driver d(cfg);
  for (int i = 0; i < 3; ++i) d.make_intent();
  ClaimNext cn;
  cn.max = 3;
  const RequestId r = d.send("a1", cn);
  d.settle();
  EXPECT_EQ(d.reply(r).body.find("claims")->size(), 2u);
  const RequestId again = d.send("a1", ClaimNext{});
  d.settle();
  EXPECT_EQ(d.reply(again).status.reason(), "too_many_leases");
  EXPECT_EQ(d.engine.blackboard().held_by("a1"), 2u);
}

TEST(EngineLongPoll, AnAbandonedLongPollTakesNoWork) {
  Driver d;
  ClaimNext wait;
  wait.wait_ms = 10'000;
  const RequestId gone = d.send("a1", wait, "poll-1");
  d.settle();
  ASSERT_EQ(d.engine.parked(), 1u);
  EXPECT_FALSE(d.engine.abandon(gone + 100));  // not parked: nothing to do
  ASSERT_TRUE(d.engine.abandon(gone));
  EXPECT_FALSE(d.engine.abandon(gone));  // once
  EXPECT_EQ(d.engine.parked(), 0u);
  d.settle();
  ASSERT_TRUE(d.replied(gone));
  EXPECT_EQ(d.reply(gone).status.reason(), "abandoned");
  // New work goes to a live agent, not to the abandoned poll.
  const std::string id = d.make_intent();
  EXPECT_EQ(d.engine.blackboard().intent(id)->st.state, IntentState::kOpen);
  const RequestId live = d.send("a2", ClaimNext{});
  d.settle();
  ASSERT_TRUE(d.reply(live).status.ok());
  EXPECT_EQ(d.reply(live).body.find("claims")->size(), 1u);
  // Nothing happened under the key: a retry with it runs again.
  const RequestId retry = d.send("a1", ClaimNext{}, "poll-1");
  d.settle();
  ASSERT_TRUE(d.reply(retry).status.ok()) << d.reply(retry).status.to_string();
  EXPECT_EQ(d.reply(retry).body.find("claims")->size(), 0u);
}

// A defer hint holds an intent back until `until`: that moment is a timer,
// and a long-poll parked meanwhile gets the intent then, not at its own
// deadline (the simulator's I7 found it, seed 40).
TEST(EngineLongPoll, WokenWhenADeferHintEnds) {
  Driver d;
  const std::string id = d.make_intent("work");
  HintDraft h;
  h.kind = "policy";
  h.selector.kind = "work";
  h.effect.type = HintEffectType::kDefer;
  h.effect.until = kT0 + 3'000;
  d.send("ops", CreateHint{h});
  d.settle();
  ClaimNext cn;
  cn.wait_ms = 20'000;
  const RequestId w = d.send("a1", cn);
  d.settle();
  ASSERT_FALSE(d.replied(w));
  ASSERT_TRUE(d.deadline.has_value());
  EXPECT_EQ(*d.deadline, kT0 + 3'000);  // not the long-poll's kT0 + 20'000
  d.now = *d.deadline;
  d.settle();
  ASSERT_TRUE(d.replied(w));
  const Json& claims = *d.reply(w).body.find("claims");
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims.as_array()[0].find("intent")->find("id")->as_string(), id);
}

// A commit that claimed work for one long-poll fails: the work is free again
// and another long-poll, parked because the first took it, gets it without
// waiting for its deadline (the simulator's I7 found it, seed 2).
TEST(EngineLongPoll, WokenAgainWhenTheCommitThatTookTheWorkFails) {
  Driver d;
  ClaimNext cn;
  cn.wait_ms = 20'000;
  const RequestId w1 = d.send("a1", cn);
  const RequestId w2 = d.send("a2", cn);
  d.settle();
  ASSERT_EQ(d.engine.parked(), 2u);
  FactBody f;
  f.kind = "seed";
  f.content = Json("x");
  const RequestId fr = d.send("producer", PostFact{f});
  d.settle();
  IntentDraft draft;
  draft.kind = "work";
  draft.from_facts = {d.reply(fr).body.find("id")->as_string()};
  d.send("producer", CreateIntent{draft});
  ASSERT_EQ(d.step(), 1u);  // the create's commit (its reply comes with the next poll)
  d.faulty.fail_next_commit(store::CommitFault::kUnavailable);  // the claim's commit
  d.step();  // both long-polls run: a1 takes the intent, a2 parks again; the commit fails
  d.step();
  ASSERT_TRUE(d.replied(w1));
  EXPECT_EQ(d.reply(w1).status.code(), Code::kUnavailable);
  ASSERT_FALSE(d.replied(w2));
  ASSERT_EQ(d.engine.parked(), 1u);
  d.now += 1'000;  // past the commit retry
  d.settle();
  ASSERT_TRUE(d.replied(w2));
  EXPECT_EQ(d.reply(w2).body.find("claims")->size(), 1u);
}

// With more parked long-polls than one cycle runs, the rest run in the next
// cycle, which is due at once; each runs once per wake, so the cycle does
// not spin on long-polls that find nothing.
TEST(EngineLongPoll, ParkedPastTheCycleBudgetRunAtOnceAndOnce) {
  EngineConfig cfg;
  cfg.commands_per_cycle_max = 1;
  Driver d(cfg);
  ClaimNext cn;
  cn.wait_ms = 20'000;
  cn.filter.kinds = {"other"};
  for (int i = 0; i < 3; ++i) {
    d.send("a" + std::to_string(i), cn);
    EXPECT_EQ(d.step(), 0u);  // parks
  }
  ASSERT_EQ(d.engine.parked(), 3u);
  FactBody f;
  f.kind = "seed";
  f.content = Json("x");
  d.send("producer", PostFact{f});
  ASSERT_EQ(d.step(), 1u);  // the fact's commit: work may have appeared
  EXPECT_EQ(d.step(), 2u);  // its reply and publish; the first long-poll runs and parks again
  ASSERT_TRUE(d.deadline.has_value());
  EXPECT_EQ(*d.deadline, d.now);  // two more to run: the next poll is due at once
  EXPECT_EQ(d.step(), 0u);
  EXPECT_EQ(*d.deadline, d.now);
  EXPECT_EQ(d.step(), 0u);               // the third
  EXPECT_EQ(*d.deadline, kT0 + 20'000);  // each ran once: quiet until the long-polls end
  EXPECT_EQ(d.engine.parked(), 3u);
}

TEST(EngineGates, RepeatedFailuresBackTheAgentOff) {
  Driver d;
  const std::string a = d.make_intent();
  const std::string b = d.make_intent();
  const RequestId c = d.send("a1", Claim{a});
  d.settle();
  const auto epoch = static_cast<std::uint64_t>(*d.reply(c).body.find("epoch")->int_if());
  d.send("a1", Fail{a, epoch, "broke", true});
  d.settle();
  const std::size_t records = idempotency_records(d.store);
  const RequestId blocked = d.send("a1", Claim{b}, "claim-b");
  d.settle();
  EXPECT_EQ(d.reply(blocked).status.reason(), "agent_backoff");
  // "Not now" is not a final reply: it is not recorded, and the retry with
  // the same key runs once the backoff is over.
  EXPECT_EQ(idempotency_records(d.store), records);
  d.now += AgentBackoff::kDefaultBaseMs;
  const RequestId ok = d.send("a1", Claim{b}, "claim-b");
  d.settle();
  EXPECT_TRUE(d.reply(ok).status.ok()) << d.reply(ok).status.to_string();
  EXPECT_EQ(idempotency_records(d.store), records + 1);
}

TEST(EngineGates, AnAgentIsDownAfterRepeatedExpiriesAndUpAfterSuccess) {
  EngineConfig cfg;
  cfg.down_after_expiries = 2;
  Driver d(cfg);
  for (int i = 0; i < 2; ++i) {
    const std::string id = d.make_intent();
    d.send("slow", Claim{id});
    d.settle();
    d.now += 5'000;  // the lease ends
    d.settle();
  }
  EXPECT_TRUE(d.engine.governor().is_down("slow"));
  const std::string id = d.make_intent();
  const RequestId r = d.send("slow", Claim{id});
  d.settle();
  EXPECT_EQ(d.reply(r).status.reason(), "agent_down");
  d.engine.governor().record_success("slow");
  const RequestId r2 = d.send("slow", Claim{id});
  d.settle();
  EXPECT_TRUE(d.reply(r2).status.ok());
}

TEST(EngineLatency, ClaimToConcludeIsTrackedPerKindAndLane) {
  Driver d;
  for (int i = 0; i < 3; ++i) {
    const std::string id = d.make_intent("crawl");
    const RequestId c = d.send("a1", Claim{id});
    d.settle();
    const auto epoch = static_cast<std::uint64_t>(*d.reply(c).body.find("epoch")->int_if());
    d.now += 100 * (i + 1);
    d.send("a1", Conclude{id, epoch, result_fact()});
    d.settle();
  }
  auto est = d.engine.latency().get("crawl", "default");
  ASSERT_TRUE(est.has_value());
  EXPECT_EQ(est->samples, 3u);
  EXPECT_TRUE(est->warm());
  // 100, 200, 300 ms by RFC 6298: srtt 100 → 112.5 → 135.9375.
  EXPECT_NEAR(est->srtt_ms, 135.9375, 1e-9);
}

TEST(EngineSnapshot, RefusedWhileBusyAndRestoreBumpsIncarnation) {
  Driver d;
  const std::string id = d.make_intent();
  d.send("a1", Claim{id}, "key-1");
  d.auto_commit = false;
  d.step();
  EXPECT_EQ(d.engine.snapshot().status().reason(), "busy");
  d.commit_pending();
  d.settle();
  auto snap = d.engine.snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status().to_string();
  auto restored = Engine::restore(EngineConfig{}, *snap, d.store, d.now);
  ASSERT_TRUE(restored.ok()) << restored.status().to_string();
  Engine& e = **restored;
  EXPECT_EQ(e.incarnation(), d.engine.incarnation() + 1);
  EXPECT_EQ(e.blackboard().state_hash(), d.engine.blackboard().state_hash());
  // The dedup window survived: the retry is answered, not re-run.
  ASSERT_TRUE(e.submit(Request{99, "a1", "key-1", Claim{id}}).ok());
  PollResult r = e.poll(d.now);
  ASSERT_EQ(r.effects.size(), 1u);
  const auto* reply = std::get_if<ReplyEffect>(&r.effects[0]);
  ASSERT_NE(reply, nullptr);
  EXPECT_TRUE(reply->status.ok());
}

TEST(EngineDeterminism, SameInputsSameTrace) {
  auto run = [] {
    Driver d;
    for (int i = 0; i < 5; ++i) d.make_intent();
    for (int i = 0; i < 5; ++i) {
      d.send("a" + std::to_string(i), ClaimNext{});
      d.now += 1'000;
      d.settle();
    }
    d.now += 10'000;
    d.settle();
    return d.trace;
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace cairn::engine

// checker_test.cc — each invariant checker fires on a hand-made breach.
//
// The simulator's seeds show the checkers stay quiet on a correct engine;
// these tests show they are not quiet by accident: every check is fed a
// durable record that breaks its invariant (written through a real
// Blackboard where possible, by hand where the core would refuse) and must
// name the invariant.
#include "sim/checker.h"

#include <gtest/gtest.h>

#include <string>

#include "core/keys.h"
#include "model/fact.h"

namespace cairn::sim {
namespace {

constexpr std::int64_t kTtl = 1'000;

struct Env {
  explicit Env(CheckerConfig cfg = {}, CoreConfig core = {})
      : rng(7), bb(clock, rng, std::move(core)), checker(store, std::move(cfg)) {}

  void flush() {
    PendingCommit p = bb.drain();
    auto r = store.commit(p.batch);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    bb.accept();
  }

  std::string fact(int n, std::string kind = "obs") {
    FactBody b;
    b.kind = std::move(kind);
    b.creator = "tester";
    b.content = Json(JsonObject{{"n", Json(n)}});
    auto r = bb.post_fact(b);
    CAIRN_ASSERT(r.ok());
    flush();
    return r->id;
  }

  std::string intent(const std::string& from, std::string kind = "work", std::string token = {},
                     std::vector<std::string> requires_ = {}, std::string lane = "default") {
    IntentDraft d;
    d.kind = std::move(kind);
    d.requires_ = std::move(requires_);
    d.lane = std::move(lane);
    d.from_facts = {from};
    d.creator = "alice";
    d.lease_ttl_ms = kTtl;
    if (!token.empty()) d.spec = Json(JsonObject{{"token", Json(token)}});
    auto r = bb.create_intent(d);
    CAIRN_ASSERT(r.ok());
    flush();
    return r->id;
  }

  // Appends an event the core would never write, after the last one.
  void append_event(std::string type, std::string subject, Json data) {
    Event e;
    e.seq = bb.last_seq() + 1 + extra_events;
    e.type = std::move(type);
    e.subject = std::move(subject);
    e.data = std::move(data);
    e.at = clock.wall_ms();
    ++extra_events;
    put(keys::event(e.seq), encode_event(e));
  }

  void put(std::string key, std::string value) {
    store::Batch b;
    b.mutations.push_back(
        store::Mutation{store::Mutation::Op::kPut, std::move(key), std::move(value)});
    ASSERT_TRUE(store.commit(b).ok());
  }

  void del(std::string key) {
    store::Batch b;
    b.mutations.push_back(store::Mutation{store::Mutation::Op::kDelete, std::move(key), {}});
    ASSERT_TRUE(store.commit(b).ok());
  }

  bool reported(std::string_view invariant) const {
    for (const Violation& v : checker.violations()) {
      if (v.invariant == invariant) return true;
    }
    return false;
  }

  std::string all() const {
    std::string s;
    for (const Violation& v : checker.violations()) s += v.invariant + ": " + v.detail + "\n";
    return s;
  }

  SimClock clock;
  SeededRng rng;
  store::MemoryStore store;
  Blackboard bb;
  Checker checker;
  std::uint64_t extra_events = 0;
};

TEST(Checker, QuietOnACorrectHistory) {
  Env env;
  const std::string f = env.fact(1);
  const std::string i = env.intent(f);
  auto c = env.bb.claim(i, "a1");
  ASSERT_TRUE(c.ok());
  env.flush();
  FactBody result;
  result.kind = "result";
  result.content = Json(JsonObject{{"ok", Json(true)}});
  auto done = env.bb.conclude(i, "a1", c->epoch, result);
  ASSERT_TRUE(done.ok());
  env.flush();
  env.checker.scan();
  env.checker.on_ack(AckedWrite{AckedWrite::Kind::kConclude, i, c->epoch, done->result, 0});
  env.checker.scan();
  env.checker.check_replay(env.bb, env.clock.wall_ms());
  env.checker.final_checks();
  EXPECT_FALSE(env.checker.failed()) << env.all();
}

TEST(Checker, I1StaleEpochConcludeAccepted) {
  Env env;
  env.bb.set_canary_skip_fencing(true);  // the core's canary: fencing off
  const std::string i = env.intent(env.fact(1));
  auto first = env.bb.claim(i, "a1");
  ASSERT_TRUE(first.ok());
  env.flush();
  env.clock.advance_ms(kTtl + 1);
  ASSERT_TRUE(env.bb.claim(i, "a2").ok());  // expires a1's lease, claims for a2
  env.flush();
  FactBody result;
  result.kind = "result";
  result.content = Json(JsonObject{{"late", Json(true)}});
  ASSERT_TRUE(env.bb.conclude(i, "a1", first->epoch, result).ok());  // accepted: the canary
  env.flush();
  env.checker.scan();
  EXPECT_TRUE(env.reported("I1")) << env.all();
}

TEST(Checker, I1TwoLiveLeases) {
  Env env;
  const std::string i = env.intent(env.fact(1));
  ASSERT_TRUE(env.bb.claim(i, "a1").ok());
  env.flush();
  env.append_event(std::string(ev::kIntentClaimed), i,
                   Json(JsonObject{{"agent", Json("a2")},
                                   {"epoch", Json(2)},
                                   {"lease_expires_at", Json(env.clock.wall_ms() + kTtl)},
                                   {"attempts", Json(2)}}));
  env.checker.scan();
  EXPECT_TRUE(env.reported("I1")) << env.all();
}

TEST(Checker, I2ResultNotLinked) {
  Env env;
  const std::string i = env.intent(env.fact(1));
  auto c = env.bb.claim(i, "a1");
  ASSERT_TRUE(c.ok());
  env.flush();
  FactBody result;
  result.kind = "result";
  result.content = Json(JsonObject{{"n", Json(1)}});
  auto done = env.bb.conclude(i, "a1", c->epoch, result);
  ASSERT_TRUE(done.ok());
  env.flush();
  env.del(keys::fact_concludes(done->result, i));
  env.checker.scan();
  EXPECT_TRUE(env.reported("I2")) << env.all();
}

TEST(Checker, I3PublishedEventMissingAndAckNotDurable) {
  Env env;
  env.fact(1);
  Event ghost;
  ghost.seq = 99;
  ghost.type = std::string(ev::kFactRecorded);
  ghost.subject = std::string(64, 'a');
  ghost.data = Json::object();
  env.checker.on_publish({ghost});
  EXPECT_TRUE(env.reported("I3")) << env.all();

  Env env2;
  env2.fact(1);
  env2.checker.on_ack(AckedWrite{AckedWrite::Kind::kFact, std::string(64, 'b'), 0, {}, 0});
  env2.checker.scan();
  EXPECT_TRUE(env2.reported("I3")) << env2.all();
}

TEST(Checker, I4FactRecordThatDoesNotRehash) {
  Env env;
  const std::string id = env.fact(1);
  // Rewrite the record: same id, different content.
  FactBody other;
  other.kind = "obs";
  other.creator = "tester";
  other.content = Json(JsonObject{{"n", Json(2)}});
  auto canon = canonicalize_fact(other, ModelLimits{});
  ASSERT_TRUE(canon.ok());
  env.put(keys::fact(id), encode_fact_record(id, 1, env.clock.wall_ms(), canon->canonical));
  env.checker.scan();
  EXPECT_TRUE(env.reported("I4")) << env.all();
}

TEST(Checker, I4FactChangedAfterItWasChecked) {
  Env env;
  const std::string id = env.fact(1);
  env.checker.scan();
  ASSERT_FALSE(env.checker.failed()) << env.all();
  auto rec = env.store.get(keys::fact(id));
  ASSERT_TRUE(rec.ok() && rec->has_value());
  auto f = decode_fact_record((*rec)->value);
  ASSERT_TRUE(f.ok());
  auto canon = canonicalize_fact(f->body, ModelLimits{});
  ASSERT_TRUE(canon.ok());
  env.put(keys::fact(id), encode_fact_record(id, f->seq, f->recorded_at + 1, canon->canonical));
  env.checker.final_checks();
  EXPECT_TRUE(env.reported("I4")) << env.all();
}

TEST(Checker, I5DerivedFromAnUnrecordedFact) {
  Env env;
  FactBody b;
  b.kind = "obs";
  b.creator = "tester";
  b.content = Json(JsonObject{{"n", Json(1)}});
  b.derived_from = {std::string(64, 'c')};
  auto canon = canonicalize_fact(b, ModelLimits{});
  ASSERT_TRUE(canon.ok());
  env.put(keys::fact(canon->id), encode_fact_record(canon->id, 1, 0, canon->canonical));
  env.append_event(std::string(ev::kFactRecorded), canon->id,
                   Json(JsonObject{{"kind", Json("obs")}, {"creator", Json("tester")}}));
  env.checker.scan();
  EXPECT_TRUE(env.reported("I5")) << env.all();
}

TEST(Checker, I6ClaimOfADeniedIntent) {
  Env env;
  const std::string i = env.intent(env.fact(1), "work");
  HintDraft h;
  h.kind = "policy";
  h.selector.kind = "work";
  h.creator = "ops";
  ASSERT_TRUE(env.bb.create_hint(h).ok());
  env.flush();
  env.append_event(std::string(ev::kIntentClaimed), i,
                   Json(JsonObject{{"agent", Json("a1")},
                                   {"epoch", Json(1)},
                                   {"lease_expires_at", Json(env.clock.wall_ms() + kTtl)},
                                   {"attempts", Json(1)}}));
  env.checker.scan();
  EXPECT_TRUE(env.reported("I6")) << env.all();
}

TEST(Checker, I6PerAgentLeaseLimit) {
  CheckerConfig cfg;
  cfg.leases_per_agent_max = 1;
  Env env(cfg);
  const std::string f = env.fact(1);
  const std::string i1 = env.intent(f);
  const std::string i2 = env.intent(env.fact(2));
  ASSERT_TRUE(env.bb.claim(i1, "a1").ok());
  ASSERT_TRUE(env.bb.claim(i2, "a1").ok());  // the core has no per-agent limit; the engine does
  env.flush();
  env.checker.scan();
  EXPECT_TRUE(env.reported("I6")) << env.all();
}

TEST(Checker, I8HotStateDiffersFromTheStore) {
  Env env;
  env.fact(1);
  env.checker.scan();
  Env other;
  other.fact(1);
  other.fact(2);
  env.checker.check_replay(other.bb, other.clock.wall_ms());
  EXPECT_TRUE(env.reported("I8")) << env.all();
}

TEST(Checker, IdempotentCreateRepeatedIsReported) {
  Env env;
  const std::string f = env.fact(1);
  env.intent(f, "work", "tok-1");
  env.intent(f, "work", "tok-2");
  env.checker.scan();
  EXPECT_FALSE(env.checker.failed()) << env.all();
  env.intent(f, "work", "tok-1");  // the same request created a second intent
  env.checker.scan();
  EXPECT_TRUE(env.reported("IDEM")) << env.all();
}

// ---- I6 lane budgets and I7 -------------------------------------------------------------------

// The planner's view of `bb` (open, deferred, claimed intents; no hints).
Plan plan_of(const Blackboard& bb, const CoreConfig& core = {}) {
  PlanInput in;
  in.now_ms = bb.clock().wall_ms();
  in.lanes = core.admission.lanes;
  in.default_lane = true;
  for (const auto& [id, it] : bb.intents()) {
    const IntentState st = it.st.state;
    if (st != IntentState::kOpen && st != IntentState::kDeferred && st != IntentState::kClaimed) {
      continue;
    }
    PlanIntent pi;
    pi.id = id;
    pi.kind = it.def.kind;
    pi.lane = it.def.lane;
    pi.created_seq = it.def.created_seq;
    pi.created_at = it.def.created_at;
    pi.requires_ = it.def.requires_;
    pi.state = st == IntentState::kOpen       ? PlanIntentState::kOpen
               : st == IntentState::kDeferred ? PlanIntentState::kDeferred
                                              : PlanIntentState::kClaimed;
    in.intents.push_back(std::move(pi));
  }
  auto p = compute_plan(in, bb.plan_facts());
  CAIRN_ASSERT(p.ok());
  return std::move(p).value();
}

TEST(Checker, I7QuietWhenAFactWakesWhatWaitsOnIt) {
  Env env;
  const std::string f = env.fact(1);
  const std::string waits = env.intent(f, "work", {}, {"kind:gate"});
  const std::string free = env.intent(f, "work");
  ASSERT_EQ(env.bb.intent(waits)->st.state, IntentState::kDeferred);
  env.checker.scan();
  Plan plan = plan_of(env.bb);
  AdmissionProbe probe;
  probe.plan = &plan;
  env.checker.check_replay(env.bb, env.clock.wall_ms(), &probe);
  env.fact(2, "gate");  // wakes it in the same commit
  ASSERT_EQ(env.bb.intent(waits)->st.state, IntentState::kOpen);
  env.checker.scan();
  plan = plan_of(env.bb);
  env.checker.check_replay(env.bb, env.clock.wall_ms(), &probe);
  auto c = env.bb.claim(waits, "a1");
  ASSERT_TRUE(c.ok());
  env.flush();
  env.checker.scan();
  EXPECT_FALSE(env.checker.failed()) << env.all();
  EXPECT_EQ(env.checker.deferrals(), 1u);
  EXPECT_EQ(env.checker.wakes(), 1u);
  (void)free;
}

// The wake canary: the fact that completes a deferred intent's dependencies
// does not reopen it; the scan after that commit reports I7.
TEST(Checker, I7MissedWake) {
  Env env;
  const std::string f = env.fact(1);
  const std::string waits = env.intent(f, "work", {}, {"kind:gate"});
  env.checker.scan();
  env.bb.set_canary_skip_wake(true);
  env.fact(2, "gate");
  env.checker.scan();
  EXPECT_EQ(env.bb.intent(waits)->st.state, IntentState::kDeferred);
  EXPECT_TRUE(env.reported("I7")) << env.all();
}

TEST(Checker, I7DeferredOnAReadyDependency) {
  Env env;
  const std::string f = env.fact(1, "gate");
  const std::string i = env.intent(f, "work", {}, {"kind:gate"});
  ASSERT_EQ(env.bb.intent(i)->st.state, IntentState::kOpen);
  env.append_event(
      std::string(ev::kIntentDeferred), i,
      Json(JsonObject{{"reason", Json("missing_dependency")}, {"key", Json("kind:gate")}}));
  env.checker.scan();
  EXPECT_TRUE(env.reported("I7")) << env.all();
}

TEST(Checker, I7ClaimOfAnIntentWhoseDependencyIsMissing) {
  Env env;
  const std::string f = env.fact(1);
  const std::string i = env.intent(f);
  env.checker.scan();
  // Rewrite its definition to require a kind nobody posted, then claim it.
  IntentDef def = env.bb.intent(i)->def;
  def.requires_ = {"kind:gate"};
  env.put(keys::intent_def(i), encode_intent_def(def));
  auto c = env.bb.claim(i, "a1");
  ASSERT_TRUE(c.ok());
  env.flush();
  Checker fresh(env.store, CheckerConfig{});  // reads the rewritten definition
  fresh.scan();
  EXPECT_TRUE(fresh.found("I7"));
}

TEST(Checker, I6LaneBudgetExceeded) {
  CheckerConfig cfg;
  cfg.admission.budgets = true;
  cfg.admission.lanes["bulk"] = LaneBudget{1, 1};
  Env env(cfg);  // the core's budgets are off: it hands out both
  const std::string f = env.fact(1);
  const std::string a = env.intent(f, "work", {}, {}, "bulk");
  const std::string b = env.intent(f, "work2", {}, {}, "bulk");
  ASSERT_TRUE(env.bb.claim(a, "a1").ok());
  ASSERT_TRUE(env.bb.claim(b, "a2").ok());
  env.flush();
  env.checker.scan();
  EXPECT_TRUE(env.reported("I6")) << env.all();
}

TEST(Checker, I6QuietWithinTheBudget) {
  CheckerConfig cfg;
  cfg.admission.budgets = true;
  cfg.admission.lanes["bulk"] = LaneBudget{1, 1};
  CoreConfig core;
  core.admission = cfg.admission;
  Env env(cfg, core);
  const std::string f = env.fact(1);
  const std::string a = env.intent(f, "work", {}, {}, "bulk");
  const std::string b = env.intent(f, "work2", {}, {}, "bulk");
  ASSERT_TRUE(env.bb.claim(a, "a1").ok());
  EXPECT_EQ(env.bb.claim(b, "a2").status().reason(), "lane_full");
  env.flush();
  env.checker.scan();
  EXPECT_FALSE(env.checker.failed()) << env.all();
}

TEST(Checker, I7ClaimOrderDiffersFromThePlan) {
  Env env;
  const std::string f = env.fact(1);
  const std::string older = env.intent(f, "work");
  const std::string newer = env.intent(f, "work2");
  env.checker.scan();
  Plan plan = plan_of(env.bb);
  ASSERT_EQ(plan.admitted.front(), newer);  // newest first
  std::swap(plan.admitted[0], plan.admitted[1]);
  AdmissionProbe probe;
  probe.plan = &plan;
  env.checker.check_replay(env.bb, env.clock.wall_ms(), &probe);
  EXPECT_TRUE(env.reported("I7")) << env.all();
  (void)older;
}

TEST(Checker, I7ParkedLongPollWhileThePlanAdmitsItsWork) {
  Env env;
  const std::string f = env.fact(1);
  env.intent(f, "crawl");
  env.checker.scan();
  const Plan plan = plan_of(env.bb);
  AdmissionProbe probe;
  probe.plan = &plan;
  ClaimFilter other;
  other.kinds = {"index"};
  probe.parked.push_back(AdmissionProbe::Waiter{"w1", other});  // its filter does not match
  env.checker.check_plan(env.bb, probe, env.clock.wall_ms());
  EXPECT_FALSE(env.checker.failed()) << env.all();
  probe.parked.push_back(AdmissionProbe::Waiter{"w2", ClaimFilter{}});
  env.checker.check_plan(env.bb, probe, env.clock.wall_ms());
  EXPECT_TRUE(env.reported("I7")) << env.all();
}

TEST(Checker, I7TwoWaitingIntentsThePlanCoalesces) {
  Env env;
  const std::string f = env.fact(1);
  const std::string a = env.intent(f, "work");
  env.checker.scan();
  Plan plan = plan_of(env.bb);
  ASSERT_EQ(plan.decisions.size(), 1u);
  plan.decisions[0].reason = PlanReason::kCoalescedInto;
  plan.decisions[0].arg = "someone-else";
  AdmissionProbe probe;
  probe.plan = &plan;
  env.checker.check_plan(env.bb, probe, env.clock.wall_ms());
  EXPECT_TRUE(env.reported("I7")) << env.all();
  (void)a;
}

}  // namespace
}  // namespace cairn::sim

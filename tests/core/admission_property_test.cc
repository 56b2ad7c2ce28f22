// admission_property_test.cc — random operation sequences over a Blackboard
// with lane budgets on, checking after every operation that the incremental
// admission state agrees with a fresh compute_plan of the same state:
//
//   - budgets are never exceeded (claimed intents and their cost_units);
//   - every open and deferred intent has exactly one reason in the plan;
//   - deferred ⇔ the plan's reason is missing_dependency of its own key,
//     and that key is the first one that is really not ready; no open intent
//     waits on a dependency of its own;
//   - claim_next for an unfiltered agent takes the plan's first admitted
//     intent (claim order = plan order), and finds none when it admits none;
//   - no timer work is left undone after tick();
//   - load() of the store gives the same state, the same lane usage, the
//     same waits and the same plan, byte for byte.
//
// Commits fail at random (the batch is rolled back), so batches that woke
// deferred intents are undone too; a later fact must still wake them (a
// deferred intent whose dependencies are all ready is a failure).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/blackboard.h"
#include "core/keys.h"
#include "store/memory_store.h"

namespace cairn {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000;
constexpr int kSeeds = 40;
constexpr int kOpsPerSeed = 250;
constexpr int kReloadEvery = 25;

CoreConfig admission_config() {
  CoreConfig cfg;
  cfg.admission.budgets = true;
  cfg.admission.lanes["bulk"] = LaneBudget{2, 3};
  cfg.admission.lanes["llm"] = LaneBudget{2, 2};
  cfg.admission.lanes["llm/openai"] = LaneBudget{1, 2};
  cfg.admission.lanes["default"] = LaneBudget{3, 4};
  // `orphan` has no budget: its intents wait no_budget.
  return cfg;
}

Plan plan_of(const Blackboard& bb) {
  auto p = compute_plan(bb.plan_input(bb.clock().wall_ms()), bb.plan_facts());
  CAIRN_ASSERT_MSG(p.ok(), p.status().to_string().c_str());
  return std::move(p).value();
}

struct World {
  explicit World(std::uint64_t seed)
      : rng(seed),
        bb_rng(seed ^ 0x5bd1e995ULL),
        clock(kT0),
        bb(clock, bb_rng, admission_config()) {}

  SeededRng rng;     // the operations
  SeededRng bb_rng;  // the blackboard's (ids, jitter)
  SimClock clock;
  store::MemoryStore store;
  Blackboard bb;
  std::vector<std::string> facts;   // recorded (committed)
  std::vector<std::string> posted;  // posted in the pending batch
  std::vector<FactBody> promised;   // required by id, posted later
  int n = 0;
  std::string trace;  // what happened, for a failure message

  template <class T, std::size_t N>
  const T& pick(const T (&xs)[N]) {
    return xs[rng.uniform(N)];
  }

  // Commits the pending batch; one in seven fails and is rolled back.
  // Returns false when it was rolled back.
  bool commit() {
    if (!bb.has_pending()) {
      posted.clear();
      return true;
    }
    PendingCommit p = bb.drain();
    if (rng.chance(1.0 / 7)) {
      bb.rollback();
      posted.clear();  // a rolled-back post is no fact
      trace += " [rolled back]";
      return false;
    }
    auto r = store.commit(p.batch);
    CAIRN_ASSERT(r.ok());
    bb.accept();
    facts.insert(facts.end(), posted.begin(), posted.end());
    posted.clear();
    return true;
  }

  // The timers, as the engine runs them: a rolled-back tick runs again.
  void tick() {
    for (int i = 0; i < 20; ++i) {
      bb.tick();
      if (commit()) return;
    }
  }

  FactBody promise() {
    FactBody b;
    b.kind = "promised";
    b.creator = "p";
    b.content = Json(JsonObject{{"promise", Json(++n)}});
    return b;
  }

  void post(FactBody b) {
    auto r = bb.post_fact(b);
    CAIRN_ASSERT(r.ok());
    if (r->created) posted.push_back(r->id);
    trace += " fact(" + b.kind + ")";
  }

  void op() {
    const double r = rng.unit();
    static const char* kKinds[] = {"obs", "page", "gate"};
    static const char* kLanes[] = {"default", "bulk", "llm", "orphan"};
    static const char* kTtls[] = {"500ms", "2s", "10s"};
    static const char* kAgents[] = {"w1", "w2", "w3"};
    if (r < 0.22 || facts.empty()) {
      if (!promised.empty() && rng.chance(0.3)) {
        post(promised.front());
        promised.erase(promised.begin());
        return;
      }
      FactBody b;
      b.kind = pick(kKinds);
      b.creator = "p";
      b.content = Json(JsonObject{{"n", Json(++n)}});
      post(b);
      return;
    }
    if (r < 0.45) {
      IntentDraft d;
      d.kind = rng.chance(0.5) ? "crawl" : "build";
      d.from_facts = {facts[rng.uniform(facts.size())]};
      d.lane = rng.chance(0.05) ? "orphan" : pick(kLanes);
      if (d.lane == "llm" && rng.chance(0.6)) d.provider = rng.chance(0.5) ? "openai" : "other";
      d.cost_units = rng.range(1, 2);
      d.priority = rng.range(-2, 2);
      d.creator = "p";
      d.lease_ttl_ms = rng.range(500, 3'000);
      d.max_attempts = 3;
      const std::int64_t keys = rng.chance(0.45) ? rng.range(1, 2) : 0;
      for (std::int64_t i = 0; i < keys; ++i) {
        const double k = rng.unit();
        if (k < 0.2) {
          d.requires_.push_back(facts[rng.uniform(facts.size())]);
        } else if (k < 0.45) {
          d.requires_.push_back("kind:" + std::string(pick(kKinds)));
        } else if (k < 0.75) {
          const std::string kind = pick(kKinds);  // one draw per statement
          d.requires_.push_back("kind:" + kind + "@" + pick(kTtls));
        } else {
          FactBody b = promise();
          auto canon = canonicalize_fact(b, ModelLimits{});
          CAIRN_ASSERT(canon.ok());
          d.requires_.push_back(canon->id);
          promised.push_back(std::move(b));
        }
      }
      // Keys are unique (a repeat is refused as invalid).
      std::vector<std::string> keys_once;
      for (std::string& k : d.requires_) {
        if (std::find(keys_once.begin(), keys_once.end(), k) == keys_once.end()) {
          keys_once.push_back(std::move(k));
        }
      }
      d.requires_ = std::move(keys_once);
      if (rng.chance(0.3)) d.identity = "job-" + std::to_string(rng.range(1, 3));
      if (rng.chance(0.15)) d.stale_after_ms = rng.range(1'000, 8'000);
      auto c = bb.create_intent(d);
      CAIRN_ASSERT_MSG(c.ok(), c.status().to_string().c_str());
      trace += " create(" + d.lane + ")=" + std::string(state_name(c->state));
      return;
    }
    if (r < 0.62) {
      ClaimFilter f;
      if (rng.chance(0.2)) f.lanes = {pick(kLanes)};
      auto c = bb.claim_next(pick(kAgents), f);
      trace += c.ok() ? " claim_next" : " claim_next=" + std::string(c.status().reason());
      return;
    }
    // Work on a claimed intent, or cancel one, or a hint, or time passes.
    std::vector<const Intent*> claimed, waiting;
    for (const auto& [id, in] : bb.intents()) {
      if (in.st.state == IntentState::kClaimed) claimed.push_back(&in);
      if (in.st.state == IntentState::kOpen || in.st.state == IntentState::kDeferred) {
        waiting.push_back(&in);
      }
    }
    // Hash-map order differs between platforms: sort for a replayable run.
    auto by_id = [](const Intent* a, const Intent* b) { return a->def.id < b->def.id; };
    std::sort(claimed.begin(), claimed.end(), by_id);
    std::sort(waiting.begin(), waiting.end(), by_id);
    if (r < 0.78 && !claimed.empty()) {
      const Intent& in = *claimed[rng.uniform(claimed.size())];
      const std::string id = in.def.id, holder = in.st.holder;
      const std::uint64_t epoch = in.st.epoch;
      const double w = rng.unit();
      if (w < 0.5) {
        FactBody res;
        res.kind = "result";
        res.content = Json(JsonObject{{"n", Json(++n)}});
        (void)bb.conclude(id, holder, epoch, res);
        trace += " conclude";
      } else if (w < 0.75) {
        (void)bb.fail(id, holder, epoch, "x", true);
        trace += " fail";
      } else {
        (void)bb.release(id, holder, epoch);
        trace += " release";
      }
      return;
    }
    if (r < 0.82 && !waiting.empty()) {
      const Intent& in = *waiting[rng.uniform(waiting.size())];
      const std::string id = in.def.id;
      (void)bb.claim(id, pick(kAgents));
      trace += " claim";
      return;
    }
    if (r < 0.85 && !waiting.empty()) {
      (void)bb.cancel(waiting[rng.uniform(waiting.size())]->def.id, "p");
      trace += " cancel";
      return;
    }
    if (r < 0.9) {
      HintDraft h;
      h.kind = "policy";
      h.creator = "ops";
      if (rng.chance(0.5)) {
        h.selector.kind = rng.chance(0.5) ? "crawl" : "build";
      } else {
        h.selector.lane = pick(kLanes);
      }
      h.expires_at = clock.wall_ms() + rng.range(200, 5'000);
      const double e = rng.unit();
      if (e < 0.2) {
        h.effect.type = HintEffectType::kDeny;
      } else if (e < 0.4) {
        h.effect.type = HintEffectType::kCap;
        h.effect.n = rng.range(0, 2);
      } else if (e < 0.6) {
        h.effect.type = HintEffectType::kDefer;
        h.effect.until = clock.wall_ms() + rng.range(100, 3'000);
      } else if (e < 0.8) {
        h.effect.type = HintEffectType::kPriority;
        h.effect.n = rng.range(-3, 3);
      } else {
        h.effect.type = HintEffectType::kRequire;
        h.effect.fact_kind = "gate";
      }
      auto c = bb.create_hint(h);
      CAIRN_ASSERT_MSG(c.ok(), c.status().to_string().c_str());
      trace += " hint";
      return;
    }
    clock.advance_ms(rng.range(1, 2'500));
    trace += " time";
  }
};

// The checks after every operation (committed or rolled back, then ticked).
void check(World& w, int step) {
  const Blackboard& bb = w.bb;
  const std::int64_t now = bb.clock().wall_ms();
  SCOPED_TRACE("step " + std::to_string(step) + ":" +
               w.trace.substr(w.trace.size() > 400 ? w.trace.size() - 400 : 0));
  // Budgets.
  for (const Blackboard::LaneUse& u : bb.lane_usage()) {
    if (!u.configured) {
      EXPECT_EQ(u.running, 0) << "intents run in " << u.key << ", which has no budget";
      continue;
    }
    EXPECT_LE(u.running, u.budget.max_concurrency) << u.key;
    EXPECT_LE(u.running_cost, u.budget.max_cost_units) << u.key;
  }
  // No timer work left after tick().
  if (auto d = bb.next_deadline()) {
    EXPECT_GT(*d, now) << "tick() left due work";
  }
  // One reason each; deferred ⇔ its own first missing dependency.
  const Plan plan = plan_of(bb);
  std::map<std::string, const PlanDecision*> by_id;
  for (const PlanDecision& d : plan.decisions) {
    EXPECT_TRUE(by_id.emplace(d.id, &d).second) << d.id << " has two reasons";
  }
  std::size_t waiting = 0;
  for (const auto& [id, in] : bb.intents()) {
    const IntentState st = in.st.state;
    if (st != IntentState::kOpen && st != IntentState::kDeferred) continue;
    ++waiting;
    auto it = by_id.find(id);
    ASSERT_TRUE(it != by_id.end()) << id << " has no reason";
    const PlanDecision& d = *it->second;
    EXPECT_NE(d.reason, PlanReason::kStale) << id << " is stale in the plan, not in the core";
    EXPECT_NE(d.reason, PlanReason::kCoalescedInto) << id << ": two of its group wait";
    const bool own_dependency = d.reason == PlanReason::kMissingDependency && d.hint.empty();
    if (st == IntentState::kDeferred) {
      EXPECT_TRUE(own_dependency) << id << " is deferred, plan says " << d.text();
      const auto first = bb.first_missing_dependency(in.def, now);
      ASSERT_TRUE(first.has_value()) << id << " is deferred with every dependency ready";
      EXPECT_EQ(d.arg, *first) << id;
    } else {
      EXPECT_FALSE(own_dependency) << id << " is open, plan says " << d.text();
    }
  }
  EXPECT_EQ(waiting, plan.decisions.size());
  EXPECT_EQ(bb.dependency_waits(), static_cast<std::size_t>(bb.count(IntentState::kDeferred)));
  // Claim order = plan order (a probe claim, rolled back).
  auto got = w.bb.claim_next("probe", {});
  if (plan.admitted.empty()) {
    EXPECT_FALSE(got.ok()) << "claim_next took " << got->id << ", the plan admits nothing";
  } else {
    ASSERT_TRUE(got.ok()) << got.status().to_string() << "; the plan admits "
                          << plan.admitted.front();
    EXPECT_EQ(got->id, plan.admitted.front());
  }
  w.bb.rollback();
}

void check_reload(World& w) {
  SeededRng rng(99);
  Blackboard fresh(w.clock, rng, admission_config());
  ASSERT_TRUE(fresh.load(w.store).ok());
  EXPECT_EQ(fresh.state_hash(), w.bb.state_hash());
  EXPECT_EQ(fresh.dependency_waits(), w.bb.dependency_waits());
  EXPECT_EQ(fresh.no_budget_open(), w.bb.no_budget_open());
  const auto a = fresh.lane_usage(), b = w.bb.lane_usage();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].key, b[i].key);
    EXPECT_EQ(a[i].running, b[i].running) << a[i].key;
    EXPECT_EQ(a[i].running_cost, b[i].running_cost) << a[i].key;
    EXPECT_EQ(a[i].open, b[i].open) << a[i].key;
  }
  EXPECT_EQ(plan_to_jcs(plan_of(fresh)), plan_to_jcs(plan_of(w.bb)));
}

TEST(AdmissionProperty, IncrementalStateAgreesWithTheFreshPlan) {
  std::uint64_t deferred = 0, woken = 0, lane_full = 0, no_budget = 0, rolled_back = 0;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    World w(static_cast<std::uint64_t>(seed));
    for (int step = 1; step <= kOpsPerSeed; ++step) {
      w.trace += " |";
      w.op();
      w.commit();
      w.tick();
      check(w, step);
      if (::testing::Test::HasFailure()) {
        FAIL() << "seed " << seed << " step " << step;
      }
      if (step % kReloadEvery == 0) check_reload(w);
    }
    check_reload(w);
    const Plan plan = plan_of(w.bb);
    for (const PlanDecision& d : plan.decisions) {
      lane_full += d.reason == PlanReason::kLaneFull;
      no_budget += d.reason == PlanReason::kNoBudget;
    }
    auto events = Blackboard::read_events(w.store, 0, 1'000);
    ASSERT_TRUE(events.ok());
    for (const Event& e : *events) {
      deferred += e.type == ev::kIntentDeferred;
      woken += e.type == ev::kIntentReady;
    }
    for (std::size_t p = w.trace.find("rolled back"); p != std::string::npos;
         p = w.trace.find("rolled back", p + 1)) {
      ++rolled_back;
    }
  }
  // The sequences exercised what the properties are about.
  EXPECT_GT(deferred, 50u);
  EXPECT_GT(woken, 20u);
  EXPECT_GT(lane_full + no_budget, 0u);
  EXPECT_GT(rolled_back, 100u);
}

// A batch that woke a deferred intent is rolled back: the intent waits on
// its dependency again, and the fact, posted again, wakes it.
TEST(AdmissionProperty, RollbackOfAWakeRestoresTheWait) {
  SeededRng rng(1);
  SimClock clock(kT0);
  store::MemoryStore store;
  Blackboard bb(clock, rng, admission_config());
  FactBody seed;
  seed.kind = "obs";
  seed.creator = "p";
  seed.content = Json("seed");
  auto s = bb.post_fact(seed);
  ASSERT_TRUE(s.ok());
  IntentDraft d;
  d.kind = "crawl";
  d.from_facts = {s->id};
  d.creator = "p";
  d.requires_ = {"kind:gate@10s"};
  auto c = bb.create_intent(d);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->state, IntentState::kDeferred);
  ASSERT_TRUE(store.commit(bb.drain().batch).ok());
  bb.accept();
  FactBody gate;
  gate.kind = "gate";
  gate.creator = "p";
  gate.content = Json("open");
  ASSERT_TRUE(bb.post_fact(gate).ok());
  EXPECT_EQ(bb.intent(c->id)->st.state, IntentState::kOpen);  // woken in the same command
  (void)bb.drain();
  bb.rollback();
  EXPECT_EQ(bb.intent(c->id)->st.state, IntentState::kDeferred);
  EXPECT_EQ(bb.dependency_waits(), 1u);
  EXPECT_FALSE(bb.next_deadline().has_value());  // nothing to poll for
  EXPECT_EQ(bb.claim_next("w1", {}).status().reason(), "no_work");
  ASSERT_TRUE(bb.post_fact(gate).ok());
  EXPECT_EQ(bb.intent(c->id)->st.state, IntentState::kOpen);
  ASSERT_TRUE(store.commit(bb.drain().batch).ok());
  bb.accept();
  auto got = bb.claim_next("w1", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, c->id);
}

}  // namespace
}  // namespace cairn

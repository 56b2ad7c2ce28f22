// plan_bench.cc — the admission planner at 100,000 pending intents over 20
// lanes, one thread: the full plan, and the incremental admission path per
// event, with lane budgets ON and OFF on the same state.
//
//   BM_ComputePlan/budgets:B      compute_plan over the engine's PlanInput
//                                 (100k intents: 500 claimed, dependencies,
//                                 identities, hints); input built once
//   BM_EnginePlan/budgets:B       Engine::plan(): builds the PlanInput from
//                                 the hot state, then plans (GetPlan's cost
//                                 before JSON)
//   BM_EnginePlanJson/budgets:B   Engine::plan() + plan_to_json + encoding
//                                 (what GET /v1/plan answers)
//   BM_AdmissionCycle/budgets:B/hints:H   lanes full of queued work (ON: 50
//       claimed per lane, every lane at its cap): conclude one claimed intent
//       (frees a slot in its lane), then claim_next (ON: the scan skips the 19
//       full lanes and admits the head of the freed one). Items = commands
//       (2 per cycle); counters split the CPU time into claim_next / conclude
//       / commit by their shares of the wall time.
//       H = hint bits (add_hints): 0 none; 1 deny + defer; 3 those and a
//       non-binding cap hint; 5 deny + defer and a priority hint.
//   BM_AdmissionWake/budgets:B/wakes:W   a fact arrives: W = 1 it wakes
//       exactly the one deferred intent waiting on its kind (10,000 deferred
//       intents wait on distinct kinds), which becomes open in a full lane;
//       W = 0 a fact of a fresh kind nobody waits on (the baseline: each
//       waking fact is of a kind of its own too). Items = facts.
//   BM_AdmissionCreate/budgets:B  intent creation into a full lane. Items =
//       creates.
//
// Every admission benchmark times (this thread's CPU time, so that the waits
// for a core on a shared machine do not count) the commands and the group
// commit's drain + accept every 256 commands (no store: the memory store's cost is
// in core_bench's BM_ClaimConclude/store:1). The open backlog is held at
// 100,000: what a timed batch takes out is replaced (or what it adds is
// cancelled) outside the timed region. B = 1: lanes l00..l19 each with a
// budget {max_concurrency 50, max_cost_units 50}; B = 0: the same intents
// with budgets off (no `lanes:` configured). Results: docs/benchmarks.md.
#include <benchmark/benchmark.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/blackboard.h"
#include "engine/engine.h"
#include "model/clock.h"
#include "model/rng.h"
#include "store/memory_store.h"

namespace cairn {
namespace {

using BenchClock = std::chrono::steady_clock;

constexpr std::int64_t kT0 = 1'700'000'000'000;
constexpr int kLanes = 20;
constexpr std::int64_t kLaneCap = 50;  // max_concurrency and max_cost_units per lane
constexpr std::size_t kPending = 100'000;
constexpr int kBatch = 256;  // commands per group commit

std::string lane_name(std::size_t i) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "l%02zu", i % kLanes);
  return buf;
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64: a fixed spread of kinds and priorities
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

CoreConfig core_config(bool budgets) {
  CoreConfig c;
  c.admission.budgets = budgets;
  if (budgets) {
    for (int l = 0; l < kLanes; ++l) {
      c.admission.lanes.emplace(lane_name(static_cast<std::size_t>(l)),
                                LaneBudget{kLaneCap, kLaneCap});
    }
  }
  return c;
}

// The i-th pending intent: 20 lanes round-robin, 10 kinds, priorities 0..9;
// 1 % kind "audit" and 1 % kind "report" (what the hints select).
IntentDraft draft(std::uint64_t i, const std::string& seed_fact) {
  IntentDraft d;
  const std::uint64_t h = mix(i);
  d.kind = "k" + std::to_string(h % 10);
  if (h % 100 == 17) d.kind = "audit";
  if (h % 100 == 42) d.kind = "report";
  d.lane = lane_name(i);
  d.priority = static_cast<std::int64_t>((h >> 8) % 10);
  d.from_facts = {seed_fact};
  d.creator = "bench";
  return d;
}

void add_hint(Blackboard& bb, HintEffectType type, std::string kind, std::string lane,
              std::int64_t n) {
  HintDraft h;
  h.kind = "policy";
  h.selector.kind = std::move(kind);
  h.selector.lane = std::move(lane);
  h.effect.type = type;
  h.effect.n = n;
  if (type == HintEffectType::kDefer) h.effect.until = kT0 + 3'600'000;
  h.creator = "bench";
  if (!bb.create_hint(std::move(h)).ok()) std::abort();
}

// "A few hints", by bit: kDenyDefer denies the audit kind and defers the
// report kind by an hour (1 % of the intents each); kCap caps lane l05 above
// its budget (never binding, but claim_next counts the leases for every l05
// candidate it checks); kPriority adds +1 for kind k3 (claim_next then looks
// for the best effective priority: it scans each lane with room up to
// claim_scan_max instead of taking the lane's head).
constexpr int kDenyDefer = 1, kCap = 2, kPriority = 4;
void add_hints(Blackboard& bb, int hints) {
  if (hints & kDenyDefer) {
    add_hint(bb, HintEffectType::kDeny, "audit", "", 0);
    add_hint(bb, HintEffectType::kDefer, "report", "", 0);
  }
  if (hints & kCap) add_hint(bb, HintEffectType::kCap, "", "l05", 1'000);
  if (hints & kPriority) add_hint(bb, HintEffectType::kPriority, "k3", "", 1);
}

void commit(Blackboard& bb) {
  (void)bb.drain();
  bb.accept();
}

// A blackboard with kPending open intents; `claimed_per_lane` of them per
// lane claimed (claim_next filtered to the lane, so budgets ON and OFF hold
// the same intents).
struct Board {
  SimClock clock{kT0};
  SeededRng rng{42};
  Blackboard bb;
  std::string seed_fact;
  std::uint64_t next = 0;  // next draft index
  std::vector<std::deque<std::string>> held = std::vector<std::deque<std::string>>(kLanes);

  Board(bool budgets, int hints, std::int64_t claimed_per_lane)
      : bb(clock, rng, core_config(budgets)) {
    FactBody seed;
    seed.kind = "seed";
    seed.content = Json("grounding");
    seed.creator = "bench";
    seed_fact = bb.post_fact(seed)->id;
    for (std::size_t i = 0; i < kPending; ++i) {
      create();
      if (i % 1024 == 1023) commit(bb);
    }
    commit(bb);
    for (int l = 0; l < kLanes; ++l) {
      ClaimFilter f;
      f.lanes = {lane_name(static_cast<std::size_t>(l))};
      for (std::int64_t k = 0; k < claimed_per_lane; ++k) {
        auto c = bb.claim_next("agent", f);
        if (!c.ok()) std::abort();
        held[static_cast<std::size_t>(l)].push_back(c->id);
      }
    }
    add_hints(bb, hints);  // after the setup's claims, which they would slow down
    commit(bb);
  }
  std::string create() {
    auto r = bb.create_intent(draft(next++, seed_fact));
    if (!r.ok()) std::abort();
    return r->id;
  }
  std::size_t lane_of(const std::string& id) const {
    return static_cast<std::size_t>(std::stoi(bb.intent(id)->def.lane.substr(1)));
  }
};

double us(BenchClock::time_point a, BenchClock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

// This thread's CPU time (s). The admission benchmarks report CPU, not wall
// time: on a shared machine wall time counts the waits for a core as well.
double thread_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// ---- the full plan ---------------------------------------------------------------------

// An engine loaded (from a memory store) with kPending pending intents in
// 20 lanes: 25 claimed per lane (half the budget, so each lane admits 25
// more and queues the rest), 2.5 % waiting on a dependency that is there
// (kind:calib), 2.5 % deferred on one that is not (kind:pending-N, 100
// kinds), 1 % with an identity (pairs; the second of a pair is coalesced at
// creation), 1 % with stale_after_ms (a day), and the hints of
// all the hints of add_hints.
struct PlanFixture {
  store::MemoryStore store;
  std::unique_ptr<engine::Engine> engine;
  PlanInput input;

  explicit PlanFixture(bool budgets) {
    SimClock clock{kT0};
    SeededRng rng{7};
    Blackboard bb(clock, rng, core_config(budgets));
    auto flush = [&] {
      PendingCommit p = bb.drain();
      if (!store.commit(p.batch).ok()) std::abort();
      bb.accept();
    };
    FactBody seed;
    seed.kind = "seed";
    seed.content = Json("grounding");
    seed.creator = "bench";
    const std::string fact = bb.post_fact(seed)->id;
    FactBody calib;
    calib.kind = "calib";
    calib.content = Json("ok");
    calib.creator = "bench";
    (void)bb.post_fact(calib);
    for (std::uint64_t i = 0; i < kPending; ++i) {
      IntentDraft d = draft(i, fact);
      const std::uint64_t h = mix(i ^ 0x5555);
      if (h % 40 == 0) d.requires_ = {"kind:calib"};
      if (h % 40 == 1) d.requires_ = {"kind:pending-" + std::to_string(h % 100)};
      if (h % 100 == 2 || h % 100 == 3) d.identity = "id-" + std::to_string(i / 2);
      if (h % 100 == 4) d.stale_after_ms = 86'400'000;
      if (auto r = bb.create_intent(std::move(d)); !r.ok()) {
        std::fprintf(stderr, "create: %s\n", r.status().to_string().c_str());
        std::abort();
      }
      if (i % 1024 == 1023) flush();
    }
    flush();
    for (int l = 0; l < kLanes; ++l) {
      ClaimFilter f;
      f.lanes = {lane_name(static_cast<std::size_t>(l))};
      for (int k = 0; k < 25; ++k) {
        if (!bb.claim_next("agent-" + std::to_string(k), f).ok()) std::abort();
      }
    }
    add_hints(bb, kDenyDefer | kCap | kPriority);
    flush();
    engine::EngineConfig cfg;
    cfg.core = core_config(budgets);
    engine = std::make_unique<engine::Engine>(std::move(cfg), 1, kT0);
    if (Status s = engine->load(store); !s.ok()) {
      std::fprintf(stderr, "load: %s\n", s.to_string().c_str());
      std::abort();
    }
    input = engine->plan_input();
  }
};

PlanFixture& plan_fixture(bool budgets) {
  static std::unique_ptr<PlanFixture> f[2];
  auto& p = f[budgets ? 1 : 0];
  if (!p) p = std::make_unique<PlanFixture>(budgets);
  return *p;
}

void plan_counters(benchmark::State& state, const Plan& p) {
  state.counters["intents"] = static_cast<double>(p.decisions.size());
  state.counters["admitted"] = static_cast<double>(p.admitted.size());
}

void BM_ComputePlan(benchmark::State& state) {
  PlanFixture& f = plan_fixture(state.range(0) != 0);
  const PlanFacts& facts = f.engine->blackboard().plan_facts();
  Plan last;
  for (auto _ : state) {
    Result<Plan> p = compute_plan(f.input, facts);
    if (!p.ok()) std::abort();
    last = std::move(p).value();
    benchmark::DoNotOptimize(last.decisions.data());
  }
  plan_counters(state, last);
}
BENCHMARK(BM_ComputePlan)->ArgName("budgets")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_EnginePlan(benchmark::State& state) {
  PlanFixture& f = plan_fixture(state.range(0) != 0);
  Plan last;
  for (auto _ : state) {
    Result<Plan> p = f.engine->plan();
    if (!p.ok()) std::abort();
    last = std::move(p).value();
    benchmark::DoNotOptimize(last.decisions.data());
  }
  plan_counters(state, last);
}
BENCHMARK(BM_EnginePlan)->ArgName("budgets")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_EnginePlanJson(benchmark::State& state) {
  PlanFixture& f = plan_fixture(state.range(0) != 0);
  std::size_t bytes = 0;
  for (auto _ : state) {
    Result<Plan> p = f.engine->plan();
    if (!p.ok()) std::abort();
    const std::string body = to_json(plan_to_json(*p));
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["json_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_EnginePlanJson)->ArgName("budgets")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// ---- admission per event ----------------------------------------------------------------

void BM_AdmissionCycle(benchmark::State& state) {
  const bool budgets = state.range(0) != 0;
  Board b(budgets, static_cast<int>(state.range(1)), kLaneCap);
  FactBody result;
  result.kind = "result";
  std::int64_t n = 0;
  // Wall time per phase; the CPU time of each batch is split in these shares.
  double claim_us = 0, conclude_us = 0, commit_us = 0, cpu_s = 0;
  std::uint64_t cycles = 0, same_lane = 0;
  std::size_t lane = 0;
  for (auto _ : state) {
    const double cpu0 = thread_cpu_s();
    for (int i = 0; i < kBatch / 2; ++i) {
      // Conclude the oldest claim of the next lane (round-robin): its slot
      // frees. (Budgets OFF, claims follow global plan order, so a lane may
      // hold none.)
      while (b.held[lane].empty()) lane = (lane + 1) % kLanes;
      std::deque<std::string>& q = b.held[lane];
      const std::string id = std::move(q.front());
      q.pop_front();
      const std::uint64_t epoch = b.bb.intent(id)->st.epoch;
      FactBody r = result;
      r.content = Json(JsonObject{{"n", Json(++n)}});
      const auto t0 = BenchClock::now();
      if (!b.bb.conclude(id, "agent", epoch, std::move(r)).ok()) std::abort();
      const auto t1 = BenchClock::now();
      auto c = b.bb.claim_next("agent", ClaimFilter{});
      const auto t2 = BenchClock::now();
      if (!c.ok()) std::abort();
      const std::size_t got = b.lane_of(c->id);
      if (got == lane) ++same_lane;
      b.held[got].push_back(c->id);
      conclude_us += us(t0, t1);
      claim_us += us(t1, t2);
      lane = (lane + 1) % kLanes;
    }
    const auto t3 = BenchClock::now();
    commit(b.bb);
    const auto t4 = BenchClock::now();
    commit_us += us(t3, t4);
    const double cpu = thread_cpu_s() - cpu0;
    cpu_s += cpu;
    state.SetIterationTime(cpu);
    cycles += kBatch / 2;
    for (int i = 0; i < kBatch / 2; ++i) b.create();  // keep the backlog at kPending
    commit(b.bb);
  }
  // Budgets ON: every claim must come from the lane just freed.
  if (budgets && same_lane != cycles) std::abort();
  state.SetItemsProcessed(static_cast<std::int64_t>(2 * cycles));
  const double c = static_cast<double>(cycles);
  const double cpu_us_per_wall_us = 1e6 * cpu_s / (claim_us + conclude_us + commit_us);
  state.counters["claim_next_us"] = cpu_us_per_wall_us * claim_us / c;
  state.counters["conclude_us"] = cpu_us_per_wall_us * conclude_us / c;
  state.counters["commit_us_per_cmd"] = cpu_us_per_wall_us * commit_us / (2 * c);
  state.counters["open"] = static_cast<double>(b.bb.count(IntentState::kOpen));
  // Open intents a hint keeps from being claimed: they stay in the open sets.
  std::size_t blocked = 0;
  for (const auto& [id, in] : b.bb.intents()) {
    if (in.st.state == IntentState::kOpen && !b.bb.hint_gate(in, b.clock.wall_ms()).ok()) ++blocked;
  }
  state.counters["hint_blocked_open"] = static_cast<double>(blocked);
  state.counters["claimed"] = static_cast<double>(b.bb.count(IntentState::kClaimed));
}
BENCHMARK(BM_AdmissionCycle)
    ->ArgNames({"budgets", "hints"})
    ->ArgsProduct({{0, 1}, {0, kDenyDefer, kDenyDefer | kCap}})
    ->UseManualTime()
    ->Iterations(200);
// A live priority hint: far slower (see above), so fewer cycles.
BENCHMARK(BM_AdmissionCycle)
    ->ArgNames({"budgets", "hints"})
    ->ArgsProduct({{0, 1}, {kDenyDefer | kPriority}})
    ->UseManualTime()
    ->Iterations(4);

void BM_AdmissionWake(benchmark::State& state) {
  const bool budgets = state.range(0) != 0;
  const bool wakes = state.range(1) != 0;
  Board b(budgets, kDenyDefer, kLaneCap);
  // 10,000 intents deferred, each on a kind of its own.
  constexpr std::uint64_t kWaiting = 10'000;
  std::uint64_t next_dep = 0;
  std::deque<std::string> waiters;  // waiters[j] waits on dep-(next_fact + j)
  auto add_waiter = [&] {
    IntentDraft d = draft(b.next++, b.seed_fact);
    d.requires_ = {"kind:dep-" + std::to_string(next_dep++)};
    auto r = b.bb.create_intent(std::move(d));
    if (!r.ok() || r->state != IntentState::kDeferred) std::abort();
    waiters.push_back(std::move(r->id));
  };
  for (std::uint64_t i = 0; i < kWaiting; ++i) add_waiter();
  commit(b.bb);
  std::uint64_t next_fact = 0;  // the oldest waiter's kind
  std::uint64_t facts = 0;
  std::vector<std::string> woken;
  for (auto _ : state) {
    std::vector<FactBody> batch(kBatch);
    for (auto& f : batch) {
      f.creator = "sensor";
      f.content = Json(JsonObject{{"n", Json(static_cast<std::int64_t>(next_fact))}});
      f.kind = wakes ? "dep-" + std::to_string(next_fact) : "noise-" + std::to_string(next_fact);
      ++next_fact;
    }
    const std::uint64_t open0 = b.bb.count(IntentState::kOpen);
    const double cpu0 = thread_cpu_s();
    for (auto& f : batch) {
      if (!b.bb.post_fact(std::move(f)).ok()) std::abort();
    }
    commit(b.bb);
    state.SetIterationTime(thread_cpu_s() - cpu0);
    facts += kBatch;
    // Exactly one intent woke per fact (or none), and each is open now.
    if (b.bb.count(IntentState::kOpen) - open0 != (wakes ? kBatch : 0)) std::abort();
    if (wakes) {  // keep 10,000 waiting and the open backlog steady (cancel the woken)
      for (int i = 0; i < kBatch; ++i) {
        if (!b.bb.cancel(waiters.front(), "bench").ok()) std::abort();
        waiters.pop_front();
        add_waiter();
      }
    }
    commit(b.bb);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(facts));
  state.counters["deferred"] = static_cast<double>(b.bb.count(IntentState::kDeferred));
  state.counters["dependency_waits"] = static_cast<double>(b.bb.dependency_waits());
}
BENCHMARK(BM_AdmissionWake)
    ->ArgNames({"budgets", "wakes"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->UseManualTime()
    ->Iterations(100);

void BM_AdmissionCreate(benchmark::State& state) {
  const bool budgets = state.range(0) != 0;
  Board b(budgets, kDenyDefer, kLaneCap);
  std::vector<std::string> made;
  made.reserve(kBatch);
  std::uint64_t creates = 0;
  for (auto _ : state) {
    std::vector<IntentDraft> drafts;
    drafts.reserve(kBatch);
    for (int i = 0; i < kBatch; ++i) drafts.push_back(draft(b.next++, b.seed_fact));
    made.clear();
    const double cpu0 = thread_cpu_s();
    for (auto& d : drafts) {
      auto r = b.bb.create_intent(std::move(d));
      if (!r.ok()) std::abort();
      made.push_back(std::move(r->id));
    }
    commit(b.bb);
    state.SetIterationTime(thread_cpu_s() - cpu0);
    creates += kBatch;
    for (const std::string& id : made) {  // keep the open backlog at kPending
      if (!b.bb.cancel(id, "bench").ok()) std::abort();
    }
    commit(b.bb);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(creates));
}
BENCHMARK(BM_AdmissionCreate)->ArgName("budgets")->Arg(0)->Arg(1)->UseManualTime()->Iterations(200);

}  // namespace
}  // namespace cairn

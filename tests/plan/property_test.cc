// property_test.cc — random planner inputs (seeded Rng) against the rules the
// planner promises, restated here independently of plan.cc:
//   - lane budgets and cap hints are never exceeded by admission;
//   - every open/deferred intent has exactly one reason, and that reason is
//     true of the input (the dependency really is missing, the hint really
//     denies, ...); admitted intents pass every gate;
//   - the same input, in any order, gives byte-identical plan JSON;
//   - clearing a reason admits: a fact that arrives removes that missing
//     dependency, and a lease that ends admits the next queued intent.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "model/rng.h"
#include "plan/plan.h"

namespace cairn {
namespace {

constexpr std::int64_t kNow = 10'000'000;
constexpr int kSeeds = 300;

const char* const kLanes[] = {"default", "a", "b", "llm"};
const char* const kProviders[] = {"", "", "p1", "p2"};
const char* const kKinds[] = {"k1", "k2", "k3"};

std::string fact_id(int i) {
  return "fact-" + std::to_string(i);
}

struct Case {
  PlanInput in;
  MapFacts facts;
  std::vector<std::pair<std::string, std::string>> fact_list;  // id, kind (to rebuild)
  std::vector<std::int64_t> fact_at;
};

struct GenOptions {
  bool hints = true;
  bool contention = true;  // small budgets
  bool unit_costs = false;
  bool clean = false;  // no stale, no backoff, no identity
};

Case generate(Rng& rng, const GenOptions& o = {}) {
  Case c;
  PlanInput& in = c.in;
  in.now_ms = kNow;
  in.default_lane = rng.chance(0.7);
  for (const char* lane : kLanes) {
    for (const char* p : kProviders) {
      if (!rng.chance(o.contention ? 0.5 : 1.0)) continue;
      std::string key = *p ? std::string(lane) + "/" + p : std::string(lane);
      const std::int64_t conc = o.contention ? rng.range(1, 4) : 1'000;
      const std::int64_t cost = o.contention ? rng.range(1, 8) : 1'000'000;
      in.lanes[key] = LaneBudget{conc, cost};
    }
  }
  const int n_facts = static_cast<int>(rng.range(0, 6));
  for (int i = 0; i < n_facts; ++i) {
    const std::string kind = kKinds[rng.uniform(3)];
    const std::int64_t at = kNow - rng.range(0, 200'000);
    c.facts.add(fact_id(i), kind, at);
    c.fact_list.emplace_back(fact_id(i), kind);
    c.fact_at.push_back(at);
  }
  if (o.hints) {
    const int n_hints = static_cast<int>(rng.range(0, 5));
    for (int i = 0; i < n_hints; ++i) {
      PlanHint h;
      h.id = "h" + std::to_string(i);
      h.type = static_cast<PlanHintType>(rng.uniform(5));
      h.n = rng.range(0, 3);
      h.delta = rng.range(-3, 3);
      h.until = kNow + rng.range(-10'000, 10'000);
      h.fact_kind = kKinds[rng.uniform(3)];
      in.hints.push_back(h);
    }
  }
  const int n = static_cast<int>(rng.range(0, 60));
  for (int i = 0; i < n; ++i) {
    PlanIntent it;
    it.id = "i" + std::to_string(i);
    it.kind = kKinds[rng.uniform(3)];
    it.lane = kLanes[rng.uniform(4)];
    it.provider = kProviders[rng.uniform(4)];
    it.cost_units = o.unit_costs ? 1 : rng.range(1, 3);
    it.priority = rng.range(-2, 2);
    it.created_seq = rng.uniform(40);
    it.created_at = kNow - rng.range(0, 100'000);
    const double r = rng.unit();
    it.state = r < 0.2 ? PlanIntentState::kClaimed
                       : (r < 0.3 ? PlanIntentState::kDeferred : PlanIntentState::kOpen);
    if (!o.clean) {
      if (rng.chance(0.2)) it.stale_after_ms = rng.range(1, 200'000);
      if (rng.chance(0.2)) it.not_before = kNow + rng.range(-5'000, 5'000);
      if (rng.chance(0.3)) it.identity = rng.chance(0.5) ? "x" : "y";
    }
    const int n_req = static_cast<int>(rng.range(0, 2));
    for (int k = 0; k < n_req; ++k) {
      switch (rng.uniform(3)) {
        case 0:
          it.requires_.push_back(fact_id(static_cast<int>(rng.uniform(8))));
          break;
        case 1:
          it.requires_.push_back(std::string("kind:") + kKinds[rng.uniform(3)]);
          break;
        default:
          it.requires_.push_back(std::string("kind:") + kKinds[rng.uniform(3)] + "@60s");
      }
    }
    for (const PlanHint& h : in.hints) {
      if (rng.chance(0.3)) it.hints.push_back(h.id);
    }
    in.intents.push_back(std::move(it));
  }
  return c;
}

Plan plan_of(const Case& c) {
  auto p = compute_plan(c.in, c.facts);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(p).value() : Plan{};
}

// The budget an intent is charged to, restated.
std::string budget_key(const PlanInput& in, const PlanIntent& it) {
  if (!it.provider.empty() && in.lanes.count(it.lane + "/" + it.provider)) {
    return it.lane + "/" + it.provider;
  }
  if (in.lanes.count(it.lane)) return it.lane;
  if (it.lane == "default" && in.default_lane) return it.lane;
  return it.provider.empty() ? it.lane : it.lane + "/" + it.provider;
}

std::optional<LaneBudget> budget_of(const PlanInput& in, const std::string& key) {
  if (auto f = in.lanes.find(key); f != in.lanes.end()) return f->second;
  if (key == "default" && in.default_lane) return kDefaultLaneBudget;
  return std::nullopt;
}

const PlanHint* hint_by_id(const PlanInput& in, const std::string& id) {
  for (const PlanHint& h : in.hints) {
    if (h.id == id) return &h;
  }
  return nullptr;
}

void check_invariants(const Case& c, const Plan& p, int seed) {
  const PlanInput& in = c.in;
  std::map<std::string, const PlanIntent*> by_id;
  for (const PlanIntent& it : in.intents) by_id[it.id] = &it;

  // Exactly one decision per open/deferred intent, none for claimed ones.
  std::map<std::string, int> seen;
  for (const PlanDecision& d : p.decisions) seen[d.id] += 1;
  EXPECT_EQ(seen.size(), p.decisions.size()) << "seed " << seed << ": an intent decided twice";
  for (const PlanIntent& it : in.intents) {
    const int want = it.state == PlanIntentState::kClaimed ? 0 : 1;
    auto f = seen.find(it.id);
    EXPECT_EQ(f == seen.end() ? 0 : f->second, want) << "seed " << seed << " intent " << it.id;
  }
  std::vector<std::string> admitted;
  for (const PlanDecision& d : p.decisions) {
    if (d.reason == PlanReason::kAdmitted) admitted.push_back(d.id);
  }
  EXPECT_EQ(admitted, p.admitted) << "seed " << seed;

  // Budgets: admission never takes a lane past its budget.
  struct Use {
    std::int64_t running = 0, running_cost = 0, admitted = 0, admitted_cost = 0;
  };
  std::map<std::string, Use> use;
  std::map<std::string, std::int64_t> cap_claimed, cap_admitted;
  for (const PlanIntent& it : in.intents) {
    const std::string key = budget_key(in, it);
    const bool claimed = it.state == PlanIntentState::kClaimed;
    const PlanDecision* d = claimed ? nullptr : p.find(it.id);
    const bool adm = d != nullptr && d->reason == PlanReason::kAdmitted;
    if (claimed) {
      use[key].running += 1;
      use[key].running_cost += it.cost_units;
    }
    if (adm) {
      use[key].admitted += 1;
      use[key].admitted_cost += it.cost_units;
    }
    std::set<std::string> hs(it.hints.begin(), it.hints.end());
    for (const std::string& h : hs) {
      if (hint_by_id(in, h)->type != PlanHintType::kCap) continue;
      if (claimed) cap_claimed[h] += 1;
      if (adm) cap_admitted[h] += 1;
    }
  }
  for (const auto& [key, u] : use) {
    if (u.admitted == 0) continue;
    std::optional<LaneBudget> b = budget_of(in, key);
    ASSERT_TRUE(b.has_value()) << "seed " << seed << ": admitted into unbudgeted " << key;
    EXPECT_LE(u.running + u.admitted, std::max(b->max_concurrency, u.running))
        << "seed " << seed << " lane " << key;
    EXPECT_LE(u.running_cost + u.admitted_cost, std::max(b->max_cost_units, u.running_cost))
        << "seed " << seed << " lane " << key;
  }
  for (const PlanLaneUsage& l : p.lanes) {
    auto f = use.find(l.key);
    const Use u = f == use.end() ? Use{} : f->second;
    EXPECT_EQ(l.running, u.running) << "seed " << seed << " " << l.key;
    EXPECT_EQ(l.admitted, u.admitted) << "seed " << seed << " " << l.key;
    EXPECT_EQ(l.admitted_cost, u.admitted_cost) << "seed " << seed << " " << l.key;
  }
  for (const auto& [h, n] : cap_admitted) {
    EXPECT_LE(cap_claimed[h] + n, std::max(hint_by_id(in, h)->n, cap_claimed[h]))
        << "seed " << seed << " cap " << h;
  }

  // Each reason is true of the input; admitted intents pass every gate.
  for (const PlanDecision& d : p.decisions) {
    const PlanIntent& it = *by_id.at(d.id);
    const bool stale = it.stale_after_ms > 0 && kNow - it.created_at >= it.stale_after_ms;
    std::vector<const PlanHint*> hs;
    for (const std::string& h : it.hints) hs.push_back(hint_by_id(in, h));
    auto has = [&](PlanHintType t) {
      return std::any_of(hs.begin(), hs.end(), [&](const PlanHint* h) { return h->type == t; });
    };
    std::int64_t until = it.not_before;
    for (const PlanHint* h : hs) {
      if (h->type == PlanHintType::kDefer) until = std::max(until, h->until);
    }
    bool deps_ready = true;
    for (const std::string& key : it.requires_) {
      auto k = parse_dependency_key(key);
      ASSERT_TRUE(k.ok());
      deps_ready = deps_ready && dependency_ready(*k, c.facts, kNow);
    }
    for (const PlanHint* h : hs) {
      if (h->type == PlanHintType::kRequire) {
        deps_ready = deps_ready && c.facts.newest_of_kind(h->fact_kind).has_value();
      }
    }
    const std::optional<LaneBudget> b = budget_of(in, budget_key(in, it));
    switch (d.reason) {
      case PlanReason::kStale:
        EXPECT_TRUE(stale) << "seed " << seed << " " << d.id;
        break;
      case PlanReason::kMissingDependency: {
        EXPECT_FALSE(stale);
        auto k = parse_dependency_key(d.arg);
        ASSERT_TRUE(k.ok());
        EXPECT_FALSE(dependency_ready(*k, c.facts, kNow)) << "seed " << seed << " " << d.id;
        break;
      }
      case PlanReason::kNoBudget:
        EXPECT_TRUE(!b || it.cost_units > b->max_cost_units) << "seed " << seed << " " << d.id;
        break;
      case PlanReason::kDeniedByHint:
        EXPECT_EQ(hint_by_id(in, d.arg)->type, PlanHintType::kDeny);
        break;
      case PlanReason::kBackoffUntil:
        EXPECT_GT(d.until, kNow);
        EXPECT_EQ(d.until, until);
        break;
      case PlanReason::kCappedByHint:
        EXPECT_EQ(hint_by_id(in, d.arg)->type, PlanHintType::kCap);
        break;
      case PlanReason::kCoalescedInto: {
        const PlanIntent& w = *by_id.at(d.arg);
        EXPECT_EQ(w.lane, it.lane);
        EXPECT_EQ(w.identity, it.identity);
        EXPECT_FALSE(it.identity.empty());
        break;
      }
      case PlanReason::kLaneFull:
        EXPECT_TRUE(b.has_value());
        break;
      case PlanReason::kAdmitted:
        EXPECT_FALSE(stale) << "seed " << seed << " " << d.id;
        EXPECT_TRUE(deps_ready) << "seed " << seed << " " << d.id;
        EXPECT_FALSE(has(PlanHintType::kDeny)) << "seed " << seed << " " << d.id;
        EXPECT_LE(until, kNow) << "seed " << seed << " " << d.id;
        ASSERT_TRUE(b.has_value()) << "seed " << seed << " " << d.id;
        EXPECT_LE(it.cost_units, b->max_cost_units);
        EXPECT_EQ(d.wave, 0) << "seed " << seed << " " << d.id;
        break;
    }
  }
}

TEST(PlanProperty, BudgetsHoldAndEveryReasonIsTrue) {
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SeededRng rng(static_cast<std::uint64_t>(seed));
    const Case c = generate(rng);
    const Plan p = plan_of(c);
    check_invariants(c, p, seed);
    if (HasFailure()) return;
  }
}

TEST(PlanProperty, SameInputInAnyOrderGivesTheSameBytes) {
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SeededRng rng(static_cast<std::uint64_t>(seed));
    Case c = generate(rng);
    const std::string first = plan_to_jcs(plan_of(c));
    EXPECT_EQ(plan_to_jcs(plan_of(c)), first) << "seed " << seed;
    // Shuffle intents and hints (Fisher–Yates with the seeded Rng).
    for (std::size_t i = c.in.intents.size(); i > 1; --i) {
      std::swap(c.in.intents[i - 1], c.in.intents[rng.uniform(i)]);
    }
    for (std::size_t i = c.in.hints.size(); i > 1; --i) {
      std::swap(c.in.hints[i - 1], c.in.hints[rng.uniform(i)]);
    }
    EXPECT_EQ(plan_to_jcs(plan_of(c)), first) << "seed " << seed;
  }
}

// Adds the fact that makes `key` ready now.
void satisfy(Case& c, const std::string& key) {
  auto k = parse_dependency_key(key);
  ASSERT_TRUE(k.ok());
  if (k->type == DependencyKey::Type::kFactId) {
    c.facts.add_id(k->name);
  } else {
    c.facts.add_kind(k->name, kNow);
  }
}

TEST(PlanProperty, AFactArrivingClearsThatMissingDependency) {
  int woken = 0;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SeededRng rng(static_cast<std::uint64_t>(seed));
    Case c = generate(rng);
    const Plan before = plan_of(c);
    for (const PlanDecision& d : before.decisions) {
      if (d.reason != PlanReason::kMissingDependency) continue;
      Case after = c;
      satisfy(after, d.arg);
      const Plan p = plan_of(after);
      const PlanDecision* now = p.find(d.id);
      ASSERT_NE(now, nullptr);
      EXPECT_FALSE(now->reason == PlanReason::kMissingDependency && now->arg == d.arg)
          << "seed " << seed << " " << d.id << " still waits on " << d.arg;
      ++woken;
    }
  }
  EXPECT_GT(woken, 100);  // the generator does produce missing dependencies
}

TEST(PlanProperty, WithoutContentionEveryReadyIntentIsAdmittedOnceItsFactsArrive) {
  GenOptions o;
  o.hints = false;
  o.contention = false;
  o.clean = true;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SeededRng rng(static_cast<std::uint64_t>(seed));
    Case c = generate(rng, o);
    c.in.default_lane = true;
    for (const PlanIntent& it : c.in.intents) {
      for (const std::string& key : it.requires_) satisfy(c, key);
    }
    const Plan p = plan_of(c);
    for (const PlanDecision& d : p.decisions) {
      EXPECT_EQ(d.reason, PlanReason::kAdmitted)
          << "seed " << seed << " " << d.id << " " << d.text();
    }
  }
}

TEST(PlanProperty, ALeaseEndingAdmitsTheNextQueuedIntent) {
  GenOptions o;
  o.unit_costs = true;
  o.hints = false;
  int freed = 0;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SeededRng rng(static_cast<std::uint64_t>(seed));
    const Case c = generate(rng, o);
    const Plan before = plan_of(c);
    // For each budget with queued intents and a running one: end that lease.
    for (const PlanLaneUsage& l : before.lanes) {
      if (l.queued == 0 || l.running == 0) continue;
      // Claimed intents may already exceed a budget that shrank: then one
      // lease ending frees nothing.
      if (l.running + l.admitted > std::min(l.budget.max_concurrency, l.budget.max_cost_units)) {
        continue;
      }
      Case after = c;
      auto run =
          std::find_if(after.in.intents.begin(), after.in.intents.end(), [&](const PlanIntent& it) {
            return it.state == PlanIntentState::kClaimed && budget_key(after.in, it) == l.key;
          });
      ASSERT_NE(run, after.in.intents.end());
      after.in.intents.erase(run);
      const Plan p = plan_of(after);
      const PlanDecision* next = nullptr;
      for (const PlanDecision& d : before.decisions) {
        if (d.reason == PlanReason::kLaneFull && d.budget_key == l.key) {
          next = &d;
          break;
        }
      }
      ASSERT_NE(next, nullptr);
      EXPECT_EQ(p.find(next->id)->reason, PlanReason::kAdmitted)
          << "seed " << seed << " lane " << l.key << " " << next->id;
      // Nothing admitted before loses its place.
      for (const std::string& id : before.admitted) {
        EXPECT_EQ(p.find(id)->reason, PlanReason::kAdmitted) << "seed " << seed << " " << id;
      }
      ++freed;
    }
  }
  EXPECT_GT(freed, 20);
}

}  // namespace
}  // namespace cairn

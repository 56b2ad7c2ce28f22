// plan.h — the admission planner: what may run now, under which budget, and
// why everything else waits (pure, deterministic).
//
// Inputs are plain values (PlanInput, PlanFacts) so the planner needs nothing
// from the core: the caller (the engine) maps its hot state onto them. Time is
// an input (`now_ms`); there is no clock, no randomness and no I/O here. The
// same input gives the same Plan, and plan_to_jcs() the same bytes, on every
// platform.
//
// Decision order (docs/planner.md):
//   1. stale             open/deferred intents past created_at + stale_after_ms
//   2. coalesced_into    per (lane, identity) the best intent wins, the rest link to it
//   3. missing_dependency the first dependency key that is not ready
//   4. no_budget         no budget for the lane (or cost_units above its max_cost_units)
//   5. denied_by_hint    a live deny hint
//   6. backoff_until     not_before or a defer hint still in the future
//   — the survivors are ordered: effective priority desc, newest first, id —
//   7. capped_by_hint    a cap hint whose count (claimed + admitted) is reached
//   8. lane_full         the budget's concurrency or cost is used up
//   9. admitted
// Every open or deferred intent gets exactly one of these reasons: the first
// that applies. Claimed intents get none; they use their budget's capacity and
// count towards the cap hints they match.
//
// Cost: compute_plan is O(n log n) in the number of intents (one sort, hash
// lookups); DependencyWaiters (wake.h) answers "which intents does this fact
// wake" without a full re-plan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/json.h"
#include "model/status.h"

namespace cairn {

// A lane's budget: at most max_concurrency intents at once whose cost_units
// sum to at most max_cost_units. Both ≥ 1.
struct LaneBudget {
  std::int64_t max_concurrency = 1;
  std::int64_t max_cost_units = 1;
};

// The budget the lane `default` gets when PlanInput::lanes does not name it
// and PlanInput::default_lane is true. Any other lane without a budget is a
// configuration error: its intents wait with reason no_budget.
inline constexpr std::string_view kPlanDefaultLane = "default";
inline constexpr LaneBudget kDefaultLaneBudget{16, 16};
// Budgets for the estimated completion times (continuum's alpha gate): the
// first admitted intent done within 10 s, all of them within 30 s. 0 in the
// input means these defaults.
inline constexpr std::int64_t kDefaultFirstResponseBudgetMs = 10'000;
inline constexpr std::int64_t kDefaultAllResponsesBudgetMs = 30'000;
// Duration assumed for an intent with no estimate for its (kind, lane) and
// no default for its lane.
inline constexpr std::int64_t kDefaultDurationMs = 1'000;

// Bounds on one planner input; a breach is `too_large` (or `invalid` for
// values out of range), never a crash.
struct PlanLimits {
  std::size_t intents_max = 1'000'000;
  std::size_t lanes_max = 1'024;
  std::size_t hints_max = 10'000;
  std::size_t requires_per_intent_max = 64;
  std::size_t hints_per_intent_max = 64;
  std::int64_t cost_units_max = 1'000'000;
  std::int64_t concurrency_max = 1'000'000;
  std::int64_t duration_ms_max = 7 * 24 * 3'600'000LL;  // one estimate: a week
  std::int64_t ttl_ms_max = 365 * 24 * 3'600'000LL;     // `kind:K@…` readiness TTL: a year
};

enum class PlanHintType : std::uint8_t { kDeny, kCap, kDefer, kPriority, kRequire };
std::string_view plan_hint_type_name(PlanHintType t);

// A live hint, already matched to intents by the caller (an intent lists the
// ids of the hints whose selector matches it).
struct PlanHint {
  std::string id;
  PlanHintType type = PlanHintType::kDeny;
  std::int64_t n = 0;      // cap: at most n matching intents claimed at once (≥ 0)
  std::int64_t delta = 0;  // priority: added to the intent's priority
  std::int64_t until = 0;  // defer: wall ms
  std::string fact_kind;   // require: the dependency `kind:<fact_kind>`
};

enum class PlanIntentState : std::uint8_t { kOpen, kDeferred, kClaimed };
std::string_view plan_state_name(PlanIntentState s);
std::optional<PlanIntentState> parse_plan_state(std::string_view name);

struct PlanIntent {
  std::string id;
  std::string kind;
  std::string lane = std::string(kPlanDefaultLane);
  std::string provider;  // optional: budget key "lane/provider" when configured
  std::int64_t cost_units = 1;
  std::int64_t priority = 0;
  std::uint64_t created_seq = 0;       // larger = newer
  std::int64_t created_at = 0;         // wall ms
  std::vector<std::string> requires_;  // dependency keys (see DependencyKey)
  std::string identity;                // optional coalescing key
  std::int64_t stale_after_ms = 0;     // 0 = never stale
  PlanIntentState state = PlanIntentState::kOpen;
  std::int64_t not_before = 0;     // backoff after a failure (wall ms; 0 = none)
  std::int64_t claimed_at = 0;     // claimed: when (0 = unknown: a full duration remains)
  std::vector<std::string> hints;  // ids of live hints that match this intent
};

// What the planner needs to know about facts.
class PlanFacts {
 public:
  virtual ~PlanFacts() = default;
  virtual bool has_fact(std::string_view id) const = 0;
  // recorded_at of the newest fact of `kind`, or nullopt when there is none.
  virtual std::optional<std::int64_t> newest_of_kind(std::string_view kind) const = 0;
};

// PlanFacts over two maps (tests, the JSON form of an input).
class MapFacts final : public PlanFacts {
 public:
  void add_id(std::string id) { ids_.insert(std::move(id)); }
  // Records a fact of `kind` at `recorded_at`; only the newest time is kept.
  void add_kind(std::string_view kind, std::int64_t recorded_at);
  void add(std::string id, std::string_view kind, std::int64_t recorded_at) {
    add_id(std::move(id));
    add_kind(kind, recorded_at);
  }
  bool has_fact(std::string_view id) const override { return ids_.find(id) != ids_.end(); }
  std::optional<std::int64_t> newest_of_kind(std::string_view kind) const override;

 private:
  std::set<std::string, std::less<>> ids_;
  std::map<std::string, std::int64_t, std::less<>> kinds_;
};

// A parsed dependency key: a fact id, `kind:K` (some fact of kind K exists)
// or `kind:K@<n><unit>` (a fact of kind K recorded less than the TTL ago;
// units ms, s, m, h).
struct DependencyKey {
  enum class Type : std::uint8_t { kFactId, kKind };
  Type type = Type::kFactId;
  std::string name;         // the fact id or the kind
  std::int64_t ttl_ms = 0;  // kKind: 0 = any age
};
Result<DependencyKey> parse_dependency_key(std::string_view key, const PlanLimits& limits = {});
bool dependency_ready(const DependencyKey& k, const PlanFacts& facts, std::int64_t now_ms);

struct PlanInput {
  std::int64_t now_ms = 0;
  // Budgets by "lane" or "lane/provider".
  std::map<std::string, LaneBudget, std::less<>> lanes;
  bool default_lane = true;  // lane `default` gets kDefaultLaneBudget unless `lanes` names it
  std::int64_t first_response_budget_ms = 0;  // 0 = kDefaultFirstResponseBudgetMs
  std::int64_t all_responses_budget_ms = 0;   // 0 = kDefaultAllResponsesBudgetMs
  // Durations: estimates[(kind, lane)] (e.g. a warm SRTT), else
  // lane_duration_ms[budget key], else lane_duration_ms[lane], else
  // default_duration_ms (0 = kDefaultDurationMs).
  std::map<std::pair<std::string, std::string>, std::int64_t> estimates;
  std::map<std::string, std::int64_t, std::less<>> lane_duration_ms;
  std::int64_t default_duration_ms = 0;
  std::vector<PlanHint> hints;
  std::vector<PlanIntent> intents;  // open, deferred and claimed; any order
};

enum class PlanReason : std::uint8_t {
  kAdmitted,
  kMissingDependency,
  kLaneFull,
  kNoBudget,
  kDeniedByHint,
  kCappedByHint,
  kBackoffUntil,
  kCoalescedInto,
  kStale,
};
std::string_view plan_reason_name(PlanReason r);

struct PlanDecision {
  std::string id;
  std::string lane;
  std::string budget_key;     // "lane/provider" or "lane"
  std::int64_t priority = 0;  // effective: with priority hints
  PlanReason reason = PlanReason::kAdmitted;
  // The reason's argument: missing_dependency → the key, lane_full and
  // no_budget → the budget key, denied_by_hint and capped_by_hint → the hint
  // id, coalesced_into → the winner's id; empty otherwise.
  std::string arg;
  std::int64_t until = 0;  // backoff_until: wall ms
  std::string hint;        // backoff_until / missing_dependency: the hint that caused it, if any
  // Admitted and lane_full intents: the wave and the estimate (relative to
  // now_ms). wave < 0: none.
  std::int64_t wave = -1;
  std::int64_t duration_ms = 0;
  std::int64_t start_in_ms = 0;
  std::int64_t done_in_ms = 0;

  // "missing_dependency(kind:K)", "admitted", ...
  std::string text() const;
};

struct PlanLaneUsage {
  std::string key;  // budget key
  bool configured = false;
  LaneBudget budget;         // zero when not configured
  std::int64_t running = 0;  // claimed intents
  std::int64_t running_cost = 0;
  std::int64_t admitted = 0;
  std::int64_t admitted_cost = 0;
  std::int64_t queued = 0;   // lane_full
  std::int64_t waiting = 0;  // any other reason
  std::int64_t waves = 0;
  std::int64_t done_in_ms = 0;  // the last waved intent's estimated completion
};

struct PlanEstimates {
  bool any = false;  // false: nothing admitted or queued
  std::int64_t first_done_in_ms = 0;
  std::int64_t all_done_in_ms = 0;
  std::int64_t first_response_budget_ms = kDefaultFirstResponseBudgetMs;
  std::int64_t all_responses_budget_ms = kDefaultAllResponsesBudgetMs;
  bool meets_first_response_budget = true;
  bool meets_all_responses_budget = true;
};

struct Plan {
  std::int64_t now_ms = 0;
  std::vector<PlanDecision> decisions;  // every open/deferred intent, in plan order
  std::vector<std::string> admitted;    // in admission order
  std::vector<PlanLaneUsage> lanes;     // by budget key
  PlanEstimates estimates;
  // The earliest future time at which a reason may change by time alone (a
  // backoff or defer ends, an intent becomes stale, a readiness TTL runs
  // out for an admitted intent); 0 = none.
  std::int64_t wake_at = 0;

  const PlanDecision* find(std::string_view id) const;
};

// Validates `in` and plans. Errors: invalid (reason "invalid_plan_input",
// details.field / details.id) or too_large (a PlanLimits bound).
Result<Plan> compute_plan(const PlanInput& in, const PlanFacts& facts,
                          const PlanLimits& limits = {});

// The plan as JSON (docs/planner.md), and its RFC 8785 canonical bytes.
Json plan_to_json(const Plan& p);
std::string plan_to_jcs(const Plan& p);

// The JSON form of an input (docs/planner.md), for tests, tools and
// `cairn plan --input`. Unknown members are rejected.
struct ParsedPlanInput {
  PlanInput input;
  MapFacts facts;
};
Result<ParsedPlanInput> plan_input_from_json(const Json& v, const PlanLimits& limits = {});

}  // namespace cairn

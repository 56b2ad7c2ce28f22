// plan.cc — the admission planner (see plan.h and docs/planner.md).
#include "plan/plan.h"

#include <algorithm>
#include <unordered_map>

#include "model/assert.h"

namespace cairn {

namespace {

Status bad_input(std::string message, std::string_view field, std::string_view id = {}) {
  Json details = Json::object();
  details.set("field", field);
  if (!id.empty()) details.set("id", id);
  return invalid(std::move(message), "invalid_plan_input", std::move(details));
}

Status over_limit(std::string message, std::string_view field, std::size_t max) {
  Json details = Json::object();
  details.set("field", field);
  details.set("max", static_cast<std::uint64_t>(max));
  return too_large(std::move(message), "too_large", std::move(details));
}

// Plan order: effective priority desc, newest first, id.
struct Ranked {
  std::int64_t priority;
  std::uint64_t created_seq;
  std::string_view id;
  bool operator<(const Ranked& o) const {
    if (priority != o.priority) return priority > o.priority;
    if (created_seq != o.created_seq) return created_seq > o.created_seq;
    return id < o.id;
  }
};

struct Usage {
  bool configured = false;
  LaneBudget budget{0, 0};
  std::int64_t running = 0;
  std::int64_t running_cost = 0;
  std::int64_t admitted = 0;
  std::int64_t admitted_cost = 0;
  std::int64_t queued = 0;
  std::int64_t waiting = 0;
  // Waves: claimed intents (by id), then admitted and queued in plan order.
  std::vector<const PlanIntent*> claimed;
  std::vector<std::size_t> waved;  // indexes into Plan::decisions
  std::int64_t waves = 0;
  std::int64_t done_in_ms = 0;
};

// Budget key and budget for an intent: "lane/provider" when configured, else
// "lane" when configured, else the built-in default lane, else unconfigured
// (the key names the most specific form).
struct BudgetRef {
  std::string key;
  const LaneBudget* budget = nullptr;
};

BudgetRef resolve_budget(const PlanInput& in, const PlanIntent& it) {
  if (!it.provider.empty()) {
    std::string key = it.lane + "/" + it.provider;
    if (auto f = in.lanes.find(key); f != in.lanes.end()) return {std::move(key), &f->second};
  }
  if (auto f = in.lanes.find(it.lane); f != in.lanes.end()) return {it.lane, &f->second};
  if (in.default_lane && it.lane == kPlanDefaultLane) return {it.lane, &kDefaultLaneBudget};
  return {it.provider.empty() ? it.lane : it.lane + "/" + it.provider, nullptr};
}

std::int64_t duration_for(const PlanInput& in, const PlanIntent& it, std::string_view budget_key) {
  if (auto f = in.estimates.find({it.kind, it.lane}); f != in.estimates.end()) return f->second;
  if (auto f = in.lane_duration_ms.find(budget_key); f != in.lane_duration_ms.end()) {
    return f->second;
  }
  if (auto f = in.lane_duration_ms.find(it.lane); f != in.lane_duration_ms.end()) return f->second;
  return in.default_duration_ms > 0 ? in.default_duration_ms : kDefaultDurationMs;
}

Status validate(const PlanInput& in, const PlanLimits& limits) {
  if (in.now_ms < 0) return bad_input("now_ms must be >= 0", "now_ms");
  if (in.intents.size() > limits.intents_max) {
    return over_limit("too many intents", "intents", limits.intents_max);
  }
  if (in.lanes.size() > limits.lanes_max)
    return over_limit("too many lanes", "lanes", limits.lanes_max);
  if (in.hints.size() > limits.hints_max)
    return over_limit("too many hints", "hints", limits.hints_max);
  for (const auto& [key, b] : in.lanes) {
    if (key.empty()) return bad_input("a lane key is empty", "lanes");
    if (b.max_concurrency < 1 || b.max_concurrency > limits.concurrency_max) {
      return bad_input("max_concurrency must be in 1.." + std::to_string(limits.concurrency_max),
                       "max_concurrency", key);
    }
    if (b.max_cost_units < 1 || b.max_cost_units > limits.cost_units_max * limits.concurrency_max) {
      return bad_input("max_cost_units must be >= 1", "max_cost_units", key);
    }
  }
  if (in.first_response_budget_ms < 0) {
    return bad_input("must be >= 0", "first_response_budget_ms");
  }
  if (in.all_responses_budget_ms < 0) return bad_input("must be >= 0", "all_responses_budget_ms");
  auto check_duration = [&](std::int64_t ms, std::string_view field) -> Status {
    if (ms < 0 || ms > limits.duration_ms_max) {
      return bad_input("durations must be in 0.." + std::to_string(limits.duration_ms_max), field);
    }
    return Status();
  };
  CAIRN_RETURN_IF_ERROR(check_duration(in.default_duration_ms, "default_duration_ms"));
  for (const auto& [k, ms] : in.estimates) {
    CAIRN_RETURN_IF_ERROR(check_duration(ms, "estimates"));
  }
  for (const auto& [k, ms] : in.lane_duration_ms) {
    CAIRN_RETURN_IF_ERROR(check_duration(ms, "lane_duration_ms"));
  }
  std::set<std::string_view> hint_ids;
  for (const PlanHint& h : in.hints) {
    if (h.id.empty()) return bad_input("a hint id is empty", "hints");
    if (!hint_ids.insert(h.id).second) return bad_input("duplicate hint id", "hints", h.id);
    if (h.type == PlanHintType::kCap && h.n < 0) return bad_input("cap n must be >= 0", "n", h.id);
    if (h.type == PlanHintType::kRequire && h.fact_kind.empty()) {
      return bad_input("require needs fact_kind", "fact_kind", h.id);
    }
  }
  std::set<std::string_view> ids;
  for (const PlanIntent& it : in.intents) {
    if (it.id.empty()) return bad_input("an intent id is empty", "id");
    if (!ids.insert(it.id).second) return bad_input("duplicate intent id", "id", it.id);
    if (it.lane.empty()) return bad_input("lane is empty", "lane", it.id);
    if (it.cost_units < 1 || it.cost_units > limits.cost_units_max) {
      return bad_input("cost_units must be in 1.." + std::to_string(limits.cost_units_max),
                       "cost_units", it.id);
    }
    if (it.stale_after_ms < 0) return bad_input("must be >= 0", "stale_after_ms", it.id);
    if (it.not_before < 0) return bad_input("must be >= 0", "not_before", it.id);
    if (it.created_at < 0) return bad_input("must be >= 0", "created_at", it.id);
    if (it.claimed_at < 0) return bad_input("must be >= 0", "claimed_at", it.id);
    if (it.requires_.size() > limits.requires_per_intent_max) {
      return over_limit("too many dependency keys", "requires", limits.requires_per_intent_max);
    }
    for (const std::string& key : it.requires_) {
      auto k = parse_dependency_key(key, limits);
      if (!k.ok()) return bad_input(k.status().message(), "requires", it.id);
    }
    if (it.hints.size() > limits.hints_per_intent_max) {
      return over_limit("too many hints on one intent", "hints", limits.hints_per_intent_max);
    }
    for (const std::string& h : it.hints) {
      if (hint_ids.find(h) == hint_ids.end()) {
        return bad_input("unknown hint id " + h, "hints", it.id);
      }
    }
  }
  return Status();
}

void lower_wake(std::int64_t& wake, std::int64_t t, std::int64_t now) {
  if (t > now && (wake == 0 || t < wake)) wake = t;
}

}  // namespace

std::string_view plan_hint_type_name(PlanHintType t) {
  switch (t) {
    case PlanHintType::kDeny:
      return "deny";
    case PlanHintType::kCap:
      return "cap";
    case PlanHintType::kDefer:
      return "defer";
    case PlanHintType::kPriority:
      return "priority";
    case PlanHintType::kRequire:
      return "require";
  }
  return "?";
}

std::string_view plan_state_name(PlanIntentState s) {
  switch (s) {
    case PlanIntentState::kOpen:
      return "open";
    case PlanIntentState::kDeferred:
      return "deferred";
    case PlanIntentState::kClaimed:
      return "claimed";
  }
  return "?";
}

std::optional<PlanIntentState> parse_plan_state(std::string_view name) {
  if (name == "open") return PlanIntentState::kOpen;
  if (name == "deferred") return PlanIntentState::kDeferred;
  if (name == "claimed") return PlanIntentState::kClaimed;
  return std::nullopt;
}

std::string_view plan_reason_name(PlanReason r) {
  switch (r) {
    case PlanReason::kAdmitted:
      return "admitted";
    case PlanReason::kMissingDependency:
      return "missing_dependency";
    case PlanReason::kLaneFull:
      return "lane_full";
    case PlanReason::kNoBudget:
      return "no_budget";
    case PlanReason::kDeniedByHint:
      return "denied_by_hint";
    case PlanReason::kCappedByHint:
      return "capped_by_hint";
    case PlanReason::kBackoffUntil:
      return "backoff_until";
    case PlanReason::kCoalescedInto:
      return "coalesced_into";
    case PlanReason::kStale:
      return "stale";
  }
  return "?";
}

std::string PlanDecision::text() const {
  std::string out(plan_reason_name(reason));
  if (reason == PlanReason::kBackoffUntil) {
    out += "(" + std::to_string(until) + ")";
  } else if (!arg.empty()) {
    out += "(" + arg + ")";
  }
  return out;
}

const PlanDecision* Plan::find(std::string_view id) const {
  for (const PlanDecision& d : decisions) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

void MapFacts::add_kind(std::string_view kind, std::int64_t recorded_at) {
  auto f = kinds_.find(kind);
  if (f == kinds_.end()) {
    kinds_.emplace(std::string(kind), recorded_at);
  } else if (recorded_at > f->second) {
    f->second = recorded_at;
  }
}

std::optional<std::int64_t> MapFacts::newest_of_kind(std::string_view kind) const {
  auto f = kinds_.find(kind);
  if (f == kinds_.end()) return std::nullopt;
  return f->second;
}

Result<DependencyKey> parse_dependency_key(std::string_view key, const PlanLimits& limits) {
  if (key.empty()) return invalid("empty dependency key", "invalid_dependency_key");
  constexpr std::string_view kKindPrefix = "kind:";
  if (key.substr(0, kKindPrefix.size()) != kKindPrefix) {
    return DependencyKey{DependencyKey::Type::kFactId, std::string(key), 0};
  }
  std::string_view rest = key.substr(kKindPrefix.size());
  std::size_t at = rest.find('@');
  std::string_view kind = rest.substr(0, at);
  if (kind.empty()) {
    return invalid("dependency key " + std::string(key) + " names no kind",
                   "invalid_dependency_key");
  }
  DependencyKey out{DependencyKey::Type::kKind, std::string(kind), 0};
  if (at == std::string_view::npos) return out;
  std::string_view ttl = rest.substr(at + 1);
  std::size_t digits = 0;
  std::int64_t n = 0;
  while (digits < ttl.size() && ttl[digits] >= '0' && ttl[digits] <= '9') {
    if (n > limits.ttl_ms_max) break;
    n = n * 10 + (ttl[digits] - '0');
    ++digits;
  }
  std::string_view unit = ttl.substr(digits);
  std::int64_t scale = 0;
  if (unit == "ms") scale = 1;
  if (unit == "s") scale = 1'000;
  if (unit == "m") scale = 60'000;
  if (unit == "h") scale = 3'600'000;
  if (digits == 0 || scale == 0 || n <= 0 || n > limits.ttl_ms_max / scale) {
    return invalid("dependency key " + std::string(key) +
                       ": the readiness TTL must be a positive number with a unit ms, s, m or h "
                       "(at most " +
                       std::to_string(limits.ttl_ms_max) + " ms)",
                   "invalid_dependency_key");
  }
  out.ttl_ms = n * scale;
  return out;
}

bool dependency_ready(const DependencyKey& k, const PlanFacts& facts, std::int64_t now_ms) {
  if (k.type == DependencyKey::Type::kFactId) return facts.has_fact(k.name);
  std::optional<std::int64_t> at = facts.newest_of_kind(k.name);
  if (!at) return false;
  return k.ttl_ms == 0 || now_ms - *at < k.ttl_ms;
}

Result<Plan> compute_plan(const PlanInput& in, const PlanFacts& facts, const PlanLimits& limits) {
  CAIRN_RETURN_IF_ERROR(validate(in, limits));
  const std::int64_t now = in.now_ms;

  std::unordered_map<std::string_view, const PlanHint*> hints;
  hints.reserve(in.hints.size());
  for (const PlanHint& h : in.hints) hints.emplace(h.id, &h);

  // Budget keys: every configured lane (and the built-in default lane) shows
  // in the usage table, used or not.
  std::map<std::string, Usage, std::less<>> usage;
  for (const auto& [key, b] : in.lanes) {
    Usage& u = usage[key];
    u.configured = true;
    u.budget = b;
  }
  if (in.default_lane && usage.find(kPlanDefaultLane) == usage.end()) {
    Usage& u = usage[std::string(kPlanDefaultLane)];
    u.configured = true;
    u.budget = kDefaultLaneBudget;
  }

  // Per intent: budget, effective priority, sorted hint references.
  struct Work {
    const PlanIntent* it;
    std::string budget_key;
    const LaneBudget* budget;
    std::int64_t priority;
    std::vector<const PlanHint*> hints;  // by id
  };
  std::vector<Work> work;
  work.reserve(in.intents.size());
  std::unordered_map<std::string_view, std::int64_t> cap_used;  // cap hint id → claimed + admitted
  for (const PlanIntent& it : in.intents) {
    BudgetRef b = resolve_budget(in, it);
    Work w{&it, std::move(b.key), b.budget, it.priority, {}};
    w.hints.reserve(it.hints.size());
    for (const std::string& id : it.hints) w.hints.push_back(hints.at(id));
    std::sort(w.hints.begin(), w.hints.end(),
              [](const PlanHint* a, const PlanHint* b) { return a->id < b->id; });
    w.hints.erase(std::unique(w.hints.begin(), w.hints.end()), w.hints.end());
    for (const PlanHint* h : w.hints) {
      if (h->type == PlanHintType::kPriority) w.priority += h->delta;
    }
    Usage& u = usage[w.budget_key];
    if (it.state == PlanIntentState::kClaimed) {
      u.running += 1;
      u.running_cost += it.cost_units;
      u.claimed.push_back(&it);
      for (const PlanHint* h : w.hints) {
        if (h->type == PlanHintType::kCap) cap_used[h->id] += 1;
      }
      continue;
    }
    work.push_back(std::move(w));
  }
  std::sort(work.begin(), work.end(), [](const Work& a, const Work& b) {
    return Ranked{a.priority, a.it->created_seq, a.it->id} <
           Ranked{b.priority, b.it->created_seq, b.it->id};
  });

  Plan plan;
  plan.now_ms = now;
  plan.decisions.resize(work.size());
  std::int64_t wake = 0;

  // 1-2. Stale, then coalescing: in plan order the first intent of each
  // (lane, identity) wins.
  std::map<std::pair<std::string_view, std::string_view>, std::string_view> winners;
  // Whether the intent reached the admission loop.
  std::vector<bool> candidate(work.size(), false);
  for (std::size_t i = 0; i < work.size(); ++i) {
    const Work& w = work[i];
    const PlanIntent& it = *w.it;
    PlanDecision& d = plan.decisions[i];
    d.id = it.id;
    d.lane = it.lane;
    d.budget_key = w.budget_key;
    d.priority = w.priority;
    if (it.stale_after_ms > 0 && now - it.created_at >= it.stale_after_ms) {
      d.reason = PlanReason::kStale;
      continue;
    }
    if (it.stale_after_ms > 0) lower_wake(wake, it.created_at + it.stale_after_ms, now);
    if (!it.identity.empty()) {
      auto [pos, fresh] = winners.try_emplace({it.lane, it.identity}, it.id);
      if (!fresh) {
        d.reason = PlanReason::kCoalescedInto;
        d.arg = std::string(pos->second);
        continue;
      }
    }
    // 3. Dependencies: the intent's own keys in order, then require hints.
    bool missing = false;
    for (const std::string& key : it.requires_) {
      auto k = parse_dependency_key(key, limits);
      CAIRN_ASSERT(k.ok());  // validated
      if (!dependency_ready(*k, facts, now)) {
        d.reason = PlanReason::kMissingDependency;
        d.arg = key;
        missing = true;
        break;
      }
    }
    if (missing) continue;
    for (const PlanHint* h : w.hints) {
      if (h->type != PlanHintType::kRequire) continue;
      if (!facts.newest_of_kind(h->fact_kind)) {
        d.reason = PlanReason::kMissingDependency;
        d.arg = "kind:" + h->fact_kind;
        d.hint = h->id;
        missing = true;
        break;
      }
    }
    if (missing) continue;
    // 4. A lane without a budget, or an intent larger than its lane.
    if (w.budget == nullptr || it.cost_units > w.budget->max_cost_units) {
      d.reason = PlanReason::kNoBudget;
      d.arg = w.budget_key;
      continue;
    }
    // 5. Deny hints.
    const PlanHint* deny = nullptr;
    for (const PlanHint* h : w.hints) {
      if (h->type == PlanHintType::kDeny) {
        deny = h;
        break;
      }
    }
    if (deny != nullptr) {
      d.reason = PlanReason::kDeniedByHint;
      d.arg = deny->id;
      continue;
    }
    // 6. Backoff after a failure, or a defer hint.
    std::int64_t until = it.not_before;
    const PlanHint* defer = nullptr;
    for (const PlanHint* h : w.hints) {
      if (h->type == PlanHintType::kDefer && h->until > until) {
        until = h->until;
        defer = h;
      }
    }
    if (until > now) {
      d.reason = PlanReason::kBackoffUntil;
      d.until = until;
      if (defer != nullptr) d.hint = defer->id;
      lower_wake(wake, until, now);
      continue;
    }
    candidate[i] = true;
  }

  // 7-9. Admission in plan order.
  for (std::size_t i = 0; i < work.size(); ++i) {
    if (!candidate[i]) continue;
    const Work& w = work[i];
    const PlanIntent& it = *w.it;
    PlanDecision& d = plan.decisions[i];
    Usage& u = usage.find(w.budget_key)->second;
    const PlanHint* capped = nullptr;
    for (const PlanHint* h : w.hints) {
      if (h->type == PlanHintType::kCap && cap_used[h->id] >= h->n) {
        capped = h;
        break;
      }
    }
    if (capped != nullptr) {
      d.reason = PlanReason::kCappedByHint;
      d.arg = capped->id;
      continue;
    }
    if (u.running + u.admitted >= w.budget->max_concurrency ||
        u.running_cost + u.admitted_cost + it.cost_units > w.budget->max_cost_units) {
      d.reason = PlanReason::kLaneFull;
      d.arg = w.budget_key;
      continue;
    }
    d.reason = PlanReason::kAdmitted;
    u.admitted += 1;
    u.admitted_cost += it.cost_units;
    for (const PlanHint* h : w.hints) {
      if (h->type == PlanHintType::kCap) cap_used[h->id] += 1;
    }
    plan.admitted.push_back(it.id);
    // An admitted intent's readiness TTLs run out later: a reason to look again.
    for (const std::string& key : it.requires_) {
      auto k = parse_dependency_key(key, limits);
      if (k.ok() && k->type == DependencyKey::Type::kKind && k->ttl_ms > 0) {
        if (auto at = facts.newest_of_kind(k->name)) lower_wake(wake, *at + k->ttl_ms, now);
      }
    }
  }
  plan.wake_at = wake;

  // Per budget: counts, then waves over admitted and queued (lane_full)
  // intents.
  for (std::size_t i = 0; i < work.size(); ++i) {
    const PlanDecision& d = plan.decisions[i];
    Usage& u = usage.find(d.budget_key)->second;
    if (d.reason == PlanReason::kLaneFull) {
      u.queued += 1;
    } else if (d.reason != PlanReason::kAdmitted) {
      u.waiting += 1;
    }
  }
  for (std::size_t i = 0; i < work.size(); ++i) {
    const PlanDecision& d = plan.decisions[i];
    if (d.reason == PlanReason::kAdmitted) usage.find(d.budget_key)->second.waved.push_back(i);
  }
  for (std::size_t i = 0; i < work.size(); ++i) {
    const PlanDecision& d = plan.decisions[i];
    if (d.reason == PlanReason::kLaneFull) usage.find(d.budget_key)->second.waved.push_back(i);
  }
  PlanEstimates& est = plan.estimates;
  est.first_response_budget_ms =
      in.first_response_budget_ms > 0 ? in.first_response_budget_ms : kDefaultFirstResponseBudgetMs;
  est.all_responses_budget_ms =
      in.all_responses_budget_ms > 0 ? in.all_responses_budget_ms : kDefaultAllResponsesBudgetMs;

  for (auto& [key, u] : usage) {
    if (u.claimed.empty() && u.waved.empty()) continue;
    CAIRN_ASSERT(u.waved.empty() || u.configured);
    // Without a budget only claimed intents can be here: one wave.
    const std::int64_t c =
        u.configured ? u.budget.max_concurrency : std::max<std::int64_t>(1, u.running);
    std::sort(u.claimed.begin(), u.claimed.end(),
              [](const PlanIntent* a, const PlanIntent* b) { return a->id < b->id; });
    std::int64_t wave = -1;
    std::int64_t wave_start = 0;  // relative to now
    std::int64_t wave_end = 0;    // the slowest so far of the current wave
    auto place = [&](std::int64_t position, std::int64_t duration) -> std::int64_t {
      const std::int64_t w = position / c;
      if (w != wave) {
        if (wave >= 0) wave_start = wave_end;
        wave = w;
      }
      wave_end = std::max(wave_end, wave_start + duration);
      return w;
    };
    std::int64_t position = 0;
    for (const PlanIntent* it : u.claimed) {
      std::int64_t duration = duration_for(in, *it, key);
      if (it->claimed_at > 0) duration = std::max<std::int64_t>(0, it->claimed_at + duration - now);
      place(position++, duration);
    }
    bool queue_started = false;
    for (std::size_t i : u.waved) {
      PlanDecision& d = plan.decisions[i];
      if (d.reason == PlanReason::kLaneFull && !queue_started) {
        // Queued intents start with the next wave: the admitted ones fill
        // what capacity (and cost) left of this one.
        position = (position + c - 1) / c * c;
        queue_started = true;
      }
      d.duration_ms = duration_for(in, *work[i].it, key);
      d.wave = place(position++, d.duration_ms);
      d.start_in_ms = wave_start;
      d.done_in_ms = wave_start + d.duration_ms;
      if (!est.any || d.done_in_ms < est.first_done_in_ms) est.first_done_in_ms = d.done_in_ms;
      est.all_done_in_ms = std::max(est.all_done_in_ms, d.done_in_ms);
      est.any = true;
    }
    u.waves = wave + 1;
    u.done_in_ms = wave_end;
  }
  if (est.any) {
    est.meets_first_response_budget = est.first_done_in_ms <= est.first_response_budget_ms;
    est.meets_all_responses_budget = est.all_done_in_ms <= est.all_responses_budget_ms;
  }

  for (auto& [key, u] : usage) {
    PlanLaneUsage l;
    l.key = key;
    l.configured = u.configured;
    l.budget = u.configured ? u.budget : LaneBudget{0, 0};
    l.running = u.running;
    l.running_cost = u.running_cost;
    l.admitted = u.admitted;
    l.admitted_cost = u.admitted_cost;
    l.queued = u.queued;
    l.waiting = u.waiting;
    l.waves = u.waves;
    l.done_in_ms = u.done_in_ms;
    plan.lanes.push_back(std::move(l));
  }
  return plan;
}

}  // namespace cairn

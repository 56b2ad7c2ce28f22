// blackboard.cc — commands, hot-state indexes, group commit and loading.
#include "core/blackboard.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "core/keys.h"
#include "model/json_fields.h"
#include "model/json_parse.h"
#include "model/names.h"

namespace cairn {

namespace {

constexpr int kIdGenerationTries = 8;
constexpr std::size_t kIntentIdBytes = 16;  // 32 hex chars

template <class KV>
std::string_view key_of(const KV& kv) {
  return kv.first;
}

Status unknown_reference(std::string_view field, std::vector<std::string> missing) {
  JsonArray m;
  for (auto& s : missing) m.emplace_back(std::move(s));
  std::string msg =
      std::string(field) + " refers to " + std::to_string(m.size()) + " fact(s) that do not exist";
  return invalid(std::move(msg), "unknown_reference",
                 Json(JsonObject{{"field", Json(field)}, {"missing", Json(std::move(m))}}));
}

std::uint64_t parse_u64(std::string_view s, bool& ok) {
  ok = !s.empty() && s.size() <= 20;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      ok = false;
      return 0;
    }
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// Value of x/fk/... keys: "<fact id> <recorded_at>".
std::string fact_kind_value(std::string_view id, std::int64_t recorded_at) {
  std::string v(id);
  v += ' ';
  v += std::to_string(recorded_at);
  return v;
}

// A random id not yet a key of `map` (empty after kIdGenerationTries
// collisions, which only a broken Rng produces).
template <class Map>
std::string fresh_id(const Map& map, Rng& rng) {
  for (int i = 0; i < kIdGenerationTries; ++i) {
    std::string id = rng.hex(kIntentIdBytes);
    if (map.find(id) == map.end()) return id;
  }
  return {};
}

}  // namespace

Blackboard::Blackboard(const Clock& clock, Rng& rng, CoreConfig config)
    : clock_(clock), rng_(rng), config_(std::move(config)) {
  clear_state();
}

// ---- helpers -----------------------------------------------------------------

void Blackboard::begin_command() {
  CAIRN_ASSERT_MSG(!drained_, "a command ran while a drained batch awaits accept/rollback");
}

std::uint64_t Blackboard::append_event(std::string_view type, std::string_view subject, Json data) {
  Event e;
  e.seq = ++last_seq_;
  e.type = std::string(type);
  e.subject = std::string(subject);
  e.data = std::move(data);
  e.at = now();
  outbox_.push_back(std::move(e));
  return last_seq_;
}

Status Blackboard::check_facts_exist(std::string_view field,
                                     const std::vector<std::string>& ids) const {
  std::vector<std::string> missing;
  for (const auto& id : ids) {
    if (facts_.find(id) == facts_.end()) missing.push_back(id);
  }
  if (!missing.empty()) return unknown_reference(field, std::move(missing));
  return Status();
}

Result<Intent*> Blackboard::find_intent(std::string_view id) {
  auto it = intents_.find(id);
  if (it == intents_.end()) {
    return not_found("no intent " + std::string(id), "not_found",
                     Json(JsonObject{{"intent", Json(id)}}));
  }
  return &it->second;
}

const Intent* Blackboard::intent(std::string_view id) const {
  auto it = intents_.find(id);
  return it == intents_.end() ? nullptr : &it->second;
}

const Hint* Blackboard::hint(std::string_view id) const {
  auto it = hints_.find(id);
  return it == hints_.end() ? nullptr : &it->second;
}

std::optional<std::uint64_t> Blackboard::fact_seq(std::string_view id) const {
  auto it = facts_.find(id);
  if (it == facts_.end()) return std::nullopt;
  return it->second.seq;
}

bool Blackboard::any_fact_of_kind(std::string_view kind) const {
  auto it = fact_kinds_.find(kind);
  return it != fact_kinds_.end() && it->second.count > 0;
}

std::size_t Blackboard::held_by(std::string_view agent) const {
  auto it = held_.find(agent);
  return it == held_.end() ? 0 : it->second;
}

// ---- intent indexes ------------------------------------------------------------

void Blackboard::durable_index_keys(const IntentDef& d, const IntentStatus& s,
                                    std::vector<std::string>& out) {
  out.clear();
  out.push_back(keys::intent_by_state(s.state, d.id));
  if (s.state == IntentState::kOpen) {
    out.push_back(keys::open_intent(d.lane, d.priority, d.created_seq, d.id));
  } else if (s.state == IntentState::kClaimed) {
    out.push_back(keys::lease(s.lease_expires_at, d.id));
  }
}

namespace {

std::string identity_key(const IntentDef& d) {
  return d.lane + '\n' + d.identity;
}

bool waiting_state(IntentState s) {
  return s == IntentState::kOpen || s == IntentState::kDeferred;
}

}  // namespace

Blackboard::LaneState& Blackboard::lane_state(const IntentDef& d) {
  const std::string key = budget_key(d);
  auto it = budgets_.find(key);
  if (it == budgets_.end()) {
    LaneState ls;
    if (!config_.admission.budgets) {  // budgets off: every lane is unlimited
      ls.configured = true;
      ls.budget = LaneBudget{std::numeric_limits<std::int64_t>::max(),
                             std::numeric_limits<std::int64_t>::max()};
    }
    it = budgets_.emplace(key, std::move(ls)).first;
  }
  return it->second;
}

void Blackboard::refresh_cap(HintMap::iterator h) {
  const Hint& hint = h->second;
  if (hint.d.effect.type != HintEffectType::kCap || hint.revoked || hint.ended_at != 0) {
    cap_held_.erase(h->first);
    return;
  }
  std::int64_t n = 0;
  for (const auto& [end, id] : leases_) {
    (void)end;
    if (hint.d.selector.matches(intents_.find(id)->second.def)) ++n;
  }
  cap_held_[h->first] = n;
}

void Blackboard::ungate_all() {
  if (gated_count_ == 0) return;
  for (auto& [key, ls] : budgets_) {
    (void)key;
    ls.open.merge(ls.gated);
    CAIRN_ASSERT(ls.gated.empty());
  }
  gated_count_ = 0;
  gated_until_ = 0;
}

void Blackboard::index_memory(const Intent& in) {
  auto it = intents_.find(in.def.id);
  CAIRN_ASSERT(it != intents_.end() && &it->second == &in);
  const std::string_view id = key_of(*it);
  const IntentStatus& s = in.st;
  ++by_state_[static_cast<int>(s.state)];
  auto lane = by_lane_.find(in.def.lane);
  if (lane == by_lane_.end()) lane = by_lane_.emplace(in.def.lane, LaneCounts{}).first;
  ++lane->second[static_cast<int>(s.state)];
  if (waiting_state(s.state)) {
    if (in.def.stale_after_ms > 0) stales_.emplace(in.def.created_at + in.def.stale_after_ms, id);
    if (!in.def.identity.empty()) by_identity_[identity_key(in.def)].insert(id);
  }
  switch (s.state) {
    case IntentState::kOpen:
      CAIRN_ASSERT(lane_state(in.def)
                       .open.insert(OpenEntry{in.def.priority, in.def.created_seq, id})
                       .second);
      if (s.not_before > 0) backoffs_.emplace(s.not_before, id);
      if (const std::int64_t t = readiness_ends(in.def); t > 0) {
        lapses_.emplace(t, id);
        lapse_at_[id] = t;
      }
      break;
    case IntentState::kDeferred:
      if (auto key = first_missing_dependency(in.def, now())) {
        CAIRN_ASSERT(waiters_.wait(id, *key).ok());  // keys are validated at creation
      } else {
        ready_pending_.insert(id);
      }
      break;
    case IntentState::kClaimed: {
      CAIRN_ASSERT(leases_.emplace(s.lease_expires_at, id).second);
      if (auto h = held_.find(s.holder); h != held_.end()) {
        ++h->second;
      } else {
        held_.emplace(s.holder, 1);
      }
      LaneState& ls = lane_state(in.def);
      ls.running += 1;
      ls.running_cost += in.def.cost_units;
      for (auto& [hid, n] : cap_held_) {
        if (hints_.find(hid)->second.d.selector.matches(in.def)) ++n;
      }
      break;
    }
    default:
      break;
  }
}

void Blackboard::unindex_memory(const Intent& in) {
  auto it = intents_.find(in.def.id);
  CAIRN_ASSERT(it != intents_.end());
  const std::string_view id = key_of(*it);
  const IntentStatus& s = in.st;
  CAIRN_ASSERT(by_state_[static_cast<int>(s.state)] > 0);
  --by_state_[static_cast<int>(s.state)];
  auto lane = by_lane_.find(in.def.lane);
  CAIRN_ASSERT(lane != by_lane_.end() && lane->second[static_cast<int>(s.state)] > 0);
  --lane->second[static_cast<int>(s.state)];
  // Dropped when empty, so the table is bounded by the lanes in use.
  if (std::all_of(lane->second.begin(), lane->second.end(), [](std::size_t n) { return n == 0; })) {
    by_lane_.erase(lane);
  }
  if (waiting_state(s.state)) {
    if (in.def.stale_after_ms > 0) {
      stales_.erase(TimeEntry{in.def.created_at + in.def.stale_after_ms, id});
    }
    if (!in.def.identity.empty()) {
      auto g = by_identity_.find(identity_key(in.def));
      CAIRN_ASSERT(g != by_identity_.end());
      g->second.erase(id);
      if (g->second.empty()) by_identity_.erase(g);
    }
  }
  // The budget an open or claimed intent is charged to (one lookup), and its
  // removal once unused: keys without a configured budget are kept only while in use.
  auto budget = [this, &in] {
    auto b = budgets_.find(budget_key(in.def));
    CAIRN_ASSERT(b != budgets_.end());
    return b;
  };
  auto drop_if_unused = [this](std::map<std::string, LaneState, std::less<>>::iterator b) {
    const bool keep = (b->second.configured && config_.admission.budgets) ||
                      b->second.running > 0 || !b->second.open.empty() || !b->second.gated.empty();
    if (!keep) budgets_.erase(b);
  };
  switch (s.state) {
    case IntentState::kOpen: {
      const auto b = budget();
      LaneState& ls = b->second;
      const OpenEntry e{in.def.priority, in.def.created_seq, id};
      if (ls.open.erase(e) == 0) {
        CAIRN_ASSERT(ls.gated.erase(e) == 1);
        --gated_count_;
      }
      if (s.not_before > 0) backoffs_.erase(TimeEntry{s.not_before, id});
      if (auto l = lapse_at_.find(id); l != lapse_at_.end()) {
        lapses_.erase(TimeEntry{l->second, id});
        lapse_at_.erase(l);
      }
      drop_if_unused(b);
      break;
    }
    case IntentState::kDeferred:
      waiters_.forget(id);
      ready_pending_.erase(id);
      break;
    case IntentState::kClaimed: {
      CAIRN_ASSERT(leases_.erase(TimeEntry{s.lease_expires_at, id}) == 1);
      auto h = held_.find(s.holder);
      CAIRN_ASSERT(h != held_.end() && h->second > 0);
      if (--h->second == 0) held_.erase(h);
      for (auto& [hid, n] : cap_held_) {
        if (hints_.find(hid)->second.d.selector.matches(in.def)) --n;
      }
      const auto b = budget();
      LaneState& ls = b->second;
      CAIRN_ASSERT(ls.running > 0 && ls.running_cost >= in.def.cost_units);
      ls.running -= 1;
      ls.running_cost -= in.def.cost_units;
      drop_if_unused(b);
      break;
    }
    default:
      break;
  }
}

void Blackboard::set_status(Intent& in, const IntentStatus& next) {
  unindex_memory(in);
  in.st = next;
  index_memory(in);
}

void Blackboard::apply(Intent& in, const lifecycle::Decision& d, Json event_data) {
  CAIRN_ASSERT(!d.no_op && d.row != nullptr);
  CAIRN_ASSERT(d.row->from == in.st.state && d.row->to == d.next.state);
  // in.def is immutable for the life of the entry, so its id may be viewed.
  undo_.push_back(Undo{Undo::Kind::kStatus, in.def.id, in.st, std::nullopt, {}, std::nullopt});
  set_status(in, d.next);
  append_event(d.row->event, in.def.id, std::move(event_data));
}

// ---- facts ------------------------------------------------------------------------

void Blackboard::record_fact(const FactBody& body, CanonicalFact&& canon) {
  const std::int64_t at = now();
  const std::uint64_t seq =
      append_event(ev::kFactRecorded, canon.id,
                   Json(JsonObject{{"kind", Json(body.kind)}, {"creator", Json(body.creator)}}));
  std::optional<KindInfo> before;
  auto kit = fact_kinds_.find(body.kind);
  if (kit != fact_kinds_.end()) {
    before = kit->second;
  } else {
    kit = fact_kinds_.emplace(body.kind, KindInfo{}).first;
  }
  KindInfo& k = kit->second;
  ++k.count;
  k.latest_seq = seq;
  k.latest_at = at;
  auto fit = facts_.emplace(std::move(canon.id), FactMeta{seq, at}).first;
  new_facts_.push_back(NewFact{fit->first, kit->first, seq, at, std::move(canon.canonical)});
  undo_.push_back(Undo{Undo::Kind::kFactAdded, fit->first, {}, std::nullopt, kit->first, before});
  if (!canary_skip_wake_) wake_waiters(fit->first, kit->first, at, true);
  if (gated_count_ > 0) {
    for (const auto& [hid, h] : hints_) {
      (void)hid;
      if (h.d.effect.type == HintEffectType::kRequire && h.d.effect.fact_kind == body.kind) {
        ungate_all();
        break;
      }
    }
  }
}

void Blackboard::wake_waiters(std::string_view fact_id, std::string_view kind,
                              std::int64_t recorded_at, bool transitions) {
  if (waiters_.size() == 0) return;
  const std::int64_t now_ms = now();
  for (const std::string& id : waiters_.on_fact(fact_id, kind, recorded_at, now_ms)) {
    auto it = intents_.find(id);
    CAIRN_ASSERT(it != intents_.end() && it->second.st.state == IntentState::kDeferred);
    Intent& in = it->second;
    const std::string_view key = it->first;
    if (transitions) woken_.emplace_back(key);
    if (auto next = first_missing_dependency(in.def, now_ms)) {
      CAIRN_ASSERT(waiters_.wait(key, *next).ok());
    } else if (transitions) {
      apply(in, lifecycle::ready(in.st, now_ms), Json(JsonObject{{"fact", Json(fact_id)}}));
    } else {
      ready_pending_.insert(key);
    }
  }
}

Result<PostFactReply> Blackboard::post_fact(FactBody body) {
  begin_command();
  CAIRN_ASSIGN_OR_RETURN(CanonicalFact canon, canonicalize_fact(body, config_.limits));
  if (auto it = facts_.find(canon.id); it != facts_.end()) {
    return PostFactReply{canon.id, it->second.seq, it->second.recorded_at, false};
  }
  CAIRN_RETURN_IF_ERROR(check_facts_exist("derived_from", body.derived_from));
  PostFactReply reply{canon.id, 0, 0, true};
  record_fact(body, std::move(canon));
  const FactMeta& m = facts_.find(reply.id)->second;
  reply.seq = m.seq;
  reply.recorded_at = m.recorded_at;
  return reply;
}

// ---- intents ------------------------------------------------------------------------

Result<CreateIntentReply> Blackboard::create_intent(IntentDraft draft) {
  begin_command();
  CAIRN_RETURN_IF_ERROR(normalize_intent_draft(draft, config_.limits));
  for (const std::string& key : draft.requires_) {
    if (Result<DependencyKey> k = parse_dependency_key(key); !k.ok()) {
      return invalid("requires: " + k.status().message(), "invalid_field",
                     Json(JsonObject{{"field", Json("requires")}, {"key", Json(key)}}));
    }
  }
  CAIRN_RETURN_IF_ERROR(check_facts_exist("from_facts", draft.from_facts));
  if (!draft.id.empty()) {
    if (const Intent* existing = intent(draft.id)) {
      const IntentDef& e = existing->def;
      const bool same =
          e.kind == draft.kind && e.spec == draft.spec && e.from_facts == draft.from_facts &&
          e.lane == draft.lane && e.provider == draft.provider &&
          e.cost_units == draft.cost_units && e.priority == draft.priority &&
          e.identity == draft.identity && e.requires_ == draft.requires_ &&
          e.stale_after_ms == draft.stale_after_ms && e.lease_ttl_ms == draft.lease_ttl_ms &&
          e.max_attempts == draft.max_attempts && e.creator == draft.creator;
      if (same)
        return CreateIntentReply{e.id, existing->st.state, false, existing->st.coalesced_into};
      return conflict("an intent with id " + draft.id + " already exists with other fields",
                      "id_exists", Json(JsonObject{{"intent", Json(draft.id)}}));
    }
  } else {
    draft.id = fresh_id(intents_, rng_);
    if (draft.id.empty()) return internal_error("could not generate a fresh intent id");
  }

  const std::int64_t at = now();
  const std::uint64_t seq = append_event(ev::kIntentCreated, draft.id,
                                         Json(JsonObject{{"kind", Json(draft.kind)},
                                                         {"lane", Json(draft.lane)},
                                                         {"priority", Json(draft.priority)},
                                                         {"creator", Json(draft.creator)}}));
  Intent in;
  in.def = IntentDef{draft.id,
                     draft.kind,
                     std::move(draft.spec),
                     std::move(draft.from_facts),
                     draft.lane,
                     draft.provider,
                     draft.cost_units,
                     draft.priority,
                     draft.identity,
                     std::move(draft.requires_),
                     draft.stale_after_ms,
                     draft.lease_ttl_ms,
                     draft.max_attempts,
                     draft.creator,
                     at,
                     seq};
  in.st.state = IntentState::kOpen;
  in.st.updated_at = at;
  auto [it, inserted] = intents_.emplace(in.def.id, std::move(in));
  CAIRN_ASSERT(inserted);
  Intent& stored = it->second;
  index_memory(stored);
  undo_.push_back(
      Undo{Undo::Kind::kIntentAdded, stored.def.id, {}, std::nullopt, {}, std::nullopt});
  admit_created(stored, at);
  return CreateIntentReply{stored.def.id, stored.st.state, true, stored.st.coalesced_into};
}

void Blackboard::admit_created(Intent& in, std::int64_t now_ms) {
  coalesce_group(in.def, now_ms);
  if (in.st.state != IntentState::kOpen) return;  // coalesced into a better one
  if (auto key = first_missing_dependency(in.def, now_ms)) {
    apply(in, lifecycle::defer(in.st, now_ms),
          Json(JsonObject{{"reason", Json("missing_dependency")}, {"key", Json(*key)}}));
  }
}

void Blackboard::coalesce_group(const IntentDef& d, std::int64_t now_ms) {
  // Coalescing: of the open and deferred intents with this (lane, identity)
  // the first in plan order (effective priority desc, newest, id) stays; the
  // others link to it. Claimed ones run on and are not part of the group.
  if (!d.identity.empty()) {
    auto g = by_identity_.find(identity_key(d));
    if (g != by_identity_.end() && g->second.size() > 1) {
      Intent* winner = nullptr;
      std::int64_t best = 0;
      std::vector<Intent*> group;
      for (std::string_view id : g->second) {
        Intent& o = intents_.find(id)->second;
        group.push_back(&o);
        const std::int64_t p = effective_priority(o, now_ms);
        if (winner == nullptr || p > best ||
            (p == best &&
             (o.def.created_seq > winner->def.created_seq ||
              (o.def.created_seq == winner->def.created_seq && o.def.id < winner->def.id)))) {
          winner = &o;
          best = p;
        }
      }
      for (Intent* o : group) {
        if (o == winner) continue;
        apply(*o, lifecycle::coalesce(o->st, winner->def.id, now_ms),
              Json(JsonObject{{"into", Json(winner->def.id)}}));
      }
    }
  }
}

// ---- admission ----------------------------------------------------------------------

std::optional<std::int64_t> Blackboard::newest_fact_at(std::string_view kind) const {
  auto it = fact_kinds_.find(kind);
  if (it == fact_kinds_.end() || it->second.count == 0) return std::nullopt;
  return it->second.latest_at;
}

std::string Blackboard::budget_key(const IntentDef& d) const {
  const AdmissionConfig& a = config_.admission;
  if (!a.budgets) return d.lane;
  if (!d.provider.empty()) {
    std::string key = d.lane + "/" + d.provider;
    if (a.lanes.find(key) != a.lanes.end()) return key;
    if (a.lanes.find(d.lane) == a.lanes.end() && !(a.default_lane && d.lane == kPlanDefaultLane)) {
      return key;  // unconfigured: named in its most specific form
    }
  }
  return d.lane;
}

const LaneBudget* Blackboard::budget_of(std::string_view key) const {
  auto it = budgets_.find(key);
  if (it == budgets_.end() || !it->second.configured) return nullptr;
  return &it->second.budget;
}

std::optional<std::string> Blackboard::first_missing_dependency(const IntentDef& d,
                                                                std::int64_t now_ms) const {
  for (const std::string& key : d.requires_) {
    Result<DependencyKey> k = parse_dependency_key(key);
    CAIRN_ASSERT(k.ok());  // validated at creation
    if (!dependency_ready(*k, facts_view_, now_ms)) return key;
  }
  return std::nullopt;
}

PlanInput Blackboard::plan_input(std::int64_t now_ms, const PlanLimits& limits) const {
  PlanInput in;
  in.now_ms = now_ms;
  const AdmissionConfig& a = config_.admission;
  if (a.budgets) {
    in.lanes = a.lanes;
    in.default_lane = a.default_lane;
  } else {
    // Budgets off: every lane in use is unlimited.
    in.default_lane = false;
    const LaneBudget unlimited{limits.concurrency_max, limits.cost_units_max};
    for (const auto& [lane, counts] : by_lane_) {
      (void)counts;
      in.lanes.emplace(lane, unlimited);
    }
  }
  // Live hints, and which of them match each intent.
  std::vector<const Hint*> live;
  for (const auto& [id, h] : hints_) {
    if (!h.live(now_ms)) continue;
    live.push_back(&h);
    PlanHint ph;
    ph.id = id;
    const HintEffect& e = h.d.effect;
    switch (e.type) {
      case HintEffectType::kDeny:
        ph.type = PlanHintType::kDeny;
        break;
      case HintEffectType::kCap:
        ph.type = PlanHintType::kCap;
        ph.n = e.n;
        break;
      case HintEffectType::kDefer:
        ph.type = PlanHintType::kDefer;
        ph.until = e.until;
        break;
      case HintEffectType::kPriority:
        ph.type = PlanHintType::kPriority;
        ph.delta = e.n;
        break;
      case HintEffectType::kRequire:
        ph.type = PlanHintType::kRequire;
        ph.fact_kind = e.fact_kind;
        break;
    }
    in.hints.push_back(std::move(ph));
  }
  for (const auto& [id, intent] : intents_) {
    const IntentState st = intent.st.state;
    if (st != IntentState::kOpen && st != IntentState::kDeferred && st != IntentState::kClaimed) {
      continue;
    }
    const IntentDef& d = intent.def;
    PlanIntent pi;
    pi.id = id;
    pi.kind = d.kind;
    pi.lane = d.lane;
    pi.provider = d.provider;
    pi.cost_units = d.cost_units;
    pi.priority = d.priority;
    pi.created_seq = d.created_seq;
    pi.created_at = d.created_at;
    pi.requires_ = d.requires_;
    pi.identity = d.identity;
    pi.stale_after_ms = d.stale_after_ms;
    pi.state = st == IntentState::kOpen       ? PlanIntentState::kOpen
               : st == IntentState::kDeferred ? PlanIntentState::kDeferred
                                              : PlanIntentState::kClaimed;
    pi.not_before = intent.st.not_before;
    for (const Hint* h : live) {
      if (h->d.selector.matches(d)) pi.hints.push_back(h->d.id);
    }
    in.intents.push_back(std::move(pi));
  }
  return in;
}

std::int64_t Blackboard::readiness_ends(const IntentDef& d) const {
  std::int64_t end = 0;
  for (const std::string& key : d.requires_) {
    Result<DependencyKey> k = parse_dependency_key(key);
    CAIRN_ASSERT(k.ok());
    if (k->type != DependencyKey::Type::kKind || k->ttl_ms == 0) continue;
    if (auto at = newest_fact_at(k->name)) {
      const std::int64_t e = *at + k->ttl_ms;
      if (end == 0 || e < end) end = e;
    }
  }
  return end;
}

std::vector<Blackboard::LaneUse> Blackboard::lane_usage() const {
  std::vector<LaneUse> out;
  out.reserve(budgets_.size());
  for (const auto& [key, ls] : budgets_) {
    LaneUse u;
    u.key = key;
    u.configured = ls.configured;
    u.budget = ls.configured ? ls.budget : LaneBudget{0, 0};
    u.running = ls.running;
    u.running_cost = ls.running_cost;
    u.open = ls.open.size() + ls.gated.size();
    out.push_back(std::move(u));
  }
  return out;
}

std::size_t Blackboard::no_budget_open() const {
  std::size_t n = 0;
  for (const auto& [key, ls] : budgets_) {
    (void)key;
    if (!ls.configured) n += ls.open.size() + ls.gated.size();
  }
  return n;
}

Status Blackboard::budget_gate(const Intent& in) const {
  const std::string key = budget_key(in.def);
  auto it = budgets_.find(key);
  CAIRN_ASSERT(it != budgets_.end());  // the intent is indexed under it
  const LaneState& ls = it->second;
  if (!ls.configured || in.def.cost_units > ls.budget.max_cost_units) {
    return conflict("no budget for lane " + key + " (configure lanes." + key + ")", "no_budget",
                    Json(JsonObject{{"lane", Json(key)}}));
  }
  // A claimed intent whose lease ended takes its own slot again: it is not
  // counted against itself.
  const bool own = in.st.state == IntentState::kClaimed;
  const std::int64_t running = ls.running - (own ? 1 : 0);
  const std::int64_t running_cost = ls.running_cost - (own ? in.def.cost_units : 0);
  if (running >= ls.budget.max_concurrency ||
      in.def.cost_units > ls.budget.max_cost_units - running_cost) {
    return conflict("lane " + key + " is full", "lane_full",
                    Json(JsonObject{{"lane", Json(key)},
                                    {"running", Json(ls.running)},
                                    {"running_cost", Json(ls.running_cost)}}));
  }
  return Status();
}

void Blackboard::expire_if_ended(Intent& in, std::int64_t now_ms) {
  if (in.st.state == IntentState::kClaimed && now_ms >= in.st.lease_expires_at) {
    const std::string holder = in.st.holder;
    const std::uint64_t epoch = in.st.epoch;
    apply(in, lifecycle::expire(in.def, in.st, now_ms),
          Json(JsonObject{{"agent", Json(holder)}, {"epoch", Json(epoch)}}));
  }
}

Status Blackboard::hint_gate(const Intent& in, std::int64_t now_ms) const {
  for (const auto& [id, h] : hints_) {
    if (!h.live(now_ms) || !h.d.selector.matches(in.def)) continue;
    const HintEffect& e = h.d.effect;
    switch (e.type) {
      case HintEffectType::kDeny:
        return conflict("denied by hint " + id, "denied_by_hint",
                        Json(JsonObject{{"hint", Json(id)}, {"reason", Json(h.d.reason)}}));
      case HintEffectType::kDefer:
        if (now_ms < e.until) {
          return conflict("deferred by hint " + id + " until " + std::to_string(e.until),
                          "deferred_by_hint",
                          Json(JsonObject{{"hint", Json(id)}, {"until", Json(e.until)}}));
        }
        break;
      case HintEffectType::kRequire:
        if (!any_fact_of_kind(e.fact_kind)) {
          return conflict("hint " + id + " requires a fact of kind " + e.fact_kind, "requires_fact",
                          Json(JsonObject{{"hint", Json(id)}, {"fact_kind", Json(e.fact_kind)}}));
        }
        break;
      case HintEffectType::kCap: {
        auto c = cap_held_.find(id);
        CAIRN_ASSERT(c != cap_held_.end());  // every live cap hint is counted
        // Other intents only: re-claiming one's own ended lease takes no new slot.
        const std::int64_t held = c->second - (in.st.state == IntentState::kClaimed ? 1 : 0);
        if (held >= e.n) {
          return conflict("capped by hint " + id + " at " + std::to_string(e.n), "capped_by_hint",
                          Json(JsonObject{{"hint", Json(id)}, {"cap", Json(e.n)}}));
        }
        break;
      }
      case HintEffectType::kPriority:
        break;
    }
  }
  return Status();
}

std::int64_t Blackboard::effective_priority(const Intent& in, std::int64_t now_ms) const {
  std::int64_t p = in.def.priority;
  for (const auto& [id, h] : hints_) {
    (void)id;
    if (h.d.effect.type == HintEffectType::kPriority && h.live(now_ms) &&
        h.d.selector.matches(in.def)) {
      p += h.d.effect.n;
    }
  }
  return p;
}

Result<ClaimReply> Blackboard::claim_intent(Intent& in, std::string_view agent, std::int64_t ttl_ms,
                                            std::int64_t now_ms) {
  CAIRN_RETURN_IF_ERROR(check_name("agent", agent, config_.limits));
  if (ttl_ms == 0) ttl_ms = in.def.lease_ttl_ms;
  if (ttl_ms < config_.limits.lease_ttl_ms_min || ttl_ms > config_.limits.lease_ttl_ms_max) {
    return field_error("lease_ttl_ms", "must be within " +
                                           std::to_string(config_.limits.lease_ttl_ms_min) + ".." +
                                           std::to_string(config_.limits.lease_ttl_ms_max));
  }
  // Validate everything before the (possibly state-changing) expiry below.
  if (in.st.state == IntentState::kOpen ||
      (in.st.state == IntentState::kClaimed && now_ms >= in.st.lease_expires_at)) {
    CAIRN_RETURN_IF_ERROR(hint_gate(in, now_ms));
    if (in.def.stale_after_ms > 0 && now_ms >= in.def.created_at + in.def.stale_after_ms) {
      return conflict(
          "the intent went stale at " + std::to_string(in.def.created_at + in.def.stale_after_ms),
          "stale", Json(JsonObject{{"stale_after_ms", Json(in.def.stale_after_ms)}}));
    }
    if (auto key = first_missing_dependency(in.def, now_ms)) {
      return conflict("dependency " + *key + " is not ready", "missing_dependency",
                      Json(JsonObject{{"key", Json(*key)}}));
    }
    CAIRN_RETURN_IF_ERROR(budget_gate(in));
  }
  IntentStatus probe = in.st;
  if (probe.state == IntentState::kClaimed && now_ms >= probe.lease_expires_at) {
    probe = lifecycle::expire(in.def, probe, now_ms).next;
  }
  CAIRN_ASSIGN_OR_RETURN(lifecycle::Decision d,
                         lifecycle::claim(in.def, probe, agent, ttl_ms, now_ms));
  expire_if_ended(in, now_ms);
  apply(in, d,
        Json(JsonObject{{"agent", Json(agent)},
                        {"epoch", Json(d.next.epoch)},
                        {"lease_expires_at", Json(d.next.lease_expires_at)},
                        {"attempts", Json(d.next.attempts)}}));
  return ClaimReply{in.def.id, in.st.epoch, in.st.lease_expires_at};
}

Result<ClaimReply> Blackboard::claim(std::string_view id, std::string_view agent,
                                     std::int64_t ttl_ms) {
  begin_command();
  CAIRN_ASSIGN_OR_RETURN(Intent * in, find_intent(id));
  return claim_intent(*in, agent, ttl_ms, now());
}

Result<ClaimReply> Blackboard::claim_next(std::string_view agent, const ClaimFilter& filter,
                                          std::int64_t ttl_ms) {
  begin_command();
  CAIRN_RETURN_IF_ERROR(check_name("agent", agent, config_.limits));
  const std::int64_t now_ms = now();
  bool priority_hints = false;
  for (const auto& [hid, h] : hints_) {
    (void)hid;
    if (h.d.effect.type == HintEffectType::kPriority && h.live(now_ms)) priority_hints = true;
  }
  auto wanted = [](const std::vector<std::string>& set, const std::string& v) {
    return set.empty() || std::find(set.begin(), set.end(), v) != set.end();
  };
  // The first admissible intent of each budget with room, in its claim
  // order; the best of those over all budgets is the plan's first admitted
  // intent for this caller.
  Intent* best = nullptr;
  std::int64_t best_priority = 0;
  auto better = [&](const Intent& in, std::int64_t p) {
    if (best == nullptr) return true;
    if (p != best_priority) return p > best_priority;
    if (in.def.created_seq != best->def.created_seq) {
      return in.def.created_seq > best->def.created_seq;
    }
    return in.def.id < best->def.id;
  };
  // A budget key is "lane" or "lane/provider", so the intents charged to it
  // are in the lane named by the key or by a prefix of it ending before a
  // '/' (lane names may contain '/'). A lane filter skips the other budgets
  // without scanning them: their entries would only use up claim_scan_max.
  auto budget_wanted = [&](std::string_view key) {
    if (filter.lanes.empty()) return true;
    for (const std::string& lane : filter.lanes) {
      if (key.size() >= lane.size() && key.compare(0, lane.size(), lane) == 0 &&
          (key.size() == lane.size() || key[lane.size()] == '/')) {
        return true;
      }
    }
    return false;
  };
  if (gated_until_ != 0 && now_ms >= gated_until_) ungate_all();  // a defer hint ended
  std::size_t scanned = 0;
  for (auto& [key, ls] : budgets_) {
    if (!ls.configured || ls.open.empty() || ls.running >= ls.budget.max_concurrency) continue;
    if (!budget_wanted(key)) continue;
    const std::int64_t room = ls.budget.max_cost_units - ls.running_cost;
    for (auto it = ls.open.begin(); it != ls.open.end();) {
      const OpenEntry& e = *it;
      if (++scanned > config_.claim_scan_max) break;
      Intent& in = intents_.find(e.id)->second;
      ++it;
      if (!wanted(filter.kinds, in.def.kind) || !wanted(filter.lanes, in.def.lane)) continue;
      if (in.def.cost_units > room) continue;  // greedy: a cheaper one may still fit
      if (now_ms < in.st.not_before) continue;
      if (in.def.stale_after_ms > 0 && now_ms >= in.def.created_at + in.def.stale_after_ms) {
        continue;  // tick() turns it stale
      }
      if (!in.def.requires_.empty() && first_missing_dependency(in.def, now_ms)) {
        continue;  // a kind:K@ttl key ran out: tick() defers it
      }
      if (Status gate = hint_gate(in, now_ms); !gate.ok()) {
        // Deny, defer and require gates hold until a hint or fact changes:
        // set the intent aside. A cap depends on claims: it stays.
        const std::string_view why = gate.reason();
        if (why == "denied_by_hint" || why == "deferred_by_hint" || why == "requires_fact") {
          if (why == "deferred_by_hint") {
            const Json* u = gate.details().find("until");
            const std::int64_t until = u != nullptr ? u->int_if().value_or(now_ms) : now_ms;
            if (gated_until_ == 0 || until < gated_until_) gated_until_ = until;
          }
          ls.gated.insert(ls.open.extract(std::prev(it)));
          ++gated_count_;
        }
        continue;
      }
      if (!priority_hints) {
        if (better(in, in.def.priority)) {
          best = &in;
          best_priority = in.def.priority;
        }
        break;  // the rest of this budget comes later in claim order
      }
      // Hints may reorder: keep scanning for the highest effective priority.
      const std::int64_t p = effective_priority(in, now_ms);
      if (better(in, p)) {
        best = &in;
        best_priority = p;
      }
    }
    if (scanned > config_.claim_scan_max) break;
  }
  if (best == nullptr) {
    return not_found("no claimable intent", "no_work");
  }
  return claim_intent(*best, agent, ttl_ms, now_ms);
}

Blackboard::Fencing Blackboard::fencing(const Intent& in, std::string_view agent,
                                        std::uint64_t epoch) const {
  if (canary_skip_fencing_ && in.st.state == IntentState::kClaimed) {
    return Fencing{in.st.holder, in.st.epoch};  // the canary: take anyone as the holder
  }
  return Fencing{std::string(agent), epoch};
}

Result<ClaimReply> Blackboard::heartbeat(std::string_view id, std::string_view agent,
                                         std::uint64_t epoch, std::int64_t ttl_ms) {
  begin_command();
  CAIRN_ASSIGN_OR_RETURN(Intent * in, find_intent(id));
  if (ttl_ms == 0) ttl_ms = in->def.lease_ttl_ms;
  if (ttl_ms < config_.limits.lease_ttl_ms_min || ttl_ms > config_.limits.lease_ttl_ms_max) {
    return field_error("lease_ttl_ms", "is out of range");
  }
  const Fencing f = fencing(*in, agent, epoch);
  CAIRN_ASSIGN_OR_RETURN(lifecycle::Decision d,
                         lifecycle::heartbeat(in->def, in->st, f.agent, f.epoch, ttl_ms, now()));
  apply(*in, d,
        Json(JsonObject{{"agent", Json(agent)},
                        {"epoch", Json(epoch)},
                        {"lease_expires_at", Json(d.next.lease_expires_at)}}));
  return ClaimReply{in->def.id, in->st.epoch, in->st.lease_expires_at};
}

Result<ConcludeReply> Blackboard::conclude(std::string_view id, std::string_view agent,
                                           std::uint64_t epoch, FactBody result) {
  begin_command();
  CAIRN_ASSIGN_OR_RETURN(Intent * in, find_intent(id));
  CAIRN_RETURN_IF_ERROR(check_name("agent", agent, config_.limits));
  // The result is derived from what the intent was grounded in.
  std::vector<std::string> derived = in->def.from_facts;
  for (auto& extra : result.derived_from) {
    if (std::find(derived.begin(), derived.end(), extra) == derived.end()) {
      derived.push_back(std::move(extra));
    }
  }
  result.derived_from = std::move(derived);
  result.creator = std::string(agent);
  CAIRN_ASSIGN_OR_RETURN(CanonicalFact canon, canonicalize_fact(result, config_.limits));
  const std::int64_t now_ms = now();
  const Fencing f = fencing(*in, agent, epoch);
  CAIRN_ASSIGN_OR_RETURN(lifecycle::Decision d,
                         lifecycle::conclude(in->def, in->st, f.agent, f.epoch, canon.id, now_ms));
  if (d.no_op) return ConcludeReply{canon.id};
  CAIRN_RETURN_IF_ERROR(check_facts_exist("result.derived_from", result.derived_from));
  ConcludeReply reply{canon.id};
  new_links_.emplace_back(canon.id, in->def.id);
  if (facts_.find(canon.id) == facts_.end()) record_fact(result, std::move(canon));
  apply(*in, d,
        Json(JsonObject{
            {"agent", Json(agent)}, {"epoch", Json(epoch)}, {"result", Json(reply.result)}}));
  return reply;
}

Result<FailReply> Blackboard::fail(std::string_view id, std::string_view agent, std::uint64_t epoch,
                                   std::string_view error, bool retryable) {
  begin_command();
  CAIRN_ASSIGN_OR_RETURN(Intent * in, find_intent(id));
  if (!is_valid_utf8(error)) return field_error("error", "is not valid UTF-8");
  const std::string_view detail = truncate_utf8(error, config_.limits.error_bytes_max);
  const std::int64_t backoff = lifecycle::backoff_delay_ms(
      config_.fail_backoff, std::max<std::int64_t>(in->st.attempts, 1), rng_);
  const Fencing f = fencing(*in, agent, epoch);
  CAIRN_ASSIGN_OR_RETURN(lifecycle::Decision d, lifecycle::fail(in->def, in->st, f.agent, f.epoch,
                                                                detail, retryable, backoff, now()));
  Json data(JsonObject{{"agent", Json(agent)}, {"epoch", Json(epoch)}, {"error", Json(detail)}});
  if (d.next.state == IntentState::kOpen) data.set("not_before", Json(d.next.not_before));
  apply(*in, d, std::move(data));
  const FailReply reply{in->st.state, in->st.not_before};
  // Back in its (lane, identity) group: one of the waiting ones stays.
  if (reply.state == IntentState::kOpen) coalesce_group(in->def, now());
  return reply;
}

Status Blackboard::release(std::string_view id, std::string_view agent, std::uint64_t epoch) {
  begin_command();
  CAIRN_ASSIGN_OR_RETURN(Intent * in, find_intent(id));
  const std::int64_t now_ms = now();
  CAIRN_ASSIGN_OR_RETURN(lifecycle::Decision d,
                         lifecycle::release(in->def, in->st, agent, epoch, now_ms));
  if (d.no_op) return Status();
  apply(*in, d, Json(JsonObject{{"agent", Json(agent)}, {"epoch", Json(epoch)}}));
  coalesce_group(in->def, now_ms);  // back in its (lane, identity) group
  return Status();
}

Status Blackboard::cancel(std::string_view id, std::string_view requester) {
  begin_command();
  CAIRN_ASSIGN_OR_RETURN(Intent * in, find_intent(id));
  CAIRN_ASSIGN_OR_RETURN(lifecycle::Decision d,
                         lifecycle::cancel(in->def, in->st, requester, now()));
  if (d.no_op) return Status();
  Json data(JsonObject{{"by", Json(requester)}, {"epoch", Json(in->st.epoch)}});
  if (!in->st.holder.empty()) data.set("holder", Json(in->st.holder));
  apply(*in, d, std::move(data));
  return Status();
}

// ---- hints ----------------------------------------------------------------------

void Blackboard::set_hint(Hint h) {
  std::optional<Hint> before;
  if (auto it = hints_.find(h.d.id); it != hints_.end()) before = it->second;
  const std::string id = h.d.id;
  put_loaded_hint(std::move(h));
  const std::string_view key = hints_.find(id)->first;
  undo_.push_back(Undo{Undo::Kind::kHint, key, {}, std::move(before), {}, std::nullopt});
}

Result<HintReply> Blackboard::create_hint(HintDraft draft) {
  begin_command();
  CAIRN_RETURN_IF_ERROR(validate_hint_draft(draft, config_.limits));
  CAIRN_RETURN_IF_ERROR(check_facts_exist("derived_from", draft.derived_from));
  const std::int64_t now_ms = now();
  if (!draft.id.empty()) {
    if (const Hint* existing = hint(draft.id)) {
      return conflict(
          "a hint with id " + draft.id + " already exists", "id_exists",
          Json(JsonObject{{"hint", Json(draft.id)}, {"seq", Json(existing->created_seq)}}));
    }
  } else {
    draft.id = fresh_id(hints_, rng_);
    if (draft.id.empty()) return internal_error("could not generate a fresh hint id");
  }
  Hint h;
  h.d = std::move(draft);
  h.created_at = now_ms;
  if (h.d.expires_at != 0 && h.d.expires_at <= now_ms) h.ended_at = now_ms;  // born expired
  h.created_seq = append_event(ev::kHintCreated, h.d.id,
                               Json(JsonObject{{"kind", Json(h.d.kind)},
                                               {"effect", Json(effect_name(h.d.effect.type))},
                                               {"creator", Json(h.d.creator)}}));
  const std::string id = h.d.id;
  const std::uint64_t seq = h.created_seq;
  set_hint(std::move(h));
  return HintReply{id, seq, true};
}

Status Blackboard::revoke_hint(std::string_view id, std::string_view requester, bool admin) {
  begin_command();
  const Hint* h = hint(id);
  if (h == nullptr) return not_found("no hint " + std::string(id), "not_found");
  if (!admin && requester != h->d.creator) {
    return forbidden("only the creator (" + h->d.creator + ") may revoke the hint", "not_creator");
  }
  if (h->revoked) return Status();  // revoking twice is a no-op
  Hint next = *h;
  next.revoked = true;
  next.ended_at = now();
  append_event(ev::kHintRevoked, id, Json(JsonObject{{"by", Json(requester)}}));
  set_hint(std::move(next));
  return Status();
}

// ---- timers --------------------------------------------------------------------------

TickReport Blackboard::tick() {
  begin_command();
  TickReport r;
  const std::int64_t now_ms = now();
  std::size_t budget = config_.tick_expiries_max;
  while (budget > 0 && !leases_.empty() && leases_.begin()->first <= now_ms) {
    Intent& in = intents_.find(leases_.begin()->second)->second;
    expire_if_ended(in, now_ms);
    coalesce_group(in.def, now_ms);  // back in its (lane, identity) group
    ++r.leases_expired;
    --budget;
  }
  while (budget > 0 && !hint_ends_.empty() && hint_ends_.begin()->first <= now_ms) {
    const std::string id(hint_ends_.begin()->second);
    Hint next = hints_.find(id)->second;
    next.ended_at = now_ms;
    append_event(ev::kHintExpired, id, Json::object());
    set_hint(std::move(next));  // removes it from hint_ends_
    ++r.hints_expired;
    --budget;
  }
  while (budget > 0 && !stales_.empty() && stales_.begin()->first <= now_ms) {
    Intent& in = intents_.find(stales_.begin()->second)->second;
    apply(in, lifecycle::stale(in.st, now_ms),
          Json(JsonObject{{"stale_after_ms", Json(in.def.stale_after_ms)}}));
    --budget;
  }
  while (budget > 0 && !lapses_.empty() && lapses_.begin()->first <= now_ms) {
    const std::string_view id = lapses_.begin()->second;
    Intent& in = intents_.find(id)->second;
    if (auto key = first_missing_dependency(in.def, now_ms)) {
      apply(in, lifecycle::defer(in.st, now_ms),
            Json(JsonObject{{"reason", Json("missing_dependency")}, {"key", Json(*key)}}));
    } else {  // a newer fact moved the time on
      lapses_.erase(lapses_.begin());
      const std::int64_t t = readiness_ends(in.def);
      CAIRN_ASSERT(t > now_ms);
      lapses_.emplace(t, id);
      lapse_at_[id] = t;
    }
    --budget;
  }
  while (budget > 0 && !ready_pending_.empty()) {
    Intent& in = intents_.find(*ready_pending_.begin())->second;
    if (auto key = first_missing_dependency(in.def, now_ms)) {
      ready_pending_.erase(ready_pending_.begin());
      CAIRN_ASSERT(waiters_.wait(in.def.id, *key).ok());
    } else {
      apply(in, lifecycle::ready(in.st, now_ms), Json::object());  // leaves ready_pending_
    }
    --budget;
  }
  // Ended backoffs need no state change; forgetting them moves the deadline.
  while (!backoffs_.empty() && backoffs_.begin()->first <= now_ms) {
    backoffs_.erase(backoffs_.begin());
    ++r.backoffs_ended;
  }
  // So do ended defer-hint waits.
  while (!defer_ends_.empty() && defer_ends_.begin()->first <= now_ms) {
    defer_ends_.erase(defer_ends_.begin());
    ++r.defers_ended;
  }
  return r;
}

std::optional<std::int64_t> Blackboard::next_deadline() const {
  std::optional<std::int64_t> d;
  auto consider = [&d](const std::set<TimeEntry>& s) {
    if (!s.empty() && (!d || s.begin()->first < *d)) d = s.begin()->first;
  };
  consider(leases_);
  consider(hint_ends_);
  consider(backoffs_);
  consider(defer_ends_);
  consider(stales_);
  consider(lapses_);
  if (!ready_pending_.empty()) d = now();
  return d;
}

// ---- group commit ----------------------------------------------------------------------

store::Batch Blackboard::write_delta() {
  std::vector<store::Mutation> dels;
  std::vector<store::Mutation> puts;
  puts.reserve(new_facts_.size() * 3 + undo_.size() * 3 + outbox_.size() + 1);
  auto put = [&puts](std::string key, std::string value) {
    puts.push_back(store::Mutation{store::Mutation::Op::kPut, std::move(key), std::move(value)});
  };
  // Facts recorded in this batch: the record and two index keys each.
  for (const NewFact& f : new_facts_) {
    put(keys::fact(f.id), encode_fact_record(f.id, f.seq, f.recorded_at, f.canonical));
    put(keys::fact_by_seq(f.seq), std::string(f.id));
    put(keys::fact_by_kind(f.kind, f.seq), fact_kind_value(f.id, f.recorded_at));
  }
  // Intents touched in this batch: the first before-image of each is its
  // durable status (none for an intent created in this batch). Index keys are
  // diffed once, from that status to the final one.
  // (id, position in the log, before-image): sorted by id then position, the
  // first of each id is its durable status; sorted back by position, the
  // output order is deterministic (first-touched first).
  struct Touch {
    std::string_view id;
    std::size_t pos;
    const IntentStatus* before;  // nullptr: created in this batch
  };
  std::vector<Touch> touched;
  touched.reserve(undo_.size());
  std::vector<std::string_view> hint_ids;
  for (std::size_t i = 0; i < undo_.size(); ++i) {
    const Undo& u = undo_[i];
    switch (u.kind) {
      case Undo::Kind::kIntentAdded:
        touched.push_back(Touch{u.id, i, nullptr});
        break;
      case Undo::Kind::kStatus:
        touched.push_back(Touch{u.id, i, &u.status});
        break;
      case Undo::Kind::kHint:
        if (std::find(hint_ids.begin(), hint_ids.end(), u.id) == hint_ids.end()) {
          hint_ids.push_back(u.id);
        }
        break;
      case Undo::Kind::kFactAdded:
        break;
    }
  }
  std::sort(touched.begin(), touched.end(), [](const Touch& a, const Touch& b) {
    return a.id != b.id ? a.id < b.id : a.pos < b.pos;
  });
  touched.erase(std::unique(touched.begin(), touched.end(),
                            [](const Touch& a, const Touch& b) { return a.id == b.id; }),
                touched.end());
  std::sort(touched.begin(), touched.end(),
            [](const Touch& a, const Touch& b) { return a.pos < b.pos; });
  std::vector<std::string> old_keys;
  std::vector<std::string> new_keys;
  for (const Touch& t : touched) {
    const std::string_view id = t.id;
    const Intent& in = intents_.find(id)->second;
    const IntentStatus* was = t.before;
    old_keys.clear();
    if (was == nullptr) {
      put(keys::intent_def(id), encode_intent_def(in.def));
    } else {
      durable_index_keys(in.def, *was, old_keys);
    }
    durable_index_keys(in.def, in.st, new_keys);
    for (const auto& k : old_keys) {
      if (std::find(new_keys.begin(), new_keys.end(), k) == new_keys.end())
        dels.push_back(store::Mutation{store::Mutation::Op::kDelete, k, {}});
    }
    for (auto& k : new_keys) {
      if (std::find(old_keys.begin(), old_keys.end(), k) == old_keys.end()) put(k, "");
    }
    put(keys::intent_status(id), encode_intent_status(in.st));
  }
  for (const auto& [fact, intent_id] : new_links_) {
    put(keys::fact_concludes(fact, intent_id), "");
  }
  for (std::string_view id : hint_ids) {
    put(keys::hint(id), encode_hint_record(hints_.find(id)->second));
  }
  EvidenceHead head = evidence_head_;
  for (const Event& e : outbox_) {
    put(keys::event(e.seq), encode_event(e));
    // The event is the action: its link hashes the event's API form.
    Result<EvidenceLink> link = next_evidence_link_jcs(head, e.type, event_jcs(e), e.at);
    CAIRN_ASSERT_MSG(link.ok() && link->seq == e.seq, "evidence link out of step with events");
    put(keys::evidence(e.seq), encode_evidence_link(*link));
    head = EvidenceHead::after(*link);
  }
  pending_evidence_head_ = head;
  if (!outbox_.empty()) put(std::string(keys::kEventSeq), std::to_string(last_seq_));
  new_facts_.clear();
  new_links_.clear();
  store::Batch batch;
  batch.mutations = std::move(dels);
  batch.mutations.insert(batch.mutations.end(), std::make_move_iterator(puts.begin()),
                         std::make_move_iterator(puts.end()));
  return batch;
}

PendingCommit Blackboard::drain() {
  CAIRN_ASSERT(!drained_);
  drained_ = true;
  PendingCommit p;
  p.batch = write_delta();
  p.events = std::move(outbox_);
  outbox_.clear();
  return p;
}

void Blackboard::accept() {
  CAIRN_ASSERT(drained_);
  drained_ = false;
  undo_.clear();
  woken_.clear();
  durable_seq_ = last_seq_;
  evidence_head_ = pending_evidence_head_;
}

void Blackboard::rollback() {
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    Undo& u = *it;
    switch (u.kind) {
      case Undo::Kind::kStatus: {
        Intent& in = intents_.find(u.id)->second;
        set_status(in, u.status);
        break;
      }
      case Undo::Kind::kIntentAdded: {
        auto in = intents_.find(u.id);
        CAIRN_ASSERT(in != intents_.end());
        unindex_memory(in->second);
        intents_.erase(in);
        break;
      }
      case Undo::Kind::kFactAdded: {
        auto f = facts_.find(u.id);
        CAIRN_ASSERT(f != facts_.end());
        facts_.erase(f);
        auto k = fact_kinds_.find(u.fact_kind);
        CAIRN_ASSERT(k != fact_kinds_.end());
        if (u.kind_info) {
          k->second = *u.kind_info;
        } else {
          fact_kinds_.erase(k);
        }
        break;
      }
      case Undo::Kind::kHint: {
        auto h = hints_.find(u.id);
        CAIRN_ASSERT(h != hints_.end());
        unindex_hint_timers(h->second, h->first);
        if (u.hint) {
          h->second = std::move(*u.hint);
          index_hint_timers(h->second, h->first);
          refresh_cap(h);
        } else {
          cap_held_.erase(h->first);
          hints_.erase(h);
        }
        break;
      }
    }
  }
  // Deferred intents a fact of this batch woke wait on what they waited on
  // before it (the undo above restored their status, not their wait).
  for (const std::string& id : woken_) {
    auto it = intents_.find(id);
    if (it == intents_.end() || it->second.st.state != IntentState::kDeferred) continue;
    ready_pending_.erase(it->first);
    waiters_.forget(it->first);
    if (auto key = first_missing_dependency(it->second.def, now())) {
      CAIRN_ASSERT(waiters_.wait(it->first, *key).ok());
    } else {
      ready_pending_.insert(it->first);
    }
  }
  woken_.clear();
  ungate_all();  // a hint of the batch may be gone
  undo_.clear();
  outbox_.clear();
  new_facts_.clear();
  new_links_.clear();
  last_seq_ = durable_seq_;
  drained_ = false;
}

// ---- loading ------------------------------------------------------------------------------

void Blackboard::clear_state() {
  intents_.clear();
  facts_.clear();
  fact_kinds_.clear();
  hints_.clear();
  budgets_.clear();
  cap_held_.clear();
  gated_count_ = 0;
  gated_until_ = 0;
  if (config_.admission.budgets) {
    for (const auto& [key, b] : config_.admission.lanes) {
      budgets_.emplace(key, LaneState{true, b, 0, 0, {}, {}});
    }
    if (config_.admission.default_lane && budgets_.find(kPlanDefaultLane) == budgets_.end()) {
      budgets_.emplace(std::string(kPlanDefaultLane),
                       LaneState{true, kDefaultLaneBudget, 0, 0, {}, {}});
    }
  }
  waiters_ = DependencyWaiters();
  ready_pending_.clear();
  woken_.clear();
  stales_.clear();
  lapses_.clear();
  lapse_at_.clear();
  by_identity_.clear();
  leases_.clear();
  backoffs_.clear();
  hint_ends_.clear();
  defer_ends_.clear();
  held_.clear();
  for (auto& c : by_state_) c = 0;
  by_lane_.clear();
  last_seq_ = 0;
  durable_seq_ = 0;
  evidence_head_ = EvidenceHead{};
  pending_evidence_head_ = EvidenceHead{};
  undo_.clear();
  outbox_.clear();
  new_facts_.clear();
  new_links_.clear();
  drained_ = false;
}

namespace {

// Calls fn(entry) for every key with `prefix`, page by page.
template <class Fn>
Status scan(store::Store& store, std::string_view prefix, std::size_t page, Fn&& fn) {
  std::string after;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(store::RangePage p, store.range(prefix, after, page));
    for (const store::Entry& e : p.entries) CAIRN_RETURN_IF_ERROR(fn(e));
    if (!p.more || p.entries.empty()) return Status();
    after = p.entries.back().key;
  }
}

}  // namespace

Status Blackboard::load(store::Store& store) {
  CAIRN_ASSERT(!drained_ && undo_.empty());
  clear_state();
  const std::size_t page = config_.load_page_size;

  CAIRN_ASSIGN_OR_RETURN(std::optional<store::Entry> seq, store.get(keys::kEventSeq));
  if (seq) {
    bool ok = false;
    last_seq_ = parse_u64(seq->value, ok);
    if (!ok) return internal_error("corrupt " + std::string(keys::kEventSeq));
  }

  // Facts come from the by-kind index: id, kind, seq and time without
  // decoding the (possibly large) fact records.
  CAIRN_RETURN_IF_ERROR(scan(store, keys::kFactsByKind, page, [&](const store::Entry& e) {
    std::string_view rest = std::string_view(e.key).substr(keys::kFactsByKind.size());
    const auto bar = rest.rfind('|');
    const auto sp = e.value.find(' ');
    bool ok_seq = false, ok_at = false;
    if (bar == std::string_view::npos || sp == std::string::npos) {
      return internal_error("corrupt fact index key " + e.key);
    }
    const std::string kind(rest.substr(0, bar));
    const std::uint64_t fseq = parse_u64(rest.substr(bar + 1), ok_seq);
    std::string_view at_text = std::string_view(e.value).substr(sp + 1);
    bool negative = !at_text.empty() && at_text.front() == '-';
    if (negative) at_text.remove_prefix(1);
    std::int64_t at = static_cast<std::int64_t>(parse_u64(at_text, ok_at));
    if (negative) at = -at;
    if (!ok_seq || !ok_at) return internal_error("corrupt fact index entry " + e.key);
    facts_.emplace(e.value.substr(0, sp), FactMeta{fseq, at});
    KindInfo& k = fact_kinds_[kind];
    ++k.count;
    if (fseq > k.latest_seq) {
      k.latest_seq = fseq;
      k.latest_at = at;
    }
    return Status();
  }));

  CAIRN_RETURN_IF_ERROR(scan(store, keys::kIntentDef, page, [&](const store::Entry& e) {
    CAIRN_ASSIGN_OR_RETURN(IntentDef d, decode_intent_def(e.value));
    Intent in;
    in.def = std::move(d);
    std::string id = in.def.id;
    intents_.emplace(std::move(id), std::move(in));
    return Status();
  }));
  CAIRN_RETURN_IF_ERROR(scan(store, keys::kIntentStatus, page, [&](const store::Entry& e) {
    const std::string_view id = std::string_view(e.key).substr(keys::kIntentStatus.size());
    auto it = intents_.find(id);
    if (it == intents_.end()) {
      return internal_error("intent status without definition: " + std::string(id));
    }
    CAIRN_ASSIGN_OR_RETURN(it->second.st, decode_intent_status(e.value));
    index_memory(it->second);
    return Status();
  }));
  std::size_t indexed = 0;
  for (auto& c : by_state_) indexed += c;
  if (indexed != intents_.size()) return internal_error("intent definition without status");
  // Backoffs that already ended need no timer.
  const std::int64_t now_ms = now();
  while (!backoffs_.empty() && backoffs_.begin()->first <= now_ms)
    backoffs_.erase(backoffs_.begin());

  CAIRN_RETURN_IF_ERROR(scan(store, keys::kHint, page, [&](const store::Entry& e) {
    CAIRN_ASSIGN_OR_RETURN(Hint h, decode_hint_record(e.value));
    put_loaded_hint(std::move(h));
    return Status();
  }));
  durable_seq_ = last_seq_;
  std::optional<store::Entry> link;
  if (last_seq_ > 0) {
    CAIRN_ASSIGN_OR_RETURN(link, store.get(keys::evidence(last_seq_)));
  }
  return set_evidence_head(last_seq_, link);
}

Status Blackboard::set_evidence_head(std::uint64_t seq, const std::optional<store::Entry>& link) {
  if (!link) {
    evidence_head_ = EvidenceHead{seq, kEvidenceGenesisHash};
    return Status();
  }
  auto l = decode_evidence_link(link->value);
  if (!l.ok())
    return internal_error("corrupt evidence link " + link->key + ": " + l.status().message());
  if (l->seq != seq)
    return internal_error("evidence link " + link->key + " names seq " + std::to_string(l->seq));
  evidence_head_ = EvidenceHead::after(*l);
  return Status();
}

void Blackboard::put_loaded_hint(Hint h) {
  ungate_all();  // a hint appeared, ended or changed: gates are re-checked
  auto it = hints_.find(h.d.id);
  if (it != hints_.end()) {
    unindex_hint_timers(it->second, it->first);
    it->second = std::move(h);
  } else {
    it = hints_.emplace(h.d.id, std::move(h)).first;
  }
  index_hint_timers(it->second, it->first);
  refresh_cap(it);
}

void Blackboard::index_hint_timers(const Hint& h, std::string_view id) {
  if (h.revoked || h.ended_at != 0) return;
  if (h.d.expires_at != 0) hint_ends_.emplace(h.d.expires_at, id);
  // A defer hint holds intents back until `until`: that moment is a timer
  // too, or whoever waits for them (a parked long-poll) would wait for a poll.
  if (h.d.effect.type == HintEffectType::kDefer && h.d.effect.until > now()) {
    defer_ends_.emplace(h.d.effect.until, id);
  }
}

void Blackboard::unindex_hint_timers(const Hint& h, std::string_view id) {
  if (h.d.expires_at != 0) hint_ends_.erase(TimeEntry{h.d.expires_at, id});
  if (h.d.effect.type == HintEffectType::kDefer) defer_ends_.erase(TimeEntry{h.d.effect.until, id});
}

Result<Blackboard::CatchUp> Blackboard::catch_up(store::Store& store) {
  CAIRN_ASSERT(!drained_ && undo_.empty());
  CatchUp out;
  CAIRN_ASSIGN_OR_RETURN(std::optional<store::Entry> seq_e, store.get(keys::kEventSeq));
  std::uint64_t seq = 0;
  if (seq_e) {
    bool ok = false;
    seq = parse_u64(seq_e->value, ok);
    if (!ok) return internal_error("corrupt " + std::string(keys::kEventSeq));
    out.seq_version = seq_e->version;
  }
  if (seq < last_seq_) {
    return internal_error("the store's event sequence " + std::to_string(seq) +
                              " is behind this node's " + std::to_string(last_seq_),
                          "storage_behind");
  }
  if (seq == last_seq_) return out;
  const std::uint64_t to = std::min<std::uint64_t>(seq, last_seq_ + config_.catch_up_events_max);
  out.more = to < seq;

  // The events, gap-free (page by page; each page bounded by load_page_size).
  std::uint64_t after = last_seq_;
  while (after < to) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(config_.load_page_size, to - after));
    CAIRN_ASSIGN_OR_RETURN(std::vector<Event> page, read_events(store, after, want));
    if (page.empty()) {
      return internal_error("event " + std::to_string(after + 1) + " is missing from the store",
                            "storage_corrupt");
    }
    for (Event& e : page) {
      if (e.seq != after + 1) {
        return internal_error("event " + std::to_string(after + 1) + " is missing from the store",
                              "storage_corrupt");
      }
      after = e.seq;
      out.events.push_back(std::move(e));
      if (after == to) break;
    }
  }

  // The records they name, each once.
  std::set<std::string_view> fact_ids, intent_ids, hint_ids;
  for (const Event& e : out.events) {
    if (e.type == ev::kFactRecorded) {
      if (!has_fact(e.subject)) fact_ids.insert(e.subject);
    } else if (e.type.starts_with("intent.")) {
      intent_ids.insert(e.subject);
    } else if (e.type.starts_with("hint.")) {
      hint_ids.insert(e.subject);
    }
  }
  std::vector<std::string> keys;
  for (std::string_view id : fact_ids) keys.push_back(keys::fact(id));
  for (std::string_view id : intent_ids) {
    if (intents_.find(id) == intents_.end()) keys.push_back(keys::intent_def(id));
    keys.push_back(keys::intent_status(id));
  }
  for (std::string_view id : hint_ids) keys.push_back(keys::hint(id));
  keys.push_back(keys::evidence(to));  // the chain's new head
  std::vector<std::optional<store::Entry>> entries;
  entries.reserve(keys.size());
  for (std::size_t at = 0; at < keys.size(); at += config_.load_page_size) {
    const std::size_t n = std::min(config_.load_page_size, keys.size() - at);
    CAIRN_ASSIGN_OR_RETURN(auto got, store.get_many(std::span(keys).subspan(at, n)));
    for (auto& e : got) entries.push_back(std::move(e));
  }

  // Apply: facts, then intent definitions before their statuses, then hints.
  std::size_t i = 0;
  auto missing = [&](std::size_t k) {
    return internal_error("a record named by the event log is missing: " + keys[k],
                          "storage_corrupt");
  };
  for (std::size_t n = 0; n < fact_ids.size(); ++n, ++i) {
    if (!entries[i]) return missing(i);
    CAIRN_ASSIGN_OR_RETURN(Fact f, decode_fact_record(entries[i]->value));
    KindInfo& k = fact_kinds_[f.body.kind];
    ++k.count;
    if (f.seq > k.latest_seq) {
      k.latest_seq = f.seq;
      k.latest_at = f.recorded_at;
    }
    auto fit = facts_.emplace(std::move(f.id), FactMeta{f.seq, f.recorded_at}).first;
    // The writer already moved the intents it made ready; this node's index
    // only learns which keys are satisfied now.
    wake_waiters(fit->first, fact_kinds_.find(f.body.kind)->first, f.recorded_at, false);
  }
  for (std::string_view id : intent_ids) {
    auto it = intents_.find(id);
    const bool fresh = it == intents_.end();
    if (fresh) {
      if (!entries[i]) return missing(i);
      CAIRN_ASSIGN_OR_RETURN(IntentDef d, decode_intent_def(entries[i]->value));
      ++i;
      if (d.id != id) return internal_error("intent record " + keys[i - 1] + " names " + d.id);
      Intent in;
      in.def = std::move(d);
      std::string key = in.def.id;
      it = intents_.emplace(std::move(key), std::move(in)).first;
    }
    if (!entries[i]) return missing(i);
    CAIRN_ASSIGN_OR_RETURN(IntentStatus st, decode_intent_status(entries[i]->value));
    ++i;
    if (fresh) {
      it->second.st = std::move(st);
      index_memory(it->second);
    } else {
      set_status(it->second, st);
    }
  }
  for (std::size_t n = 0; n < hint_ids.size(); ++n, ++i) {
    if (!entries[i]) return missing(i);
    CAIRN_ASSIGN_OR_RETURN(Hint h, decode_hint_record(entries[i]->value));
    put_loaded_hint(std::move(h));
  }
  CAIRN_RETURN_IF_ERROR(set_evidence_head(to, entries[i]));
  last_seq_ = to;
  durable_seq_ = to;
  return out;
}

Result<Fact> Blackboard::read_fact(store::Store& store, std::string_view id) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<store::Entry> e, store.get(keys::fact(id)));
  if (!e) return not_found("no fact " + std::string(id), "not_found");
  return decode_fact_record(e->value);
}

Result<std::vector<Event>> Blackboard::read_events(store::Store& store, std::uint64_t after,
                                                   std::size_t limit) {
  std::vector<Event> out;
  std::string from = after == 0 ? std::string() : keys::event(after);
  CAIRN_ASSIGN_OR_RETURN(store::RangePage p, store.range(keys::kEvent, from, limit));
  out.reserve(p.entries.size());
  for (const auto& e : p.entries) {
    CAIRN_ASSIGN_OR_RETURN(Event ev, decode_event(e.value));
    out.push_back(std::move(ev));
  }
  return out;
}

// ---- state hash ---------------------------------------------------------------------------------

Digest Blackboard::state_hash() const {
  Sha256 h;
  std::string buf;
  auto part = [&](std::string_view s) {
    buf.clear();
    keys::append_u64(buf, s.size());
    h.update(buf);
    h.update(s);
  };
  std::map<std::string_view, const Intent*> intents;
  for (const auto& [id, in] : intents_) intents.emplace(id, &in);
  for (const auto& [id, in] : intents) {
    part(encode_intent_def(in->def));
    part(encode_intent_status(in->st));
  }
  std::map<std::string_view, const FactMeta*> facts;
  for (const auto& [id, m] : facts_) facts.emplace(id, &m);
  for (const auto& [id, m] : facts) {
    part(id);
    part(std::to_string(m->seq) + "@" + std::to_string(m->recorded_at));
  }
  std::map<std::string_view, const Hint*> hints;
  for (const auto& [id, hh] : hints_) hints.emplace(id, &hh);
  for (const auto& [id, hh] : hints) part(encode_hint_record(*hh));
  part(std::to_string(last_seq_));
  return h.finish();
}

}  // namespace cairn

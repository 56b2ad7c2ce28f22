// plan_json.cc — the JSON forms of a planner input and of a plan
// (docs/planner.md). The plan is written with the RFC 8785 writer, so equal
// plans give equal bytes.
#include <string>

#include "model/json_fields.h"
#include "plan/plan.h"

namespace cairn {

namespace {

Json reason_json(const PlanDecision& d) {
  Json r = Json::object();
  r.set("code", plan_reason_name(d.reason));
  switch (d.reason) {
    case PlanReason::kMissingDependency:
      r.set("key", d.arg);
      if (!d.hint.empty()) r.set("hint", d.hint);
      break;
    case PlanReason::kLaneFull:
    case PlanReason::kNoBudget:
      r.set("lane", d.arg);
      break;
    case PlanReason::kDeniedByHint:
    case PlanReason::kCappedByHint:
      r.set("hint", d.arg);
      break;
    case PlanReason::kBackoffUntil:
      r.set("until", d.until);
      if (!d.hint.empty()) r.set("hint", d.hint);
      break;
    case PlanReason::kCoalescedInto:
      r.set("into", d.arg);
      break;
    case PlanReason::kAdmitted:
    case PlanReason::kStale:
      break;
  }
  return r;
}

Status read_object_of_ints(const Json& obj, std::string_view key,
                           std::map<std::string, std::int64_t, std::less<>>& out) {
  const Json* v = obj.find(key);
  if (v == nullptr || v->is_null()) return Status();
  if (!v->is_object()) return field_error(key, "must be an object");
  for (const auto& [k, n] : v->as_object()) {
    std::optional<std::int64_t> i = n.int_if();
    if (!i) return field_error(key, "values must be integers");
    out[k] = *i;
  }
  return Status();
}

Result<PlanHintType> parse_hint_type(std::string_view s) {
  if (s == "deny") return PlanHintType::kDeny;
  if (s == "cap") return PlanHintType::kCap;
  if (s == "defer") return PlanHintType::kDefer;
  if (s == "priority") return PlanHintType::kPriority;
  if (s == "require") return PlanHintType::kRequire;
  return field_error("type", "must be deny, cap, defer, priority or require");
}

const JsonArray* array_member(const Json& obj, std::string_view key, Status& st) {
  const Json* v = obj.find(key);
  if (v == nullptr || v->is_null()) return nullptr;
  if (!v->is_array()) st = field_error(key, "must be an array");
  return v->array_if();
}

}  // namespace

Json plan_to_json(const Plan& p) {
  Json out = Json::object();
  out.set("now_ms", p.now_ms);
  Json admitted = Json::array();
  for (const std::string& id : p.admitted) admitted.push_back(id);
  out.set("admitted", std::move(admitted));
  Json intents = Json::array();
  for (const PlanDecision& d : p.decisions) {
    Json j = Json::object();
    j.set("id", d.id);
    j.set("lane", d.lane);
    j.set("budget", d.budget_key);
    j.set("priority", d.priority);
    j.set("reason", reason_json(d));
    j.set("text", d.text());
    if (d.wave >= 0) {
      j.set("wave", d.wave);
      j.set("duration_ms", d.duration_ms);
      j.set("start_in_ms", d.start_in_ms);
      j.set("done_in_ms", d.done_in_ms);
    }
    intents.push_back(std::move(j));
  }
  out.set("intents", std::move(intents));
  Json lanes = Json::array();
  for (const PlanLaneUsage& l : p.lanes) {
    Json j = Json::object();
    j.set("lane", l.key);
    j.set("configured", l.configured);
    if (l.configured) {
      j.set("max_concurrency", l.budget.max_concurrency);
      j.set("max_cost_units", l.budget.max_cost_units);
    }
    j.set("running", l.running);
    j.set("running_cost", l.running_cost);
    j.set("admitted", l.admitted);
    j.set("admitted_cost", l.admitted_cost);
    j.set("queued", l.queued);
    j.set("waiting", l.waiting);
    j.set("waves", l.waves);
    j.set("done_in_ms", l.done_in_ms);
    lanes.push_back(std::move(j));
  }
  out.set("lanes", std::move(lanes));
  const PlanEstimates& e = p.estimates;
  Json est = Json::object();
  est.set("first_done_in_ms", e.any ? Json(e.first_done_in_ms) : Json());
  est.set("all_done_in_ms", e.any ? Json(e.all_done_in_ms) : Json());
  est.set("first_response_budget_ms", e.first_response_budget_ms);
  est.set("all_responses_budget_ms", e.all_responses_budget_ms);
  est.set("meets_first_response_budget", e.meets_first_response_budget);
  est.set("meets_all_responses_budget", e.meets_all_responses_budget);
  out.set("estimates", std::move(est));
  out.set("wake_at", p.wake_at > 0 ? Json(p.wake_at) : Json());
  return out;
}

std::string plan_to_jcs(const Plan& p) {
  return to_jcs(plan_to_json(p));
}

Result<ParsedPlanInput> plan_input_from_json(const Json& v, const PlanLimits& limits) {
  CAIRN_RETURN_IF_ERROR(expect_object(v, "plan input"));
  CAIRN_RETURN_IF_ERROR(reject_unknown_fields(
      v, {"now_ms", "lanes", "default_lane", "first_response_budget_ms", "all_responses_budget_ms",
          "default_duration_ms", "lane_duration_ms", "estimates", "facts", "hints", "intents"}));
  ParsedPlanInput out;
  PlanInput& in = out.input;
  CAIRN_RETURN_IF_ERROR(read_int(v, "now_ms", in.now_ms));
  CAIRN_RETURN_IF_ERROR(read_bool(v, "default_lane", in.default_lane, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(
      read_int(v, "first_response_budget_ms", in.first_response_budget_ms, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(
      read_int(v, "all_responses_budget_ms", in.all_responses_budget_ms, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(
      read_int(v, "default_duration_ms", in.default_duration_ms, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_object_of_ints(v, "lane_duration_ms", in.lane_duration_ms));

  if (const Json* lanes = v.find("lanes"); lanes != nullptr && !lanes->is_null()) {
    if (!lanes->is_object()) return field_error("lanes", "must be an object");
    if (lanes->size() > limits.lanes_max) return too_large("too many lanes", "too_large");
    for (const auto& [key, b] : lanes->as_object()) {
      CAIRN_RETURN_IF_ERROR(expect_object(b, "lane budget"));
      CAIRN_RETURN_IF_ERROR(reject_unknown_fields(b, {"max_concurrency", "max_cost_units"}));
      LaneBudget budget;
      CAIRN_RETURN_IF_ERROR(read_int(b, "max_concurrency", budget.max_concurrency));
      budget.max_cost_units = budget.max_concurrency;  // default: one unit per slot
      CAIRN_RETURN_IF_ERROR(
          read_int(b, "max_cost_units", budget.max_cost_units, Presence::kOptional));
      in.lanes[key] = budget;
    }
  }

  Status st;
  if (const JsonArray* a = array_member(v, "estimates", st)) {
    for (const Json& e : *a) {
      CAIRN_RETURN_IF_ERROR(expect_object(e, "estimate"));
      CAIRN_RETURN_IF_ERROR(reject_unknown_fields(e, {"kind", "lane", "ms"}));
      std::string kind, lane;
      std::int64_t ms = 0;
      CAIRN_RETURN_IF_ERROR(read_string(e, "kind", kind));
      CAIRN_RETURN_IF_ERROR(read_string(e, "lane", lane));
      CAIRN_RETURN_IF_ERROR(read_int(e, "ms", ms));
      in.estimates[{kind, lane}] = ms;
    }
  }
  CAIRN_RETURN_IF_ERROR(st);

  if (const JsonArray* a = array_member(v, "facts", st)) {
    for (const Json& f : *a) {
      CAIRN_RETURN_IF_ERROR(expect_object(f, "fact"));
      CAIRN_RETURN_IF_ERROR(reject_unknown_fields(f, {"id", "kind", "recorded_at"}));
      std::string id, kind;
      std::int64_t at = 0;
      CAIRN_RETURN_IF_ERROR(read_string(f, "id", id));
      CAIRN_RETURN_IF_ERROR(read_string(f, "kind", kind));
      CAIRN_RETURN_IF_ERROR(read_int(f, "recorded_at", at));
      out.facts.add(std::move(id), kind, at);
    }
  }
  CAIRN_RETURN_IF_ERROR(st);

  if (const JsonArray* a = array_member(v, "hints", st)) {
    if (a->size() > limits.hints_max) return too_large("too many hints", "too_large");
    for (const Json& h : *a) {
      CAIRN_RETURN_IF_ERROR(expect_object(h, "hint"));
      CAIRN_RETURN_IF_ERROR(
          reject_unknown_fields(h, {"id", "type", "n", "delta", "until", "fact_kind"}));
      PlanHint hint;
      std::string type;
      CAIRN_RETURN_IF_ERROR(read_string(h, "id", hint.id));
      CAIRN_RETURN_IF_ERROR(read_string(h, "type", type));
      CAIRN_ASSIGN_OR_RETURN(hint.type, parse_hint_type(type));
      CAIRN_RETURN_IF_ERROR(read_int(h, "n", hint.n, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_int(h, "delta", hint.delta, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_int(h, "until", hint.until, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_string(h, "fact_kind", hint.fact_kind, Presence::kOptional));
      in.hints.push_back(std::move(hint));
    }
  }
  CAIRN_RETURN_IF_ERROR(st);

  if (const JsonArray* a = array_member(v, "intents", st)) {
    if (a->size() > limits.intents_max) return too_large("too many intents", "too_large");
    in.intents.reserve(a->size());
    for (const Json& j : *a) {
      CAIRN_RETURN_IF_ERROR(expect_object(j, "intent"));
      CAIRN_RETURN_IF_ERROR(reject_unknown_fields(
          j, {"id", "kind", "lane", "provider", "cost_units", "priority", "created_seq",
              "created_at", "requires", "identity", "stale_after_ms", "state", "not_before",
              "claimed_at", "hints"}));
      PlanIntent it;
      std::string state = "open";
      CAIRN_RETURN_IF_ERROR(read_string(j, "id", it.id));
      CAIRN_RETURN_IF_ERROR(read_string(j, "kind", it.kind, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_string(j, "lane", it.lane, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_string(j, "provider", it.provider, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_int(j, "cost_units", it.cost_units, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_int(j, "priority", it.priority, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_uint(j, "created_seq", it.created_seq, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_int(j, "created_at", it.created_at, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_string_array(j, "requires", it.requires_, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_string(j, "identity", it.identity, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_int(j, "stale_after_ms", it.stale_after_ms, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_string(j, "state", state, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_int(j, "not_before", it.not_before, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_int(j, "claimed_at", it.claimed_at, Presence::kOptional));
      CAIRN_RETURN_IF_ERROR(read_string_array(j, "hints", it.hints, Presence::kOptional));
      std::optional<PlanIntentState> s = parse_plan_state(state);
      if (!s) return field_error("state", "must be open, deferred or claimed");
      it.state = *s;
      in.intents.push_back(std::move(it));
    }
  }
  CAIRN_RETURN_IF_ERROR(st);
  return out;
}

}  // namespace cairn

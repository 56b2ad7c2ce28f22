// intent.cc — intent drafts, defaults, JSON and records.
#include "model/intent.h"

#include <string>
#include <unordered_set>

#include "model/json_fields.h"
#include "model/json_parse.h"
#include "model/names.h"

namespace cairn {

std::string_view state_name(IntentState s) {
  switch (s) {
    case IntentState::kOpen:
      return "open";
    case IntentState::kDeferred:
      return "deferred";
    case IntentState::kClaimed:
      return "claimed";
    case IntentState::kConcluded:
      return "concluded";
    case IntentState::kDead:
      return "dead";
    case IntentState::kCancelled:
      return "cancelled";
    case IntentState::kStale:
      return "stale";
    case IntentState::kCoalesced:
      return "coalesced";
  }
  CAIRN_UNREACHABLE();
}

std::optional<IntentState> parse_state(std::string_view name) {
  for (int i = 0; i < kIntentStateCount; ++i) {
    auto s = static_cast<IntentState>(i);
    if (state_name(s) == name) return s;
  }
  return std::nullopt;
}

namespace {

Status check_unique(std::string_view field, const std::vector<std::string>& items) {
  std::unordered_set<std::string_view> seen;
  for (const auto& i : items) {
    if (!seen.insert(i).second) {
      return invalid(std::string(field) + " repeats " + i, "invalid_field",
                     Json(JsonObject{{"field", Json(field)}}));
    }
  }
  return Status();
}

Status bounded_list(std::string_view field, std::size_t n, std::size_t max) {
  if (n > max) {
    return too_large(std::string(field) + " has more than " + std::to_string(max) + " items",
                     "too_large", Json(JsonObject{{"field", Json(field)}}));
  }
  return Status();
}

Status in_range(std::string_view field, std::int64_t v, std::int64_t lo, std::int64_t hi) {
  if (v < lo || v > hi) {
    return invalid(
        std::string(field) + " must be within " + std::to_string(lo) + ".." + std::to_string(hi),
        "invalid_field", Json(JsonObject{{"field", Json(field)}}));
  }
  return Status();
}

}  // namespace

Status normalize_intent_draft(IntentDraft& d, const ModelLimits& limits) {
  if (!d.id.empty()) CAIRN_RETURN_IF_ERROR(check_name("id", d.id, limits));
  CAIRN_RETURN_IF_ERROR(check_kind("kind", d.kind, limits));
  CAIRN_RETURN_IF_ERROR(check_name("creator", d.creator, limits));
  if (d.lane.empty()) d.lane = std::string(kDefaultLane);
  CAIRN_RETURN_IF_ERROR(check_name("lane", d.lane, limits));
  if (!d.identity.empty()) CAIRN_RETURN_IF_ERROR(check_name("identity", d.identity, limits));
  if (!d.provider.empty()) CAIRN_RETURN_IF_ERROR(check_name("provider", d.provider, limits));
  if (d.cost_units == 0) d.cost_units = 1;
  CAIRN_RETURN_IF_ERROR(in_range("cost_units", d.cost_units, 1, limits.cost_units_max));
  CAIRN_RETURN_IF_ERROR(in_range("stale_after_ms", d.stale_after_ms, 0, limits.stale_after_ms_max));
  if (d.from_facts.empty()) {
    return invalid("an intent must be grounded in at least one fact (from_facts)", "not_grounded",
                   Json(JsonObject{{"field", Json("from_facts")}}));
  }
  CAIRN_RETURN_IF_ERROR(bounded_list("from_facts", d.from_facts.size(), limits.from_facts_max));
  for (const auto& f : d.from_facts) CAIRN_RETURN_IF_ERROR(check_fact_id("from_facts", f));
  CAIRN_RETURN_IF_ERROR(check_unique("from_facts", d.from_facts));
  CAIRN_RETURN_IF_ERROR(bounded_list("requires", d.requires_.size(), limits.requires_max));
  for (const auto& r : d.requires_) CAIRN_RETURN_IF_ERROR(check_name("requires", r, limits));
  CAIRN_RETURN_IF_ERROR(check_unique("requires", d.requires_));
  CAIRN_RETURN_IF_ERROR(
      in_range("priority", d.priority, -limits.priority_abs_max, limits.priority_abs_max));
  if (d.lease_ttl_ms == 0) d.lease_ttl_ms = limits.lease_ttl_ms_default;
  CAIRN_RETURN_IF_ERROR(
      in_range("lease_ttl_ms", d.lease_ttl_ms, limits.lease_ttl_ms_min, limits.lease_ttl_ms_max));
  if (d.max_attempts == 0) d.max_attempts = limits.max_attempts_default;
  CAIRN_RETURN_IF_ERROR(in_range("max_attempts", d.max_attempts, 1, limits.max_attempts_max));
  std::string spec_jcs = to_json(d.spec);
  if (spec_jcs.size() > limits.spec_bytes_max) {
    return too_large("spec is larger than " + std::to_string(limits.spec_bytes_max) + " bytes",
                     "too_large", Json(JsonObject{{"field", Json("spec")}}));
  }
  return Status();
}

Result<IntentDraft> intent_draft_from_json(const Json& obj, std::string_view default_creator) {
  CAIRN_RETURN_IF_ERROR(expect_object(obj, "intent"));
  CAIRN_RETURN_IF_ERROR(reject_unknown_fields(
      obj, {"id", "kind", "spec", "from_facts", "lane", "provider", "cost_units", "priority",
            "identity", "requires", "stale_after_ms", "lease_ttl_ms", "max_attempts", "creator"}));
  IntentDraft d;
  CAIRN_RETURN_IF_ERROR(read_string(obj, "id", d.id, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_string(obj, "kind", d.kind));
  CAIRN_RETURN_IF_ERROR(read_value(obj, "spec", d.spec, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_string_array(obj, "from_facts", d.from_facts));
  CAIRN_RETURN_IF_ERROR(read_string(obj, "lane", d.lane, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_string(obj, "provider", d.provider, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_int(obj, "cost_units", d.cost_units, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_int(obj, "priority", d.priority, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_string(obj, "identity", d.identity, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_string_array(obj, "requires", d.requires_, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_int(obj, "stale_after_ms", d.stale_after_ms, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_int(obj, "lease_ttl_ms", d.lease_ttl_ms, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_int(obj, "max_attempts", d.max_attempts, Presence::kOptional));
  d.creator = std::string(default_creator);
  CAIRN_RETURN_IF_ERROR(read_string(obj, "creator", d.creator, Presence::kOptional));
  return d;
}

namespace {

Json string_array(const std::vector<std::string>& v) {
  JsonArray a;
  a.reserve(v.size());
  for (const auto& s : v) a.emplace_back(s);
  return Json(std::move(a));
}

void append_string_array(std::string& out, const std::vector<std::string>& v) {
  out += '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, v[i]);
  }
  out += ']';
}

void append_int_member(std::string& out, std::string_view name, std::int64_t v) {
  out += ",\"";
  out += name;
  out += "\":";
  out += std::to_string(v);
}

void append_string_member(std::string& out, std::string_view name, std::string_view v) {
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(out, v);
}

}  // namespace

Json intent_to_json(const Intent& in) {
  const IntentDef& d = in.def;
  const IntentStatus& s = in.st;
  JsonObject o;
  o.reserve(26);
  o.emplace_back("id", Json(d.id));
  o.emplace_back("kind", Json(d.kind));
  o.emplace_back("spec", d.spec);
  o.emplace_back("from_facts", string_array(d.from_facts));
  o.emplace_back("lane", Json(d.lane));
  o.emplace_back("provider", d.provider.empty() ? Json() : Json(d.provider));
  o.emplace_back("cost_units", Json(d.cost_units));
  o.emplace_back("priority", Json(d.priority));
  o.emplace_back("identity", d.identity.empty() ? Json() : Json(d.identity));
  o.emplace_back("requires", string_array(d.requires_));
  o.emplace_back("stale_after_ms", Json(d.stale_after_ms));
  o.emplace_back("lease_ttl_ms", Json(d.lease_ttl_ms));
  o.emplace_back("max_attempts", Json(d.max_attempts));
  o.emplace_back("creator", Json(d.creator));
  o.emplace_back("created_at", Json(d.created_at));
  o.emplace_back("state", Json(state_name(s.state)));
  o.emplace_back("epoch", Json(s.epoch));
  o.emplace_back("holder", s.holder.empty() ? Json() : Json(s.holder));
  o.emplace_back("lease_expires_at", s.lease_expires_at == 0 ? Json() : Json(s.lease_expires_at));
  o.emplace_back("attempts", Json(s.attempts));
  o.emplace_back("not_before", s.not_before == 0 ? Json() : Json(s.not_before));
  o.emplace_back("result", s.result.empty() ? Json() : Json(s.result));
  o.emplace_back("last_error", s.last_error.empty() ? Json() : Json(s.last_error));
  o.emplace_back("coalesced_into", s.coalesced_into.empty() ? Json() : Json(s.coalesced_into));
  o.emplace_back("updated_at", Json(s.updated_at));
  return Json(std::move(o));
}

std::string encode_intent_def(const IntentDef& d) {
  std::string out;
  out.reserve(256);
  out += "{\"id\":";
  append_json_string(out, d.id);
  append_string_member(out, "kind", d.kind);
  out += ",\"spec\":";
  append_json(out, d.spec);
  out += ",\"from_facts\":";
  append_string_array(out, d.from_facts);
  append_string_member(out, "lane", d.lane);
  append_int_member(out, "priority", d.priority);
  append_string_member(out, "identity", d.identity);
  out += ",\"requires\":";
  append_string_array(out, d.requires_);
  append_int_member(out, "lease_ttl_ms", d.lease_ttl_ms);
  append_int_member(out, "max_attempts", d.max_attempts);
  append_string_member(out, "creator", d.creator);
  append_int_member(out, "created_at", d.created_at);
  append_int_member(out, "created_seq", static_cast<std::int64_t>(d.created_seq));
  // Admission members (absent in records written before them): only when set.
  if (!d.provider.empty()) append_string_member(out, "provider", d.provider);
  if (d.cost_units != 1) append_int_member(out, "cost_units", d.cost_units);
  if (d.stale_after_ms != 0) append_int_member(out, "stale_after_ms", d.stale_after_ms);
  out += '}';
  return out;
}

Result<IntentDef> decode_intent_def(std::string_view bytes) {
  CAIRN_ASSIGN_OR_RETURN(Json r, parse_json(bytes));
  CAIRN_RETURN_IF_ERROR(expect_object(r, "intent record"));
  IntentDef d;
  CAIRN_RETURN_IF_ERROR(read_string(r, "id", d.id));
  CAIRN_RETURN_IF_ERROR(read_string(r, "kind", d.kind));
  CAIRN_RETURN_IF_ERROR(read_value(r, "spec", d.spec));
  CAIRN_RETURN_IF_ERROR(read_string_array(r, "from_facts", d.from_facts));
  CAIRN_RETURN_IF_ERROR(read_string(r, "lane", d.lane));
  CAIRN_RETURN_IF_ERROR(read_int(r, "priority", d.priority));
  CAIRN_RETURN_IF_ERROR(read_string(r, "identity", d.identity));
  CAIRN_RETURN_IF_ERROR(read_string_array(r, "requires", d.requires_));
  CAIRN_RETURN_IF_ERROR(read_int(r, "lease_ttl_ms", d.lease_ttl_ms));
  CAIRN_RETURN_IF_ERROR(read_int(r, "max_attempts", d.max_attempts));
  CAIRN_RETURN_IF_ERROR(read_string(r, "creator", d.creator));
  CAIRN_RETURN_IF_ERROR(read_int(r, "created_at", d.created_at));
  CAIRN_RETURN_IF_ERROR(read_uint(r, "created_seq", d.created_seq));
  CAIRN_RETURN_IF_ERROR(read_string(r, "provider", d.provider, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_int(r, "cost_units", d.cost_units, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_int(r, "stale_after_ms", d.stale_after_ms, Presence::kOptional));
  return d;
}

std::string encode_intent_status(const IntentStatus& s) {
  std::string out;
  out.reserve(160);
  out += "{\"state\":\"";
  out += state_name(s.state);
  out += '"';
  append_int_member(out, "epoch", static_cast<std::int64_t>(s.epoch));
  append_string_member(out, "holder", s.holder);
  append_int_member(out, "lease_expires_at", s.lease_expires_at);
  append_int_member(out, "attempts", s.attempts);
  append_int_member(out, "not_before", s.not_before);
  append_string_member(out, "result", s.result);
  append_string_member(out, "last_error", s.last_error);
  append_int_member(out, "updated_at", s.updated_at);
  if (!s.coalesced_into.empty()) append_string_member(out, "coalesced_into", s.coalesced_into);
  out += '}';
  return out;
}

Result<IntentStatus> decode_intent_status(std::string_view bytes) {
  CAIRN_ASSIGN_OR_RETURN(Json r, parse_json(bytes));
  CAIRN_RETURN_IF_ERROR(expect_object(r, "intent status record"));
  IntentStatus s;
  std::string state;
  CAIRN_RETURN_IF_ERROR(read_string(r, "state", state));
  auto st = parse_state(state);
  if (!st) return internal_error("intent status record has unknown state " + state);
  s.state = *st;
  CAIRN_RETURN_IF_ERROR(read_uint(r, "epoch", s.epoch));
  CAIRN_RETURN_IF_ERROR(read_string(r, "holder", s.holder));
  CAIRN_RETURN_IF_ERROR(read_int(r, "lease_expires_at", s.lease_expires_at));
  CAIRN_RETURN_IF_ERROR(read_int(r, "attempts", s.attempts));
  CAIRN_RETURN_IF_ERROR(read_int(r, "not_before", s.not_before));
  CAIRN_RETURN_IF_ERROR(read_string(r, "result", s.result));
  CAIRN_RETURN_IF_ERROR(read_string(r, "last_error", s.last_error));
  CAIRN_RETURN_IF_ERROR(read_int(r, "updated_at", s.updated_at));
  CAIRN_RETURN_IF_ERROR(read_string(r, "coalesced_into", s.coalesced_into, Presence::kOptional));
  return s;
}

}  // namespace cairn

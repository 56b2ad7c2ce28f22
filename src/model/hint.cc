// hint.cc — hint validation, JSON and records.
#include "model/hint.h"

#include <string>

#include "model/json_fields.h"
#include "model/json_parse.h"
#include "model/names.h"

namespace cairn {

std::string_view effect_name(HintEffectType t) {
  switch (t) {
    case HintEffectType::kDeny:
      return "deny";
    case HintEffectType::kCap:
      return "cap";
    case HintEffectType::kDefer:
      return "defer";
    case HintEffectType::kPriority:
      return "priority";
    case HintEffectType::kRequire:
      return "require";
  }
  CAIRN_UNREACHABLE();
}

namespace {

std::optional<HintEffectType> parse_effect(std::string_view s) {
  for (auto t : {HintEffectType::kDeny, HintEffectType::kCap, HintEffectType::kDefer,
                 HintEffectType::kPriority, HintEffectType::kRequire}) {
    if (effect_name(t) == s) return t;
  }
  return std::nullopt;
}

Json selector_json(const HintSelector& s) {
  JsonObject o;
  if (!s.kind.empty()) o.emplace_back("kind", Json(s.kind));
  if (!s.lane.empty()) o.emplace_back("lane", Json(s.lane));
  if (!s.identity.empty()) o.emplace_back("identity", Json(s.identity));
  if (!s.creator.empty()) o.emplace_back("creator", Json(s.creator));
  return Json(std::move(o));
}

Json effect_json(const HintEffect& e) {
  JsonObject o;
  o.emplace_back("type", Json(effect_name(e.type)));
  switch (e.type) {
    case HintEffectType::kDeny:
      break;
    case HintEffectType::kCap:
      o.emplace_back("n", Json(e.n));
      break;
    case HintEffectType::kDefer:
      o.emplace_back("until", Json(e.until));
      break;
    case HintEffectType::kPriority:
      o.emplace_back("delta", Json(e.n));
      break;
    case HintEffectType::kRequire:
      o.emplace_back("fact_kind", Json(e.fact_kind));
      break;
  }
  return Json(std::move(o));
}

Json draft_json(const HintDraft& d) {
  JsonArray derived;
  for (const auto& f : d.derived_from) derived.emplace_back(f);
  return Json(JsonObject{{"id", Json(d.id)},
                         {"kind", Json(d.kind)},
                         {"selector", selector_json(d.selector)},
                         {"effect", effect_json(d.effect)},
                         {"expires_at", d.expires_at == 0 ? Json() : Json(d.expires_at)},
                         {"reason", Json(d.reason)},
                         {"derived_from", Json(std::move(derived))},
                         {"creator", Json(d.creator)}});
}

}  // namespace

Status validate_hint_draft(const HintDraft& d, const ModelLimits& limits) {
  if (!d.id.empty()) CAIRN_RETURN_IF_ERROR(check_name("id", d.id, limits));
  CAIRN_RETURN_IF_ERROR(check_kind("kind", d.kind, limits));
  CAIRN_RETURN_IF_ERROR(check_name("creator", d.creator, limits));
  const HintSelector& s = d.selector;
  if (!s.kind.empty()) CAIRN_RETURN_IF_ERROR(check_kind("selector.kind", s.kind, limits));
  if (!s.lane.empty()) CAIRN_RETURN_IF_ERROR(check_name("selector.lane", s.lane, limits));
  if (!s.identity.empty())
    CAIRN_RETURN_IF_ERROR(check_name("selector.identity", s.identity, limits));
  if (!s.creator.empty()) CAIRN_RETURN_IF_ERROR(check_name("selector.creator", s.creator, limits));
  const HintEffect& e = d.effect;
  switch (e.type) {
    case HintEffectType::kDeny:
      break;
    case HintEffectType::kCap:
      if (e.n < 0 || e.n > limits.hint_cap_max) {
        return field_error("effect.n", "must be within 0.." + std::to_string(limits.hint_cap_max));
      }
      break;
    case HintEffectType::kDefer:
      if (e.until <= 0) return field_error("effect.until", "must be a wall time in ms");
      break;
    case HintEffectType::kPriority:
      if (e.n < -limits.priority_abs_max || e.n > limits.priority_abs_max) {
        return field_error("effect.delta", "is out of range");
      }
      break;
    case HintEffectType::kRequire:
      CAIRN_RETURN_IF_ERROR(check_kind("effect.fact_kind", e.fact_kind, limits));
      break;
  }
  if (d.expires_at < 0) return field_error("expires_at", "must not be negative");
  CAIRN_RETURN_IF_ERROR(check_text("reason", d.reason, limits.reason_bytes_max));
  if (d.derived_from.size() > limits.derived_from_max) {
    return too_large("derived_from has too many facts", "too_large",
                     Json(JsonObject{{"field", Json("derived_from")}}));
  }
  for (const auto& f : d.derived_from) CAIRN_RETURN_IF_ERROR(check_fact_id("derived_from", f));
  return Status();
}

Result<HintDraft> hint_draft_from_json(const Json& obj, std::string_view default_creator) {
  CAIRN_RETURN_IF_ERROR(expect_object(obj, "hint"));
  CAIRN_RETURN_IF_ERROR(reject_unknown_fields(
      obj,
      {"id", "kind", "selector", "effect", "expires_at", "reason", "derived_from", "creator"}));
  HintDraft d;
  CAIRN_RETURN_IF_ERROR(read_string(obj, "id", d.id, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_string(obj, "kind", d.kind));
  if (const Json* sel = obj.find("selector"); sel != nullptr && !sel->is_null()) {
    CAIRN_RETURN_IF_ERROR(expect_object(*sel, "selector"));
    CAIRN_RETURN_IF_ERROR(reject_unknown_fields(*sel, {"kind", "lane", "identity", "creator"}));
    CAIRN_RETURN_IF_ERROR(read_string(*sel, "kind", d.selector.kind, Presence::kOptional));
    CAIRN_RETURN_IF_ERROR(read_string(*sel, "lane", d.selector.lane, Presence::kOptional));
    CAIRN_RETURN_IF_ERROR(read_string(*sel, "identity", d.selector.identity, Presence::kOptional));
    CAIRN_RETURN_IF_ERROR(read_string(*sel, "creator", d.selector.creator, Presence::kOptional));
  }
  const Json* eff = obj.find("effect");
  if (eff == nullptr) return field_error("effect", "is required");
  CAIRN_RETURN_IF_ERROR(expect_object(*eff, "effect"));
  CAIRN_RETURN_IF_ERROR(reject_unknown_fields(*eff, {"type", "n", "delta", "until", "fact_kind"}));
  std::string type;
  CAIRN_RETURN_IF_ERROR(read_string(*eff, "type", type));
  auto t = parse_effect(type);
  if (!t) return field_error("effect.type", "must be one of deny, cap, defer, priority, require");
  d.effect.type = *t;
  switch (*t) {
    case HintEffectType::kDeny:
      break;
    case HintEffectType::kCap:
      CAIRN_RETURN_IF_ERROR(read_int(*eff, "n", d.effect.n));
      break;
    case HintEffectType::kDefer:
      CAIRN_RETURN_IF_ERROR(read_int(*eff, "until", d.effect.until));
      break;
    case HintEffectType::kPriority:
      CAIRN_RETURN_IF_ERROR(read_int(*eff, "delta", d.effect.n));
      break;
    case HintEffectType::kRequire:
      CAIRN_RETURN_IF_ERROR(read_string(*eff, "fact_kind", d.effect.fact_kind));
      break;
  }
  CAIRN_RETURN_IF_ERROR(read_int(obj, "expires_at", d.expires_at, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_string(obj, "reason", d.reason, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(
      read_string_array(obj, "derived_from", d.derived_from, Presence::kOptional));
  d.creator = std::string(default_creator);
  CAIRN_RETURN_IF_ERROR(read_string(obj, "creator", d.creator, Presence::kOptional));
  return d;
}

Json hint_to_json(const Hint& h, std::int64_t now_ms) {
  Json j = draft_json(h.d);
  j.set("created_at", Json(h.created_at));
  j.set("seq", Json(h.created_seq));
  j.set("revoked", Json(h.revoked));
  j.set("live", Json(h.live(now_ms)));
  return j;
}

std::string encode_hint_record(const Hint& h) {
  Json j = draft_json(h.d);
  j.set("created_at", Json(h.created_at));
  j.set("created_seq", Json(h.created_seq));
  j.set("revoked", Json(h.revoked));
  j.set("ended_at", Json(h.ended_at));
  return to_json(j);
}

Result<Hint> decode_hint_record(std::string_view bytes) {
  CAIRN_ASSIGN_OR_RETURN(Json r, parse_json(bytes));
  CAIRN_RETURN_IF_ERROR(expect_object(r, "hint record"));
  Hint h;
  // The draft members are stored in their API form.
  Json draft = r;
  for (auto k : {"created_at", "created_seq", "revoked", "ended_at"}) draft.erase(k);
  CAIRN_ASSIGN_OR_RETURN(h.d, hint_draft_from_json(draft, ""));
  CAIRN_RETURN_IF_ERROR(read_int(r, "created_at", h.created_at));
  CAIRN_RETURN_IF_ERROR(read_uint(r, "created_seq", h.created_seq));
  CAIRN_RETURN_IF_ERROR(read_bool(r, "revoked", h.revoked));
  CAIRN_RETURN_IF_ERROR(read_int(r, "ended_at", h.ended_at));
  return h;
}

}  // namespace cairn

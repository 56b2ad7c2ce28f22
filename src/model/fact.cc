// fact.cc — fact canonicalisation, ids and records.
#include "model/fact.h"

#include <string>
#include <unordered_set>

#include "model/json_fields.h"
#include "model/json_parse.h"
#include "model/names.h"
#include "model/sha256.h"

namespace cairn {

Result<CanonicalFact> canonicalize_fact(const FactBody& body, const ModelLimits& limits) {
  CAIRN_RETURN_IF_ERROR(check_kind("kind", body.kind, limits));
  CAIRN_RETURN_IF_ERROR(check_name("creator", body.creator, limits));
  CAIRN_RETURN_IF_ERROR(check_content_type(body.content_type, limits));
  if (body.derived_from.size() > limits.derived_from_max) {
    return too_large(
        "derived_from lists more than " + std::to_string(limits.derived_from_max) + " facts",
        "too_large", Json(JsonObject{{"field", Json("derived_from")}}));
  }
  for (const std::string& id : body.derived_from) {
    CAIRN_RETURN_IF_ERROR(check_fact_id("derived_from", id));
  }
  if (body.derived_from.size() > 1) {
    std::unordered_set<std::string_view> seen;
    for (const std::string& id : body.derived_from) {
      if (!seen.insert(id).second) {
        return invalid("derived_from repeats " + id, "invalid_field",
                       Json(JsonObject{{"field", Json("derived_from")}}));
      }
    }
  }

  // The five member names are ASCII, so their JCS order is fixed:
  // content < content_type < creator < derived_from < kind.
  CanonicalFact out;
  std::string& c = out.canonical;
  c.reserve(128);
  c += "{\"content\":";
  const std::size_t content_start = c.size();
  append_jcs(c, body.content);
  const std::size_t content_bytes = c.size() - content_start;
  if (content_bytes > limits.content_bytes_max) {
    return too_large("content is " + std::to_string(content_bytes) +
                         " bytes (canonical); the limit is " +
                         std::to_string(limits.content_bytes_max),
                     "too_large", Json(JsonObject{{"field", Json("content")}}));
  }
  c += ",\"content_type\":";
  append_json_string(c, body.content_type);
  c += ",\"creator\":";
  append_json_string(c, body.creator);
  c += ",\"derived_from\":[";
  for (std::size_t i = 0; i < body.derived_from.size(); ++i) {
    if (i > 0) c += ',';
    c += '"';
    c += body.derived_from[i];  // validated hex: no escaping needed
    c += '"';
  }
  c += "],\"kind\":";
  append_json_string(c, body.kind);
  c += '}';
  out.id.reserve(64);
  append_hex(out.id, sha256(c));
  return out;
}

Json fact_hashed_object(const FactBody& body) {
  JsonArray derived;
  derived.reserve(body.derived_from.size());
  for (const auto& d : body.derived_from) derived.emplace_back(d);
  return Json(JsonObject{{"content", body.content},
                         {"content_type", Json(body.content_type)},
                         {"creator", Json(body.creator)},
                         {"derived_from", Json(std::move(derived))},
                         {"kind", Json(body.kind)}});
}

Result<FactBody> fact_body_from_json(const Json& obj, std::string_view default_creator) {
  CAIRN_RETURN_IF_ERROR(expect_object(obj, "fact"));
  CAIRN_RETURN_IF_ERROR(
      reject_unknown_fields(obj, {"kind", "content", "content_type", "derived_from", "creator"}));
  FactBody b;
  CAIRN_RETURN_IF_ERROR(read_string(obj, "kind", b.kind));
  CAIRN_RETURN_IF_ERROR(read_value(obj, "content", b.content));
  CAIRN_RETURN_IF_ERROR(read_string(obj, "content_type", b.content_type, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(
      read_string_array(obj, "derived_from", b.derived_from, Presence::kOptional));
  b.creator = std::string(default_creator);
  CAIRN_RETURN_IF_ERROR(read_string(obj, "creator", b.creator, Presence::kOptional));
  return b;
}

Json fact_to_json(const Fact& f) {
  Json j = fact_hashed_object(f.body);
  j.set("id", Json(f.id));
  j.set("seq", Json(f.seq));
  j.set("recorded_at", Json(f.recorded_at));
  return j;
}

std::string encode_fact_record(std::string_view id, std::uint64_t seq, std::int64_t recorded_at,
                               std::string_view canonical) {
  std::string out;
  out.reserve(canonical.size() + 128);
  out += "{\"fact\":";
  out += canonical;
  out += ",\"id\":\"";
  out += id;
  out += "\",\"seq\":";
  out += std::to_string(seq);
  out += ",\"recorded_at\":";
  out += std::to_string(recorded_at);
  out += '}';
  return out;
}

Result<Fact> decode_fact_record(std::string_view bytes) {
  CAIRN_ASSIGN_OR_RETURN(Json rec, parse_json(bytes));
  CAIRN_RETURN_IF_ERROR(expect_object(rec, "fact record"));
  const Json* body = rec.find("fact");
  if (body == nullptr) return internal_error("fact record without body");
  Fact f;
  CAIRN_ASSIGN_OR_RETURN(f.body, fact_body_from_json(*body, ""));
  CAIRN_RETURN_IF_ERROR(read_string(rec, "id", f.id));
  CAIRN_RETURN_IF_ERROR(read_uint(rec, "seq", f.seq));
  CAIRN_RETURN_IF_ERROR(read_int(rec, "recorded_at", f.recorded_at));
  return f;
}

}  // namespace cairn

// json_fields.cc — typed member reads.
#include "model/json_fields.h"

#include <string>

namespace cairn {

Status field_error(std::string_view key, std::string_view problem) {
  return invalid(std::string(key) + " " + std::string(problem), "invalid_field",
                 Json(JsonObject{{"field", Json(key)}}));
}

Status expect_object(const Json& v, std::string_view what) {
  if (!v.is_object()) {
    return invalid(std::string(what) + " must be a JSON object", "invalid_field",
                   Json(JsonObject{{"field", Json(what)}}));
  }
  return Status();
}

namespace {

// Finds a member; absent and null are the same for optional members.
Status locate(const Json& obj, std::string_view key, Presence p, const Json*& out) {
  out = obj.find(key);
  if (out == nullptr || out->is_null()) {
    out = nullptr;
    if (p == Presence::kRequired) return field_error(key, "is required");
  }
  return Status();
}

}  // namespace

Status read_string(const Json& obj, std::string_view key, std::string& out, Presence p) {
  const Json* v = nullptr;
  CAIRN_RETURN_IF_ERROR(locate(obj, key, p, v));
  if (v == nullptr) return Status();
  const std::string* s = v->string_if();
  if (s == nullptr) return field_error(key, "must be a string");
  out = *s;
  return Status();
}

Status read_int(const Json& obj, std::string_view key, std::int64_t& out, Presence p) {
  const Json* v = nullptr;
  CAIRN_RETURN_IF_ERROR(locate(obj, key, p, v));
  if (v == nullptr) return Status();
  auto i = v->int_if();
  if (!i) return field_error(key, "must be an integer within ±2^53");
  out = *i;
  return Status();
}

Status read_uint(const Json& obj, std::string_view key, std::uint64_t& out, Presence p) {
  std::int64_t i = 0;
  const Json* v = obj.find(key);
  if ((v == nullptr || v->is_null()) && p == Presence::kOptional) return Status();
  CAIRN_RETURN_IF_ERROR(read_int(obj, key, i, p));
  if (i < 0) return field_error(key, "must not be negative");
  out = static_cast<std::uint64_t>(i);
  return Status();
}

Status read_bool(const Json& obj, std::string_view key, bool& out, Presence p) {
  const Json* v = nullptr;
  CAIRN_RETURN_IF_ERROR(locate(obj, key, p, v));
  if (v == nullptr) return Status();
  auto b = v->bool_if();
  if (!b) return field_error(key, "must be a boolean");
  out = *b;
  return Status();
}

Status read_string_array(const Json& obj, std::string_view key, std::vector<std::string>& out,
                         Presence p) {
  const Json* v = nullptr;
  CAIRN_RETURN_IF_ERROR(locate(obj, key, p, v));
  if (v == nullptr) return Status();
  const JsonArray* a = v->array_if();
  if (a == nullptr) return field_error(key, "must be an array of strings");
  std::vector<std::string> items;
  items.reserve(a->size());
  for (const Json& e : *a) {
    const std::string* s = e.string_if();
    if (s == nullptr) return field_error(key, "must be an array of strings");
    items.push_back(*s);
  }
  out = std::move(items);
  return Status();
}

Status read_value(const Json& obj, std::string_view key, Json& out, Presence p) {
  const Json* v = obj.find(key);
  if (v == nullptr) {
    if (p == Presence::kRequired) return field_error(key, "is required");
    return Status();
  }
  out = *v;
  return Status();
}

Status reject_unknown_fields(const Json& obj, std::initializer_list<std::string_view> allowed) {
  const JsonObject* o = obj.object_if();
  if (o == nullptr) return Status();
  for (const auto& [k, v] : *o) {
    bool known = false;
    for (std::string_view a : allowed) {
      if (a == k) {
        known = true;
        break;
      }
    }
    if (!known) {
      return invalid("unknown field " + k, "unknown_field", Json(JsonObject{{"field", Json(k)}}));
    }
  }
  return Status();
}

}  // namespace cairn

// errors.cc — Status → HTTP (the table in errors.h).
#include "server/errors.h"

#include <algorithm>
#include <limits>

#include "model/names.h"

namespace cairn::server {

namespace {

constexpr std::string_view kUnprocessableReasons[] = {"unknown_reference", "not_grounded",
                                                      "result_check_failed"};

}  // namespace

HttpMapping http_mapping(const Status& s) {
  const std::string_view reason = s.reason();
  if (reason == "unauthenticated") return {401, 0};
  if (reason == "method_not_allowed") return {405, 0};
  if (reason == "request_timeout") return {408, 0};
  if (reason == "unsupported_media_type") return {415, 0};
  if (reason == "rate_limited") {
    std::int64_t retry_s = 1;
    if (const Json* d = s.details().find("retry_after_ms"); d != nullptr && d->int_if()) {
      retry_s = std::max<std::int64_t>(1, (*d->int_if() + 999) / 1000);
    }
    return {429, retry_s};
  }
  switch (s.code()) {
    case Code::kOk:
      return {200, 0};
    case Code::kInvalid:
      for (std::string_view r : kUnprocessableReasons) {
        if (reason == r) return {422, 0};
      }
      return {400, 0};
    case Code::kNotFound:
      return {404, 0};
    case Code::kConflict:
      return {409, 0};
    case Code::kForbidden:
      return {403, 0};
    case Code::kUnavailable:
      return {503, 1};
    case Code::kOutcomeUnknown:
      return {503, 1};
    case Code::kTooLarge:
      return {413, 0};
    case Code::kInternal:
      return {500, 0};
  }
  return {500, 0};
}

HttpResponse error_response(const Status& s) {
  const HttpMapping m = http_mapping(s);
  JsonObject err{{"code", Json(s.reason())},
                 {"message", Json(s.message())},
                 {"details", s.details().is_null() ? Json::object() : s.details()}};
  HttpResponse r;
  r.status = m.status;
  r.retry_after_s = m.retry_after_s;
  if (m.status == 405) {
    if (const Json* a = s.details().find("allow"); a != nullptr && a->is_array()) {
      for (const Json& method : a->as_array()) {
        if (!r.allow.empty()) r.allow += ", ";
        r.allow += method.string_if() != nullptr ? *method.string_if() : std::string();
      }
    }
  }
  r.body = to_json(Json(JsonObject{{"error", Json(std::move(err))}}));
  return r;
}

Status unauthenticated(std::string message) {
  return forbidden(std::move(message), "unauthenticated");
}

Status rate_limited(std::string message, std::int64_t retry_after_ms) {
  return unavailable(std::move(message), "rate_limited",
                     Json(JsonObject{{"retry_after_ms", Json(retry_after_ms)}}));
}

// Request text echoed in an error message: bytes that are not UTF-8 become
// U+FFFD (a JSON reply can only carry UTF-8; the writer asserts it).
std::string printable(std::string_view s) {
  return utf8_prefix(s, std::numeric_limits<std::size_t>::max());
}

Status method_not_allowed(std::string_view method, std::string_view path,
                          std::initializer_list<std::string_view> allow) {
  JsonArray methods;
  for (std::string_view m : allow) methods.emplace_back(m);
  return invalid(printable(method) + " is not allowed on " + printable(path), "method_not_allowed",
                 Json(JsonObject{{"allow", Json(std::move(methods))}}));
}

}  // namespace cairn::server

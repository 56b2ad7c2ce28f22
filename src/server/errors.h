// errors.h — the ONE table from a Status (code + reason) to an HTTP status,
// and the error body {"error": {"code", "message", "details"}} (shell).
//
//   code / reason                                   HTTP
//   invalid                                         400
//   invalid / unknown_reference, not_grounded,
//             result_check_failed                   422
//   invalid / invalid_json, duplicate_key, ...      400
//   invalid / method_not_allowed                    405 + Allow (details.allow)
//   invalid / request_timeout                       408
//   invalid / unsupported_media_type                415
//   unauthenticated (reason)                        401
//   forbidden                                       403
//   not_found                                       404
//   conflict (stale_epoch, already_claimed, ...)    409
//   too_large                                       413
//   rate_limited (reason)                           429 + Retry-After
//   unavailable (overloaded, agent_backoff, ...)    503 + Retry-After
//   outcome_unknown                                 503 + Retry-After (code outcome_unknown)
//   internal                                        500
// error.code is Status::reason() (which falls back to the code's name).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "model/status.h"
#include "server/http_types.h"

namespace cairn::server {

struct HttpMapping {
  int status;
  std::int64_t retry_after_s;  // 0: no Retry-After header
};

HttpMapping http_mapping(const Status& s);

// The error response for a non-ok status.
HttpResponse error_response(const Status& s);

// Statuses the shell itself raises.
Status unauthenticated(std::string message);
Status rate_limited(std::string message, std::int64_t retry_after_ms);
// Request text echoed in an error message, with bytes that are not UTF-8
// replaced by U+FFFD: a JSON reply carries only UTF-8 (the writer asserts it).
std::string printable(std::string_view s);
// 405; `allow` lists the route's methods ("GET", "POST", ...).
Status method_not_allowed(std::string_view method, std::string_view path,
                          std::initializer_list<std::string_view> allow);

}  // namespace cairn::server

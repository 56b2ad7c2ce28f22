// http_types.h — the server's HTTP request/response values, free of Beast
// (shell). http_server.cc converts to and from the wire; everything else
// (routing, auth, JSON) works on these.
#pragma once

#include <cstdint>
#include <string>

namespace cairn::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", "DELETE", ...
  std::string target;  // path and query, as sent
  std::string body;
  std::string content_type;     // the Content-Type header
  std::string authorization;    // the Authorization header
  std::string idempotency_key;  // the Idempotency-Key header
  std::string last_event_id;    // the Last-Event-ID header
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::int64_t retry_after_s = 0;  // > 0: send Retry-After
  std::string allow;               // non-empty: send Allow (405 replies)
};

}  // namespace cairn::server

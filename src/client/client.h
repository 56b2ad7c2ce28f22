// client.h — a blocking client for cairnd's HTTP API v1 (shell).
//
// One method per route (docs/api.md), each returning the reply's JSON body
// or a Status built from the server's error body {"error": {code, message,
// details}}: `Status::reason()` is the server's `error.code`, `details()` its
// details, and `Client::last_http_status()` the HTTP status (0 when no reply
// came). HTTP statuses map to codes as
//   400 405 422 → invalid      401 403 → forbidden      404 → not_found
//   409 → conflict             413 → too_large          429 503 → unavailable
//   503 outcome_unknown → outcome_unknown                500 → internal
// and transport failures are unavailable with reason unreachable / timeout /
// connection_closed / bad_response (see http.h).
//
// Retries. A request is sent again (up to `retries` more times, waiting
// `retry_backoff_ms_initial` doubling, or the server's Retry-After, each wait
// at most `retry_wait_ms_max`) when the connection failed or the server
// answered 429 / 503 / 409 lost_race — but only when repeating it is safe: a GET, a request
// that never reached the server, or a mutation carrying an Idempotency-Key
// (the server then answers the retry with the first reply). A timeout is
// not retried: the caller's time budget is spent. Mutating methods take the
// key as a parameter; pass Client::new_idempotency_key() to make retries safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/http.h"
#include "model/json.h"
#include "model/status.h"

namespace cairn::client {

struct ClientOptions {
  std::string url = "http://127.0.0.1:7400";
  std::string token;        // sent as "Authorization: Bearer <token>" when not empty
  int timeout_ms = 30'000;  // per attempt
  int retries = 2;          // further attempts after a retryable failure
  int retry_backoff_ms_initial = 100;
  int retry_wait_ms_max = 2'000;
  HttpLimits http;
};

// Query parameters of the list routes; empty / nullopt members are left out.
struct ListQuery {
  std::string kind;   // facts, intents
  std::string state;  // intents
  std::string lane;   // intents
  bool live = false;  // hints
  std::string after;  // the previous page's `next` (a seq for facts, an id otherwise)
  std::optional<int> limit;
  std::string source;  // logs
};

class Client {
 public:
  // Validates the URL (invalid / invalid_url).
  static Result<std::unique_ptr<Client>> create(ClientOptions options);

  // A fresh random key (128 bits, hex) for one logical mutation.
  static std::string new_idempotency_key();

  // HTTP status of the last reply (0 when none arrived).
  int last_http_status() const { return last_http_status_; }
  const ClientOptions& options() const { return options_; }

  // Generic calls. `target` is the path and query (e.g. "/v1/state").
  // `extra_timeout_ms` lengthens this request's deadline (long-polls).
  Result<Json> get(std::string_view target);
  Result<Json> send(std::string_view method, std::string_view target, const Json* body,
                    std::string_view idempotency_key, int extra_timeout_ms = 0);
  // A GET whose successful reply body is returned as the server sent it
  // (errors as for get()).
  Result<std::string> get_bytes(std::string_view target);

  // ---- routes (docs/api.md) ----
  Result<Json> health();
  Result<Json> post_fact(const Json& body, std::string_view idempotency_key);
  Result<Json> get_fact(std::string_view id);
  Result<Json> list_facts(const ListQuery& q);
  Result<Json> create_intent(const Json& body, std::string_view idempotency_key);
  Result<Json> get_intent(std::string_view id);
  Result<Json> list_intents(const ListQuery& q);
  // verb: claim | heartbeat | conclude | fail | release | cancel
  Result<Json> intent_action(std::string_view id, std::string_view verb, const Json& body,
                             std::string_view idempotency_key);
  // POST /v1/claims; the deadline is extended by the body's wait_ms.
  Result<Json> claim_next(const Json& body, std::string_view idempotency_key);
  Result<Json> create_hint(const Json& body, std::string_view idempotency_key);
  Result<Json> get_hint(std::string_view id);
  Result<Json> list_hints(const ListQuery& q);
  Result<Json> revoke_hint(std::string_view id, const Json& body, std::string_view idempotency_key);
  Result<Json> state();
  // GET /v1/plan[?at=]: the admission plan (docs/planner.md) as of `at_ms`
  // (0: now); plan_bytes() returns the server's canonical JSON bytes unchanged.
  Result<Json> plan(std::int64_t at_ms = 0);
  Result<std::string> plan_bytes(std::int64_t at_ms = 0);
  Result<Json> events(std::uint64_t after, std::optional<int> limit);
  // Log records (docs/senses.md#logs). GET /v1/logs?after=&source=&limit=.
  Result<Json> list_logs(const ListQuery& q);
  // POST /v1/logs {source, type, ref?, payload?} → {id, ts}. An append is not
  // deduplicated, so it is sent once (no retry after it may have arrived).
  Result<Json> append_log(std::string_view source, std::string_view type, std::string_view ref,
                          const Json& payload);
  // POST /v1/logs/archive (admin) → {days, records, watermark}.
  Result<Json> archive_logs();

  // GET /v1/watch: an open event stream starting after `after` (sent as
  // Last-Event-ID), or from now when nullopt. Errors as for the other calls.
  Result<std::unique_ptr<SseStream>> watch(std::optional<std::uint64_t> after);

 private:
  Client(ClientOptions options, Url url);
  HeaderList base_headers() const;
  // One request with the retries described above; the final reply, whatever
  // its status.
  Result<HttpResponse> exchange(std::string_view method, std::string_view target, const Json* body,
                                std::string_view idempotency_key, int extra_timeout_ms);
  Result<Json> finish(const HttpResponse& r);

  ClientOptions options_;
  Url url_;
  HttpConnection conn_;
  int last_http_status_ = 0;
};

// The Status for an HTTP error reply (status ≥ 400) with its JSON error body.
Status status_from_reply(int http_status, std::string_view body);

}  // namespace cairn::client

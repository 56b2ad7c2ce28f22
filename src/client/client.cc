// client.cc — see client.h.
#include "client/client.h"

#include <charconv>
#include <chrono>
#include <random>
#include <thread>

#include "model/json_parse.h"

namespace cairn::client {

namespace {

void sleep_ms(int ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Retry-After in seconds (the delta form cairnd sends), in ms; -1 when absent.
int retry_after_ms(const HttpResponse& r) {
  const std::string* v = r.header("retry-after");
  if (v == nullptr) return -1;
  int s = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), s);
  if (ec != std::errc() || p != v->data() + v->size() || s < 0) return -1;
  return s > 3600 ? 3'600'000 : s * 1000;
}

void add_param(std::string& target, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += key;
  target += '=';
  target += encode_query_value(value);
}

std::string list_target(std::string_view base, const ListQuery& q) {
  std::string t(base);
  add_param(t, "kind", q.kind);
  add_param(t, "state", q.state);
  add_param(t, "lane", q.lane);
  if (q.live) add_param(t, "live", "true");
  add_param(t, "after", q.after);
  add_param(t, "source", q.source);
  if (q.limit) add_param(t, "limit", std::to_string(*q.limit));
  return t;
}

}  // namespace

Status status_from_reply(int http_status, std::string_view body) {
  std::string reason;
  std::string message;
  Json details = Json::object();
  if (auto j = parse_json(body); j.ok()) {
    if (const Json* e = j->find("error"); e != nullptr && e->is_object()) {
      if (const Json* c = e->find("code"); c != nullptr && c->is_string()) reason = c->as_string();
      if (const Json* m = e->find("message"); m != nullptr && m->is_string()) {
        message = m->as_string();
      }
      if (const Json* d = e->find("details"); d != nullptr && d->is_object()) details = *d;
    }
  }
  if (message.empty()) {
    message = "HTTP " + std::to_string(http_status);
    if (!body.empty() && body.size() <= 200 && is_valid_utf8(body)) {
      message += ": " + std::string(body);
    }
  }
  Code code = Code::kInvalid;
  switch (http_status) {
    case 401:
    case 403:
      code = Code::kForbidden;
      break;
    case 404:
      code = Code::kNotFound;
      break;
    case 409:
      code = Code::kConflict;
      break;
    case 413:
      code = Code::kTooLarge;
      break;
    case 429:
      code = Code::kUnavailable;
      break;
    case 500:
      code = Code::kInternal;
      break;
    default:
      if (http_status >= 500) {
        code = reason == "outcome_unknown" ? Code::kOutcomeUnknown : Code::kUnavailable;
      }
      break;
  }
  if (reason.empty()) reason = "http_" + std::to_string(http_status);
  return Status(code, std::move(message), std::move(reason), std::move(details));
}

Client::Client(ClientOptions options, Url url)
    : options_(std::move(options)), url_(url), conn_(std::move(url), options_.http) {}

Result<std::unique_ptr<Client>> Client::create(ClientOptions options) {
  CAIRN_ASSIGN_OR_RETURN(Url url, parse_url(options.url));
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(url)));
}

std::string Client::new_idempotency_key() {
  std::random_device rd;
  std::string key = "cli-";
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 4; ++i) {
    std::uint32_t v = rd();
    for (int j = 0; j < 8; ++j) {
      key += kHex[v & 15];
      v >>= 4;
    }
  }
  return key;
}

HeaderList Client::base_headers() const {
  HeaderList h;
  if (!options_.token.empty()) h.emplace_back("Authorization", "Bearer " + options_.token);
  return h;
}

Result<Json> Client::finish(const HttpResponse& r) {
  if (r.status >= 400) return status_from_reply(r.status, r.body);
  if (r.body.empty()) return Json::object();
  auto j = parse_json(r.body);
  if (!j.ok()) {
    return unavailable("the server's reply is not JSON: " + j.status().message(), "bad_response",
                       Json(JsonObject{{"sent", Json(true)}}));
  }
  return j;
}

Result<Json> Client::get(std::string_view target) {
  return send("GET", target, nullptr, "", 0);
}

Result<Json> Client::send(std::string_view method, std::string_view target, const Json* body,
                          std::string_view idempotency_key, int extra_timeout_ms) {
  CAIRN_ASSIGN_OR_RETURN(HttpResponse r,
                         exchange(method, target, body, idempotency_key, extra_timeout_ms));
  return finish(r);
}

Result<std::string> Client::get_bytes(std::string_view target) {
  CAIRN_ASSIGN_OR_RETURN(HttpResponse r, exchange("GET", target, nullptr, "", 0));
  if (r.status >= 400) return status_from_reply(r.status, r.body);
  return std::move(r.body);
}

Result<HttpResponse> Client::exchange(std::string_view method, std::string_view target,
                                      const Json* body, std::string_view idempotency_key,
                                      int extra_timeout_ms) {
  HeaderList headers = base_headers();
  if (!idempotency_key.empty()) headers.emplace_back("Idempotency-Key", idempotency_key);
  const std::string text = body == nullptr ? std::string() : to_json(*body);
  const bool safe = method == "GET" || !idempotency_key.empty();
  int backoff = options_.retry_backoff_ms_initial;
  for (int attempt = 0;; ++attempt) {
    last_http_status_ = 0;
    auto r = conn_.request(method, target, headers, text, options_.timeout_ms + extra_timeout_ms);
    const bool last = attempt >= options_.retries;
    if (r.ok()) {
      last_http_status_ = r->status;
      if (!last && (r->status == 429 || r->status == 503 || r->status == 409)) {
        // 429, 503 overloaded/unavailable and 409 lost_race (a cluster node
        // lost to other nodes' commits) applied nothing; outcome_unknown may
        // have: repeat it only under the same key.
        const Status s = status_from_reply(r->status, r->body);
        const bool lost_race = r->status == 409 && s.reason() == "lost_race";
        if ((r->status != 409 || lost_race) && (s.code() != Code::kOutcomeUnknown || safe)) {
          const int wait = retry_after_ms(*r);
          sleep_ms(std::min(wait >= 0 ? wait : backoff, options_.retry_wait_ms_max));
          backoff *= 2;
          continue;
        }
      }
      return std::move(r).value();
    }
    const Status& s = r.status();
    if (last || s.reason() == "timeout" || s.code() != Code::kUnavailable) return r.take_status();
    const Json* sent = s.details().find("sent");
    const bool reached = sent == nullptr || sent->bool_if().value_or(true);
    if (reached && !safe) return r.take_status();
    sleep_ms(std::min(backoff, options_.retry_wait_ms_max));
    backoff *= 2;
  }
}

// ---- routes ------------------------------------------------------------------------

Result<Json> Client::health() {
  return get("/healthz");
}

Result<Json> Client::post_fact(const Json& body, std::string_view key) {
  return send("POST", "/v1/facts", &body, key);
}

Result<Json> Client::get_fact(std::string_view id) {
  return get("/v1/facts/" + encode_path_segment(id));
}

Result<Json> Client::list_facts(const ListQuery& q) {
  return get(list_target("/v1/facts", q));
}

Result<Json> Client::create_intent(const Json& body, std::string_view key) {
  return send("POST", "/v1/intents", &body, key);
}

Result<Json> Client::get_intent(std::string_view id) {
  return get("/v1/intents/" + encode_path_segment(id));
}

Result<Json> Client::list_intents(const ListQuery& q) {
  return get(list_target("/v1/intents", q));
}

Result<Json> Client::intent_action(std::string_view id, std::string_view verb, const Json& body,
                                   std::string_view key) {
  return send("POST", "/v1/intents/" + encode_path_segment(id) + "/" + std::string(verb), &body,
              key);
}

Result<Json> Client::claim_next(const Json& body, std::string_view key) {
  int wait_ms = 0;
  if (const Json* w = body.find("wait_ms")) {
    if (auto v = w->int_if(); v && *v > 0 && *v < 3'600'000) wait_ms = static_cast<int>(*v);
  }
  return send("POST", "/v1/claims", &body, key, wait_ms);
}

Result<Json> Client::create_hint(const Json& body, std::string_view key) {
  return send("POST", "/v1/hints", &body, key);
}

Result<Json> Client::get_hint(std::string_view id) {
  return get("/v1/hints/" + encode_path_segment(id));
}

Result<Json> Client::list_hints(const ListQuery& q) {
  return get(list_target("/v1/hints", q));
}

Result<Json> Client::revoke_hint(std::string_view id, const Json& body, std::string_view key) {
  return send("DELETE", "/v1/hints/" + encode_path_segment(id), &body, key);
}

Result<Json> Client::state() {
  return get("/v1/state");
}

namespace {
std::string plan_path(std::int64_t at_ms) {
  return at_ms > 0 ? "/v1/plan?at=" + std::to_string(at_ms) : std::string("/v1/plan");
}
}  // namespace

Result<Json> Client::plan(std::int64_t at_ms) {
  return get(plan_path(at_ms));
}

Result<std::string> Client::plan_bytes(std::int64_t at_ms) {
  return get_bytes(plan_path(at_ms));
}

Result<Json> Client::events(std::uint64_t after, std::optional<int> limit) {
  std::string t = "/v1/events?after=" + std::to_string(after);
  if (limit) t += "&limit=" + std::to_string(*limit);
  return get(t);
}

Result<Json> Client::list_logs(const ListQuery& q) {
  return get(list_target("/v1/logs", q));
}

Result<Json> Client::append_log(std::string_view source, std::string_view type,
                                std::string_view ref, const Json& payload) {
  JsonObject o{{"source", Json(source)}, {"type", Json(type)}};
  if (!ref.empty()) o.emplace_back("ref", Json(ref));
  if (!payload.is_null()) o.emplace_back("payload", payload);
  const Json body(std::move(o));
  return send("POST", "/v1/logs", &body, "");
}

Result<Json> Client::archive_logs() {
  const Json body = Json::object();
  return send("POST", "/v1/logs/archive", &body, "");
}

Result<std::unique_ptr<SseStream>> Client::watch(std::optional<std::uint64_t> after) {
  HeaderList headers = base_headers();
  if (after) headers.emplace_back("Last-Event-ID", std::to_string(*after));
  auto stream = std::make_unique<SseStream>(url_, options_.http);
  last_http_status_ = 0;
  CAIRN_ASSIGN_OR_RETURN(HttpResponse head,
                         stream->open("/v1/watch", headers, options_.timeout_ms));
  last_http_status_ = head.status;
  if (head.status >= 300) return status_from_reply(head.status, head.body);
  return stream;
}

}  // namespace cairn::client

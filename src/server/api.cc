// api.cc — routes of the HTTP API v1 (see api.h and docs/api.md).
#include "server/api.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "core/blackboard.h"
#include "core/keys.h"
#include "model/json_fields.h"
#include "model/json_parse.h"
#include "senses/config.h"
#include "server/errors.h"

namespace cairn::server {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `s` ('+' → space when `form`); false on a bad escape.
bool percent_decode(std::string_view s, std::string& out, bool form) {
  out.clear();
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return false;
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (form && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return true;
}

struct Query {
  std::vector<std::pair<std::string, std::string>> params;
  const std::string* get(std::string_view k) const {
    for (const auto& [key, v] : params) {
      if (key == k) return &v;
    }
    return nullptr;
  }
};

Result<Query> parse_query(std::string_view q) {
  Query out;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    std::string k;
    std::string v;
    if (!percent_decode(part.substr(0, eq), k, true) ||
        !percent_decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), v,
                        true)) {
      return invalid("malformed query string", "invalid_query");
    }
    if (!is_valid_utf8(k) || !is_valid_utf8(v)) {
      return invalid("query parameters must be UTF-8 once percent-decoded", "invalid_query");
    }
    out.params.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

Result<std::uint64_t> query_uint(const Query& q, std::string_view key, std::uint64_t dflt) {
  const std::string* v = q.get(key);
  if (v == nullptr || v->empty()) return dflt;
  std::uint64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size()) {
    return invalid("query parameter " + std::string(key) + " must be a non-negative integer",
                   "invalid_query", Json(JsonObject{{"field", Json(key)}}));
  }
  return out;
}

Result<std::size_t> query_limit(const Query& q, const ServerLimits& l) {
  CAIRN_ASSIGN_OR_RETURN(std::uint64_t v, query_uint(q, "limit", l.list_limit_default));
  if (v == 0 || v > l.list_limit_max) {
    return invalid("limit must be within 1.." + std::to_string(l.list_limit_max), "invalid_query",
                   Json(JsonObject{{"field", Json("limit")}}));
  }
  return static_cast<std::size_t>(v);
}

HttpResponse json_response(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = to_json(body);
  return r;
}

// Refuses parameters a route does not take (a typo such as ?kinds= would
// otherwise silently widen a list) and parameters given twice.
// Empty: no key. Otherwise 1..max bytes of visible ASCII.
Status check_idempotency_key(std::string_view key, std::size_t max) {
  bool visible = true;
  for (char c : key) visible = visible && c >= 0x21 && c <= 0x7e;
  if (key.size() <= max && visible) return Status();
  return invalid(
      "Idempotency-Key must be 1.." + std::to_string(max) + " bytes of visible ASCII (0x21-0x7e)",
      "bad_request",
      Json(JsonObject{{"field", Json("Idempotency-Key")},
                      {"max", Json(static_cast<std::uint64_t>(max))}}));
}

Status check_query_names(const Query& q, std::initializer_list<std::string_view> allowed) {
  for (std::size_t i = 0; i < q.params.size(); ++i) {
    const std::string& k = q.params[i].first;
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return invalid("unknown query parameter " + k, "invalid_query",
                     Json(JsonObject{{"field", Json(k)}}));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (q.params[j].first == k) {
        return invalid("query parameter " + k + " is given twice", "invalid_query",
                       Json(JsonObject{{"field", Json(k)}}));
      }
    }
  }
  return Status();
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "application/json", optionally with parameters; a charset, if given, must be UTF-8.
bool is_json_media_type(std::string_view header) {
  const std::string v = ascii_lower(header);
  std::string_view rest = v;
  const auto semi = rest.find(';');
  if (trim(rest.substr(0, semi)) != "application/json") return false;
  while (semi != std::string_view::npos && !rest.empty()) {
    const auto next = rest.find(';');
    if (next == std::string_view::npos) break;
    rest.remove_prefix(next + 1);
    const std::string_view param = trim(rest.substr(0, rest.find(';')));
    const auto eq = param.find('=');
    if (trim(param.substr(0, eq)) != "charset") continue;
    std::string_view value = eq == std::string_view::npos ? "" : trim(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (value != "utf-8" && value != "utf8") return false;
  }
  return true;
}

// Reads an optional string member without touching `out` when absent.
Status read_opt_string(const Json& obj, std::string_view key, std::string& out) {
  return read_string(obj, key, out, Presence::kOptional);
}

}  // namespace

Api::Api(const ServerConfig& config, Metrics& metrics, store::Store& reader)
    : config_(config), metrics_(metrics), reader_(reader), auth_(config.tokens) {}

std::vector<std::string> Api::routes() {
  return {"GET /healthz",
          "GET /metrics",
          "POST /v1/facts",
          "GET /v1/facts",
          "GET /v1/facts/{id}",
          "POST /v1/intents",
          "GET /v1/intents",
          "GET /v1/intents/{id}",
          "POST /v1/intents/{id}/claim",
          "POST /v1/intents/{id}/heartbeat",
          "POST /v1/intents/{id}/conclude",
          "POST /v1/intents/{id}/fail",
          "POST /v1/intents/{id}/release",
          "POST /v1/intents/{id}/cancel",
          "POST /v1/claims",
          "POST /v1/hints",
          "GET /v1/hints",
          "GET /v1/hints/{id}",
          "DELETE /v1/hints/{id}",
          "GET /v1/state",
          "GET /v1/plan",
          "GET /v1/events",
          "GET /v1/evidence",
          "GET /v1/watch",
          "GET /v1/senses",
          "GET /v1/workflows/runs",
          "POST /v1/logs",
          "GET /v1/logs",
          "POST /v1/logs/archive"};
}

Result<Principal> Api::authorize(const HttpRequest& req, Scope needed) {
  CAIRN_ASSIGN_OR_RETURN(Principal p, auth_.authenticate(req.authorization));
  CAIRN_RETURN_IF_ERROR(Auth::require(p, needed));
  return p;
}

Status Api::rate_check(const std::string& caller) {
  const ServerLimits& l = config_.limits;
  if (l.caller_rate_per_s <= 0) return Status();
  const auto now = Clock::now();
  auto it = buckets_.find(caller);
  if (it == buckets_.end()) {
    if (buckets_.size() >= l.rate_buckets_max) buckets_.clear();  // bounded; refills are cheap
    it = buckets_.emplace(caller, Bucket{l.caller_burst, now}).first;
  }
  Bucket& b = it->second;
  const double dt = std::chrono::duration<double>(now - b.at).count();
  b.tokens = std::min(l.caller_burst, b.tokens + dt * l.caller_rate_per_s);
  b.at = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return Status();
  }
  const auto wait_ms = static_cast<std::int64_t>((1.0 - b.tokens) / l.caller_rate_per_s * 1000) + 1;
  return rate_limited("caller " + caller + " is over its request rate", wait_ms);
}

Result<Json> Api::parse_body(const HttpRequest& req, bool allow_empty) {
  if (req.body.empty() && allow_empty) return Json::object();
  // A JSON body must say so. Besides catching client mistakes, this keeps
  // browsers from sending "simple" cross-origin POSTs (text/plain, forms)
  // to a loopback cairnd without a CORS preflight, which cairnd never grants.
  if (!req.body.empty() && !is_json_media_type(req.content_type)) {
    const std::string got = printable(req.content_type);
    return invalid(
        "the request body must be Content-Type: application/json (UTF-8), not '" + got + "'",
        "unsupported_media_type", Json(JsonObject{{"content_type", Json(got)}}));
  }
  CAIRN_ASSIGN_OR_RETURN(Json v, parse_json(req.body, config_.limits.json));
  CAIRN_RETURN_IF_ERROR(expect_object(v, "request body"));
  return v;
}

Result<std::string> Api::creator_of(const Principal& p, const Json& body) {
  std::string creator;
  CAIRN_RETURN_IF_ERROR(read_opt_string(body, "creator", creator));
  if (p.authenticated) {
    if (!creator.empty() && creator != p.name) {
      return forbidden("creator must be the token's name (" + p.name + ")", "impersonation",
                       Json(JsonObject{{"field", Json("creator")}}));
    }
    return p.name;
  }
  return creator.empty() ? std::string("anonymous") : creator;
}

Result<std::string> Api::agent_of(const Principal& p, const Json& body) {
  std::string agent;
  CAIRN_RETURN_IF_ERROR(read_opt_string(body, "agent", agent));
  if (p.authenticated) {
    if (!agent.empty() && agent != p.name) {
      return forbidden("agent must be the token's name (" + p.name + ")", "impersonation",
                       Json(JsonObject{{"field", Json("agent")}}));
    }
    return p.name;
  }
  if (agent.empty()) return field_error("agent", "is required");
  return agent;
}

Status Api::schema_gate(const Principal& p, const FactBody& fact) const {
  if (senses::is_reserved_log_kind(fact.kind)) {
    return invalid("fact kind " + fact.kind +
                       " is reserved: kinds log and log.* name log records, which are not facts "
                       "(GET /v1/logs)",
                   "reserved_kind",
                   Json(JsonObject{{"field", Json("kind")}, {"kind", Json(fact.kind)}}));
  }
  if (!contract_ || schema_allows(*contract_, p.scope, fact.kind, fact.content_type)) {
    return Status();
  }
  const std::string scope(scope_name(p.scope));
  return forbidden("the contract's schema does not let the '" + scope +
                       "' scope post facts of kind " + fact.kind + " with content type " +
                       fact.content_type,
                   "schema_denied",
                   Json(JsonObject{{"kind", Json(fact.kind)},
                                   {"content_type", Json(fact.content_type)},
                                   {"scope", Json(scope)}}));
}

Result<std::vector<Event>> Api::events_after(std::uint64_t after, std::size_t limit) {
  return Blackboard::read_events(reader_, after, limit);
}

Result<std::uint64_t> Api::last_seq() {
  CAIRN_ASSIGN_OR_RETURN(std::optional<store::Entry> e, reader_.get(keys::kEventSeq));
  if (!e) return std::uint64_t{0};
  std::uint64_t v = 0;
  const std::string& s = e->value;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return internal_error("malformed event sequence record", "corrupt_record");
  }
  return v;
}

// ---- routing ------------------------------------------------------------------------

// GET /v1/plan?at=: the latest wall time one may plan at (9999-12-31).
constexpr std::uint64_t kPlanAtMax = 253'402'300'799'999ULL;

Planned Api::plan(const HttpRequest& req) {
  Planned out;
  auto fail = [&](Status s) {
    out.action = error_response(s);
    return out;
  };
  const std::string_view target = req.target;
  const auto qpos = target.find('?');
  const std::string_view path = target.substr(0, qpos);
  const std::string query =
      qpos == std::string_view::npos ? std::string() : std::string(target.substr(qpos + 1));

  // Split and percent-decode the path segments ('/' inside an id is %2F).
  std::vector<std::string> seg;
  {
    std::string_view rest = path;
    if (rest.empty() || rest.front() != '/') {
      out.route = "invalid";
      return fail(invalid("the request target must be a path starting with /", "invalid_target"));
    }
    rest.remove_prefix(1);
    while (true) {
      const auto slash = rest.find('/');
      std::string s;
      if (!percent_decode(rest.substr(0, slash), s, false)) {
        out.route = "invalid";
        return fail(invalid("malformed percent-encoding in the path", "invalid_target"));
      }
      if (!is_valid_utf8(s)) {
        out.route = "invalid";
        return fail(invalid("path segments must be UTF-8 once percent-decoded", "invalid_target"));
      }
      seg.push_back(std::move(s));
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
  }
  const std::string& m = req.method;
  const std::size_t n = seg.size();
  auto is = [&](std::initializer_list<std::string_view> parts) {
    if (parts.size() != n) return false;
    std::size_t i = 0;
    for (std::string_view p : parts) {
      if (p != "*" && p != seg[i]) return false;
      ++i;
    }
    return true;
  };

  // The route's query parameters: known names only, each at most once.
  auto query_names = [&](std::initializer_list<std::string_view> allowed) -> Status {
    CAIRN_ASSIGN_OR_RETURN(Query q, parse_query(query));
    return check_query_names(q, allowed);
  };
  // Reads: the read scope, then the query.
  // Reads are rate-limited per caller too: the token's name, or one shared
  // "anonymous" bucket when auth is off (loopback only).
  std::string reader;
  auto read_guard = [&](std::initializer_list<std::string_view> allowed) -> Status {
    CAIRN_ASSIGN_OR_RETURN(Principal p, authorize(req, Scope::kRead));
    CAIRN_RETURN_IF_ERROR(query_names(allowed));
    reader = p.authenticated ? p.name : std::string("anonymous");
    return rate_check(reader);
  };

  if (is({"healthz"})) {
    out.route = "GET /healthz";
    if (m != "GET") return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = query_names({}); !s.ok()) return fail(std::move(s));
    out.action = json_response(200, Json(JsonObject{{"status", Json("ok")}}));
    return out;
  }
  if (is({"metrics"})) {
    out.route = "GET /metrics";
    if (m != "GET") return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = read_guard({}); !s.ok()) return fail(std::move(s));
    HttpResponse r;
    r.body = metrics_.render();
    if (runtime_) r.body += runtime_->metrics_text();
    r.content_type = "text/plain; version=0.0.4";
    out.action = std::move(r);
    return out;
  }
  if (n < 2 || seg[0] != "v1") {
    out.route = "unknown";
    return fail(not_found("no route for " + printable(path), "no_route"));
  }

  const bool get = m == "GET";
  const bool post = m == "POST";
  const std::string& res = seg[1];

  // Mutations: agent scope, a JSON body, the rate limit.
  struct Ctx {
    Principal p;
    Json body;
  };
  auto write_ctx = [&](bool allow_empty,
                       std::initializer_list<std::string_view> query_allowed = {}) -> Result<Ctx> {
    CAIRN_ASSIGN_OR_RETURN(Principal p, authorize(req, Scope::kAgent));
    CAIRN_RETURN_IF_ERROR(query_names(query_allowed));
    CAIRN_RETURN_IF_ERROR(
        check_idempotency_key(req.idempotency_key, config_.limits.idempotency_key_bytes_max));
    CAIRN_ASSIGN_OR_RETURN(Json body, parse_body(req, allow_empty));
    return Ctx{std::move(p), std::move(body)};
  };
  auto engine_call = [&](engine::Command cmd, std::string caller, bool created_201,
                         bool rate_checked = false) {
    if (!rate_checked) {
      if (Status s = rate_check(caller); !s.ok()) return fail(std::move(s));
    }
    EngineCall c;
    c.command = std::move(cmd);
    c.caller = std::move(caller);
    c.idempotency_key = req.idempotency_key;
    c.created_201 = created_201;
    out.action = std::move(c);
    return out;
  };

  // A create route (fact, intent, hint): the body, who creates, the draft
  // parsed from the body, one engine call answered 201 (200 when it existed).
  auto create = [&](auto from_json, auto command) {
    auto ctx = write_ctx(false);
    if (!ctx.ok()) return fail(ctx.take_status());
    auto creator = creator_of(ctx->p, ctx->body);
    if (!creator.ok()) return fail(creator.take_status());
    auto draft = from_json(ctx->body, *creator);
    if (!draft.ok()) return fail(draft.take_status());
    return engine_call(command(std::move(draft).value()), *creator, true);
  };

  // ---- facts ----
  if (res == "facts" && n == 2) {
    out.route = get ? "GET /v1/facts" : "POST /v1/facts";
    if (get) {
      if (Status s = read_guard({"kind", "after", "limit"}); !s.ok()) return fail(std::move(s));
      out.action = list_facts(query);
      return out;
    }
    if (!post) return fail(method_not_allowed(m, path, {"GET", "POST"}));
    auto ctx = write_ctx(false);
    if (!ctx.ok()) return fail(ctx.take_status());
    auto creator = creator_of(ctx->p, ctx->body);
    if (!creator.ok()) return fail(creator.take_status());
    auto fact = fact_body_from_json(ctx->body, *creator);
    if (!fact.ok()) return fail(fact.take_status());
    if (Status s = schema_gate(ctx->p, *fact); !s.ok()) return fail(std::move(s));
    return engine_call(engine::PostFact{std::move(fact).value()}, *creator, true);
  }
  if (res == "facts" && n == 3) {
    out.route = "GET /v1/facts/{id}";
    if (!get) return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = read_guard({}); !s.ok()) return fail(std::move(s));
    out.action = get_fact(seg[2]);
    return out;
  }

  // ---- intents ----
  if (res == "intents" && n == 2) {
    out.route = get ? "GET /v1/intents" : "POST /v1/intents";
    if (get) {
      if (Status s = read_guard({"state", "kind", "lane", "after", "limit"}); !s.ok()) {
        return fail(std::move(s));
      }
      out.action = list_intents(query);
      return out;
    }
    if (!post) return fail(method_not_allowed(m, path, {"GET", "POST"}));
    return create(intent_draft_from_json,
                  [](auto d) { return engine::Command(engine::CreateIntent{std::move(d)}); });
  }
  if (res == "intents" && n == 3) {
    out.route = "GET /v1/intents/{id}";
    if (!get) return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = read_guard({}); !s.ok()) return fail(std::move(s));
    return engine_call(engine::GetIntent{seg[2]}, reader, false, true);
  }
  if (res == "intents" && n == 4) {
    const std::string& id = seg[2];
    const std::string& verb = seg[3];
    out.route = "POST /v1/intents/{id}/" + verb;
    static constexpr std::string_view kVerbs[] = {"claim", "heartbeat", "conclude",
                                                  "fail",  "release",   "cancel"};
    if (std::find(std::begin(kVerbs), std::end(kVerbs), verb) == std::end(kVerbs)) {
      out.route = "unknown";
      return fail(not_found("no route for " + printable(path), "no_route"));
    }
    if (!post) return fail(method_not_allowed(m, path, {"POST"}));
    auto ctx = write_ctx(verb == "cancel");
    if (!ctx.ok()) return fail(ctx.take_status());
    const Json& b = ctx->body;
    if (verb == "cancel") {
      if (Status s = reject_unknown_fields(b, {"creator"}); !s.ok()) return fail(std::move(s));
      auto creator = creator_of(ctx->p, b);
      if (!creator.ok()) return fail(creator.take_status());
      return engine_call(engine::Cancel{id}, *creator, false);
    }
    auto agent = agent_of(ctx->p, b);
    if (!agent.ok()) return fail(agent.take_status());
    Status s;
    if (verb == "claim") {
      engine::Claim c{id, 0};
      s = reject_unknown_fields(b, {"agent", "lease_ttl_ms"});
      if (s.ok()) s = read_int(b, "lease_ttl_ms", c.ttl_ms, Presence::kOptional);
      if (!s.ok()) return fail(std::move(s));
      return engine_call(std::move(c), *agent, false);
    }
    std::uint64_t epoch = 0;
    if (verb == "heartbeat") {
      engine::Heartbeat h{id, 0, 0};
      s = reject_unknown_fields(b, {"agent", "epoch", "lease_ttl_ms"});
      if (s.ok()) s = read_uint(b, "epoch", h.epoch);
      if (s.ok()) s = read_int(b, "lease_ttl_ms", h.ttl_ms, Presence::kOptional);
      if (!s.ok()) return fail(std::move(s));
      return engine_call(std::move(h), *agent, false);
    }
    if (verb == "conclude") {
      s = reject_unknown_fields(b, {"agent", "epoch", "result"});
      if (s.ok()) s = read_uint(b, "epoch", epoch);
      const Json* r = b.find("result");
      if (s.ok() && (r == nullptr || !r->is_object()))
        s = field_error("result", "must be an object");
      if (!s.ok()) return fail(std::move(s));
      auto body = fact_body_from_json(*r, *agent);
      if (!body.ok()) return fail(body.take_status());
      if (body->creator != *agent) {
        return fail(forbidden("a result's creator is the concluding agent", "impersonation",
                              Json(JsonObject{{"field", Json("result.creator")}})));
      }
      if (Status g = schema_gate(ctx->p, *body); !g.ok()) return fail(std::move(g));
      return engine_call(engine::Conclude{id, epoch, std::move(body).value()}, *agent, false);
    }
    if (verb == "fail") {
      engine::Fail f{id, 0, {}, true};
      s = reject_unknown_fields(b, {"agent", "epoch", "error", "retryable"});
      if (s.ok()) s = read_uint(b, "epoch", f.epoch);
      if (s.ok()) s = read_string(b, "error", f.error, Presence::kOptional);
      if (s.ok()) s = read_bool(b, "retryable", f.retryable, Presence::kOptional);
      if (!s.ok()) return fail(std::move(s));
      return engine_call(std::move(f), *agent, false);
    }
    // release
    s = reject_unknown_fields(b, {"agent", "epoch"});
    if (s.ok()) s = read_uint(b, "epoch", epoch);
    if (!s.ok()) return fail(std::move(s));
    return engine_call(engine::Release{id, epoch}, *agent, false);
  }
  if (res == "claims" && n == 2) {
    out.route = "POST /v1/claims";
    if (!post) return fail(method_not_allowed(m, path, {"POST"}));
    auto ctx = write_ctx(false);
    if (!ctx.ok()) return fail(ctx.take_status());
    const Json& b = ctx->body;
    auto agent = agent_of(ctx->p, b);
    if (!agent.ok()) return fail(agent.take_status());
    engine::ClaimNext c;
    std::int64_t max = 1;
    Status s =
        reject_unknown_fields(b, {"agent", "kinds", "lanes", "max", "wait_ms", "lease_ttl_ms"});
    if (s.ok()) s = read_string_array(b, "kinds", c.filter.kinds, Presence::kOptional);
    if (s.ok()) s = read_string_array(b, "lanes", c.filter.lanes, Presence::kOptional);
    if (s.ok()) s = read_int(b, "max", max, Presence::kOptional);
    if (s.ok()) s = read_int(b, "wait_ms", c.wait_ms, Presence::kOptional);
    if (s.ok()) s = read_int(b, "lease_ttl_ms", c.ttl_ms, Presence::kOptional);
    if (s.ok() && (max < 1 || max > static_cast<std::int64_t>(config_.engine.claim_next_max))) {
      s = field_error("max", "must be within 1.." + std::to_string(config_.engine.claim_next_max));
    }
    if (!s.ok()) return fail(std::move(s));
    c.max = static_cast<std::size_t>(max);
    return engine_call(std::move(c), *agent, false);
  }

  // ---- hints ----
  if (res == "hints" && n == 2) {
    out.route = get ? "GET /v1/hints" : "POST /v1/hints";
    if (get) {
      if (Status s = read_guard({"live", "after", "limit"}); !s.ok()) return fail(std::move(s));
      out.action = list_hints(query);
      return out;
    }
    if (!post) return fail(method_not_allowed(m, path, {"GET", "POST"}));
    return create(hint_draft_from_json,
                  [](auto d) { return engine::Command(engine::CreateHint{std::move(d)}); });
  }
  if (res == "hints" && n == 3) {
    out.route = get ? "GET /v1/hints/{id}" : "DELETE /v1/hints/{id}";
    if (get) {
      if (Status s = read_guard({}); !s.ok()) return fail(std::move(s));
      return engine_call(engine::GetHint{seg[2]}, reader, false, true);
    }
    if (m != "DELETE") return fail(method_not_allowed(m, path, {"GET", "DELETE"}));
    auto ctx = write_ctx(true, {"creator"});
    if (!ctx.ok()) return fail(ctx.take_status());
    Json who = ctx->body;
    if (Status s = reject_unknown_fields(who, {"creator"}); !s.ok()) return fail(std::move(s));
    if (auto q = parse_query(query); q.ok()) {  // parsed and checked by write_ctx
      if (const std::string* c = q->get("creator");
          c != nullptr && who.find("creator") == nullptr) {
        who.set("creator", Json(*c));
      }
    }
    auto creator = creator_of(ctx->p, who);
    if (!creator.ok()) return fail(creator.take_status());
    const bool admin = ctx->p.authenticated && ctx->p.scope == Scope::kAdmin;
    return engine_call(engine::RevokeHint{seg[2], admin}, *creator, false);
  }

  // ---- the observation runtime (docs/senses.md) ----
  if ((res == "senses" && n == 2) || (res == "workflows" && n == 3 && seg[2] == "runs")) {
    const bool senses = res == "senses";
    out.route = senses ? "GET /v1/senses" : "GET /v1/workflows/runs";
    if (!get) return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = senses ? read_guard({}) : read_guard({"workflow", "limit"}); !s.ok()) {
      return fail(std::move(s));
    }
    if (!runtime_) {
      return fail(not_found(
          "this cairnd runs no observation runtime (no senses:, workflows: or reflexes: in its "
          "config); a runtime beside it (cairn senses run) keeps its status in its own data "
          "directory: cairn senses status --data DIR",
          "no_runtime"));
    }
    if (senses) {
      out.action = json_response(200, runtime_->status_json());
      return out;
    }
    auto q = parse_query(query);
    if (!q.ok()) return fail(q.take_status());
    auto limit = query_limit(*q, config_.limits);
    if (!limit.ok()) return fail(limit.take_status());
    const std::string* wf = q->get("workflow");
    out.action = json_response(200, runtime_->runs_json(wf ? *wf : std::string(), *limit));
    return out;
  }

  // ---- state, events, watch ----
  if (res == "state" && n == 2) {
    out.route = "GET /v1/state";
    if (!get) return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = read_guard({}); !s.ok()) return fail(std::move(s));
    return engine_call(engine::GetState{}, reader, false, true);
  }
  if (res == "plan" && n == 2) {
    out.route = "GET /v1/plan";
    if (!get) return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = read_guard({"at"}); !s.ok()) return fail(std::move(s));
    auto q = parse_query(query);
    if (!q.ok()) return fail(q.take_status());
    auto at = query_uint(*q, "at", 0);
    if (!at.ok()) return fail(at.take_status());
    if (*at > kPlanAtMax) {
      return fail(invalid("at must be a wall time in ms up to " + std::to_string(kPlanAtMax),
                          "invalid_query", Json(JsonObject{{"field", Json("at")}})));
    }
    engine_call(engine::GetPlan{static_cast<std::int64_t>(*at)}, reader, false, true);
    if (auto* c = std::get_if<EngineCall>(&out.action)) c->canonical = true;
    return out;
  }
  if (res == "events" && n == 2) {
    out.route = "GET /v1/events";
    if (!get) return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = read_guard({"after", "limit"}); !s.ok()) return fail(std::move(s));
    out.action = list_events(query);
    return out;
  }
  if (res == "evidence" && n == 2) {
    out.route = "GET /v1/evidence";
    if (!get) return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = read_guard({"from", "limit"}); !s.ok()) return fail(std::move(s));
    out.action = list_evidence(query);
    return out;
  }
  // ---- logs (docs/senses.md#logs) ----
  if (res == "logs" && n == 2) {
    out.route = get ? "GET /v1/logs" : "POST /v1/logs";
    if (get) {
      if (Status s = read_guard({"after", "source", "limit"}); !s.ok()) return fail(std::move(s));
      out.action = list_logs(query);
      return out;
    }
    if (!post) return fail(method_not_allowed(m, path, {"GET", "POST"}));
    auto ctx = write_ctx(false);
    if (!ctx.ok()) return fail(ctx.take_status());
    if (!req.idempotency_key.empty()) {
      // An append is not deduplicated: refuse the key rather than let a
      // client believe a retry is safe.
      return fail(
          invalid("POST /v1/logs does not take an Idempotency-Key (appends are not "
                  "deduplicated)",
                  "bad_request", Json(JsonObject{{"field", Json("Idempotency-Key")}})));
    }
    const Json& b = ctx->body;
    std::string source;
    std::string type;
    std::string ref;
    Json payload;
    Status s = reject_unknown_fields(b, {"source", "type", "ref", "payload"});
    if (s.ok()) s = read_string(b, "source", source);
    if (s.ok()) s = read_string(b, "type", type);
    if (s.ok()) s = read_opt_string(b, "ref", ref);
    if (s.ok()) s = read_value(b, "payload", payload, Presence::kOptional);
    if (s.ok()) s = LogRecords::validate(source, type, ref, payload);
    if (!s.ok()) return fail(std::move(s));
    const std::string caller = ctx->p.authenticated ? ctx->p.name : std::string("anonymous");
    if (Status r = rate_check(caller); !r.ok()) return fail(std::move(r));
    if (logs_ == nullptr) return fail(unavailable("log records are not open", "logs_unavailable"));
    out.action = OffloadCall{
        OffloadCall::Worker::kLogWriter,
        [logs = logs_, &metrics = metrics_, source = std::move(source), type = std::move(type),
         ref = std::move(ref), payload = std::move(payload)]() {
          auto a = logs->append(source, type, ref, payload);
          if (!a.ok()) return error_response(a.status());
          metrics.log_records_appended.fetch_add(1, std::memory_order_relaxed);
          return json_response(201, Json(JsonObject{{"id", Json(a->id)}, {"ts", Json(a->ts)}}));
        }};
    return out;
  }
  if (res == "logs" && n == 3 && seg[2] == "archive") {
    out.route = "POST /v1/logs/archive";
    if (!post) return fail(method_not_allowed(m, path, {"POST"}));
    auto p = authorize(req, Scope::kAdmin);
    if (!p.ok()) return fail(p.take_status());
    if (Status s = query_names({}); !s.ok()) return fail(std::move(s));
    auto body = parse_body(req, true);
    if (!body.ok()) return fail(body.take_status());
    if (Status s = reject_unknown_fields(*body, {}); !s.ok()) return fail(std::move(s));
    if (Status s = rate_check(p->authenticated ? p->name : std::string("anonymous")); !s.ok()) {
      return fail(std::move(s));
    }
    if (!archive_) return fail(unavailable("log records are not open", "logs_unavailable"));
    out.action = OffloadCall{
        OffloadCall::Worker::kArchiver, [archive = archive_]() {
          auto r = archive();
          if (!r.ok()) return error_response(r.status());
          JsonArray days;
          for (const std::string& d : r->days) days.emplace_back(d);
          return json_response(
              200, Json(JsonObject{{"days", Json(std::move(days))},
                                   {"records", Json(r->records)},
                                   {"watermark", r->watermark ? Json(*r->watermark) : Json()}}));
        }};
    return out;
  }
  if (res == "watch" && n == 2) {
    out.route = "GET /v1/watch";
    if (!get) return fail(method_not_allowed(m, path, {"GET"}));
    if (Status s = read_guard({"after"}); !s.ok()) return fail(std::move(s));
    auto q = parse_query(query);
    if (!q.ok()) return fail(q.take_status());
    WatchCall w;
    std::string after_text = req.last_event_id;
    if (after_text.empty()) {
      if (const std::string* a = q->get("after")) after_text = *a;
    }
    if (after_text.empty()) {
      auto last = last_seq();
      if (!last.ok()) return fail(last.take_status());
      w.after = *last;
    } else {
      auto [p, ec] =
          std::from_chars(after_text.data(), after_text.data() + after_text.size(), w.after);
      if (ec != std::errc() || p != after_text.data() + after_text.size()) {
        return fail(
            invalid("Last-Event-ID / after must be an event sequence number", "invalid_query"));
      }
    }
    out.action = w;
    return out;
  }
  out.route = "unknown";
  return fail(not_found("no route for " + printable(path), "no_route"));
}

HttpResponse Api::finish(const EngineCall& call, const Status& status, const Json& body) const {
  if (!status.ok()) return error_response(status);
  int code = 200;
  if (call.created_201) {
    const Json* c = body.find("created");
    if (c != nullptr && c->bool_if().value_or(false)) code = 201;
  }
  if (call.canonical) {
    HttpResponse r;
    r.status = code;
    r.body = to_jcs(body);
    return r;
  }
  return json_response(code, body);
}

// ---- store reads -------------------------------------------------------------------

HttpResponse Api::get_fact(std::string_view id) {
  auto f = Blackboard::read_fact(reader_, id);
  if (!f.ok()) return error_response(f.status());
  return json_response(200, fact_to_json(*f));
}

HttpResponse Api::list_facts(const std::string& query) {
  auto q = parse_query(query);
  if (!q.ok()) return error_response(q.status());
  auto after = query_uint(*q, "after", 0);
  if (!after.ok()) return error_response(after.status());
  auto limit = query_limit(*q, config_.limits);
  if (!limit.ok()) return error_response(limit.status());
  std::string prefix;
  const std::string* kind = q->get("kind");
  if (kind != nullptr && !kind->empty()) {
    if (kind->find('|') != std::string::npos) {
      return error_response(invalid("query parameter kind may not contain '|'", "invalid_query",
                                    Json(JsonObject{{"field", Json("kind")}})));
    }
    prefix = keys::fact_by_kind_prefix(*kind);
  } else {
    prefix = std::string(keys::kFactsBySeq);
  }
  std::string from;
  if (*after > 0) {
    from = prefix;
    keys::append_u64(from, *after);
  }
  auto page = reader_.range(prefix, from, *limit);
  if (!page.ok()) return error_response(page.status());
  JsonArray facts;
  std::uint64_t last = 0;
  for (const store::Entry& e : page->entries) {
    // x/fs/ values are the id; x/fk/ values are "<id> <recorded_at>".
    const std::string_view id = std::string_view(e.value).substr(0, e.value.find(' '));
    auto f = Blackboard::read_fact(reader_, id);
    if (!f.ok()) return error_response(f.status());
    last = f->seq;
    facts.push_back(fact_to_json(*f));
  }
  JsonObject o{{"facts", Json(std::move(facts))}};
  o.emplace_back("next", page->more ? Json(last) : Json());
  return json_response(200, Json(std::move(o)));
}

HttpResponse Api::list_intents(const std::string& query) {
  auto q = parse_query(query);
  if (!q.ok()) return error_response(q.status());
  auto limit = query_limit(*q, config_.limits);
  if (!limit.ok()) return error_response(limit.status());
  const std::string* state = q->get("state");
  const std::string* kind = q->get("kind");
  const std::string* lane = q->get("lane");
  const std::string* after = q->get("after");
  std::string prefix;
  if (state != nullptr && !state->empty()) {
    auto s = parse_state(*state);
    if (!s) {
      return error_response(invalid("unknown state " + *state, "invalid_query",
                                    Json(JsonObject{{"field", Json("state")}})));
    }
    prefix = keys::intent_by_state_prefix(*s);
  } else {
    prefix = std::string(keys::kIntentDef);
  }
  std::string from = after != nullptr && !after->empty() ? prefix + *after : std::string();
  JsonArray out;
  std::string last_id;
  bool more = false;
  std::size_t scanned = 0;
  const std::size_t scan_max = std::max(config_.limits.list_scan_max, *limit);
  while (out.size() < *limit && scanned < scan_max) {
    const std::size_t want = std::min<std::size_t>(scan_max - scanned, 1'000);
    auto page = reader_.range(prefix, from, want);
    if (!page.ok()) return error_response(page.status());
    more = page->more;
    for (const store::Entry& e : page->entries) {
      ++scanned;
      const std::string id(e.key.substr(prefix.size()));
      from = e.key;
      last_id = id;
      auto def_e = reader_.get(keys::intent_def(id));
      auto st_e = reader_.get(keys::intent_status(id));
      if (!def_e.ok()) return error_response(def_e.status());
      if (!st_e.ok()) return error_response(st_e.status());
      if (!*def_e || !*st_e) continue;  // raced with nothing: intents are never deleted
      auto def = decode_intent_def((*def_e)->value);
      auto st = decode_intent_status((*st_e)->value);
      if (!def.ok()) return error_response(def.status());
      if (!st.ok()) return error_response(st.status());
      if (kind != nullptr && !kind->empty() && def->kind != *kind) continue;
      if (lane != nullptr && !lane->empty() && def->lane != *lane) continue;
      out.push_back(intent_to_json(Intent{std::move(def).value(), std::move(st).value()}));
      if (out.size() == *limit) {
        // More may follow when this page had more entries or the store said so.
        more = more || &e != &page->entries.back();
        break;
      }
    }
    if (!page->more) break;
  }
  if (scanned >= scan_max && out.size() < *limit) more = true;
  JsonObject o{{"intents", Json(std::move(out))}};
  o.emplace_back("next", more ? Json(last_id) : Json());
  return json_response(200, Json(std::move(o)));
}

HttpResponse Api::list_hints(const std::string& query) {
  auto q = parse_query(query);
  if (!q.ok()) return error_response(q.status());
  auto limit = query_limit(*q, config_.limits);
  if (!limit.ok()) return error_response(limit.status());
  const std::string* live = q->get("live");
  if (live != nullptr && !live->empty() && *live != "true" && *live != "false" && *live != "1" &&
      *live != "0") {
    return error_response(invalid("query parameter live must be true or false", "invalid_query",
                                  Json(JsonObject{{"field", Json("live")}})));
  }
  const bool live_only = live != nullptr && (*live == "true" || *live == "1");
  const std::string* after = q->get("after");
  const std::string prefix(keys::kHint);
  std::string from = after != nullptr && !after->empty() ? prefix + *after : std::string();
  const std::int64_t now = wall_ms();
  JsonArray out;
  std::string last_id;
  bool more = false;
  std::size_t scanned = 0;
  while (out.size() < *limit && scanned < config_.limits.list_scan_max) {
    auto page = reader_.range(prefix, from, 1'000);
    if (!page.ok()) return error_response(page.status());
    more = page->more;
    for (const store::Entry& e : page->entries) {
      ++scanned;
      from = e.key;
      last_id = e.key.substr(prefix.size());
      auto h = decode_hint_record(e.value);
      if (!h.ok()) return error_response(h.status());
      if (live_only && !h->live(now)) continue;
      out.push_back(hint_to_json(*h, now));
      if (out.size() == *limit) {
        more = more || &e != &page->entries.back();
        break;
      }
    }
    if (!page->more) break;
  }
  JsonObject o{{"hints", Json(std::move(out))}};
  o.emplace_back("next", more ? Json(last_id) : Json());
  return json_response(200, Json(std::move(o)));
}

HttpResponse Api::list_events(const std::string& query) {
  auto q = parse_query(query);
  if (!q.ok()) return error_response(q.status());
  auto after = query_uint(*q, "after", 0);
  if (!after.ok()) return error_response(after.status());
  auto limit = query_limit(*q, config_.limits);
  if (!limit.ok()) return error_response(limit.status());
  auto evs = events_after(*after, *limit);
  if (!evs.ok()) return error_response(evs.status());
  JsonArray arr;
  std::uint64_t last = 0;
  for (const Event& e : *evs) {
    last = e.seq;
    arr.push_back(event_to_json(e));
  }
  const bool full = arr.size() == *limit;
  JsonObject o{{"events", Json(std::move(arr))}};
  o.emplace_back("next", full ? Json(last) : Json());
  return json_response(200, Json(std::move(o)));
}

// The evidence chain from `from` (default 1), one page: the links as stored,
// and the chain recomputed over them — each link's hash, its link to the one
// before (for the first, the stored link at from-1), and its action hash
// against the event with its seq (so an edited event is caught too).
HttpResponse Api::list_evidence(const std::string& query) {
  auto q = parse_query(query);
  if (!q.ok()) return error_response(q.status());
  auto from_q = query_uint(*q, "from", 1);
  if (!from_q.ok()) return error_response(from_q.status());
  auto limit = query_limit(*q, config_.limits);
  if (!limit.ok()) return error_response(limit.status());
  const std::uint64_t from = std::max<std::uint64_t>(*from_q, 1);
  auto page = reader_.range(keys::kEvidence, from > 1 ? keys::evidence(from - 1) : "", *limit);
  if (!page.ok()) return error_response(page.status());
  std::vector<EvidenceLink> links;
  std::optional<EvidenceProblem> undecodable;
  JsonArray out;
  for (const store::Entry& e : page->entries) {
    auto l = decode_evidence_link(e.value);
    std::uint64_t seq = 0;
    const std::string_view digits = std::string_view(e.key).substr(keys::kEvidence.size());
    std::from_chars(digits.data(), digits.data() + digits.size(), seq);
    if (!l.ok()) {
      // A record that does not even decode: the chain breaks here.
      undecodable = EvidenceProblem{seq, EvidenceFault::kHashMismatch,
                                    "the stored link does not decode: " + l.status().message()};
      break;
    }
    out.push_back(evidence_link_to_json(*l));
    links.push_back(std::move(*l));
  }
  // The events the links stand for, aligned by seq (a missing one: null).
  std::vector<Json> actions(links.size());
  if (!links.empty()) {
    auto evs = events_after(links.front().seq - 1, links.size());
    if (!evs.ok()) return error_response(evs.status());
    for (const Event& e : *evs) {
      if (e.seq >= links.front().seq && e.seq - links.front().seq < links.size()) {
        actions[e.seq - links.front().seq] = event_to_json(e);
      }
    }
  }
  // The stored link before `from` anchors the page's first prev_hash.
  std::optional<Digest> anchor;
  bool anchor_undecodable = false;
  if (from > 1 && !links.empty()) {
    auto prev = reader_.get(keys::evidence(from - 1));
    if (!prev.ok()) return error_response(prev.status());
    if (*prev) {
      auto pl = decode_evidence_link((*prev)->value);
      anchor_undecodable = !pl.ok();
      if (pl.ok()) anchor = pl->chain_hash;
    }
  }
  EvidenceReport r = verify_chain(links, from, actions, anchor);
  if (anchor_undecodable && (r.ok() || r.problem->seq > from)) {
    r.checked = 0;
    r.problem =
        EvidenceProblem{from, EvidenceFault::kBrokenLink,
                        "the link before it, " + std::to_string(from - 1) + ", does not decode"};
  }
  if (undecodable && r.ok()) r.problem = std::move(undecodable);
  const bool full = page->more && !undecodable;
  JsonObject o{{"links", Json(std::move(out))}, {"report", evidence_report_to_json(r)}};
  o.emplace_back("next", full && !links.empty() ? Json(links.back().seq + 1) : Json());
  return json_response(200, Json(std::move(o)));
}

HttpResponse Api::list_logs(const std::string& query) {
  auto q = parse_query(query);
  if (!q.ok()) return error_response(q.status());
  auto after = query_uint(*q, "after", 0);
  if (!after.ok()) return error_response(after.status());
  auto limit = query_limit(*q, config_.limits);
  if (!limit.ok()) return error_response(limit.status());
  const std::string* source = q->get("source");
  if (*after > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return error_response(invalid("after is not a log record id", "invalid_query",
                                  Json(JsonObject{{"field", Json("after")}})));
  }
  if (logs_ == nullptr) {
    return error_response(unavailable("log records are not open", "logs_unavailable"));
  }
  auto page =
      logs_->list(static_cast<std::int64_t>(*after),
                  source != nullptr ? std::string_view(*source) : std::string_view(), *limit);
  if (!page.ok()) return error_response(page.status());
  JsonArray arr;
  for (const LogRecord& r : page->records) arr.push_back(log_record_to_json(r));
  JsonObject o{{"logs", Json(std::move(arr))}};
  o.emplace_back("next", page->next ? Json(std::to_string(*page->next)) : Json());
  return json_response(200, Json(std::move(o)));
}

}  // namespace cairn::server

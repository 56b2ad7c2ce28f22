// commands.cc — see commands.h. Every command: build the request body,
// call the client, print a table (or the server's JSON with --json), and
// return an exit code. Errors go to stderr.
#include "commands.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "client/verify.h"
#include "core/evidence.h"
#include "model/json_parse.h"
#include "output.h"

namespace cairn::cli {

using client::Client;

// ---- errors ------------------------------------------------------------------------

// Prints a failed call: "cairn: <code>: <message> (HTTP n)" and its details,
// or with --json the error object {"error": {code, message, details}}.
int report(const Globals& g, const Status& s, int http_status) {
  if (g.json) {
    Json details = s.details().is_object() ? s.details() : Json::object();
    Json e = Json(JsonObject{{"error", Json(JsonObject{{"code", Json(s.reason())},
                                                       {"message", Json(s.message())},
                                                       {"details", details}})}});
    std::string line = to_json(e) + "\n";
    std::fputs(line.c_str(), stderr);
  } else {
    std::string line = "cairn: " + std::string(s.reason()) + ": " + s.message();
    if (http_status > 0) line += " (HTTP " + std::to_string(http_status) + ")";
    line += '\n';
    const Json& d = s.details();
    if (d.is_object() && d.size() > 0 && http_status > 0) line += "  details: " + to_json(d) + "\n";
    std::fputs(line.c_str(), stderr);
  }
  return exit_code_for(s);
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "cairn: %s\n", message.c_str());
  return kExitUsage;
}

// A connected client, or the exit code for a bad URL.
Session open_session(const Globals& g) {
  client::ClientOptions o;
  o.url = g.url;
  o.token = g.token;
  o.timeout_ms = g.timeout_ms;
  o.retries = g.retries;
  auto c = Client::create(o);
  if (!c.ok()) return Session{nullptr, usage_error(c.status().message())};
  return Session{std::move(c).value(), kExitOk};
}

namespace {

// One call on a fresh session: a refusal is reported (exit code by status);
// a reply is printed as JSON with --json, otherwise by `human`.
template <class Call, class Human>
int call_and_print(const Globals& g, Call&& call, Human&& human) {
  Session s = open_session(g);
  if (!s.client) return s.exit_code;
  auto r = call(*s.client);
  if (!r.ok()) return report(g, r.status(), s.client->last_http_status());
  if (g.json) {
    print_json_line(*r);
    return kExitOk;
  }
  return human(*r);
}

std::string key_or_new(const std::string& given) {
  return given.empty() ? Client::new_idempotency_key() : given;
}

// ---- inputs ------------------------------------------------------------------------

// The text of "-" (stdin), "@path" (a file) or a literal.
Result<std::string> read_arg_text(const std::string& arg) {
  if (arg == "-") {
    std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return s;
  }
  if (!arg.empty() && arg[0] == '@') {
    std::ifstream f(arg.substr(1), std::ios::binary);
    if (!f) return invalid("cannot read " + arg.substr(1), "usage");
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  return arg;
}

// A JSON value from a literal, @file or -.
Result<Json> read_json_arg(const std::string& arg, std::string_view what) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, read_arg_text(arg));
  auto j = parse_json(text);
  if (!j.ok()) {
    return invalid(std::string(what) + " is not JSON: " + j.status().message() +
                       " (a plain string needs quotes, or --string)",
                   "usage");
  }
  return j;
}

Result<Json> read_content(const ContentArg& c) {
  if (!c.as_string) return read_json_arg(c.text, "content");
  CAIRN_ASSIGN_OR_RETURN(std::string text, read_arg_text(c.text));
  if (!is_valid_utf8(text)) return invalid("content is not valid UTF-8", "usage");
  return Json(std::move(text));
}

Json string_array(const std::vector<std::string>& v) {
  JsonArray a;
  for (const auto& s : v) a.emplace_back(s);
  return Json(std::move(a));
}

void set_if(Json& o, std::string_view key, const std::string& v) {
  if (!v.empty()) o.set(key, Json(v));
}
void set_if(Json& o, std::string_view key, const std::optional<std::int64_t>& v) {
  if (v) o.set(key, Json(*v));
}

// ---- lists -------------------------------------------------------------------------

// One page, or with --all every page (following `next`, at most
// kListAllItemsMax items), merged into {member: [...], "next": cursor|null}.
template <class Fetch>
Result<Json> list_pages(const ListArgs& a, std::string_view member, Fetch fetch) {
  client::ListQuery q;
  q.kind = a.kind;
  q.state = a.state;
  q.lane = a.lane;
  q.live = a.live;
  q.after = a.after;
  q.source = a.source;
  if (a.limit > 0) q.limit = a.limit;
  JsonArray items;
  Json next;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(Json page, fetch(q));
    const Json* arr = page.find(member);
    if (arr == nullptr || !arr->is_array()) {
      return unavailable("the server's reply has no " + std::string(member) + " list",
                         "bad_response");
    }
    for (const Json& e : arr->as_array()) items.push_back(e);
    const Json* n = page.find("next");
    next = n == nullptr ? Json() : *n;
    if (!a.all || next.is_null() || items.size() >= kListAllItemsMax) break;
    q.after = next.is_string() ? next.as_string() : to_json(next);
  }
  if (a.all && !next.is_null()) {
    std::fprintf(stderr, "cairn: stopped after %zu items (the --all bound)\n", items.size());
  }
  return Json(JsonObject{{std::string(member), Json(std::move(items))}, {"next", next}});
}

// Tells a human reader how to get the next page.
void print_more_hint(const Json& page, const char* command) {
  const Json* n = page.find("next");
  if (n == nullptr || n->is_null()) return;
  const std::string cursor = n->is_string() ? n->as_string() : to_json(*n);
  std::fprintf(stderr, "more: cairn %s --after %s  (or --all)\n", command, cursor.c_str());
}

// ---- printing ----------------------------------------------------------------------

// A member, or null when absent (a reference: safe in range-for).
const Json& member(const Json& o, std::string_view key) {
  static const Json kNull;
  const Json* v = o.find(key);
  return v == nullptr ? kNull : *v;
}

void print_fact(const Globals& g, const Json& f) {
  KeyValues kv;
  kv.add("id", text_of(f, "id"));
  kv.add("kind", text_of(f, "kind"));
  kv.add("creator", text_of(f, "creator"));
  kv.add("content_type", text_of(f, "content_type"));
  kv.add("seq", text_of(f, "seq"));
  kv.add("recorded_at", format_time_ms(member(f, "recorded_at")));
  const Json* d = f.find("derived_from");
  if (d == nullptr || !d->is_array() || d->as_array().empty()) {
    kv.add("derived_from", "-");
  } else {
    bool first = true;
    for (const Json& e : d->as_array()) {
      kv.add(first ? "derived_from" : "", e.is_string() ? e.as_string() : to_json(e));
      first = false;
    }
  }
  const Json* c = f.find("content");
  kv.add("content", c == nullptr ? "-" : to_json(*c));
  (void)g;
  kv.print(stdout);
}

void print_intent(const Json& in) {
  KeyValues kv;
  for (const char* k :
       {"id", "kind", "state", "lane", "provider", "cost_units", "priority", "epoch", "holder"}) {
    kv.add(k, text_of(in, k));
  }
  if (const Json* c = in.find("coalesced_into"); c != nullptr && !c->is_null()) {
    kv.add("coalesced_into", text_of(in, "coalesced_into"));
  }
  kv.add("lease_expires_at", format_time_ms(member(in, "lease_expires_at")));
  kv.add("attempts", text_of(in, "attempts") + " of " + text_of(in, "max_attempts"));
  kv.add("not_before", format_time_ms(member(in, "not_before")));
  kv.add("result", text_of(in, "result"));
  kv.add("last_error", text_of(in, "last_error"));
  kv.add("from_facts", refs_of(member(in, "from_facts"), true));
  kv.add("requires", refs_of(member(in, "requires"), true));
  kv.add("identity", text_of(in, "identity"));
  kv.add("stale_after_ms", text_of(in, "stale_after_ms"));
  kv.add("lease_ttl_ms", text_of(in, "lease_ttl_ms"));
  kv.add("creator", text_of(in, "creator"));
  kv.add("created_at", format_time_ms(member(in, "created_at")));
  kv.add("updated_at", format_time_ms(member(in, "updated_at")));
  kv.add("spec", text_of(in, "spec"));
  kv.print(stdout);
}

std::string effect_text(const Json& e) {
  std::string out = text_of(e, "type");
  for (const char* k : {"n", "delta", "until", "fact_kind"}) {
    const Json* v = e.find(k);
    if (v == nullptr || v->is_null()) continue;
    out += ' ';
    out += k;
    out += '=';
    out += std::string(k) == "until" ? format_time_ms(*v)
                                     : (v->is_string() ? v->as_string() : to_json(*v));
  }
  return out;
}

std::string selector_text(const Json& s) {
  std::string out;
  if (const JsonObject* o = s.object_if()) {
    for (const auto& [k, v] : *o) {
      if (v.is_null() || (v.is_string() && v.as_string().empty())) continue;
      if (!out.empty()) out += ',';
      out += k + "=" + (v.is_string() ? v.as_string() : to_json(v));
    }
  }
  return out.empty() ? "*" : out;
}

void print_hint(const Json& h) {
  KeyValues kv;
  for (const char* k : {"id", "kind", "creator", "reason", "seq"}) kv.add(k, text_of(h, k));
  kv.add("effect", effect_text(member(h, "effect")));
  kv.add("selector", selector_text(member(h, "selector")));
  kv.add("expires_at", format_time_ms(member(h, "expires_at")));
  kv.add("revoked", text_of(h, "revoked"));
  kv.add("live", text_of(h, "live"));
  kv.add("derived_from", refs_of(member(h, "derived_from"), true));
  kv.add("created_at", format_time_ms(member(h, "created_at")));
  kv.print(stdout);
}

}  // namespace

int exit_code_for(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kConflict:
      return kExitConflict;
    case Code::kInvalid:
      return s.reason() == "usage" || s.reason() == "invalid_url" ? kExitUsage : kExitRefused;
    case Code::kForbidden:
    case Code::kTooLarge:
      return kExitRefused;
    case Code::kUnavailable:
    case Code::kOutcomeUnknown:
    case Code::kInternal:
      return kExitUnavailable;
  }
  return kExitUnavailable;
}

// ---- facts -------------------------------------------------------------------------

int fact_add(const Globals& g, const FactAddArgs& a) {
  auto content = read_content(a.content);
  if (!content.ok()) return usage_error(content.status().message());
  Json body = Json(JsonObject{{"kind", Json(a.kind)}, {"content", std::move(content).value()}});
  set_if(body, "content_type", a.content_type);
  if (!a.derived_from.empty()) body.set("derived_from", string_array(a.derived_from));
  set_if(body, "creator", a.creator);
  return call_and_print(
      g, [&](Client& c) { return c.post_fact(body, key_or_new(a.idempotency_key)); },
      [&](const Json& reply) {
        std::printf("%s\n", text_of(reply, "id").c_str());
        return kExitOk;
      });
}

int fact_get(const Globals& g, const std::string& id) {
  return call_and_print(
      g, [&](Client& c) { return c.get_fact(id); },
      [&](const Json& reply) {
        print_fact(g, reply);
        return kExitOk;
      });
}

int fact_ls(const Globals& g, const ListArgs& a) {
  return call_and_print(
      g,
      [&](Client& c) {
        return list_pages(a, "facts", [&](const client::ListQuery& q) { return c.list_facts(q); });
      },
      [&](const Json& reply) {
        Table t({"SEQ", "ID", "KIND", "CREATOR", "RECORDED", "DERIVED_FROM", "CONTENT"});
        for (const Json& f : member(reply, "facts").as_array()) {
          t.add({text_of(f, "seq"), text_of(f, "id"), text_of(f, "kind"), text_of(f, "creator"),
                 format_time_ms(member(f, "recorded_at")),
                 refs_of(member(f, "derived_from"), g.wide),
                 preview(member(f, "content"), 40, g.wide)});
        }
        t.print(stdout);
        if (!a.all) print_more_hint(reply, "fact ls");
        return kExitOk;
      });
}

// ---- intents -----------------------------------------------------------------------

int intent_add(const Globals& g, const IntentAddArgs& a) {
  Json body = Json(JsonObject{{"kind", Json(a.kind)}, {"from_facts", string_array(a.from_facts)}});
  set_if(body, "id", a.id);
  if (!a.spec.empty()) {
    auto spec = read_json_arg(a.spec, "spec");
    if (!spec.ok()) return usage_error(spec.status().message());
    body.set("spec", std::move(spec).value());
  }
  set_if(body, "lane", a.lane);
  set_if(body, "priority", a.priority);
  set_if(body, "identity", a.identity);
  set_if(body, "provider", a.provider);
  set_if(body, "cost_units", a.cost_units);
  set_if(body, "stale_after_ms", a.stale_after_ms);
  if (!a.requires_.empty()) body.set("requires", string_array(a.requires_));
  set_if(body, "lease_ttl_ms", a.lease_ttl_ms);
  set_if(body, "max_attempts", a.max_attempts);
  set_if(body, "creator", a.creator);
  return call_and_print(
      g, [&](Client& c) { return c.create_intent(body, key_or_new(a.idempotency_key)); },
      [&](const Json& reply) {
        std::printf("%s\n", text_of(reply, "id").c_str());
        return kExitOk;
      });
}

int intent_get(const Globals& g, const std::string& id) {
  return call_and_print(
      g, [&](Client& c) { return c.get_intent(id); },
      [&](const Json& reply) {
        print_intent(reply);
        return kExitOk;
      });
}

int intent_ls(const Globals& g, const ListArgs& a) {
  return call_and_print(
      g,
      [&](Client& c) {
        return list_pages(a, "intents",
                          [&](const client::ListQuery& q) { return c.list_intents(q); });
      },
      [&](const Json& reply) {
        Table t({"ID", "STATE", "KIND", "LANE", "PRIO", "EPOCH", "HOLDER", "ATTEMPTS", "RESULT"});
        for (const Json& in : member(reply, "intents").as_array()) {
          const Json res = member(in, "result");
          t.add({text_of(in, "id"), text_of(in, "state"), text_of(in, "kind"), text_of(in, "lane"),
                 text_of(in, "priority"), text_of(in, "epoch"), text_of(in, "holder"),
                 text_of(in, "attempts") + "/" + text_of(in, "max_attempts"),
                 res.is_string() ? short_ref(res.as_string(), g.wide) : "-"});
        }
        t.print(stdout);
        if (!a.all) print_more_hint(reply, "intent ls");
        return kExitOk;
      });
}

int intent_claim(const Globals& g, const ClaimArgs& a) {
  Json body = Json::object();
  set_if(body, "agent", a.agent);
  set_if(body, "lease_ttl_ms", a.lease_ttl_ms);
  Session s = open_session(g);
  if (!s.client) return s.exit_code;
  const std::string key = key_or_new(a.idempotency_key);
  if (!a.id.empty()) {
    if (!a.kinds.empty() || !a.lanes.empty() || a.max != 1 || a.wait_ms != 0) {
      return usage_error(
          "--kind, --lane, --max and --wait-ms select the next work: not with an ID");
    }
    auto r = s.client->intent_action(a.id, "claim", body, key);
    if (!r.ok()) return report(g, r.status(), s.client->last_http_status());
    if (g.json) {
      print_json_line(*r);
      return kExitOk;
    }
    Table t({"ID", "EPOCH", "LEASE_EXPIRES"});
    t.add({a.id, text_of(*r, "epoch"), format_time_ms(member(*r, "lease_expires_at"))});
    t.print(stdout);
    return kExitOk;
  }
  if (!a.kinds.empty()) body.set("kinds", string_array(a.kinds));
  if (!a.lanes.empty()) body.set("lanes", string_array(a.lanes));
  body.set("max", Json(a.max));
  body.set("wait_ms", Json(a.wait_ms));
  auto r = s.client->claim_next(body, key);
  if (!r.ok()) return report(g, r.status(), s.client->last_http_status());
  if (g.json) {
    print_json_line(*r);
    return kExitOk;
  }
  const Json claims = member(*r, "claims");
  if (!claims.is_array() || claims.as_array().empty()) {
    std::fprintf(stderr, "cairn: no intent claimed\n");
    return kExitOk;
  }
  Table t({"ID", "KIND", "EPOCH", "LEASE_EXPIRES"});
  for (const Json& c : claims.as_array()) {
    const Json in = member(c, "intent");
    t.add({text_of(in, "id"), text_of(in, "kind"), text_of(c, "epoch"),
           format_time_ms(member(c, "lease_expires_at"))});
  }
  t.print(stdout);
  return kExitOk;
}

int intent_lifecycle(const Globals& g, const std::string& verb, const LifecycleArgs& a) {
  Json body = Json::object();
  if (verb == "cancel") {
    set_if(body, "creator", a.creator);
  } else {
    set_if(body, "agent", a.agent);
    body.set("epoch", Json(a.epoch));
  }
  if (verb == "heartbeat") set_if(body, "lease_ttl_ms", a.lease_ttl_ms);
  if (verb == "fail") {
    set_if(body, "error", a.error);
    if (a.no_retry) body.set("retryable", Json(false));
  }
  if (verb == "conclude") {
    auto content = read_content(a.result);
    if (!content.ok()) return usage_error(content.status().message());
    Json result =
        Json(JsonObject{{"kind", Json(a.result_kind)}, {"content", std::move(content).value()}});
    set_if(result, "content_type", a.content_type);
    if (!a.derived_from.empty()) result.set("derived_from", string_array(a.derived_from));
    body.set("result", std::move(result));
  }
  return call_and_print(
      g,
      [&](Client& c) { return c.intent_action(a.id, verb, body, key_or_new(a.idempotency_key)); },
      [&](const Json& reply) {
        if (verb == "conclude") {
          std::printf("%s\n", text_of(reply, "result").c_str());  // the result fact's id
        } else if (verb == "heartbeat") {
          Table t({"ID", "EPOCH", "LEASE_EXPIRES"});
          t.add({a.id, text_of(reply, "epoch"), format_time_ms(member(reply, "lease_expires_at"))});
          t.print(stdout);
        } else {
          std::string line = a.id + "  " + text_of(reply, "state");
          if (const Json* nb = reply.find("not_before"); nb != nullptr && !nb->is_null()) {
            line += "  not_before " + format_time_ms(*nb);
          }
          std::printf("%s\n", line.c_str());
        }
        return kExitOk;
      });
}

// ---- hints -------------------------------------------------------------------------

int hint_add(const Globals& g, const HintAddArgs& a) {
  Json effect = Json(JsonObject{{"type", Json(a.effect)}});
  set_if(effect, "n", a.n);
  set_if(effect, "delta", a.delta);
  set_if(effect, "until", a.until);
  set_if(effect, "fact_kind", a.fact_kind);
  Json selector = Json::object();
  set_if(selector, "kind", a.select_kind);
  set_if(selector, "lane", a.select_lane);
  set_if(selector, "identity", a.select_identity);
  set_if(selector, "creator", a.select_creator);
  Json body = Json(JsonObject{
      {"kind", Json(a.kind)}, {"selector", std::move(selector)}, {"effect", std::move(effect)}});
  set_if(body, "id", a.id);
  set_if(body, "expires_at", a.expires_at);
  set_if(body, "reason", a.reason);
  if (!a.derived_from.empty()) body.set("derived_from", string_array(a.derived_from));
  set_if(body, "creator", a.creator);
  return call_and_print(
      g, [&](Client& c) { return c.create_hint(body, key_or_new(a.idempotency_key)); },
      [&](const Json& reply) {
        std::printf("%s\n", text_of(reply, "id").c_str());
        return kExitOk;
      });
}

int hint_get(const Globals& g, const std::string& id) {
  return call_and_print(
      g, [&](Client& c) { return c.get_hint(id); },
      [&](const Json& reply) {
        print_hint(reply);
        return kExitOk;
      });
}

int hint_rm(const Globals& g, const HintRmArgs& a) {
  Json body = Json::object();
  set_if(body, "creator", a.creator);
  return call_and_print(
      g, [&](Client& c) { return c.revoke_hint(a.id, body, key_or_new(a.idempotency_key)); },
      [&](const Json&) {
        std::printf("%s  revoked\n", a.id.c_str());
        return kExitOk;
      });
}

int hint_ls(const Globals& g, const ListArgs& a) {
  return call_and_print(
      g,
      [&](Client& c) {
        return list_pages(a, "hints", [&](const client::ListQuery& q) { return c.list_hints(q); });
      },
      [&](const Json& reply) {
        Table t({"ID", "KIND", "EFFECT", "SELECTOR", "LIVE", "EXPIRES", "CREATOR", "REASON"});
        for (const Json& h : member(reply, "hints").as_array()) {
          t.add({text_of(h, "id"), text_of(h, "kind"), effect_text(member(h, "effect")),
                 selector_text(member(h, "selector")), text_of(h, "live"),
                 format_time_ms(member(h, "expires_at")), text_of(h, "creator"),
                 shorten(text_of(h, "reason"), 40, g.wide)});
        }
        t.print(stdout);
        if (!a.all) print_more_hint(reply, "hint ls");
        return kExitOk;
      });
}

// ---- logs --------------------------------------------------------------------------

int logs(const Globals& g, const ListArgs& a) {
  return call_and_print(
      g,
      [&](Client& c) {
        return list_pages(a, "logs", [&](const client::ListQuery& q) { return c.list_logs(q); });
      },
      [&](const Json& reply) {
        Table t({"ID", "TIME", "SOURCE", "TYPE", "REF", "PAYLOAD"});
        for (const Json& r : member(reply, "logs").as_array()) {
          t.add({text_of(r, "id"), format_time_ms(member(r, "ts")), text_of(r, "source"),
                 text_of(r, "type"), shorten(text_of(r, "ref"), 40, g.wide),
                 preview(member(r, "payload"), 60, g.wide)});
        }
        t.print(stdout);
        if (!a.all) print_more_hint(reply, "logs");
        return kExitOk;
      });
}

int archive_logs(const Globals& g) {
  return call_and_print(
      g, [&](Client& c) { return c.archive_logs(); },
      [&](const Json& reply) {
        for (const Json& d : member(reply, "days").as_array()) {
          std::printf("%s\n", d.is_string() ? d.as_string().c_str() : to_json(d).c_str());
        }
        std::fprintf(stderr, "archived %s records; watermark %s\n",
                     text_of(reply, "records").c_str(), text_of(reply, "watermark").c_str());
        return kExitOk;
      });
}

// ---- state, watch, verify ----------------------------------------------------------

int state(const Globals& g) {
  return call_and_print(
      g, [&](Client& c) { return c.state(); },
      [&](const Json& reply) {
        Table t({"INTENTS", "COUNT"});
        if (const JsonObject* by = member(reply, "intents").object_if()) {
          for (const auto& [k, v] : *by) t.add({k, to_json(v)});
        }
        t.print(stdout);
        // Per lane: one row per lane, one column per state.
        if (const JsonObject* lanes = member(reply, "lanes").object_if();
            lanes && !lanes->empty()) {
          std::vector<std::string> states;
          if (const JsonObject* by = member(reply, "intents").object_if()) {
            for (const auto& [k, v] : *by) states.push_back(k);
          }
          std::vector<std::string> header{"LANE"};
          for (std::string h : states) {
            for (char& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            header.push_back(std::move(h));
          }
          Table lt(header);
          for (const auto& [lane, counts] : *lanes) {
            std::vector<std::string> row{lane};
            for (const std::string& st : states) {
              const Json* n = counts.find(st);
              row.push_back(n != nullptr ? to_json(*n) : "0");
            }
            lt.add(std::move(row));
          }
          std::printf("\n");
          lt.print(stdout);
        }
        std::printf("\nfacts     %s\nlast_seq  %s\n", text_of(reply, "facts").c_str(),
                    text_of(reply, "last_seq").c_str());
        return kExitOk;
      });
}

int plan(const Globals& g, std::int64_t at_ms) {
  Session s = open_session(g);
  if (!s.client) return s.exit_code;
  auto bytes = s.client->plan_bytes(at_ms);
  if (!bytes.ok()) return report(g, bytes.status(), s.client->last_http_status());
  if (g.json) {
    // The server's canonical bytes as they came (a newline only for a terminal).
    std::fwrite(bytes->data(), 1, bytes->size(), stdout);
    if (::isatty(::fileno(stdout)) != 0) std::fputc('\n', stdout);
    return kExitOk;
  }
  auto parsed = parse_json(*bytes);
  if (!parsed.ok() || !parsed->is_object()) {
    return report(g,
                  unavailable("the server's plan is not a JSON object", "bad_response",
                              Json(JsonObject{{"sent", Json(true)}})),
                  0);
  }
  const Json& p = *parsed;
  // Intents in plan order: the admitted ones, then every waiting one with its reason.
  Table t({"ID", "BUDGET", "PRIO", "REASON", "WAVE", "START_IN", "DONE_IN"});
  std::size_t admitted = 0;
  std::size_t waiting = 0;
  for (const Json& d : member(p, "intents").as_array()) {
    const bool in = text_of(member(d, "reason"), "code") == "admitted";
    ++(in ? admitted : waiting);
    const Json* wave = d.find("wave");
    t.add({short_ref(text_of(d, "id"), g.wide), text_of(d, "budget"), text_of(d, "priority"),
           shorten(text_of(d, "text"), 60, g.wide), wave == nullptr ? "-" : to_json(*wave),
           format_duration_ms(member(d, "start_in_ms")),
           format_duration_ms(member(d, "done_in_ms"))});
  }
  std::printf("plan at %s: %zu admitted, %zu waiting\n\n",
              format_time_ms(member(p, "now_ms")).c_str(), admitted, waiting);
  if (!t.empty()) {
    t.print(stdout);
    std::printf("\n");
  }
  // Lane usage: one row per budget key.
  Table lt({"LANE", "MAX", "RUNNING", "ADMITTED", "QUEUED", "WAITING", "WAVES", "DONE_IN"});
  std::vector<std::string> unbudgeted;
  for (const Json& l : member(p, "lanes").as_array()) {
    const bool configured = member(l, "configured").bool_if().value_or(false);
    std::string max = "no budget";
    if (configured) {
      const Json& mc = member(l, "max_concurrency");
      const Json& mu = member(l, "max_cost_units");
      max = to_json(mc) + (to_json(mu) == to_json(mc) ? "" : " (cost " + to_json(mu) + ")");
    } else {
      unbudgeted.push_back(text_of(l, "lane"));
    }
    lt.add({text_of(l, "lane"), max,
            text_of(l, "running") + " (cost " + text_of(l, "running_cost") + ")",
            text_of(l, "admitted"), text_of(l, "queued"), text_of(l, "waiting"),
            text_of(l, "waves"),
            text_of(l, "waves") == "0" ? "-" : format_duration_ms(member(l, "done_in_ms"))});
  }
  if (!lt.empty()) {
    lt.print(stdout);
    std::printf("\n");
  }
  // Estimates against the budgets.
  const Json& e = member(p, "estimates");
  auto verdict = [&](const char* flag) {
    return member(e, flag).bool_if().value_or(false) ? "met" : "MISSED";
  };
  std::printf("first response  %-8s budget %-8s %s\n",
              format_duration_ms(member(e, "first_done_in_ms")).c_str(),
              format_duration_ms(member(e, "first_response_budget_ms")).c_str(),
              verdict("meets_first_response_budget"));
  std::printf("all responses   %-8s budget %-8s %s\n",
              format_duration_ms(member(e, "all_done_in_ms")).c_str(),
              format_duration_ms(member(e, "all_responses_budget_ms")).c_str(),
              verdict("meets_all_responses_budget"));
  const Json& wake = member(p, "wake_at");
  if (!wake.is_null()) std::printf("next change     %s\n", format_time_ms(wake).c_str());
  for (const std::string& lane : unbudgeted) {
    std::fprintf(stderr,
                 "cairn: lane %s has no budget: its intents wait no_budget(%s); configure "
                 "lanes.%s in cairn.yaml\n",
                 lane.c_str(), lane.c_str(), lane.c_str());
  }
  return kExitOk;
}

int watch(const Globals& g, const WatchArgs& a) {
  Session s = open_session(g);
  if (!s.client) return s.exit_code;
  std::optional<std::uint64_t> after = a.after;
  if (!after) {
    // "From now", pinned to a sequence number so that a reconnect resumes
    // without a gap.
    auto st = s.client->state();
    if (!st.ok()) return report(g, st.status(), s.client->last_http_status());
    after = static_cast<std::uint64_t>(member(*st, "last_seq").int_if().value_or(0));
  }
  std::size_t printed = 0;
  int failures = 0;
  int backoff_ms = 100;
  Status last_error;
  for (;;) {
    auto stream = s.client->watch(after);
    if (!stream.ok()) {
      const Status& e = stream.status();
      if (e.code() != Code::kUnavailable || failures >= g.retries) {
        return report(g, e, s.client->last_http_status());
      }
    } else {
      for (;;) {
        client::SseEvent ev;
        auto more = (*stream)->next(ev, kWatchIdleMs);
        if (!more.ok()) {
          last_error = more.take_status();
          break;
        }
        if (!*more) {
          last_error = unavailable("the server ended the watch stream", "connection_closed");
          break;
        }
        auto data = parse_json(ev.data);
        if (ev.event == "overflow") {
          // Fell behind: the server says where to resume; reconnect there.
          if (data.ok()) {
            if (auto r = member(*data, "resume_after").int_if()) {
              after = static_cast<std::uint64_t>(*r);
            }
          }
          std::fprintf(stderr, "cairn: watch fell behind; resuming after %llu\n",
                       static_cast<unsigned long long>(after.value_or(0)));
          last_error = Status();
          break;
        }
        if (!data.ok()) {
          return report(g,
                        unavailable("an event's data is not JSON: " + data.status().message(),
                                    "bad_response"),
                        0);
        }
        failures = 0;
        backoff_ms = 100;
        if (auto seq = member(*data, "seq").int_if()) after = static_cast<std::uint64_t>(*seq);
        if (g.json) {
          print_json_line(*data);
        } else {
          std::printf("%-6s  %s  %-18s  %s  %s\n", text_of(*data, "seq").c_str(),
                      format_time_ms(member(*data, "at")).c_str(), text_of(*data, "type").c_str(),
                      text_of(*data, "subject").c_str(), to_json(member(*data, "data")).c_str());
        }
        std::fflush(stdout);
        if (a.count > 0 && ++printed >= a.count) return kExitOk;
      }
      if (last_error.ok()) continue;  // overflow: reconnect at once
      if (failures >= g.retries) return report(g, last_error, 0);
    }
    ++failures;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 2'000);
  }
}

namespace {

// The evidence chain recomputed here, on the client, from the links and
// events the server serves: each link's hash, its link to the one before,
// its action (the event with its seq), no gap, and no link missing at the
// end (the log's last seq has a link).
int verify_evidence(const Globals& g, const VerifyArgs& a) {
  Session s = open_session(g);
  if (!s.client) return s.exit_code;
  constexpr std::size_t kPage = 1'000;  // the server's list_limit_max
  auto fetch = [&](const std::string& target) {
    auto r = s.client->get(target);
    return r;
  };
  auto decode_links = [](const Json& page, std::vector<EvidenceLink>& out,
                         std::optional<EvidenceProblem>& bad) {
    const Json* links = page.find("links");
    if (links == nullptr || !links->is_array()) return false;
    for (const Json& j : links->as_array()) {
      auto l = evidence_link_from_json(j);
      if (!l.ok()) {
        const Json* seq = j.find("seq");
        bad = EvidenceProblem{
            seq != nullptr && seq->int_if() ? static_cast<std::uint64_t>(*seq->int_if()) : 0,
            EvidenceFault::kHashMismatch, "a link that does not decode: " + l.status().message()};
        return true;
      }
      out.push_back(std::move(*l));
    }
    return true;
  };
  // The chain before `from`: its last link is the anchor.
  Digest expected_prev = kEvidenceGenesisHash;
  if (a.from > 1) {
    auto r = fetch("/v1/evidence?from=" + std::to_string(a.from - 1) + "&limit=1");
    if (!r.ok()) return report(g, r.status(), s.client->last_http_status());
    std::vector<EvidenceLink> one;
    std::optional<EvidenceProblem> bad;
    decode_links(*r, one, bad);
    if (!one.empty() && one[0].seq == a.from - 1) expected_prev = one[0].chain_hash;
  }
  auto state = fetch("/v1/state");
  if (!state.ok()) return report(g, state.status(), s.client->last_http_status());
  const Json* ls = state->find("last_seq");
  const std::uint64_t log_end =
      ls != nullptr && ls->int_if() ? static_cast<std::uint64_t>(*ls->int_if()) : 0;

  std::uint64_t next = a.from, checked = 0, last = a.from - 1;
  std::optional<EvidenceProblem> problem;
  bool truncated = false;
  while (next != 0 && !problem) {
    if (checked >= a.max_links) {
      truncated = true;
      break;
    }
    auto page =
        fetch("/v1/evidence?from=" + std::to_string(next) + "&limit=" + std::to_string(kPage));
    if (!page.ok()) return report(g, page.status(), s.client->last_http_status());
    std::vector<EvidenceLink> links;
    std::optional<EvidenceProblem> bad;
    if (!decode_links(*page, links, bad)) {
      return report(g, internal_error("the evidence page has no links array"), 200);
    }
    std::vector<Json> actions(links.size());
    if (!links.empty()) {
      auto evs = fetch("/v1/events?after=" + std::to_string(links.front().seq - 1) +
                       "&limit=" + std::to_string(links.size()));
      if (!evs.ok()) return report(g, evs.status(), s.client->last_http_status());
      const Json* list = evs->find("events");
      if (list != nullptr && list->is_array()) {
        for (const Json& e : list->as_array()) {
          const Json* seq = e.find("seq");
          if (seq == nullptr || !seq->int_if()) continue;
          const auto q = static_cast<std::uint64_t>(*seq->int_if());
          if (q >= links.front().seq && q - links.front().seq < links.size()) {
            actions[q - links.front().seq] = e;
          }
        }
      }
    }
    EvidenceReport r = verify_chain(links, next, actions, expected_prev);
    checked += r.checked;
    if (!r.ok()) {
      problem = r.problem;
      break;
    }
    if (bad) {
      problem = bad;
      break;
    }
    if (!links.empty()) {
      expected_prev = links.back().chain_hash;
      last = links.back().seq;
    }
    const Json* n = page->find("next");
    next = n != nullptr && n->int_if() ? static_cast<std::uint64_t>(*n->int_if()) : 0;
  }
  // Links cut off at the end leave a valid but shorter chain: the event log
  // says how far it must reach.
  if (!problem && !truncated && last < log_end) {
    problem = EvidenceProblem{last + 1, EvidenceFault::kGap,
                              "the chain ends at " + std::to_string(last) +
                                  " but the event log reaches " + std::to_string(log_end)};
  }
  if (g.json) {
    JsonObject o{{"ok", Json(!problem)},
                 {"from", Json(a.from)},
                 {"checked", Json(checked)},
                 {"last_seq", Json(last)},
                 {"truncated", Json(truncated)}};
    if (problem) {
      o.emplace_back("problem",
                     Json(JsonObject{{"seq", Json(problem->seq)},
                                     {"fault", Json(evidence_fault_name(problem->fault))},
                                     {"message", Json(problem->message)}}));
    }
    print_json_line(Json(std::move(o)));
  } else if (problem) {
    std::printf("evidence: FIRST BAD SEQ %llu: %s: %s (%llu links checked good from %llu)\n",
                static_cast<unsigned long long>(problem->seq),
                std::string(evidence_fault_name(problem->fault)).c_str(), problem->message.c_str(),
                static_cast<unsigned long long>(checked), static_cast<unsigned long long>(a.from));
  } else {
    std::printf("evidence: %llu links from %llu to %llu recomputed: ok%s\n",
                static_cast<unsigned long long>(checked), static_cast<unsigned long long>(a.from),
                static_cast<unsigned long long>(last),
                truncated ? " (stopped at --max-links)" : "");
  }
  return problem ? kExitVerify : kExitOk;
}

}  // namespace

int verify(const Globals& g, const VerifyArgs& a) {
  if (a.evidence) {
    if (!a.id.empty()) return usage_error("verify --evidence takes no fact id");
    return verify_evidence(g, a);
  }
  if (a.id.empty()) return usage_error("verify needs a fact id (or --evidence)");
  Session s = open_session(g);
  if (!s.client) return s.exit_code;
  client::VerifyLimits limits;
  limits.depth_max = a.max_depth;
  limits.facts_max = a.max_facts;
  int last_status = 0;
  auto fetch = [&](const std::string& id) {
    auto r = s.client->get_fact(id);
    last_status = s.client->last_http_status();
    return r;
  };
  auto rep = client::verify_provenance(a.id, fetch, limits);
  if (!rep.ok()) return report(g, rep.status(), last_status);
  const client::VerifyReport& r = *rep;
  if (g.json) {
    print_json_line(client::verify_report_to_json(r));
  } else {
    Table t({"OUTCOME", "ID", "KIND", "DEPTH", "DETAIL"});
    for (const auto& f : r.facts) {
      std::string outcome(client::outcome_name(f.outcome));
      if (f.outcome != client::VerifyOutcome::kOk) {
        for (char& c : outcome) c = static_cast<char>(c - 'a' + 'A');
      }
      t.add({outcome, f.id, f.kind.empty() ? "-" : f.kind, std::to_string(f.depth),
             f.detail.empty() ? "-" : f.detail});
    }
    t.print(stdout);
    std::string summary = "checked " + std::to_string(r.facts.size()) + " fact" +
                          (r.facts.size() == 1 ? "" : "s") + " (depth " +
                          std::to_string(r.max_depth) + "): ";
    if (r.ok()) {
      summary += "all re-hash to their ids";
    } else {
      summary += std::to_string(r.mismatches) + " mismatched, " + std::to_string(r.missing) +
                 " missing, " + std::to_string(r.malformed) + " malformed";
      if (r.truncated) summary += "; incomplete: " + r.truncated_reason;
    }
    std::printf("%s\n", summary.c_str());
  }
  return r.ok() ? kExitOk : kExitVerify;
}

}  // namespace cairn::cli

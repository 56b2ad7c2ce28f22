// bad_input_test.cc — hand-written malformed HTTP and JSON requests against a
// real cairnd, as a table: each row is a request (a route and body sent on a
// shared keep-alive connection, or raw bytes on a fresh connection) and the
// status and error.code it must get. After every row the error body has
// exactly {code, message, details} with details an object, and the state and
// the event sequence are unchanged. Families: wrong types and missing or
// unknown members for every mutating route, unknown references, numbers out
// of range, invalid UTF-8, surrogates, NUL bytes, duplicate keys, nesting and
// size limits, bad ids in paths, query errors, methods and routes, HTTP
// framing (headers, Content-Length, chunked, Content-Type, versions, Host),
// pipelining, and slow or truncated requests (their own server, with a short
// idle timeout).
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/refusal.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

using namespace std::string_literals;  // "\0"s keeps NUL bytes

constexpr int kReplyTimeoutMs = 10'000;

struct Case {
  std::string name;
  std::string method;  // empty: send `raw` on a fresh connection
  std::string target;
  std::string body;
  int status = 0;
  std::string code;
  std::string raw;
  bool closes = false;  // raw rows: the server must close the connection after replying
};

Case route(std::string name, std::string method, std::string target, std::string body, int status,
           std::string code) {
  return Case{std::move(name),
              std::move(method),
              std::move(target),
              std::move(body),
              status,
              std::move(code),
              "",
              false};
}

Case raw(std::string name, std::string bytes, int status, std::string code, bool closes) {
  return Case{std::move(name), "", "", "", status, std::move(code), std::move(bytes), closes};
}

// A complete POST with a JSON body (Content-Length set) plus `extra` header lines.
std::string post_bytes(const std::string& target, const std::string& body,
                       const std::string& extra = "Content-Type: application/json\r\n") {
  return "POST " + target + " HTTP/1.1\r\nHost: cairn.test\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string nested_arrays(int depth, const std::string& inner = "0") {
  return std::string(static_cast<std::size_t>(depth), '[') + inner +
         std::string(static_cast<std::size_t>(depth), ']');
}

std::string repeat_list(const std::string& item, std::size_t n) {
  std::string s = "[";
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) s += ',';
    s += item;
  }
  return s + "]";
}

std::string unique_ids(std::size_t n) {  // n distinct well-formed fact ids
  std::string s = "[";
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) s += ',';
    std::string hex = std::to_string(i);
    s += '"' + std::string(64 - hex.size(), 'a') + hex + '"';
  }
  return s + "]";
}

std::string members(std::size_t n) {
  std::string s = "{";
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) s += ',';
    s += "\"k" + std::to_string(i) + "\":0";
  }
  return s + "}";
}

// The records every row refers to.
struct Ids {
  std::string fact;     // a fact
  std::string open;     // an open intent created by alice
  std::string claimed;  // an intent claimed by a1 at epoch 1 (lease 1 h)
  std::string hint;     // a live hint created by alice
};

const std::string kUnknownFact(64, 'a');

std::vector<Case> cases(const Ids& id) {
  const std::string fact = id.fact;
  const std::string open = "/v1/intents/" + id.open;
  const std::string held = "/v1/intents/" + id.claimed;
  const std::string hint = "/v1/hints/" + id.hint;
  const std::string intent_ok = R"("kind":"job","from_facts":[")" + fact + "\"]";
  const std::string hint_ok = R"("kind":"note","effect":{"type":"deny"})";
  std::vector<Case> c;
  auto fact_with = [](const std::string& members) {
    return R"({"kind":"obs","content":1,)" + members + "}";
  };
  auto content = [](const std::string& value) {
    return R"({"kind":"obs","content":)" + value + "}";
  };

  // ---- POST /v1/facts: shape, types, members ----
  c.push_back(route("fact_body_array", "POST", "/v1/facts", "[1]", 400, "invalid_field"));
  c.push_back(route("fact_body_string", "POST", "/v1/facts", R"("x")", 400, "invalid_field"));
  c.push_back(route("fact_body_null", "POST", "/v1/facts", "null", 400, "invalid_field"));
  c.push_back(route("fact_body_empty_object", "POST", "/v1/facts", "{}", 400, "invalid_field"));
  c.push_back(
      route("fact_kind_missing", "POST", "/v1/facts", R"({"content":1})", 400, "invalid_field"));
  c.push_back(route("fact_content_missing", "POST", "/v1/facts", R"({"kind":"obs"})", 400,
                    "invalid_field"));
  // log and log.* name log records, never facts (docs/senses.md).
  c.push_back(route("fact_kind_reserved_log", "POST", "/v1/facts", R"({"kind":"log","content":1})",
                    400, "reserved_kind"));
  c.push_back(route("fact_kind_reserved_log_dot", "POST", "/v1/facts",
                    R"({"kind":"log.sense_failed","content":1})", 400, "reserved_kind"));
  c.push_back(route("fact_kind_number", "POST", "/v1/facts", R"({"kind":1,"content":1})", 400,
                    "invalid_field"));
  c.push_back(route("fact_kind_null", "POST", "/v1/facts", R"({"kind":null,"content":1})", 400,
                    "invalid_field"));
  c.push_back(route("fact_kind_array", "POST", "/v1/facts", R"({"kind":["obs"],"content":1})", 400,
                    "invalid_field"));
  c.push_back(route("fact_kind_empty", "POST", "/v1/facts", R"({"kind":"","content":1})", 400,
                    "invalid_field"));
  c.push_back(route("fact_kind_space", "POST", "/v1/facts", R"({"kind":"a b","content":1})", 400,
                    "invalid_field"));
  c.push_back(route("fact_kind_escaped_nul", "POST", "/v1/facts",
                    R"({"kind":"ob\u0000s","content":1})", 400, "invalid_field"));
  c.push_back(route("fact_kind_non_ascii", "POST", "/v1/facts",
                    "{\"kind\":\"caf\xc3\xa9\",\"content\":1}", 400, "invalid_field"));
  c.push_back(route("fact_kind_129_bytes", "POST", "/v1/facts",
                    R"({"kind":")" + std::string(129, 'k') + R"(","content":1})", 413,
                    "too_large"));
  c.push_back(route("fact_content_type_number", "POST", "/v1/facts",
                    fact_with(R"("content_type":5)"), 400, "invalid_field"));
  c.push_back(route("fact_content_type_space", "POST", "/v1/facts",
                    fact_with(R"("content_type":"text plain")"), 400, "invalid_field"));
  c.push_back(route("fact_content_type_empty", "POST", "/v1/facts",
                    fact_with(R"("content_type":"")"), 400, "invalid_field"));
  c.push_back(route("fact_derived_from_string", "POST", "/v1/facts",
                    fact_with(R"("derived_from":")" + fact + "\""), 400, "invalid_field"));
  c.push_back(route("fact_derived_from_numbers", "POST", "/v1/facts",
                    fact_with(R"("derived_from":[1])"), 400, "invalid_field"));
  c.push_back(route("fact_derived_from_not_an_id", "POST", "/v1/facts",
                    fact_with(R"("derived_from":["xyz"])"), 400, "invalid_field"));
  c.push_back(route("fact_derived_from_uppercase_id", "POST", "/v1/facts",
                    fact_with(R"("derived_from":[")" + std::string(64, 'A') + "\"]"), 400,
                    "invalid_field"));
  c.push_back(route("fact_derived_from_unknown", "POST", "/v1/facts",
                    fact_with(R"("derived_from":[")" + kUnknownFact + "\"]"), 422,
                    "unknown_reference"));
  c.push_back(route("fact_derived_from_repeated", "POST", "/v1/facts",
                    fact_with(R"("derived_from":[")" + fact + "\",\"" + fact + "\"]"), 400,
                    "invalid_field"));
  c.push_back(route("fact_derived_from_257", "POST", "/v1/facts",
                    fact_with(R"("derived_from":)" + unique_ids(257)), 413, "too_large"));
  c.push_back(route("fact_creator_number", "POST", "/v1/facts", fact_with(R"("creator":7)"), 400,
                    "invalid_field"));
  c.push_back(route("fact_creator_space", "POST", "/v1/facts", fact_with(R"("creator":"a b")"), 400,
                    "invalid_field"));
  c.push_back(route("fact_creator_129_bytes", "POST", "/v1/facts",
                    fact_with(R"("creator":")" + std::string(129, 'c') + "\""), 413, "too_large"));
  c.push_back(route("fact_unknown_member", "POST", "/v1/facts", fact_with(R"("extra":1)"), 400,
                    "unknown_field"));
  c.push_back(route("fact_member_wrong_case", "POST", "/v1/facts", R"({"Kind":"obs","content":1})",
                    400, "unknown_field"));
  c.push_back(route("fact_duplicate_key", "POST", "/v1/facts",
                    R"({"kind":"obs","kind":"x","content":1})", 400, "duplicate_key"));
  c.push_back(route("fact_duplicate_key_after_escape", "POST", "/v1/facts",
                    R"({"kind":"obs","\u006bind":"obs","content":1})", 400, "duplicate_key"));
  c.push_back(route("fact_duplicate_key_in_content", "POST", "/v1/facts",
                    content(R"({"a":1,"a":1})"), 400, "duplicate_key"));

  // ---- numbers ----
  c.push_back(
      route("content_1e400", "POST", "/v1/facts", content("1e400"), 400, "number_out_of_range"));
  c.push_back(route("content_minus_1e400", "POST", "/v1/facts", content("-1e400"), 400,
                    "number_out_of_range"));
  c.push_back(
      route("content_leading_zero", "POST", "/v1/facts", content("01"), 400, "invalid_json"));
  c.push_back(
      route("content_hex_number", "POST", "/v1/facts", content("0x10"), 400, "invalid_json"));
  c.push_back(route("content_nan", "POST", "/v1/facts", content("NaN"), 400, "invalid_json"));
  c.push_back(
      route("content_infinity", "POST", "/v1/facts", content("-Infinity"), 400, "invalid_json"));
  c.push_back(route("content_plus_sign", "POST", "/v1/facts", content("+1"), 400, "invalid_json"));

  // ---- strings: UTF-8, surrogates, NUL, escapes ----
  c.push_back(route("utf8_invalid_byte_in_string", "POST", "/v1/facts", content("\"\xff\""), 400,
                    "invalid_json"));
  c.push_back(route("utf8_invalid_byte_in_key", "POST", "/v1/facts", content("{\"\xfe\":1}"), 400,
                    "invalid_json"));
  c.push_back(route("utf8_invalid_byte_in_member_name", "POST", "/v1/facts",
                    "{\"kind\":\"obs\",\"content\":1,\"\xc3\":1}", 400, "invalid_json"));
  c.push_back(route("utf8_overlong_slash", "POST", "/v1/facts", content("\"\xc0\xaf\""), 400,
                    "invalid_json"));
  c.push_back(route("utf8_overlong_nul", "POST", "/v1/facts", content("\"\xc0\x80\""), 400,
                    "invalid_json"));
  c.push_back(route("utf8_overlong_3_bytes", "POST", "/v1/facts", content("\"\xe0\x80\xaf\""), 400,
                    "invalid_json"));
  c.push_back(route("utf8_encoded_surrogate", "POST", "/v1/facts", content("\"\xed\xa0\x80\""), 400,
                    "invalid_json"));
  c.push_back(route("utf8_above_10ffff", "POST", "/v1/facts", content("\"\xf4\x90\x80\x80\""), 400,
                    "invalid_json"));
  c.push_back(route("utf8_truncated_sequence", "POST", "/v1/facts", content("\"\xe2\x82\""), 400,
                    "invalid_json"));
  c.push_back(
      route("utf8_latin1_body", "POST", "/v1/facts", content("\"caf\xe9\""), 400, "invalid_json"));
  c.push_back(route("lone_high_surrogate", "POST", "/v1/facts", content(R"("\ud800")"), 400,
                    "invalid_json"));
  c.push_back(route("lone_low_surrogate_in_key", "POST", "/v1/facts", content(R"({"\udc00":1})"),
                    400, "invalid_json"));
  c.push_back(route("surrogates_inverted", "POST", "/v1/facts", content(R"("\udc00\ud800")"), 400,
                    "invalid_json"));
  c.push_back(
      route("raw_nul_in_string", "POST", "/v1/facts", content("\"a\0b\""s), 400, "invalid_json"));
  c.push_back(
      route("raw_nul_after_body", "POST", "/v1/facts", content("1") + "\0"s, 400, "invalid_json"));
  c.push_back(route("raw_nul_as_body", "POST", "/v1/facts", "\0"s, 400, "invalid_json"));
  c.push_back(route("raw_control_char_in_string", "POST", "/v1/facts", content("\"a\x01\""), 400,
                    "invalid_json"));
  c.push_back(route("raw_newline_in_string", "POST", "/v1/facts", content("\"a\nb\""), 400,
                    "invalid_json"));
  c.push_back(route("bad_escape", "POST", "/v1/facts", content(R"("\x41")"), 400, "invalid_json"));
  c.push_back(route("short_unicode_escape", "POST", "/v1/facts", content(R"("\u12")"), 400,
                    "invalid_json"));

  // ---- JSON syntax ----
  c.push_back(route("empty_body", "POST", "/v1/facts", "", 400, "invalid_json"));
  c.push_back(route("whitespace_body", "POST", "/v1/facts", " \r\n\t", 400, "invalid_json"));
  c.push_back(route("utf8_bom_then_object", "POST", "/v1/facts", "\xef\xbb\xbf" + content("1"), 400,
                    "invalid_json"));
  c.push_back(route("truncated_json", "POST", "/v1/facts", R"({"kind":"obs","content":[1,2)", 400,
                    "invalid_json"));
  c.push_back(
      route("trailing_garbage", "POST", "/v1/facts", content("1") + " x", 400, "invalid_json"));
  c.push_back(route("two_documents", "POST", "/v1/facts", content("1") + content("2"), 400,
                    "invalid_json"));
  c.push_back(route("single_quotes", "POST", "/v1/facts", "{'kind':'obs','content':1}", 400,
                    "invalid_json"));
  c.push_back(route("trailing_comma", "POST", "/v1/facts", R"({"kind":"obs","content":1,})", 400,
                    "invalid_json"));
  c.push_back(route("comment", "POST", "/v1/facts", R"({"kind":"obs",/* c */"content":1})", 400,
                    "invalid_json"));
  c.push_back(route("unquoted_key", "POST", "/v1/facts", R"({kind:"obs","content":1})", 400,
                    "invalid_json"));

  // ---- nesting and sizes ----
  // The body object is level 1: 64 arrays inside make 65 levels (depth_max 64).
  c.push_back(
      route("depth_65", "POST", "/v1/facts", content(nested_arrays(64)), 400, "json_too_deep"));
  c.push_back(route("depth_100000", "POST", "/v1/facts", content(std::string(100'000, '[')), 400,
                    "json_too_deep"));
  c.push_back(route("string_over_1mib", "POST", "/v1/facts",
                    content('"' + std::string((1u << 20) + 1, 's') + '"'), 413, "too_large"));
  c.push_back(route("key_over_1mib", "POST", "/v1/facts",
                    content("{\"" + std::string((1u << 20) + 1, 'k') + "\":1}"), 413, "too_large"));
  c.push_back(route("array_over_100000_items", "POST", "/v1/facts",
                    content(repeat_list("0", 100'001)), 413, "too_large"));
  c.push_back(route("object_over_10000_members", "POST", "/v1/facts", content(members(10'001)), 413,
                    "too_large"));
  // 60,000 × "1e20" is 300 KB on the wire but 1.3 MB in canonical form
  // ("100000000000000000000"): over the 1 MiB content bound.
  c.push_back(route("content_canonical_over_1mib", "POST", "/v1/facts",
                    content(repeat_list("1e20", 60'000)), 413, "too_large"));

  // ---- POST /v1/intents ----
  c.push_back(route("intent_body_array", "POST", "/v1/intents", "[]", 400, "invalid_field"));
  c.push_back(route("intent_kind_missing", "POST", "/v1/intents",
                    R"({"from_facts":[")" + fact + "\"]}", 400, "invalid_field"));
  c.push_back(route("intent_from_facts_missing", "POST", "/v1/intents", R"({"kind":"job"})", 400,
                    "invalid_field"));
  c.push_back(route("intent_from_facts_empty", "POST", "/v1/intents",
                    R"({"kind":"job","from_facts":[]})", 422, "not_grounded"));
  c.push_back(route("intent_from_facts_string", "POST", "/v1/intents",
                    R"({"kind":"job","from_facts":")" + fact + "\"}", 400, "invalid_field"));
  c.push_back(route("intent_from_facts_not_an_id", "POST", "/v1/intents",
                    R"({"kind":"job","from_facts":["nope"]})", 400, "invalid_field"));
  c.push_back(route("intent_from_facts_unknown", "POST", "/v1/intents",
                    R"({"kind":"job","from_facts":[")" + kUnknownFact + "\"]}", 422,
                    "unknown_reference"));
  c.push_back(route("intent_from_facts_257", "POST", "/v1/intents",
                    R"({"kind":"job","from_facts":)" + unique_ids(257) + "}", 413, "too_large"));
  c.push_back(route("intent_priority_string", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"priority":"1"})", 400, "invalid_field"));
  c.push_back(route("intent_priority_fraction", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"priority":1.5})", 400, "invalid_field"));
  c.push_back(route("intent_priority_2p53_plus_1", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"priority":9007199254740993})", 400, "invalid_field"));
  c.push_back(route("intent_priority_over_1e9", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"priority":1000000001})", 400, "invalid_field"));
  c.push_back(route("intent_priority_1e400", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"priority":1e400})", 400, "number_out_of_range"));
  c.push_back(route("intent_lease_ttl_negative", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"lease_ttl_ms":-1})", 400, "invalid_field"));
  c.push_back(route("intent_lease_ttl_under_100", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"lease_ttl_ms":99})", 400, "invalid_field"));
  c.push_back(route("intent_lease_ttl_over_24h", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"lease_ttl_ms":86400001})", 400, "invalid_field"));
  c.push_back(route("intent_max_attempts_negative", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"max_attempts":-3})", 400, "invalid_field"));
  c.push_back(route("intent_max_attempts_bool", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"max_attempts":true})", 400, "invalid_field"));
  c.push_back(route("intent_id_space", "POST", "/v1/intents", "{" + intent_ok + R"(,"id":"a b"})",
                    400, "invalid_field"));
  c.push_back(route("intent_id_number", "POST", "/v1/intents", "{" + intent_ok + R"(,"id":5})", 400,
                    "invalid_field"));
  c.push_back(route("intent_lane_object", "POST", "/v1/intents", "{" + intent_ok + R"(,"lane":{}})",
                    400, "invalid_field"));
  c.push_back(route("intent_identity_number", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"identity":1})", 400, "invalid_field"));
  c.push_back(route("intent_requires_string", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"requires":"gpu"})", 400, "invalid_field"));
  c.push_back(route("intent_requires_65", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"requires":)" + unique_ids(65) + "}", 413, "too_large"));
  c.push_back(route("intent_spec_over_256kib", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"spec":")" + std::string(300'000, 's') + "\"}", 413,
                    "too_large"));
  c.push_back(route("intent_unknown_member", "POST", "/v1/intents",
                    "{" + intent_ok + R"(,"state":"concluded"})", 400, "unknown_field"));
  c.push_back(route("intent_id_taken_by_another_definition", "POST", "/v1/intents",
                    R"({"id":")" + id.open + R"(","kind":"other","from_facts":[")" + fact + "\"]}",
                    409, "id_exists"));

  // ---- POST /v1/intents/{id}/claim ----
  c.push_back(route("claim_agent_missing", "POST", open + "/claim", "{}", 400, "invalid_field"));
  c.push_back(
      route("claim_agent_number", "POST", open + "/claim", R"({"agent":1})", 400, "invalid_field"));
  c.push_back(
      route("claim_agent_empty", "POST", open + "/claim", R"({"agent":""})", 400, "invalid_field"));
  c.push_back(route("claim_agent_space", "POST", open + "/claim", R"({"agent":"a b"})", 400,
                    "invalid_field"));
  c.push_back(route("claim_ttl_string", "POST", open + "/claim",
                    R"({"agent":"a2","lease_ttl_ms":"100"})", 400, "invalid_field"));
  c.push_back(route("claim_ttl_negative", "POST", open + "/claim",
                    R"({"agent":"a2","lease_ttl_ms":-1})", 400, "invalid_field"));
  c.push_back(route("claim_ttl_over_24h", "POST", open + "/claim",
                    R"({"agent":"a2","lease_ttl_ms":86400001})", 400, "invalid_field"));
  c.push_back(route("claim_unknown_member", "POST", open + "/claim", R"({"agent":"a2","epoch":1})",
                    400, "unknown_field"));
  c.push_back(route("claim_body_empty", "POST", open + "/claim", "", 400, "invalid_json"));
  c.push_back(
      route("claim_body_array", "POST", open + "/claim", R"(["a2"])", 400, "invalid_field"));
  c.push_back(route("claim_unknown_intent", "POST", "/v1/intents/no-such-intent/claim",
                    R"({"agent":"a2"})", 404, "not_found"));
  c.push_back(route("claim_held_by_another", "POST", held + "/claim", R"({"agent":"a2"})", 409,
                    "already_claimed"));

  // ---- POST /v1/claims ----
  c.push_back(route("claims_agent_missing", "POST", "/v1/claims", "{}", 400, "invalid_field"));
  c.push_back(route("claims_max_0", "POST", "/v1/claims", R"({"agent":"a2","max":0})", 400,
                    "invalid_field"));
  c.push_back(route("claims_max_257", "POST", "/v1/claims", R"({"agent":"a2","max":257})", 400,
                    "invalid_field"));
  c.push_back(route("claims_max_string", "POST", "/v1/claims", R"({"agent":"a2","max":"1"})", 400,
                    "invalid_field"));
  c.push_back(route("claims_max_2p53_plus_1", "POST", "/v1/claims",
                    R"({"agent":"a2","max":9007199254740993})", 400, "invalid_field"));
  c.push_back(route("claims_wait_30001", "POST", "/v1/claims", R"({"agent":"a2","wait_ms":30001})",
                    400, "invalid_field"));
  c.push_back(route("claims_wait_negative", "POST", "/v1/claims", R"({"agent":"a2","wait_ms":-1})",
                    400, "invalid_field"));
  c.push_back(route("claims_wait_fraction", "POST", "/v1/claims", R"({"agent":"a2","wait_ms":0.5})",
                    400, "invalid_field"));
  c.push_back(route("claims_wait_1e400", "POST", "/v1/claims", R"({"agent":"a2","wait_ms":1e400})",
                    400, "number_out_of_range"));
  c.push_back(route("claims_kinds_string", "POST", "/v1/claims", R"({"agent":"a2","kinds":"job"})",
                    400, "invalid_field"));
  c.push_back(route("claims_kinds_numbers", "POST", "/v1/claims", R"({"agent":"a2","kinds":[1]})",
                    400, "invalid_field"));
  c.push_back(route("claims_lanes_object", "POST", "/v1/claims",
                    R"({"agent":"a2","lanes":{"a":1}})", 400, "invalid_field"));
  // Validated before looking for work: a filter that matches nothing does not
  // hide a bad lease_ttl_ms.
  c.push_back(route("claims_ttl_negative_no_work", "POST", "/v1/claims",
                    R"({"agent":"a2","kinds":["none"],"lease_ttl_ms":-1})", 400, "invalid_field"));
  c.push_back(route("claims_ttl_negative", "POST", "/v1/claims",
                    R"({"agent":"a2","lease_ttl_ms":-1})", 400, "invalid_field"));
  c.push_back(route("claims_kinds_65", "POST", "/v1/claims",
                    R"({"agent":"a2","kinds":)" + unique_ids(65) + "}", 413, "too_large"));
  c.push_back(route("claims_kind_space", "POST", "/v1/claims", R"({"agent":"a2","kinds":["a b"]})",
                    400, "invalid_field"));
  c.push_back(route("claims_unknown_member", "POST", "/v1/claims", R"({"agent":"a2","limit":1})",
                    400, "unknown_field"));

  // ---- heartbeat / conclude / fail / release / cancel ----
  c.push_back(route("heartbeat_epoch_missing", "POST", held + "/heartbeat", R"({"agent":"a1"})",
                    400, "invalid_field"));
  c.push_back(route("heartbeat_epoch_string", "POST", held + "/heartbeat",
                    R"({"agent":"a1","epoch":"1"})", 400, "invalid_field"));
  c.push_back(route("heartbeat_epoch_negative", "POST", held + "/heartbeat",
                    R"({"agent":"a1","epoch":-1})", 400, "invalid_field"));
  c.push_back(route("heartbeat_epoch_fraction", "POST", held + "/heartbeat",
                    R"({"agent":"a1","epoch":1.5})", 400, "invalid_field"));
  c.push_back(route("heartbeat_epoch_2p53_plus_1", "POST", held + "/heartbeat",
                    R"({"agent":"a1","epoch":9007199254740993})", 400, "invalid_field"));
  c.push_back(route("heartbeat_epoch_1e400", "POST", held + "/heartbeat",
                    R"({"agent":"a1","epoch":1e400})", 400, "number_out_of_range"));
  // -0 is the number 0: a stale epoch, not a type error.
  c.push_back(route("heartbeat_epoch_minus_zero", "POST", held + "/heartbeat",
                    R"({"agent":"a1","epoch":-0})", 409, "stale_epoch"));
  c.push_back(route("heartbeat_epoch_stale", "POST", held + "/heartbeat",
                    R"({"agent":"a1","epoch":2})", 409, "stale_epoch"));
  c.push_back(route("heartbeat_by_non_holder", "POST", held + "/heartbeat",
                    R"({"agent":"a2","epoch":1})", 409, "not_holder"));
  c.push_back(route("heartbeat_ttl_negative", "POST", held + "/heartbeat",
                    R"({"agent":"a1","epoch":1,"lease_ttl_ms":-5})", 400, "invalid_field"));
  c.push_back(route("heartbeat_unknown_intent", "POST", "/v1/intents/nope/heartbeat",
                    R"({"agent":"a1","epoch":1})", 404, "not_found"));
  c.push_back(route("conclude_result_missing", "POST", held + "/conclude",
                    R"({"agent":"a1","epoch":1})", 400, "invalid_field"));
  c.push_back(route("conclude_result_string", "POST", held + "/conclude",
                    R"({"agent":"a1","epoch":1,"result":"done"})", 400, "invalid_field"));
  c.push_back(route("conclude_result_kind_missing", "POST", held + "/conclude",
                    R"({"agent":"a1","epoch":1,"result":{"content":1}})", 400, "invalid_field"));
  c.push_back(route("conclude_result_kind_reserved", "POST", held + "/conclude",
                    R"({"agent":"a1","epoch":1,"result":{"kind":"log.x","content":1}})", 400,
                    "reserved_kind"));
  c.push_back(route("conclude_result_unknown_member", "POST", held + "/conclude",
                    R"({"agent":"a1","epoch":1,"result":{"kind":"r","content":1,"seq":3}})", 400,
                    "unknown_field"));
  c.push_back(
      route("conclude_result_derived_from_unknown", "POST", held + "/conclude",
            R"({"agent":"a1","epoch":1,"result":{"kind":"r","content":1,"derived_from":[")" +
                kUnknownFact + "\"]}}",
            422, "unknown_reference"));
  c.push_back(route("conclude_result_creator_other", "POST", held + "/conclude",
                    R"({"agent":"a1","epoch":1,"result":{"kind":"r","content":1,"creator":"a2"}})",
                    403, "impersonation"));
  c.push_back(route("conclude_epoch_bool", "POST", held + "/conclude",
                    R"({"agent":"a1","epoch":true,"result":{"kind":"r","content":1}})", 400,
                    "invalid_field"));
  c.push_back(route("conclude_stale_epoch", "POST", held + "/conclude",
                    R"({"agent":"a1","epoch":7,"result":{"kind":"r","content":1}})", 409,
                    "stale_epoch"));
  // An open intent has no lease: any epoch is stale.
  c.push_back(route("conclude_open_intent", "POST", open + "/conclude",
                    R"({"agent":"a1","epoch":1,"result":{"kind":"r","content":1}})", 409,
                    "stale_epoch"));
  c.push_back(route("fail_retryable_string", "POST", held + "/fail",
                    R"({"agent":"a1","epoch":1,"retryable":"yes"})", 400, "invalid_field"));
  c.push_back(route("fail_error_number", "POST", held + "/fail",
                    R"({"agent":"a1","epoch":1,"error":404})", 400, "invalid_field"));
  c.push_back(route("fail_stale_epoch", "POST", held + "/fail", R"({"agent":"a1","epoch":3})", 409,
                    "stale_epoch"));
  c.push_back(route("fail_unknown_member", "POST", held + "/fail",
                    R"({"agent":"a1","epoch":1,"reason":"x"})", 400, "unknown_field"));
  c.push_back(route("release_by_non_holder", "POST", held + "/release",
                    R"({"agent":"a2","epoch":1})", 403, "not_holder"));
  c.push_back(route("release_epoch_missing", "POST", held + "/release", R"({"agent":"a1"})", 400,
                    "invalid_field"));
  c.push_back(route("release_unknown_member", "POST", held + "/release",
                    R"({"agent":"a1","epoch":1,"force":true})", 400, "unknown_field"));
  c.push_back(route("cancel_by_non_creator", "POST", open + "/cancel", R"({"creator":"mallory"})",
                    403, "not_creator"));
  c.push_back(route("cancel_unknown_member", "POST", open + "/cancel", R"({"agent":"alice"})", 400,
                    "unknown_field"));
  c.push_back(route("cancel_body_array", "POST", open + "/cancel", "[]", 400, "invalid_field"));
  c.push_back(
      route("cancel_unknown_intent", "POST", "/v1/intents/nope/cancel", "", 404, "not_found"));
  c.push_back(route("intent_unknown_verb", "POST", open + "/explode", "{}", 404, "no_route"));

  // ---- hints ----
  c.push_back(route("hint_kind_missing", "POST", "/v1/hints", R"({"effect":{"type":"deny"}})", 400,
                    "invalid_field"));
  c.push_back(route("hint_effect_missing", "POST", "/v1/hints", R"({"kind":"note"})", 400,
                    "invalid_field"));
  c.push_back(route("hint_effect_string", "POST", "/v1/hints", R"({"kind":"note","effect":"deny"})",
                    400, "invalid_field"));
  c.push_back(route("hint_effect_type_unknown", "POST", "/v1/hints",
                    R"({"kind":"note","effect":{"type":"explode"}})", 400, "invalid_field"));
  c.push_back(route("hint_effect_cap_without_n", "POST", "/v1/hints",
                    R"({"kind":"note","effect":{"type":"cap"}})", 400, "invalid_field"));
  c.push_back(route("hint_effect_cap_negative", "POST", "/v1/hints",
                    R"({"kind":"note","effect":{"type":"cap","n":-1}})", 400, "invalid_field"));
  c.push_back(route("hint_effect_unknown_member", "POST", "/v1/hints",
                    R"({"kind":"note","effect":{"type":"deny","n":1,"x":2}})", 400,
                    "unknown_field"));
  c.push_back(route("hint_selector_array", "POST", "/v1/hints",
                    "{" + hint_ok + R"(,"selector":[]})", 400, "invalid_field"));
  c.push_back(route("hint_selector_unknown_member", "POST", "/v1/hints",
                    "{" + hint_ok + R"(,"selector":{"agent":"a1"}})", 400, "unknown_field"));
  c.push_back(route("hint_expires_at_string", "POST", "/v1/hints",
                    "{" + hint_ok + R"(,"expires_at":"tomorrow"})", 400, "invalid_field"));
  c.push_back(route("hint_reason_over_1024_bytes", "POST", "/v1/hints",
                    "{" + hint_ok + R"(,"reason":")" + std::string(1025, 'r') + "\"}", 413,
                    "too_large"));
  c.push_back(route("hint_derived_from_unknown", "POST", "/v1/hints",
                    "{" + hint_ok + R"(,"derived_from":[")" + kUnknownFact + "\"]}", 422,
                    "unknown_reference"));
  c.push_back(route("hint_unknown_member", "POST", "/v1/hints", "{" + hint_ok + R"(,"ttl":5})", 400,
                    "unknown_field"));
  c.push_back(
      route("hint_delete_unknown", "DELETE", "/v1/hints/no-such-hint", "", 404, "not_found"));
  c.push_back(route("hint_delete_by_non_creator", "DELETE", hint, R"({"creator":"mallory"})", 403,
                    "not_creator"));
  c.push_back(
      route("hint_delete_unknown_member", "DELETE", hint, R"({"why":"x"})", 400, "unknown_field"));
  c.push_back(route("hint_delete_body_string", "DELETE", hint, R"("alice")", 400, "invalid_field"));
  c.push_back(route("hint_get_unknown", "GET", "/v1/hints/no-such-hint", "", 404, "not_found"));

  // ---- ids in paths ----
  c.push_back(route("fact_id_bad_percent", "GET", "/v1/facts/%zz", "", 400, "invalid_target"));
  c.push_back(
      route("fact_id_truncated_percent", "GET", "/v1/facts/ab%4", "", 400, "invalid_target"));
  c.push_back(route("fact_id_lone_percent", "GET", "/v1/facts/%", "", 400, "invalid_target"));
  c.push_back(route("fact_id_unknown", "GET", "/v1/facts/" + kUnknownFact, "", 404, "not_found"));
  c.push_back(route("fact_id_not_hex", "GET", "/v1/facts/xyz", "", 404, "not_found"));
  c.push_back(route("fact_id_percent_nul", "GET", "/v1/facts/%00", "", 404, "not_found"));
  c.push_back(route("intent_id_bad_percent", "GET", "/v1/intents/%G1", "", 400, "invalid_target"));
  c.push_back(route("intent_id_unknown", "GET", "/v1/intents/nope", "", 404, "not_found"));
  c.push_back(
      route("intent_id_encoded_slash_unknown", "GET", "/v1/intents/a%2Fb", "", 404, "not_found"));
  // Ids and query text must be UTF-8 once decoded (replies echo them).
  c.push_back(route("fact_id_percent_ff", "GET", "/v1/facts/%ff", "", 400, "invalid_target"));
  c.push_back(
      route("intent_id_overlong_percent", "GET", "/v1/intents/%c0%af", "", 400, "invalid_target"));
  c.push_back(route("claim_id_lone_surrogate_percent", "POST", "/v1/intents/%ed%a0%80/claim",
                    R"({"agent":"a1"})", 400, "invalid_target"));
  c.push_back(route("hint_get_percent_fe", "GET", "/v1/hints/a%fe", "", 400, "invalid_target"));
  c.push_back(route("unknown_route_percent_ff", "GET", "/v1/%ff", "", 400, "invalid_target"));
  c.push_back(route("claim_path_bad_percent", "POST", "/v1/intents/%zz/claim", R"({"agent":"a1"})",
                    400, "invalid_target"));
  c.push_back(
      route("hint_delete_bad_percent", "DELETE", "/v1/hints/%q1", "", 400, "invalid_target"));

  // ---- query parameters ----
  c.push_back(route("facts_limit_0", "GET", "/v1/facts?limit=0", "", 400, "invalid_query"));
  c.push_back(route("facts_limit_abc", "GET", "/v1/facts?limit=abc", "", 400, "invalid_query"));
  c.push_back(route("facts_limit_1001", "GET", "/v1/facts?limit=1001", "", 400, "invalid_query"));
  c.push_back(route("facts_limit_negative", "GET", "/v1/facts?limit=-5", "", 400, "invalid_query"));
  c.push_back(route("facts_after_negative", "GET", "/v1/facts?after=-1", "", 400, "invalid_query"));
  c.push_back(route("facts_after_2p64", "GET", "/v1/facts?after=18446744073709551616", "", 400,
                    "invalid_query"));
  c.push_back(
      route("facts_kind_with_bar", "GET", "/v1/facts?kind=a%7Cb", "", 400, "invalid_query"));
  c.push_back(
      route("facts_query_bad_percent", "GET", "/v1/facts?kind=%zz", "", 400, "invalid_query"));
  c.push_back(
      route("facts_unknown_parameter", "GET", "/v1/facts?kinds=obs", "", 400, "invalid_query"));
  c.push_back(route("query_key_percent_ff", "GET", "/v1/facts?%ff=1", "", 400, "invalid_query"));
  c.push_back(
      route("query_value_percent_ff", "GET", "/v1/intents?after=%ff", "", 400, "invalid_query"));
  c.push_back(route("query_parameter_twice", "GET", "/v1/events?limit=1&limit=2", "", 400,
                    "invalid_query"));
  c.push_back(route("query_on_post", "POST", "/v1/facts?dry_run=1", R"({"kind":"obs","content":1})",
                    400, "invalid_query"));
  c.push_back(
      route("intents_state_unknown", "GET", "/v1/intents?state=done", "", 400, "invalid_query"));
  c.push_back(route("intents_limit_0", "GET", "/v1/intents?limit=0", "", 400, "invalid_query"));
  c.push_back(
      route("intents_unknown_parameter", "GET", "/v1/intents?holder=a1", "", 400, "invalid_query"));
  c.push_back(route("events_after_abc", "GET", "/v1/events?after=abc", "", 400, "invalid_query"));
  c.push_back(route("events_limit_0", "GET", "/v1/events?limit=0", "", 400, "invalid_query"));
  c.push_back(
      route("events_unknown_parameter", "GET", "/v1/events?since=1", "", 400, "invalid_query"));
  c.push_back(route("hints_live_maybe", "GET", "/v1/hints?live=maybe", "", 400, "invalid_query"));
  c.push_back(route("hints_limit_abc", "GET", "/v1/hints?limit=abc", "", 400, "invalid_query"));
  c.push_back(route("watch_after_abc", "GET", "/v1/watch?after=abc", "", 400, "invalid_query"));
  c.push_back(
      route("state_unknown_parameter", "GET", "/v1/state?verbose=1", "", 400, "invalid_query"));

  // ---- methods and routes ----
  c.push_back(route("put_facts", "PUT", "/v1/facts", R"({"kind":"obs","content":1})", 405,
                    "method_not_allowed"));
  c.push_back(route("delete_fact", "DELETE", "/v1/facts/" + fact, "", 405, "method_not_allowed"));
  c.push_back(route("patch_intents", "PATCH", "/v1/intents", "{}", 405, "method_not_allowed"));
  c.push_back(route("post_state", "POST", "/v1/state", "{}", 405, "method_not_allowed"));
  c.push_back(route("post_healthz", "POST", "/healthz", "{}", 405, "method_not_allowed"));
  c.push_back(route("get_claims", "GET", "/v1/claims", "", 405, "method_not_allowed"));
  c.push_back(route("get_claim_verb", "GET", open + "/claim", "", 405, "method_not_allowed"));
  c.push_back(route("options_facts", "OPTIONS", "/v1/facts", "", 405, "method_not_allowed"));
  c.push_back(route("unknown_method", "BREW", "/v1/facts", "", 405, "method_not_allowed"));
  c.push_back(route("unknown_resource", "GET", "/v1/nothing", "", 404, "no_route"));
  c.push_back(route("unknown_version", "GET", "/v2/facts", "", 404, "no_route"));
  c.push_back(route("root", "GET", "/", "", 404, "no_route"));
  c.push_back(route("v1_alone", "GET", "/v1", "", 404, "no_route"));
  c.push_back(route("fact_path_too_deep", "GET", "/v1/facts/" + fact + "/x", "", 404, "no_route"));
  c.push_back(route("hint_path_too_deep", "DELETE", hint + "/x", "", 404, "no_route"));

  // ---- HTTP framing (raw bytes, fresh connection each) ----
  const std::string good_fact = R"({"kind":"obs","content":"raw"})";
  c.push_back(raw("garbage_request_line", "NOT HTTP\r\n\r\n", 400, "bad_request", true));
  c.push_back(raw("binary_request_line", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                  400, "bad_request", true));
  c.push_back(raw("http_2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad_request", true));
  c.push_back(
      raw("version_http_3", "GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 400, "bad_request", true));
  c.push_back(raw("asterisk_target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_target",
                  false));
  c.push_back(
      raw("missing_host_http_1_1", "GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request", true));
  c.push_back(raw("two_hosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
                  "bad_request", true));
  c.push_back(raw("header_without_colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
                  400, "bad_request", true));
  c.push_back(raw("header_name_with_space",
                  "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "bad_request",
                  true));
  c.push_back(raw("nul_in_header_value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"s,
                  400, "bad_request", true));
  c.push_back(
      raw("bare_lf_line_endings", "GET /healthz HTTP/1.1\nHost: x\n\n", 400, "bad_request", true));
  c.push_back(raw("content_length_not_a_number",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: ten\r\n\r\n" +
                      good_fact,
                  400, "bad_request", true));
  c.push_back(raw("content_length_negative",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: -1\r\n\r\n" +
                      good_fact,
                  400, "bad_request", true));
  c.push_back(raw("two_different_content_lengths",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: 30\r\nContent-Length: 31\r\n\r\n" +
                      good_fact,
                  400, "bad_request", true));
  c.push_back(raw("content_length_and_chunked",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n1e\r\n" +
                      good_fact + "\r\n0\r\n\r\n",
                  400, "bad_request", true));
  c.push_back(raw("chunk_size_not_hex",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\nzz\r\n" +
                      good_fact + "\r\n0\r\n\r\n",
                  400, "bad_request", true));
  c.push_back(raw("unknown_transfer_encoding",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: gzip\r\n\r\n" +
                      good_fact,
                  400, "bad_request", true));
  c.push_back(raw("chunked_over_body_bytes_max",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n200000\r\n" +
                      std::string(0x200000, ' ') + "\r\n0\r\n\r\n",
                  413, "too_large", true));
  c.push_back(raw("body_over_body_bytes_max",
                  post_bytes("/v1/facts", content('"' + std::string(2u << 20, 'b') + '"')), 413,
                  "too_large", true));
  c.push_back(raw("content_length_over_body_bytes_max_no_body",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: 99999999999\r\n\r\n",
                  413, "too_large", true));
  c.push_back(
      raw("one_header_over_header_bytes_max",
          "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20'000, 'h') + "\r\n\r\n",
          413, "too_large", true));
  std::string many_headers = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 2'000; ++i) many_headers += "X-H" + std::to_string(i) + ": v\r\n";
  c.push_back(
      raw("many_headers_over_header_bytes_max", many_headers + "\r\n", 413, "too_large", true));
  c.push_back(raw("target_over_header_bytes_max",
                  "GET /v1/facts/" + std::string(20'000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 413,
                  "too_large", true));
  c.push_back(raw("content_type_text_plain",
                  post_bytes("/v1/facts", good_fact, "Content-Type: text/plain\r\n"), 415,
                  "unsupported_media_type", false));
  c.push_back(
      raw("content_type_form",
          post_bytes("/v1/facts", good_fact, "Content-Type: application/x-www-form-urlencoded\r\n"),
          415, "unsupported_media_type", false));
  c.push_back(raw(
      "content_type_json_latin1",
      post_bytes("/v1/facts", good_fact, "Content-Type: application/json; charset=iso-8859-1\r\n"),
      415, "unsupported_media_type", false));
  c.push_back(raw("content_type_not_utf8",
                  post_bytes("/v1/facts", good_fact, "Content-Type: text/\xe9t\xe9\r\n"), 415,
                  "unsupported_media_type", false));
  c.push_back(raw("path_raw_byte_ff", "GET /v1/facts/\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400,
                  "invalid_target", false));
  c.push_back(raw("unknown_route_raw_bytes", "GET /\xc3\x28 HTTP/1.1\r\nHost: x\r\n\r\n", 400,
                  "invalid_target", false));
  c.push_back(raw("idempotency_key_not_ascii",
                  post_bytes("/v1/facts", good_fact,
                             "Content-Type: application/json\r\nIdempotency-Key: \xff\xfe\r\n"),
                  400, "bad_request", false));
  c.push_back(raw("idempotency_key_over_idempotency_key_bytes_max",
                  post_bytes("/v1/facts", good_fact,
                             "Content-Type: application/json\r\nIdempotency-Key: " +
                                 std::string(256, 'k') + "\r\n"),
                  400, "bad_request", false));
  c.push_back(raw("idempotency_key_with_a_space",
                  post_bytes("/v1/facts", good_fact,
                             "Content-Type: application/json\r\nIdempotency-Key: a b\r\n"),
                  400, "bad_request", false));
  c.push_back(raw("content_type_missing_with_body", post_bytes("/v1/facts", good_fact, ""), 415,
                  "unsupported_media_type", false));
  c.push_back(raw("post_without_content_length",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n",
                  400, "invalid_json", false));
  c.push_back(raw("http_1_0_bad_json",
                  "POST /v1/facts HTTP/1.0\r\nContent-Type: application/json\r\n"
                  "Content-Length: 1\r\n\r\n{",
                  400, "invalid_json", true));
  c.push_back(raw("expect_continue_over_body_bytes_max",
                  "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n",
                  413, "too_large", true));
  return c;
}

class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    srv_ = new TestServer();
    srv_->config.limits.caller_rate_per_s = 0;  // hundreds of requests in a burst
    srv_->start();
    HttpConn c(srv_->port);
    auto f = c.request("POST", "/v1/facts", R"({"kind":"obs","content":1})");
    ASSERT_EQ(f.status, 201) << f.body;
    ids_.fact = str(f.json(), "id");
    const std::string from = R"(,"from_facts":[")" + ids_.fact + "\"]";
    auto open = c.request("POST", "/v1/intents", R"({"kind":"job","creator":"alice")" + from + "}");
    ASSERT_EQ(open.status, 201) << open.body;
    ids_.open = str(open.json(), "id");
    auto held =
        c.request("POST", "/v1/intents", R"({"kind":"held","creator":"alice")" + from + "}");
    ASSERT_EQ(held.status, 201) << held.body;
    ids_.claimed = str(held.json(), "id");
    auto claim = c.request("POST", "/v1/intents/" + ids_.claimed + "/claim",
                           R"({"agent":"a1","lease_ttl_ms":3600000})");
    ASSERT_EQ(claim.status, 200) << claim.body;
    ASSERT_EQ(num(claim.json(), "epoch"), 1);
    auto hint = c.request(
        "POST", "/v1/hints",
        R"({"kind":"note","creator":"alice","selector":{"kind":"nothing"},"effect":{"type":"priority","delta":1}})");
    ASSERT_EQ(hint.status, 201) << hint.body;
    ids_.hint = str(hint.json(), "id");
  }
  static void TearDownTestSuite() {
    srv_->stop();
    srv_->remove_data();
    delete srv_;
    srv_ = nullptr;
  }

  static TestServer* srv_;
  static Ids ids_;
};

TestServer* BadInput::srv_ = nullptr;
Ids BadInput::ids_;

TEST_F(BadInput, EveryCaseIsATypedErrorAndChangesNothing) {
  const std::vector<Case> table = cases(ids_);
  EXPECT_GE(table.size(), 100u);
  HttpConn conn(srv_->port, kReplyTimeoutMs);   // JSON rows share one keep-alive connection
  HttpConn probe(srv_->port, kReplyTimeoutMs);  // reads the state around raw rows
  for (const Case& k : table) {
    SCOPED_TRACE(k.name);
    if (k.method.empty()) {
      const Snapshot before = snapshot(probe);
      HttpConn fresh(srv_->port, kReplyTimeoutMs);
      const HttpResult r = fresh.raw(k.raw);
      ASSERT_NE(r.status, 0) << "no reply";
      expect_error(r, k.status, k.code, k.name);
      if (k.closes) {
        EXPECT_TRUE(fresh.peer_closed(kReplyTimeoutMs)) << "the connection stayed open";
      } else {
        // The request was framed correctly: the connection serves the next one.
        EXPECT_EQ(fresh.request("GET", "/healthz").status, 200);
      }
      expect_unchanged(probe, before, k.name);
    } else {
      const Snapshot before = snapshot(conn);
      const HttpResult r = conn.request(k.method, k.target, k.body);
      ASSERT_NE(r.status, 0) << "no reply, or the connection was closed";
      expect_error(r, k.status, k.code, k.name);
      expect_unchanged(conn, before, k.name);
    }
  }
}

TEST_F(BadInput, CaseNamesAreUnique) {
  std::set<std::string> names;
  for (const Case& k : cases(ids_)) EXPECT_TRUE(names.insert(k.name).second) << k.name;
}

// 405 replies name the allowed methods (RFC 9110 requires Allow).
TEST_F(BadInput, MethodNotAllowedListsAllowedMethods) {
  HttpConn c(srv_->port, kReplyTimeoutMs);
  auto r = c.request("PUT", "/v1/facts", "{}");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "GET, POST");
  EXPECT_EQ(c.request("POST", "/v1/state", "{}").headers["allow"], "GET");
  EXPECT_EQ(c.request("GET", "/v1/hints/" + ids_.hint + "x/y").status, 404);
  EXPECT_EQ(c.request("PUT", "/v1/hints/" + ids_.hint, "{}").headers["allow"], "GET, DELETE");
}

// A client that writes its whole request before reading (as many HTTP
// libraries do) still gets the 413 for an oversized body: the server drains
// the rest before closing instead of resetting the connection under it.
// (6 MiB is more than loopback's socket buffers take in.)
TEST_F(BadInput, OversizedBodySentInFullStillGets413) {
  const std::string body = R"({"kind":"obs","content":")" + std::string(6u << 20, 'b') + "\"}";
  for (int i = 0; i < 5; ++i) {
    HttpConn c(srv_->port, kReplyTimeoutMs);
    ASSERT_TRUE(c.send(post_bytes("/v1/facts", body))) << "the server reset the connection";
    expect_error(c.next_response(), 413, "too_large", "attempt " + std::to_string(i));
  }
}

// Pipelining: a refused request does not disturb the next one on the same
// connection; a framing error ends the connection (its bytes cannot be trusted).
TEST_F(BadInput, PipelinedBadThenGoodRequests) {
  HttpConn c(srv_->port, kReplyTimeoutMs);
  const std::string good = R"({"kind":"obs","content":"pipelined"})";
  ASSERT_TRUE(c.send(post_bytes("/v1/facts", R"({"kind":"obs","content":)") +
                     post_bytes("/v1/facts", good) + "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n" +
                     post_bytes("/v1/facts", good)));
  const HttpResult bad = c.next_response();
  expect_error(bad, 400, "invalid_json", "first");
  const HttpResult ok = c.next_response();
  EXPECT_TRUE(ok.status == 201 || ok.status == 200) << ok.body;
  expect_error(c.next_response(), 404, "no_route", "third");
  const HttpResult again = c.next_response();
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(str(again.json(), "id"), str(ok.json(), "id"));

  HttpConn d(srv_->port, kReplyTimeoutMs);
  const Snapshot before = snapshot(d);
  HttpConn e(srv_->port, kReplyTimeoutMs);
  ASSERT_TRUE(e.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n" +
                     post_bytes("/v1/facts", R"({"kind":"obs","content":"never"})")));
  expect_error(e.next_response(), 400, "bad_request", "framing error");
  EXPECT_TRUE(e.peer_closed(kReplyTimeoutMs));
  expect_unchanged(d, before, "the request after a framing error is not run");
}

// Well-formed requests at the edges of the limits are accepted: the bounds
// are where the docs say, not lower.
TEST_F(BadInput, BoundariesAreAccepted) {
  HttpConn c(srv_->port, kReplyTimeoutMs);
  auto fact = [&](const std::string& body) { return c.request("POST", "/v1/facts", body); };
  EXPECT_EQ(fact(R"({"kind":"obs","content":)" + nested_arrays(63) + "}").status, 201);
  EXPECT_EQ(fact(R"({"kind":")" + std::string(128, 'k') + R"(","content":1})").status, 201);
  EXPECT_EQ(fact(R"({"kind":"obs","content":)" + repeat_list("0", 100'000) + "}").status, 201);
  EXPECT_EQ(fact(R"({"kind":"obs","content":-0})").status / 100, 2);
  EXPECT_EQ(c.request("POST", "/v1/facts", R"({"kind":"obs","content":"keyed"})",
                      {{"Idempotency-Key", std::string(255, 'k')}})
                .status,
            201);
  // Chunked transfer coding is HTTP/1.1: the body is reassembled.
  const std::string body = R"({"kind":"obs","content":"chunked"})";
  const HttpResult r = c.raw(
      "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json; charset=UTF-8\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\n" +
      body.substr(0, 5) + "\r\n" +
      [&] {
        char n[16];
        std::snprintf(n, sizeof n, "%zx", body.size() - 5);
        return std::string(n);
      }() +
      "\r\n" + body.substr(5) + "\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, 201) << r.body;
  // HTTP/1.0 without Host is fine; the connection closes after the reply.
  HttpConn old(srv_->port, kReplyTimeoutMs);
  EXPECT_EQ(old.raw("GET /healthz HTTP/1.0\r\n\r\n").status, 200);
  EXPECT_TRUE(old.peer_closed(kReplyTimeoutMs));
  // max 256 and wait_ms 30000 are valid (the claim takes an intent of its own kind at once).
  ASSERT_EQ(
      c.request("POST", "/v1/intents", R"({"kind":"edge","from_facts":[")" + ids_.fact + "\"]}")
          .status,
      201);
  auto claims = c.request("POST", "/v1/claims",
                          R"({"agent":"edge","kinds":["edge"],"max":256,"wait_ms":30000})");
  EXPECT_EQ(claims.status, 200) << claims.body;
}

// Slow and truncated requests: their own server with a short idle timeout.
class SlowClients : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    srv_ = new TestServer();
    srv_->config.limits.idle_timeout_ms = 300;
    srv_->start();
  }
  static void TearDownTestSuite() {
    srv_->stop();
    srv_->remove_data();
    delete srv_;
    srv_ = nullptr;
  }
  static TestServer* srv_;
};

TestServer* SlowClients::srv_ = nullptr;

// A body shorter than its Content-Length: the server waits idle_timeout_ms
// for the rest, then answers 408 and closes; nothing is applied.
TEST_F(SlowClients, TruncatedBodyTimesOutWith408) {
  HttpConn probe(srv_->port, kReplyTimeoutMs);
  const Snapshot before = snapshot(probe);
  HttpConn c(srv_->port, kReplyTimeoutMs);
  const std::string body = R"({"kind":"obs","content":"truncated"})";
  ASSERT_TRUE(c.send(
      "POST /v1/facts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size() + 10) + "\r\n\r\n" + body));
  expect_error(c.next_response(), 408, "request_timeout", "truncated body");
  EXPECT_TRUE(c.peer_closed(kReplyTimeoutMs));
  HttpConn probe2(srv_->port, kReplyTimeoutMs);
  expect_unchanged(probe2, before, "truncated body");
}

// Headers that never end (one byte at a time, "slowloris"): the time limit
// covers the whole request head, so trickling bytes does not extend it.
TEST_F(SlowClients, TricklingHeadersTimeOutWith408) {
  HttpConn c(srv_->port, kReplyTimeoutMs);
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  for (int i = 0; i < 30 && !c.readable(100); ++i) {
    if (!c.send("X")) break;
  }
  expect_error(c.next_response(), 408, "request_timeout", "trickled headers");
  EXPECT_TRUE(c.peer_closed(kReplyTimeoutMs));
}

// An idle keep-alive connection (between requests) is closed without a reply.
TEST_F(SlowClients, IdleKeepAliveIsClosedSilently) {
  HttpConn c(srv_->port, kReplyTimeoutMs);
  ASSERT_EQ(c.request("GET", "/healthz").status, 200);
  EXPECT_TRUE(c.peer_closed(kReplyTimeoutMs));
  // A connection that never sends a byte is closed the same way.
  HttpConn silent(srv_->port, kReplyTimeoutMs);
  EXPECT_TRUE(silent.peer_closed(kReplyTimeoutMs));
}

}  // namespace
}  // namespace cairn::testing

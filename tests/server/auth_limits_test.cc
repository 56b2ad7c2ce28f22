// auth_limits_test.cc — bearer tokens and scopes, impersonation, size and
// rate limits, and the Status → HTTP table.
#include <gtest/gtest.h>

#include "model/sha256.h"
#include "server/errors.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

server::TokenConfig token(const std::string& name, const std::string& secret, server::Scope scope) {
  return server::TokenConfig{name, to_hex(sha256(secret)), scope};
}

Headers bearer(const std::string& secret) {
  return {{"Authorization", "Bearer " + secret}};
}

TEST(Auth, TokensScopesAndImpersonation) {
  TestServer srv;
  srv.config.tokens = {token("reader", "r-secret", server::Scope::kRead),
                       token("alice", "a-secret", server::Scope::kAgent),
                       token("root", "x-secret", server::Scope::kAdmin)};
  srv.start();
  const std::string fact = R"({"kind":"obs","content":1})";
  auto none = srv.post("/v1/facts", fact);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.code(), "unauthenticated");
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer realm=\"cairn\"");
  EXPECT_EQ(srv.post("/v1/facts", fact, bearer("wrong")).status, 401);
  EXPECT_EQ(srv.get("/v1/state").status, 401);
  EXPECT_EQ(srv.get("/healthz").status, 200);

  auto ro = srv.post("/v1/facts", fact, bearer("r-secret"));
  EXPECT_EQ(ro.status, 403);
  EXPECT_EQ(ro.code(), "insufficient_scope");
  EXPECT_EQ(srv.get("/v1/state", bearer("r-secret")).status, 200);

  auto other =
      srv.post("/v1/facts", R"({"kind":"obs","content":1,"creator":"bob"})", bearer("a-secret"));
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(other.code(), "impersonation");
  auto ok = srv.post("/v1/facts", fact, bearer("a-secret"));
  ASSERT_EQ(ok.status, 201) << ok.body;
  const std::string id = str(ok.json(), "id");
  EXPECT_EQ(str(srv.get("/v1/facts/" + id, bearer("r-secret")).json(), "creator"), "alice");

  auto in =
      srv.post("/v1/intents", R"({"kind":"job","from_facts":[")" + id + "\"]}", bearer("a-secret"));
  ASSERT_EQ(in.status, 201);
  const std::string iid = str(in.json(), "id");
  auto as_bob = srv.post("/v1/intents/" + iid + "/claim", R"({"agent":"bob"})", bearer("a-secret"));
  EXPECT_EQ(as_bob.status, 403);
  EXPECT_EQ(as_bob.code(), "impersonation");
  auto claim = srv.post("/v1/intents/" + iid + "/claim", "{}", bearer("a-secret"));
  ASSERT_EQ(claim.status, 200) << claim.body;
  EXPECT_EQ(str(srv.get("/v1/intents/" + iid, bearer("r-secret")).json(), "holder"), "alice");
  srv.stop();
  srv.remove_data();
}

TEST(Auth, NonLoopbackWithoutTokensIsRefused) {
  server::ServerConfig c;
  c.listen_host = "0.0.0.0";
  EXPECT_EQ(server::validate_config(c).reason(), "insecure_listen");
  c.tokens.push_back(token("a", "s", server::Scope::kAdmin));
  EXPECT_TRUE(server::validate_config(c).ok());
  c.tokens[0].sha256_hex = "nothex";
  EXPECT_FALSE(server::validate_config(c).ok());
}

TEST(Limits, BodyAndHeaderTooLarge) {
  TestServer srv;
  srv.config.limits.body_bytes_max = 1024;
  srv.config.limits.header_bytes_max = 2048;
  srv.start();
  const std::string big = R"({"kind":"obs","content":")" + std::string(2000, 'x') + "\"}";
  auto r = srv.post("/v1/facts", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.code(), "too_large");
  auto h = srv.get("/healthz", {{"X-Big", std::string(4000, 'y')}});
  EXPECT_EQ(h.status, 413);
  EXPECT_EQ(srv.get("/v1/state").json().find("last_seq")->int_if(), 0);
  // A malformed request line.
  HttpConn c(srv.port);
  EXPECT_EQ(c.raw("NOT HTTP\r\n\r\n").status, 400);
  srv.stop();
  srv.remove_data();
}

TEST(Limits, PerCallerRateLimit) {
  TestServer srv;
  srv.config.limits.caller_rate_per_s = 1;
  srv.config.limits.caller_burst = 2;
  srv.start();
  const std::string body = R"({"kind":"obs","content":1,"creator":"spammer"})";
  EXPECT_EQ(srv.post("/v1/facts", body).status, 201);
  EXPECT_EQ(srv.post("/v1/facts", body).status, 200);
  auto r = srv.post("/v1/facts", body);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.code(), "rate_limited");
  EXPECT_EQ(r.headers["retry-after"], "1");
  // Another caller is unaffected.
  EXPECT_EQ(srv.post("/v1/facts", R"({"kind":"obs","content":1,"creator":"calm"})").status, 201);
  srv.stop();
  srv.remove_data();
}

TEST(ErrorTable, StatusToHttp) {
  using server::http_mapping;
  EXPECT_EQ(http_mapping(invalid("x")).status, 400);
  EXPECT_EQ(http_mapping(invalid("x", "invalid_json")).status, 400);
  EXPECT_EQ(http_mapping(invalid("x", "unknown_reference")).status, 422);
  EXPECT_EQ(http_mapping(invalid("x", "not_grounded")).status, 422);
  EXPECT_EQ(http_mapping(server::unauthenticated("x")).status, 401);
  EXPECT_EQ(http_mapping(forbidden("x", "not_holder")).status, 403);
  EXPECT_EQ(http_mapping(not_found("x")).status, 404);
  EXPECT_EQ(http_mapping(conflict("x", "stale_epoch")).status, 409);
  EXPECT_EQ(http_mapping(conflict("x", "already_claimed")).status, 409);
  EXPECT_EQ(http_mapping(too_large("x")).status, 413);
  EXPECT_EQ(http_mapping(server::rate_limited("x", 2500)).status, 429);
  EXPECT_EQ(http_mapping(server::rate_limited("x", 2500)).retry_after_s, 3);
  const auto over = http_mapping(unavailable("x", "overloaded"));
  EXPECT_EQ(over.status, 503);
  EXPECT_EQ(over.retry_after_s, 1);
  EXPECT_EQ(http_mapping(outcome_unknown("x")).status, 503);
  EXPECT_EQ(http_mapping(internal_error("x")).status, 500);

  const server::HttpResponse r = server::error_response(unavailable("full", "overloaded"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.retry_after_s, 1);
  auto j = parse_json(r.body);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(str(*j->find("error"), "code"), "overloaded");
  EXPECT_EQ(str(*j->find("error"), "message"), "full");
  EXPECT_TRUE(j->find("error")->find("details")->is_object());
}

}  // namespace
}  // namespace cairn::testing

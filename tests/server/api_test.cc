// api_test.cc — cairnd end to end over real sockets: facts, intents, the
// lifecycle and its refusals, long-polls, restart, bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "model/fact.h"
#include "model/sha256.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

using Ms = std::chrono::milliseconds;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { srv.start(); }
  void TearDown() override {
    srv.stop();
    srv.remove_data();
  }

  std::string post_fact(const std::string& content = R"({"a":1})") {
    auto r = srv.post("/v1/facts", R"({"kind":"obs","content":)" + content + "}");
    EXPECT_TRUE(r.status == 201 || r.status == 200) << r.body;
    return str(r.json(), "id");
  }
  std::string create_intent(const std::string& fact, const std::string& extra = "") {
    auto r =
        srv.post("/v1/intents", R"({"kind":"job","from_facts":[")" + fact + "\"]" + extra + "}");
    EXPECT_EQ(r.status, 201) << r.body;
    return str(r.json(), "id");
  }
  std::int64_t last_seq() {
    auto r = srv.get("/v1/state");
    EXPECT_EQ(r.status, 200);
    return num(r.json(), "last_seq");
  }

  TestServer srv;
};

// Log records are not facts: the kinds log and log.* are reserved so that
// nothing posted can pose as one (or trigger what a log record never does).
TEST_F(ApiTest, LogKindsAreReservedForLogRecords) {
  auto r = srv.post("/v1/facts", R"({"kind":"log.sense_failed","content":{"sense":"disk"}})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.code(), "reserved_kind");
  const Json body = r.json();
  const Json* d = body.find("error")->find("details");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(str(*d, "kind"), "log.sense_failed");
  EXPECT_EQ(str(*d, "field"), "kind");
  EXPECT_EQ(srv.post("/v1/facts", R"({"kind":"log","content":1})").code(), "reserved_kind");
  // Only that namespace: kinds that merely begin with "log" are facts.
  for (const char* kind : {"login", "logs.rotated", "Log.x", "catalog"}) {
    auto ok = srv.post("/v1/facts", std::string(R"({"kind":")") + kind + R"(","content":1})");
    EXPECT_EQ(ok.status, 201) << kind << " " << ok.body;
  }
}

TEST_F(ApiTest, FactPostIsIdempotentAndVerifiable) {
  auto a = srv.post("/v1/facts", R"({"kind":"obs","content":{"x":[1,2,3]},"creator":"bob"})");
  ASSERT_EQ(a.status, 201) << a.body;
  auto b = srv.post("/v1/facts", R"({"kind":"obs","content":{"x":[1,2,3]},"creator":"bob"})");
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(str(a.json(), "id"), str(b.json(), "id"));
  EXPECT_EQ(num(a.json(), "seq"), num(b.json(), "seq"));

  auto g = srv.get("/v1/facts/" + str(a.json(), "id"));
  ASSERT_EQ(g.status, 200) << g.body;
  const Json f = g.json();
  EXPECT_EQ(str(f, "creator"), "bob");
  EXPECT_EQ(num(f, "seq"), num(a.json(), "seq"));
  EXPECT_GT(num(f, "recorded_at"), 0);
  // Re-hash the five hashed fields.
  Json hashed = Json::object();
  for (const char* k : {"kind", "content", "content_type", "derived_from", "creator"}) {
    ASSERT_NE(f.find(k), nullptr) << k;
    hashed.set(k, *f.find(k));
  }
  EXPECT_EQ(to_hex(sha256(to_jcs(hashed))), str(f, "id"));

  EXPECT_EQ(srv.get("/v1/facts/" + std::string(64, 'a')).code(), "not_found");
  EXPECT_EQ(srv.get("/v1/facts/" + std::string(64, 'a')).status, 404);
  // Default creator without auth.
  auto anon = srv.post("/v1/facts", R"({"kind":"obs","content":2})");
  EXPECT_EQ(str(srv.get("/v1/facts/" + str(anon.json(), "id")).json(), "creator"), "anonymous");
}

// One evidence link per event, chained, served in pages that verify on
// their own and against the link before them; each link's action is its event.
TEST_F(ApiTest, EvidenceChainHasOneLinkPerEventAndVerifies) {
  const std::string f = post_fact();
  const std::string x = create_intent(f);
  ASSERT_EQ(srv.post("/v1/intents/" + x + "/claim", R"({"agent":"a1"})").status, 200);
  ASSERT_EQ(srv.post("/v1/intents/" + x + "/conclude",
                     R"({"agent":"a1","epoch":1,"result":{"kind":"r","content":1}})")
                .status,
            200);
  const std::int64_t n = last_seq();
  ASSERT_GE(n, 5);
  auto all = srv.get("/v1/evidence?limit=1000");
  ASSERT_EQ(all.status, 200) << all.body;
  const Json a = all.json();
  const JsonArray& links = a.find("links")->as_array();
  ASSERT_EQ(static_cast<std::int64_t>(links.size()), n);
  const JsonArray events = srv.get("/v1/events?limit=1000").json().find("events")->as_array();
  for (std::size_t i = 0; i < links.size(); ++i) {
    EXPECT_EQ(num(links[i], "seq"), static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(str(links[i], "action_type"), str(events[i], "type"));
    EXPECT_EQ(str(links[i], "action_hash"), to_hex(sha256(to_jcs(events[i]))));
    if (i > 0) {
      EXPECT_EQ(str(links[i], "prev_hash"), str(links[i - 1], "chain_hash"));
    }
  }
  EXPECT_EQ(str(links[0], "prev_hash"), std::string(64, '0'));
  const Json& report = *a.find("report");
  EXPECT_TRUE(report.find("ok")->as_bool()) << all.body;
  EXPECT_EQ(num(report, "last_seq"), n);
  EXPECT_EQ(str(report, "head"), str(links.back(), "chain_hash"));
  EXPECT_TRUE(a.find("next")->is_null());

  // Pages: from=2, two links; `next` continues; the page is checked against link 1.
  auto p = srv.get("/v1/evidence?from=2&limit=2");
  ASSERT_EQ(p.status, 200) << p.body;
  const Json pj = p.json();
  EXPECT_EQ(pj.find("links")->size(), 2u);
  EXPECT_EQ(num(pj.find("links")->as_array()[0], "seq"), 2);
  EXPECT_EQ(num(pj, "next"), 4);
  EXPECT_TRUE(pj.find("report")->find("ok")->as_bool()) << p.body;
  EXPECT_EQ(srv.get("/v1/evidence?from=x").status, 400);
  EXPECT_EQ(srv.get("/v1/evidence?nope=1").status, 400);

  // A restart continues the chain from its stored head.
  srv.stop();
  srv.start();
  post_fact(R"({"after":"restart"})");
  auto again = srv.get("/v1/evidence?limit=1000");
  const Json aj = again.json();
  EXPECT_EQ(static_cast<std::int64_t>(aj.find("links")->size()), last_seq());
  EXPECT_TRUE(aj.find("report")->find("ok")->as_bool()) << again.body;
}

TEST_F(ApiTest, FactListPagesWithCursor) {
  for (int i = 0; i < 5; ++i) post_fact(std::to_string(i));
  srv.post("/v1/facts", R"({"kind":"other","content":1})");
  auto p1 = srv.get("/v1/facts?kind=obs&limit=3");
  ASSERT_EQ(p1.status, 200) << p1.body;
  ASSERT_EQ(p1.json().find("facts")->size(), 3u);
  const Json p1j = p1.json();
  const Json* next = p1j.find("next");
  ASSERT_TRUE(next->int_if().has_value());
  auto p2 = srv.get("/v1/facts?kind=obs&limit=3&after=" + std::to_string(*next->int_if()));
  EXPECT_EQ(p2.json().find("facts")->size(), 2u);
  EXPECT_TRUE(p2.json().find("next")->is_null());
  EXPECT_EQ(srv.get("/v1/facts?limit=100").json().find("facts")->size(), 6u);
  EXPECT_EQ(srv.get("/v1/facts?limit=0").status, 400);
  EXPECT_EQ(srv.get("/v1/facts?limit=1001").status, 400);
}

TEST_F(ApiTest, IntentLifecycleHappyPaths) {
  const std::string fact = post_fact();
  const std::string id = create_intent(fact);
  auto g = srv.get("/v1/intents/" + id);
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(str(g.json(), "state"), "open");

  auto c = srv.post("/v1/intents/" + id + "/claim", R"({"agent":"a1","lease_ttl_ms":5000})");
  ASSERT_EQ(c.status, 200) << c.body;
  const std::int64_t epoch = num(c.json(), "epoch");
  EXPECT_EQ(epoch, 1);
  EXPECT_GT(num(c.json(), "lease_expires_at"), 0);
  const std::string e = std::to_string(epoch);

  auto h = srv.post("/v1/intents/" + id + "/heartbeat", R"({"agent":"a1","epoch":)" + e + "}");
  ASSERT_EQ(h.status, 200) << h.body;
  auto done = srv.post(
      "/v1/intents/" + id + "/conclude",
      R"({"agent":"a1","epoch":)" + e + R"(,"result":{"kind":"answer","content":{"v":42}}})");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(str(done.json(), "state"), "concluded");
  const std::string result = str(done.json(), "result");
  auto rf = srv.get("/v1/facts/" + result);
  ASSERT_EQ(rf.status, 200);
  EXPECT_EQ(str(rf.json(), "creator"), "a1");
  EXPECT_EQ(str(srv.get("/v1/intents/" + id).json(), "state"), "concluded");

  // fail (retryable) → open; release → open; cancel → cancelled.
  const std::string f2 = create_intent(fact, R"(,"identity":"second")");
  auto c2 = srv.post("/v1/intents/" + f2 + "/claim", R"({"agent":"a1"})");
  ASSERT_EQ(c2.status, 200);
  auto fl = srv.post("/v1/intents/" + f2 + "/fail",
                     R"({"agent":"a1","epoch":1,"error":"boom","retryable":true})");
  ASSERT_EQ(fl.status, 200) << fl.body;
  EXPECT_EQ(str(fl.json(), "state"), "open");

  const std::string r3 = create_intent(fact, R"(,"identity":"third")");
  ASSERT_EQ(srv.post("/v1/intents/" + r3 + "/claim", R"({"agent":"a2"})").status, 200);
  auto rel = srv.post("/v1/intents/" + r3 + "/release", R"({"agent":"a2","epoch":1})");
  ASSERT_EQ(rel.status, 200) << rel.body;
  EXPECT_EQ(str(rel.json(), "state"), "open");
  auto can = srv.post("/v1/intents/" + r3 + "/cancel", "");
  ASSERT_EQ(can.status, 200) << can.body;
  EXPECT_EQ(str(srv.get("/v1/intents/" + r3).json(), "state"), "cancelled");

  auto st = srv.get("/v1/state").json();
  EXPECT_EQ(num(*st.find("intents"), "concluded"), 1);
  EXPECT_EQ(num(*st.find("intents"), "cancelled"), 1);
}

TEST_F(ApiTest, LifecycleRefusalsHaveExactCodes) {
  const std::string fact = post_fact();
  const std::string id = create_intent(fact);
  ASSERT_EQ(srv.post("/v1/intents/" + id + "/claim", R"({"agent":"a1"})").status, 200);

  auto taken = srv.post("/v1/intents/" + id + "/claim", R"({"agent":"a2"})");
  EXPECT_EQ(taken.status, 409);
  EXPECT_EQ(taken.code(), "already_claimed");
  const Json taken_j = taken.json();
  const Json* d = taken_j.find("error")->find("details");
  EXPECT_EQ(str(*d, "holder"), "a1");
  EXPECT_GT(num(*d, "lease_expires_at"), 0);

  auto stale = srv.post("/v1/intents/" + id + "/heartbeat", R"({"agent":"a1","epoch":7})");
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(stale.code(), "stale_epoch");
  auto stale_c = srv.post("/v1/intents/" + id + "/conclude",
                          R"({"agent":"a1","epoch":2,"result":{"kind":"r","content":1}})");
  EXPECT_EQ(stale_c.status, 409);
  EXPECT_EQ(stale_c.code(), "stale_epoch");

  auto not_holder = srv.post("/v1/intents/" + id + "/release", R"({"agent":"a2","epoch":1})");
  EXPECT_EQ(not_holder.status, 403);
  EXPECT_EQ(not_holder.code(), "not_holder");

  auto cancel_other = srv.post("/v1/intents/" + id + "/cancel", R"({"creator":"mallory"})");
  EXPECT_EQ(cancel_other.status, 403);
  EXPECT_EQ(cancel_other.code(), "not_creator");

  auto missing = srv.post("/v1/intents/nope/claim", R"({"agent":"a1"})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.code(), "not_found");
  EXPECT_EQ(srv.get("/v1/intents/nope").status, 404);

  auto unknown_ref =
      srv.post("/v1/intents", R"({"kind":"job","from_facts":[")" + std::string(64, 'b') + "\"]}");
  EXPECT_EQ(unknown_ref.status, 422);
  EXPECT_EQ(unknown_ref.code(), "unknown_reference");
  auto ungrounded = srv.post("/v1/intents", R"({"kind":"job","from_facts":[]})");
  EXPECT_EQ(ungrounded.status, 422);
  EXPECT_EQ(ungrounded.code(), "not_grounded");
  auto derived_missing = srv.post(
      "/v1/facts", R"({"kind":"k","content":1,"derived_from":[")" + std::string(64, 'c') + "\"]}");
  EXPECT_EQ(derived_missing.status, 422);
  EXPECT_EQ(derived_missing.code(), "unknown_reference");

  auto no_agent = srv.post("/v1/intents/" + id + "/claim", R"({})");
  EXPECT_EQ(no_agent.status, 400);
  auto bad_type = srv.post("/v1/intents/" + id + "/heartbeat", R"({"agent":"a1","epoch":"1"})");
  EXPECT_EQ(bad_type.status, 400);
  EXPECT_EQ(bad_type.code(), "invalid_field");
  auto unknown_field = srv.post("/v1/intents/" + id + "/claim", R"({"agent":"a1","x":1})");
  EXPECT_EQ(unknown_field.code(), "unknown_field");
  EXPECT_EQ(srv.post("/v1/nothing", "{}").status, 404);
  EXPECT_EQ(http(srv.port, "DELETE", "/v1/facts").status, 405);
}

TEST_F(ApiTest, ClaimsLongPollWakesOnNewWork) {
  const std::string fact = post_fact();
  HttpResult got;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread waiter([&] {
    got = srv.post("/v1/claims", R"({"agent":"w1","kinds":["job"],"max":4,"wait_ms":10000})");
  });
  std::this_thread::sleep_for(Ms(300));
  const std::string id = create_intent(fact);
  waiter.join();
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(got.status, 200) << got.body;
  const Json got_j = got.json();
  const Json* claims = got_j.find("claims");
  ASSERT_EQ(claims->size(), 1u);
  EXPECT_EQ(str(*claims->as_array()[0].find("intent"), "id"), id);
  EXPECT_EQ(num(claims->as_array()[0], "epoch"), 1);
  EXPECT_LT(took, Ms(3000));

  // Nothing comes: an empty list after wait_ms.
  const auto t1 = std::chrono::steady_clock::now();
  auto empty = srv.post("/v1/claims", R"({"agent":"w1","wait_ms":300})");
  const auto took2 = std::chrono::steady_clock::now() - t1;
  ASSERT_EQ(empty.status, 200) << empty.body;
  EXPECT_EQ(empty.json().find("claims")->size(), 0u);
  EXPECT_GE(took2, Ms(250));
  EXPECT_LT(took2, Ms(5000));

  EXPECT_EQ(srv.post("/v1/claims", R"({"agent":"w1","max":0})").status, 400);
  EXPECT_EQ(srv.post("/v1/claims", R"({"agent":"w1","max":257})").status, 400);
  EXPECT_EQ(srv.post("/v1/claims", R"({"agent":"w1","wait_ms":30001})").status, 400);
}

// A long-poll whose client hangs up stops waiting: new work goes to a live
// agent, not to a request nobody will read.
TEST_F(ApiTest, AHungUpLongPollTakesNoWork) {
  const std::string fact = post_fact();
  auto parked = [&] {
    const std::string m = srv.get("/metrics").body;
    const std::string g = "cairn_parked_long_polls ";
    const auto at = m.find("\n" + g);
    return at == std::string::npos ? -1 : std::atoi(m.c_str() + at + 1 + g.size());
  };
  {
    HttpConn gone(srv.port);
    ASSERT_TRUE(gone.ok());
    const std::string body = R"({"agent":"gone","wait_ms":20000})";
    ASSERT_TRUE(
        gone.send("POST /v1/claims HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body));
    for (int i = 0; i < 200 && parked() != 1; ++i) std::this_thread::sleep_for(Ms(10));
    ASSERT_EQ(parked(), 1);
  }  // the connection closes here
  for (int i = 0; i < 200 && parked() != 0; ++i) std::this_thread::sleep_for(Ms(10));
  ASSERT_EQ(parked(), 0);
  const std::string id = create_intent(fact);
  auto live = srv.post("/v1/claims", R"({"agent":"live","max":1})");
  ASSERT_EQ(live.status, 200) << live.body;
  const Json j = live.json();
  ASSERT_EQ(j.find("claims")->size(), 1u) << live.body;
  EXPECT_EQ(str(*j.find("claims")->as_array()[0].find("intent"), "id"), id);
}

TEST_F(ApiTest, IntentListFiltersAndPages) {
  const std::string fact = post_fact();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(create_intent(fact, R"(,"identity":"i)" + std::to_string(i) + R"(","lane":")" +
                                          (i % 2 == 0 ? "even" : "odd") + "\""));
  }
  ASSERT_EQ(srv.post("/v1/intents/" + ids[0] + "/claim", R"({"agent":"a"})").status, 200);
  auto claimed = srv.get("/v1/intents?state=claimed");
  ASSERT_EQ(claimed.status, 200) << claimed.body;
  ASSERT_EQ(claimed.json().find("intents")->size(), 1u);
  EXPECT_EQ(srv.get("/v1/intents?state=open").json().find("intents")->size(), 4u);
  EXPECT_EQ(srv.get("/v1/intents?lane=even").json().find("intents")->size(), 3u);
  EXPECT_EQ(srv.get("/v1/intents?state=open&lane=odd").json().find("intents")->size(), 2u);
  EXPECT_EQ(srv.get("/v1/intents?state=bogus").status, 400);
  // Pages of 2 over all five.
  std::set<std::string> seen;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    auto r = srv.get("/v1/intents?limit=2" + (after.empty() ? "" : "&after=" + after));
    ASSERT_EQ(r.status, 200);
    const Json rj = r.json();
    for (const Json& in : rj.find("intents")->as_array()) seen.insert(str(in, "id"));
    const Json* next = rj.find("next");
    if (next->is_null()) break;
    after = next->as_string();
  }
  EXPECT_EQ(seen.size(), 5u);
}

TEST_F(ApiTest, HintsCreateListRevoke) {
  auto h = srv.post(
      "/v1/hints",
      R"({"kind":"policy","selector":{"kind":"job"},"effect":{"type":"deny"},"reason":"r"})");
  ASSERT_EQ(h.status, 201) << h.body;
  const std::string id = str(h.json(), "id");
  auto list = srv.get("/v1/hints?live=true");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.json().find("hints")->size(), 1u);
  EXPECT_EQ(srv.get("/v1/hints/" + id).status, 200);
  auto other = http(srv.port, "DELETE", "/v1/hints/" + id, R"({"creator":"mallory"})");
  EXPECT_EQ(other.status, 403);
  auto del = http(srv.port, "DELETE", "/v1/hints/" + id);
  EXPECT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(srv.get("/v1/hints?live=true").json().find("hints")->size(), 0u);
  EXPECT_EQ(srv.get("/v1/hints").json().find("hints")->size(), 1u);
}

TEST_F(ApiTest, IdempotencyKeyReturnsTheFirstReply) {
  const std::string fact = post_fact();
  const std::string body = R"({"kind":"job","from_facts":[")" + fact + "\"]}";
  auto a = srv.post("/v1/intents", body, {{"Idempotency-Key", "k1"}});
  auto b = srv.post("/v1/intents", body, {{"Idempotency-Key", "k1"}});
  ASSERT_EQ(a.status, 201);
  EXPECT_EQ(b.status, 201);
  EXPECT_EQ(str(a.json(), "id"), str(b.json(), "id"));
  EXPECT_EQ(num(*srv.get("/v1/state").json().find("intents"), "open"), 1);
}

TEST_F(ApiTest, StateCountsIntentsByStateAndByLane) {
  const std::string fact = post_fact();
  for (const char* lane : {"batch", "batch", "urgent"}) {
    auto r = srv.post("/v1/intents", R"({"kind":"job","lane":")" + std::string(lane) +
                                         R"(","from_facts":[")" + fact + "\"]}");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  auto c = srv.post("/v1/claims", R"({"agent":"a1","lanes":["urgent"],"max":1})");
  ASSERT_EQ(c.status, 200) << c.body;
  const Json st = srv.get("/v1/state").json();
  EXPECT_EQ(num(*st.find("intents"), "open"), 2);
  EXPECT_EQ(num(*st.find("intents"), "claimed"), 1);
  const Json* lanes = st.find("lanes");
  ASSERT_NE(lanes, nullptr) << to_json(st);
  EXPECT_EQ(num(*lanes->find("batch"), "open"), 2);
  EXPECT_EQ(num(*lanes->find("batch"), "claimed"), 0);
  EXPECT_EQ(num(*lanes->find("urgent"), "open"), 0);
  EXPECT_EQ(num(*lanes->find("urgent"), "claimed"), 1);
}

TEST_F(ApiTest, MalformedInputChangesNothing) {
  post_fact();
  const std::int64_t before = last_seq();
  auto r = srv.post("/v1/facts", R"({"kind":"obs","content":[1,2)");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.code(), "invalid_json");
  EXPECT_TRUE(r.json().find("error")->find("details")->find("offset") != nullptr);
  EXPECT_EQ(srv.post("/v1/facts", R"({"kind":"obs","kind":"x","content":1})").code(),
            "duplicate_key");
  EXPECT_EQ(srv.post("/v1/facts", "[1]").status, 400);
  EXPECT_EQ(srv.post("/v1/facts", R"({"kind":"bad kind","content":1})").status, 400);
  EXPECT_EQ(srv.post("/v1/facts", "{\"kind\":\"obs\",\"content\":\"\xff\"}").code(),
            "invalid_json");
  EXPECT_EQ(srv.post("/v1/facts", R"({"kind":"obs","content":1e999})").status, 400);
  EXPECT_EQ(srv.post("/v1/facts", "").code(), "invalid_json");
  EXPECT_EQ(last_seq(), before);
  EXPECT_EQ(srv.get("/v1/events?after=" + std::to_string(before)).json().find("events")->size(),
            0u);
}

TEST_F(ApiTest, HealthAndMetrics) {
  EXPECT_EQ(srv.get("/healthz").status, 200);
  post_fact();
  auto m = srv.get("/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("cairn_http_requests_total{route=\"POST /v1/facts\",status=\"201\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("cairn_commit_batch_ops_count"), std::string::npos);
  EXPECT_NE(m.body.find("cairn_intents{state=\"open\"}"), std::string::npos);
  EXPECT_NE(m.body.find("cairn_ingress_depth"), std::string::npos);
}

TEST_F(ApiTest, KeepAliveServesManyRequestsOnOneConnection) {
  HttpConn c(srv.port);
  for (int i = 0; i < 200; ++i) {
    auto r = c.request("GET", "/healthz");
    ASSERT_EQ(r.status, 200) << i;
  }
}

TEST(ServerRestart, LeasesAndEventSequenceSurvive) {
  TestServer srv;
  srv.start();
  auto f = srv.post("/v1/facts", R"({"kind":"obs","content":1})");
  const std::string fact = str(f.json(), "id");
  auto in = srv.post("/v1/intents", R"({"kind":"job","from_facts":[")" + fact + "\"]}");
  const std::string id = str(in.json(), "id");
  auto c = srv.post("/v1/intents/" + id + "/claim", R"({"agent":"a1","lease_ttl_ms":600000})");
  ASSERT_EQ(c.status, 200);
  const std::int64_t expires = num(c.json(), "lease_expires_at");
  const std::int64_t seq = num(srv.get("/v1/state").json(), "last_seq");
  srv.stop();

  srv.start();
  auto g = srv.get("/v1/intents/" + id);
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(str(g.json(), "state"), "claimed");
  EXPECT_EQ(num(g.json(), "lease_expires_at"), expires);
  EXPECT_EQ(str(g.json(), "holder"), "a1");
  auto f2 = srv.post("/v1/facts", R"({"kind":"obs","content":2})");
  EXPECT_EQ(num(f2.json(), "seq"), seq + 1);
  auto evs = srv.get("/v1/events?limit=1000").json();
  std::int64_t expect = 1;
  for (const Json& e : evs.find("events")->as_array()) EXPECT_EQ(num(e, "seq"), expect++);
  // The holder can still conclude with its epoch.
  auto done = srv.post("/v1/intents/" + id + "/conclude",
                       R"({"agent":"a1","epoch":1,"result":{"kind":"r","content":1}})");
  EXPECT_EQ(done.status, 200) << done.body;
  srv.stop();
  srv.remove_data();
}

TEST(ServerRestart, IdempotencyKeysAreAnsweredAfterARestart) {
  TestServer srv;
  srv.start();
  auto f = srv.post("/v1/facts", R"({"kind":"obs","content":1})");
  const std::string body = R"({"kind":"job","from_facts":[")" + str(f.json(), "id") + "\"]}";
  auto a = srv.post("/v1/intents", body, {{"Idempotency-Key", "create-1"}});
  ASSERT_EQ(a.status, 201);
  auto missing = srv.post("/v1/intents/nope/cancel", "{}", {{"Idempotency-Key", "cancel-1"}});
  ASSERT_EQ(missing.status, 404);
  srv.stop();

  srv.start();
  auto b = srv.post("/v1/intents", body, {{"Idempotency-Key", "create-1"}});
  EXPECT_EQ(b.status, 201);
  EXPECT_EQ(b.body, a.body);  // the first reply, byte for byte
  auto again = srv.post("/v1/intents/nope/cancel", "{}", {{"Idempotency-Key", "cancel-1"}});
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(again.body, missing.body);
  EXPECT_EQ(num(*srv.get("/v1/state").json().find("intents"), "open"), 1);  // created once
  srv.stop();
  srv.remove_data();
}

}  // namespace
}  // namespace cairn::testing

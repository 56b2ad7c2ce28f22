// pg_server_test.cc — cairnd with `store: postgres://...`: the HTTP API over
// a real PostgreSQL, a restart that resumes exactly, and the owner lock that
// keeps a second node off the same database (one cairnd per database until
// nodes can share one).
#include <gtest/gtest.h>

#include <string>

#include "backend/postgres/pg_cluster.h"
#include "server/test_server.h"

namespace cairn::backend::testing {
namespace {

using cairn::testing::num;
using cairn::testing::str;
using cairn::testing::TestServer;

TEST(PgServer, ServesResumesAndKeepsASecondNodeOff) {
  const std::string url = fresh_database("cairnd");
  TestServer srv;
  srv.config.store_url = url;
  srv.start();
  auto f = srv.post("/v1/facts", R"({"kind":"obs","content":1})");
  ASSERT_EQ(f.status, 201) << f.body;
  auto in =
      srv.post("/v1/intents", R"({"kind":"job","from_facts":[")" + str(f.json(), "id") + "\"]}",
               {{"Idempotency-Key", "create-1"}});
  ASSERT_EQ(in.status, 201) << in.body;
  const std::string id = str(in.json(), "id");
  auto c = srv.post("/v1/claims", R"({"agent":"a1","max":1,"lease_ttl_ms":600000})");
  ASSERT_EQ(c.status, 200) << c.body;
  const Json claim = c.json().find("claims")->as_array().at(0);
  const std::int64_t expires = num(claim, "lease_expires_at");
  EXPECT_EQ(srv.get("/v1/intents?state=claimed").json().find("intents")->size(), 1u);

  // A second node on the same database is refused while the first runs.
  TestServer second;
  second.config.store_url = url;
  server::Server other(second.config);
  auto refused = other.start();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().reason(), "store_in_use");

  srv.stop();
  srv.start();  // resumes from PostgreSQL
  auto g = srv.get("/v1/intents/" + id);
  ASSERT_EQ(g.status, 200) << g.body;
  EXPECT_EQ(str(g.json(), "state"), "claimed");
  EXPECT_EQ(num(g.json(), "lease_expires_at"), expires);
  // The idempotency record came back too: the retry gets the first reply.
  auto again =
      srv.post("/v1/intents", R"({"kind":"job","from_facts":[")" + str(f.json(), "id") + "\"]}",
               {{"Idempotency-Key", "create-1"}});
  EXPECT_EQ(again.body, in.body);
  auto done = srv.post("/v1/intents/" + id + "/conclude",
                       R"({"agent":"a1","epoch":1,"result":{"kind":"r","content":1}})");
  EXPECT_EQ(done.status, 200) << done.body;
  auto evs = srv.get("/v1/events?limit=1000").json();
  std::int64_t expect = 1;
  for (const Json& e : evs.find("events")->as_array()) EXPECT_EQ(num(e, "seq"), expect++);
  EXPECT_EQ(num(*srv.get("/v1/state").json().find("intents"), "concluded"), 1);
  srv.stop();
  srv.remove_data();
}

}  // namespace
}  // namespace cairn::backend::testing

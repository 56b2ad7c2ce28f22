// pg_shared_test.cc — several cairnd nodes on one PostgreSQL database
// (shared mode): which stores may share a database, changes made on one
// node reaching another node's watch stream and long-polls through
// LISTEN/NOTIFY, and lease decisions on the database's clock even for a node
// whose own clock is an hour ahead.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "backend/postgres/pg_cluster.h"
#include "crash/cairnd_process.h"
#include "server/test_server.h"

namespace cairn::backend::testing {
namespace {

using cairn::testing::HttpResult;
using cairn::testing::num;
using cairn::testing::SseEvent;
using cairn::testing::SseStream;
using cairn::testing::str;
using cairn::testing::TestServer;

struct Node : TestServer {
  Node(const std::string& url, const std::string& name) {
    config.store_url = url;
    config.engine.node = name;
  }
  ~Node() {
    stop();
    remove_data();
  }
};

std::string make_fact(TestServer& s, const std::string& content) {
  auto f = s.post("/v1/facts", R"({"kind":"seed","content":")" + content + "\"}");
  EXPECT_EQ(f.status, 201) << f.body;
  return str(f.json(), "id");
}

std::string make_intent(TestServer& s, const std::string& fact, const std::string& kind,
                        std::int64_t ttl_ms = 30'000) {
  auto in = s.post("/v1/intents", R"({"kind":")" + kind + R"(","from_facts":[")" + fact +
                                      R"("],"lease_ttl_ms":)" + std::to_string(ttl_ms) + "}");
  EXPECT_EQ(in.status, 201) << in.body;
  return str(in.json(), "id");
}

TEST(PgShared, NodesShareADatabaseButNotWithASingleOwnerOrADuplicateName) {
  const std::string url = fresh_database("cairn_shared");
  Node n1(url, "n1");
  n1.start();
  {
    TestServer single;  // no node name: it would own the database
    single.config.store_url = url;
    server::Server s(single.config);
    auto r = s.start();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().reason(), "store_in_use");
    single.remove_data();
  }
  {
    Node dup(url, "n1");
    server::Server s(dup.config);
    auto r = s.start();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().reason(), "node_in_use");
  }
  Node n2(url, "n2");
  n2.start();
  // Both serve one blackboard: a fact posted on either has one id and seq.
  auto a = n1.post("/v1/facts", R"({"kind":"obs","content":"same"})");
  auto b = n2.post("/v1/facts", R"({"kind":"obs","content":"same"})");
  ASSERT_EQ(a.status, 201) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;  // it existed already
  EXPECT_EQ(str(a.json(), "id"), str(b.json(), "id"));
  EXPECT_EQ(num(a.json(), "seq"), num(b.json(), "seq"));
}

TEST(PgShared, AWatchOnOneNodeStreamsWhatAnotherNodeCommits) {
  const std::string url = fresh_database("cairn_shared");
  Node n1(url, "n1"), n2(url, "n2");
  n1.start();
  n2.start();
  SseStream watch(n2.port, "/v1/watch?after=0");
  ASSERT_EQ(watch.status(), 200);
  // Only n1 writes; n2 learns of it only through the notifications.
  const std::string f = make_fact(n1, "w");
  const std::string x = make_intent(n1, f, "job");
  std::vector<std::string> types;
  for (std::int64_t seq = 1; seq <= 2; ++seq) {
    SseEvent e;
    ASSERT_TRUE(watch.next(e, 10'000)) << "event " << seq << " never reached n2's watch";
    EXPECT_EQ(e.id, std::to_string(seq));
    types.push_back(e.event);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"fact.recorded", "intent.created"}));
  // n2's own view caught up as well.
  auto g = n2.get("/v1/intents/" + x);
  EXPECT_EQ(g.status, 200) << g.body;
}

TEST(PgShared, ALongPollOnOneNodeTakesWorkCreatedOnAnother) {
  const std::string url = fresh_database("cairn_shared");
  Node n1(url, "n1"), n2(url, "n2");
  n1.start();
  n2.start();
  const std::string f = make_fact(n1, "lp");
  HttpResult claim;
  std::thread poller(
      [&] { claim = n2.post("/v1/claims", R"({"agent":"a2","kinds":["late"],"wait_ms":20000})"); });
  // Parked on n2 (nothing of kind "late" exists yet); then n1 creates it.
  for (int i = 0; i < 200; ++i) {
    auto m = n2.get("/metrics");
    if (m.body.find("cairn_parked_long_polls 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string x = make_intent(n1, f, "late");
  poller.join();
  ASSERT_EQ(claim.status, 200) << claim.body;
  const Json body = claim.json();
  const Json& claims = *body.find("claims");
  ASSERT_EQ(claims.size(), 1u) << claim.body;
  EXPECT_EQ(str(*claims.as_array()[0].find("intent"), "id"), x);
  // n1 sees the claim n2 made.
  auto g = n1.get("/v1/intents/" + x);
  EXPECT_EQ(str(g.json(), "holder"), "a2");
}

// A cairnd process whose clocks run an hour ahead (libfaketime) joins n1. If
// it judged leases by its own clock, every lease n1 grants would look long
// expired to it and it would hand the intent to another agent.
TEST(PgShared, ANodeWithASkewedClockCannotStealALiveLease) {
  // libfaketime (Debian's faketime package), preloaded into cairnd itself so
  // that the test signals cairnd and not a wrapper process.
  std::string faketime;
  for (const auto& arch : std::filesystem::directory_iterator("/usr/lib")) {
    const auto lib = arch.path() / "faketime" / "libfaketimeMT.so.1";
    if (std::filesystem::exists(lib)) faketime = lib.string();
  }
  ASSERT_FALSE(faketime.empty()) << "libfaketime is missing (make deps)";
  const std::string url = fresh_database("cairn_shared");
  Node n1(url, "n1");
  n1.start();
  const std::string f = make_fact(n1, "skew");
  const std::string x = make_intent(n1, f, "job", 60'000);
  auto c1 = n1.post("/v1/claims", R"({"agent":"a1","kinds":["job"]})");
  ASSERT_EQ(c1.status, 200) << c1.body;
  const Json lease = c1.json().find("claims")->as_array().at(0);
  const std::int64_t n1_expires = num(lease, "lease_expires_at");

  const std::string dir = cairn::testing::make_temp_dir();
  cairn::testing::CairndProcess ahead(CAIRND_PATH, dir + "/data", dir + "/log",
                                      {"--store", url, "--node", "ahead", "--log-level", "info"},
                                      {"LD_PRELOAD=" + faketime, "FAKETIME=+3600s"});
  const std::string started = ahead.start();
  ASSERT_EQ(started, "") << started;
  const std::uint16_t port = ahead.port();

  // The intent stays a1's: the skewed node neither expires nor hands it out.
  auto steal =
      cairn::testing::http(port, "POST", "/v1/intents/" + x + "/claim", R"({"agent":"thief"})");
  EXPECT_EQ(steal.status, 409) << steal.body;
  auto any = cairn::testing::http(port, "POST", "/v1/claims", R"({"agent":"thief"})");
  ASSERT_EQ(any.status, 200) << any.body;
  EXPECT_EQ(any.json().find("claims")->size(), 0u) << any.body;
  // The preload works: the process's own clock is an hour ahead (its start
  // log line carries its wall clock).
  {
    std::ifstream in(dir + "/log");
    std::string l, started;
    while (std::getline(in, l)) {
      if (l.find("\"started\"") == std::string::npos) continue;
      auto j = parse_json(l);
      ASSERT_TRUE(j.ok()) << l;
      EXPECT_GT(num(*j, "started_at") - (n1_expires - 60'000), 3'000'000) << l;
      started = l;
    }
    ASSERT_FALSE(started.empty()) << "no start line in the skewed node's log";
  }
  // Its own leases are measured on the database's clock too: a lease it
  // grants ends about when one n1 grants at the same moment would, not an
  // hour later.
  const std::string y = make_intent(n1, f, "other", 60'000);
  auto mine =
      cairn::testing::http(port, "POST", "/v1/intents/" + y + "/claim", R"({"agent":"a3"})");
  ASSERT_EQ(mine.status, 200) << mine.body;
  const std::int64_t skewed_expires = num(mine.json(), "lease_expires_at");
  EXPECT_LT(skewed_expires - n1_expires, 600'000) << "the skewed node used its own clock";
  EXPECT_GE(skewed_expires, n1_expires);
  auto g = n1.get("/v1/intents/" + x);
  EXPECT_EQ(str(g.json(), "holder"), "a1");
  EXPECT_EQ(num(g.json(), "epoch"), 1);

  EXPECT_EQ(ahead.terminate(30'000), "");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::backend::testing

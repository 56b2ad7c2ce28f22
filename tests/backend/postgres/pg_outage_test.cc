// pg_outage_test.cc — a cairnd whose PostgreSQL stops answers its clients
// at once instead of waiting for the database (engine_host.h, "the store
// down"): a fact posted while PostgreSQL is down gets a typed 503 within the
// client's 5 s timeout, also while a commit's outcome is in doubt, and the
// node carries on by itself once PostgreSQL is back.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "backend/postgres/pg_cluster.h"
#include "server/http_client.h"
#include "server/test_server.h"

namespace cairn::backend::testing {
namespace {

using cairn::testing::eventually;
using cairn::testing::HttpConn;
using cairn::testing::HttpResult;
using cairn::testing::str;
using cairn::testing::TestServer;

// How long a client waits for an answer while PostgreSQL is down (the same
// bound as the cluster storm's probes). No answer within it reads status 0.
constexpr int kProbeTimeoutMs = 5'000;
constexpr int kProbes = 3;

struct Server : TestServer {
  explicit Server(const std::string& url, const std::string& node = "") {
    config.store_url = url;
    config.engine.node = node;
  }
  ~Server() {
    stop();
    remove_data();
  }
};

HttpResult post_fact(std::uint16_t port, const std::string& content, int timeout_ms,
                     const cairn::testing::Headers& h = {}) {
  HttpConn c(port, timeout_ms);
  return c.request("POST", "/v1/facts", R"({"kind":"obs","content":")" + content + "\"}", h);
}

// The database is back: the node takes facts again without a restart.
void expect_recovers(Server& s, const std::string& content) {
  HttpResult last;
  EXPECT_TRUE(eventually(
      [&] {
        last = post_fact(s.port, content, kProbeTimeoutMs);
        return last.status == 201;
      },
      30'000, 100))
      << last.status << " " << last.body;
}

// Single-owner mode: PostgreSQL stops between two requests. Every fact posted
// while it is down is answered 503 storage_unreachable; reads of the node's
// view still answer; once it is back the node commits again.
TEST(PgOutage, ANodeAnswers503WhilePostgresIsDown) {
  Server s(fresh_database("cairn_outage"));
  s.start();
  auto before = s.post("/v1/facts", R"({"kind":"obs","content":"before"})");
  ASSERT_EQ(before.status, 201) << before.body;
  const std::string id = str(before.json(), "id");
  pg_cluster_down();
  for (int i = 0; i < kProbes; ++i) {
    HttpResult r = post_fact(s.port, "down-" + std::to_string(i), kProbeTimeoutMs);
    EXPECT_EQ(r.status, 503) << "probe " << i << " (0: no answer within " << kProbeTimeoutMs
                             << " ms): " << r.body;
    EXPECT_EQ(r.code(), "storage_unreachable") << r.body;
  }
  HttpConn reader(s.port, kProbeTimeoutMs);
  HttpResult state = reader.request("GET", "/v1/state");
  EXPECT_EQ(state.status, 200) << state.body;
  pg_cluster_up();
  expect_recovers(s, "after");
  HttpResult again = s.post("/v1/facts", R"({"kind":"obs","content":"before"})");
  EXPECT_EQ(again.status, 200) << again.body;  // the acknowledged fact is there
  EXPECT_EQ(str(again.json(), "id"), id);
}

// Shared mode: PostgreSQL stops while a commit is in flight (a deferred
// trigger holds COMMIT), so the node cannot know whether it landed. The
// node does not wait for PostgreSQL to learn it: the in-flight request is
// answered outcome_unknown (commit_unknown), and every request after it 503 at once. Back
// up, the node settles the batch (it did not land: a retry with the same
// key creates the fact) and goes on.
TEST(PgOutage, ACommitInDoubtDoesNotHoldTheNextRequests) {
  const std::string url = fresh_database("cairn_outage");
  Server s(url, "n1");
  s.start();
  ASSERT_EQ(s.post("/v1/facts", R"({"kind":"obs","content":"before"})").status, 201);
  {
    RawSession raw(url);
    raw.exec(
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM "
        "pg_sleep(60); RETURN NULL; END $$");
    raw.exec(
        "CREATE CONSTRAINT TRIGGER slow AFTER INSERT OR UPDATE ON kv DEFERRABLE INITIALLY "
        "DEFERRED FOR EACH ROW EXECUTE FUNCTION slow()");
  }
  const cairn::testing::Headers key = {{"Idempotency-Key", "in-doubt-1"}};
  HttpResult in_doubt;
  std::thread writer([&] { in_doubt = post_fact(s.port, "in-doubt", 60'000, key); });
  {
    RawSession raw;
    ASSERT_TRUE(eventually(
        [&] {
          return !raw.exec(
                         "SELECT 1 FROM pg_stat_activity WHERE application_name = 'cairn'"
                         " AND query = 'COMMIT' AND wait_event = 'PgSleep'")
                      .empty();
        },
        30'000, 20))
        << "the commit never reached its deferred trigger";
  }
  pg_cluster_down();  // a fast shutdown ends the session in the middle of COMMIT
  writer.join();
  EXPECT_EQ(in_doubt.status, 503) << in_doubt.body;
  EXPECT_EQ(in_doubt.code(), "commit_unknown") << in_doubt.body;
  for (int i = 0; i < kProbes; ++i) {
    HttpResult r = post_fact(s.port, "down-" + std::to_string(i), kProbeTimeoutMs);
    EXPECT_EQ(r.status, 503) << "probe " << i << " (0: no answer within " << kProbeTimeoutMs
                             << " ms): " << r.body;
  }
  // Until the batch is settled the node's view may hold it: reads wait too.
  HttpConn reader(s.port, kProbeTimeoutMs);
  EXPECT_EQ(reader.request("GET", "/v1/state").status, 503);
  pg_cluster_up();
  RawSession(url).exec("DROP TRIGGER slow ON kv");
  expect_recovers(s, "after");
  HttpResult retry = post_fact(s.port, "in-doubt", kProbeTimeoutMs, key);
  EXPECT_EQ(retry.status, 201) << retry.body;
}

}  // namespace
}  // namespace cairn::backend::testing

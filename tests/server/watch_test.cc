// watch_test.cc — GET /v1/watch (Server-Sent Events): live delivery,
// resumption with Last-Event-ID without gaps or duplicates, overflow.
#include <gtest/gtest.h>

#include "server/test_server.h"

namespace cairn::testing {
namespace {

std::string fact_body(int i) {
  return R"({"kind":"obs","content":)" + std::to_string(i) + "}";
}

TEST(Watch, LiveThenResumeWithoutGaps) {
  TestServer srv;
  srv.start();
  ASSERT_EQ(srv.post("/v1/facts", fact_body(0)).status, 201);  // seq 1, before the watch

  std::string last_id;
  {
    SseStream s(srv.port, "/v1/watch");
    ASSERT_EQ(s.status(), 200);
    for (int i = 1; i <= 3; ++i) ASSERT_EQ(srv.post("/v1/facts", fact_body(i)).status, 201);
    for (int want = 2; want <= 4; ++want) {
      SseEvent e;
      ASSERT_TRUE(s.next(e)) << want;
      EXPECT_EQ(e.id, std::to_string(want));  // live only: seq 1 is not replayed
      EXPECT_EQ(e.event, "fact.recorded");
      auto j = parse_json(e.data);
      ASSERT_TRUE(j.ok());
      EXPECT_EQ(num(*j, "seq"), want);
      last_id = e.id;
    }
  }
  // While disconnected.
  for (int i = 4; i <= 6; ++i) ASSERT_EQ(srv.post("/v1/facts", fact_body(i)).status, 201);

  SseStream s(srv.port, "/v1/watch", {{"Last-Event-ID", last_id}});
  ASSERT_EQ(s.status(), 200);
  // History 5..7, then live 8.. interleaved with posts, no gaps, no duplicates.
  std::thread poster([&] {
    for (int i = 7; i <= 20; ++i) srv.post("/v1/facts", fact_body(i));
  });
  for (int want = 5; want <= 21; ++want) {
    SseEvent e;
    ASSERT_TRUE(s.next(e)) << want;
    EXPECT_EQ(e.id, std::to_string(want));
  }
  poster.join();

  // ?after= works like Last-Event-ID.
  SseStream from0(srv.port, "/v1/watch?after=0");
  SseEvent e;
  ASSERT_TRUE(from0.next(e));
  EXPECT_EQ(e.id, "1");
  srv.stop();
  srv.remove_data();
}

TEST(Watch, SlowClientGetsOverflowAndResumePoint) {
  TestServer srv;
  srv.config.limits.watch_buffer_events_max = 4;
  srv.start();
  SseStream s(srv.port, "/v1/watch?after=0");
  ASSERT_EQ(s.status(), 200);
  // One commit cycle with many events cannot be queued in 4 slots: posting
  // concurrently from several connections makes large batches.
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) srv.post("/v1/facts", fact_body(t * 100 + i));
    });
  }
  for (auto& t : ts) t.join();
  // Read everything; the stream either delivered all 100 events in order or
  // ended with an overflow event naming the last seq it delivered.
  std::int64_t last = 0;
  bool overflow = false;
  SseEvent e;
  while (s.next(e, 2'000)) {
    if (e.event == "overflow") {
      auto j = parse_json(e.data);
      ASSERT_TRUE(j.ok());
      EXPECT_EQ(num(*j, "resume_after"), last);
      overflow = true;
      break;
    }
    EXPECT_EQ(std::stoll(e.id), last + 1);
    last = std::stoll(e.id);
  }
  EXPECT_TRUE(overflow || last == 100) << last;
  srv.stop();
  srv.remove_data();
}

}  // namespace
}  // namespace cairn::testing

// refusal.h — checks shared by the bad-input tests: an error reply has the
// documented shape, and a refused request changed nothing (the engine's state
// and the event sequence are as before).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "server/http_client.h"
#include "server/test_server.h"

namespace cairn::testing {

// Asserts `r` is `status` with error.code `code`, and that the body is exactly
// {"error": {"code", "message", "details"}} with a non-empty message and an
// object as details.
inline void expect_error(const HttpResult& r, int status, const std::string& code,
                         const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.code(), code) << r.body;
  const Json j = r.json();
  ASSERT_TRUE(j.is_object()) << "not a JSON object: " << r.body;
  ASSERT_EQ(j.as_object().size(), 1u) << r.body;
  const Json* e = j.find("error");
  ASSERT_NE(e, nullptr) << r.body;
  ASSERT_TRUE(e->is_object()) << r.body;
  EXPECT_EQ(e->as_object().size(), 3u) << r.body;
  const Json* c = e->find("code");
  const Json* m = e->find("message");
  const Json* d = e->find("details");
  ASSERT_TRUE(c != nullptr && c->is_string()) << r.body;
  ASSERT_TRUE(m != nullptr && m->is_string()) << r.body;
  EXPECT_FALSE(m->as_string().empty()) << r.body;
  ASSERT_TRUE(d != nullptr && d->is_object()) << r.body;
  EXPECT_EQ(r.headers.count("content-type") ? r.headers.at("content-type") : "",
            "application/json");
}

// What a refused request must leave alone: the engine's counts and last
// event seq (GET /v1/state) and the event log after that seq.
struct Snapshot {
  std::string state;  // the body of GET /v1/state
  std::int64_t last_seq = -1;
};

inline Snapshot snapshot(HttpConn& c) {
  Snapshot s;
  const HttpResult r = c.request("GET", "/v1/state");
  EXPECT_EQ(r.status, 200) << r.body;
  s.state = r.body;
  s.last_seq = num(r.json(), "last_seq");
  EXPECT_GE(s.last_seq, 0) << r.body;
  return s;
}

// The state and the event sequence are what `before` recorded.
inline void expect_unchanged(HttpConn& c, const Snapshot& before, const std::string& what) {
  SCOPED_TRACE(what);
  const Snapshot now = snapshot(c);
  EXPECT_EQ(now.state, before.state);
  const HttpResult evs = c.request("GET", "/v1/events?after=" + std::to_string(before.last_seq));
  ASSERT_EQ(evs.status, 200) << evs.body;
  const Json* list = evs.json().find("events");
  ASSERT_NE(list, nullptr) << evs.body;
  EXPECT_EQ(list->size(), 0u) << "events appeared: " << evs.body;
}

}  // namespace cairn::testing

// primitives_test.cc — the engine's framework primitives, one group each:
// every named bound and its default, the edge cases (eviction order, caps,
// truncation at a UTF-8 boundary) and the JSON round-trips of their state.
#include "engine/primitives.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "model/json_parse.h"

namespace cairn::engine {
namespace {

// Snapshot → text → parse → restore, as a restart would do it.
template <class T>
void reload(const T& from, T& to) {
  Result<Json> parsed = parse_json(cairn::to_json(from.to_json()));
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  Status st = to.from_json(*parsed);
  ASSERT_TRUE(st.ok()) << st.to_string();
}

Json details_of(const Status& s) {
  return s.details();
}

// ---- AgentGate ---------------------------------------------------------------------

TEST(AgentGate, DefaultLimitIs64) {
  EXPECT_EQ(AgentGate::kDefaultLeasesPerAgentMax, 64u);
  EXPECT_EQ(AgentGate().limit(), 64u);
}

TEST(AgentGate, AdmitsBelowTheLimitAndRefusesAtIt) {
  AgentGate gate(3);
  EXPECT_TRUE(gate.admit("a1", 0).ok());
  EXPECT_TRUE(gate.admit("a1", 2).ok());
  Status at = gate.admit("a1", 3);
  EXPECT_EQ(at.code(), Code::kConflict);
  EXPECT_EQ(at.reason(), "too_many_leases");
  EXPECT_EQ(cairn::to_json(details_of(at)), R"({"agent":"a1","held":3,"limit":3})");
  EXPECT_EQ(gate.admit("a1", 10).code(), Code::kConflict);
}

TEST(AgentGate, ZeroLimitRefusesEveryClaim) {
  AgentGate gate(0);
  EXPECT_EQ(gate.admit("a1", 0).reason(), "too_many_leases");
}

// ---- AgentBackoff --------------------------------------------------------------------

TEST(AgentBackoff, Defaults) {
  EXPECT_EQ(AgentBackoff::kDefaultBaseMs, 10);
  EXPECT_EQ(AgentBackoff::kDefaultCapMs, 60'000);
  EXPECT_EQ(AgentBackoff::kDefaultAgentsMax, 100'000u);
  AgentBackoff b;
  EXPECT_EQ(b.agents_max(), 100'000u);
  b.record_failure("a", 1'000);
  EXPECT_EQ(b.retry_at("a"), 1'010);
}

TEST(AgentBackoff, DoublesPerFailureUpToTheCap) {
  AgentBackoff b;  // 10 ms base, 60 s cap
  const std::int64_t now = 5'000;
  std::int64_t expected = 10;
  for (std::uint32_t f = 1; f <= 13; ++f) {
    b.record_failure("a", now);
    EXPECT_EQ(b.failures("a"), f);
    EXPECT_EQ(b.retry_at("a"), now + expected) << "failure " << f;
    expected *= 2;
  }
  // 10·2^12 = 40,960; the next doubling (81,920) is capped.
  b.record_failure("a", now);
  EXPECT_EQ(b.retry_at("a"), now + 60'000);
  for (int i = 0; i < 100; ++i) b.record_failure("a", now);
  EXPECT_EQ(b.failures("a"), 114u);
  EXPECT_EQ(b.retry_at("a"), now + 60'000);
}

TEST(AgentBackoff, CapNeedNotBeAPowerOfTwoMultiple) {
  AgentBackoff b(10, 25);
  b.record_failure("a", 0);
  EXPECT_EQ(b.retry_at("a"), 10);
  b.record_failure("a", 0);
  EXPECT_EQ(b.retry_at("a"), 20);
  b.record_failure("a", 0);
  EXPECT_EQ(b.retry_at("a"), 25);
  b.record_failure("a", 100);
  EXPECT_EQ(b.retry_at("a"), 125);  // measured from the latest failure
}

TEST(AgentBackoff, ShouldRetryAtRetryAtAndSuccessResets) {
  AgentBackoff b;
  EXPECT_TRUE(b.should_retry("a", 0));
  EXPECT_EQ(b.retry_at("a"), 0);
  b.record_failure("a", 1'000);
  b.record_failure("a", 1'000);  // 20 ms
  EXPECT_FALSE(b.should_retry("a", 1'019));
  EXPECT_TRUE(b.should_retry("a", 1'020));
  EXPECT_TRUE(b.should_retry("other", 1'000));
  b.record_success("a");
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.failures("a"), 0u);
  EXPECT_EQ(b.retry_at("a"), 0);
  EXPECT_TRUE(b.should_retry("a", 1'000));
  b.record_failure("a", 2'000);  // starts over at the base
  EXPECT_EQ(b.retry_at("a"), 2'010);
  b.record_success("never-failed");  // no-op
  EXPECT_EQ(b.size(), 1u);
}

TEST(AgentBackoff, EvictsTheLeastRecentlyFailedAgent) {
  AgentBackoff b(10, 1'000, 2);
  b.record_failure("a", 0);
  b.record_failure("b", 0);
  b.record_failure("a", 0);  // a is now the most recent
  b.record_failure("c", 0);  // evicts b
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b.failures("a"), 2u);
  EXPECT_EQ(b.failures("b"), 0u);
  EXPECT_EQ(b.failures("c"), 1u);
  b.record_failure("d", 0);  // evicts a
  EXPECT_EQ(b.failures("a"), 0u);
  EXPECT_EQ(b.failures("c"), 1u);
  EXPECT_EQ(b.failures("d"), 1u);
}

TEST(AgentBackoff, JsonRoundTripKeepsEvictionOrder) {
  AgentBackoff b(10, 1'000, 2);
  b.record_failure("b", 100);
  b.record_failure("a", 200);
  b.record_failure("a", 200);
  EXPECT_EQ(cairn::to_json(b.to_json()),
            R"({"clock":3,"agents":[{"agent":"a","failures":2,"retry_at":220,"touched":3},)"
            R"({"agent":"b","failures":1,"retry_at":110,"touched":1}]})");
  AgentBackoff r(10, 1'000, 2);
  reload(b, r);
  EXPECT_EQ(cairn::to_json(r.to_json()), cairn::to_json(b.to_json()));
  EXPECT_EQ(r.retry_at("a"), 220);
  r.record_failure("c", 0);  // b is the least recently failed
  EXPECT_EQ(r.failures("b"), 0u);
  EXPECT_EQ(r.failures("a"), 2u);
}

TEST(AgentBackoff, FromJsonRejectsBadStateAndKeepsTheOld) {
  AgentBackoff b;
  b.record_failure("a", 0);
  const std::string before = cairn::to_json(b.to_json());
  for (const char* text : {
           R"([])",
           R"({"clock":1})",
           R"({"clock":1,"agents":[{"agent":"x","failures":0,"retry_at":1,"touched":1}]})",
           R"({"clock":1,"agents":[{"agent":"x","failures":1,"retry_at":1,"touched":1},)"
           R"({"agent":"x","failures":1,"retry_at":1,"touched":2}]})",
           R"({"clock":1,"agents":[{"agent":"x","failures":-1,"retry_at":1,"touched":1}]})",
       }) {
    Result<Json> j = parse_json(text);
    ASSERT_TRUE(j.ok()) << text;
    Status st = b.from_json(*j);
    EXPECT_EQ(st.code(), Code::kInvalid) << text;
    EXPECT_EQ(cairn::to_json(b.to_json()), before) << text;
  }
}

// ---- AgentGovernor --------------------------------------------------------------------

TEST(AgentGovernor, Defaults) {
  EXPECT_EQ(AgentGovernor::kDefaultDownAfterExpiries, 5u);
  EXPECT_EQ(AgentGovernor::kDefaultAgentsMax, 100'000u);
  AgentGovernor g;
  for (int i = 0; i < 4; ++i) g.record_expiry("a");
  EXPECT_FALSE(g.is_down("a"));
  g.record_expiry("a");
  EXPECT_TRUE(g.is_down("a"));
}

TEST(AgentGovernor, DownAfterConsecutiveExpiriesUpOnSuccess) {
  AgentGovernor g(3);
  EXPECT_TRUE(g.admit("a").ok());
  g.record_expiry("a");
  g.record_expiry("a");
  EXPECT_TRUE(g.admit("a").ok());
  g.record_success("a");  // resets the streak
  g.record_expiry("a");
  g.record_expiry("a");
  EXPECT_FALSE(g.is_down("a"));
  g.record_expiry("a");
  EXPECT_TRUE(g.is_down("a"));
  Status st = g.admit("a");
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(st.reason(), "agent_down");
  EXPECT_EQ(cairn::to_json(details_of(st)),
            R"({"agent":"a","expiries":3,"down_after":3,"retry_at":30000})");
  EXPECT_TRUE(g.admit("b").ok());
  g.record_success("a");
  EXPECT_FALSE(g.is_down("a"));
  EXPECT_EQ(g.expiries("a"), 0u);
  EXPECT_TRUE(g.admit("a").ok());
}

TEST(AgentGovernor, ZeroDownAfterNeverMarksDown) {
  AgentGovernor g(0);
  for (int i = 0; i < 10; ++i) g.record_expiry("a");
  EXPECT_FALSE(g.is_down("a"));
  EXPECT_TRUE(g.admit("a").ok());
}

TEST(AgentGovernor, BlockAndAllowLists) {
  AgentGovernor g;
  g.block("bad");
  Status st = g.admit("bad");
  EXPECT_EQ(st.code(), Code::kForbidden);
  EXPECT_EQ(st.reason(), "agent_blocked");
  EXPECT_TRUE(g.admit("good").ok());  // empty allow list: everyone not blocked

  g.allow("good");
  EXPECT_TRUE(g.admit("good").ok());
  st = g.admit("other");
  EXPECT_EQ(st.code(), Code::kForbidden);
  EXPECT_EQ(st.reason(), "agent_not_allowed");

  // The block list wins over the allow list.
  g.allow("bad");
  EXPECT_EQ(g.admit("bad").reason(), "agent_blocked");
  g.unblock("bad");
  EXPECT_TRUE(g.admit("bad").ok());

  // Policy is checked before health.
  for (int i = 0; i < 5; ++i) g.record_expiry("other");
  EXPECT_EQ(g.admit("other").reason(), "agent_not_allowed");
  g.disallow("good");
  g.disallow("bad");
  EXPECT_EQ(g.admit("other").reason(), "agent_down");  // allow list empty again
  EXPECT_TRUE(g.admit("good").ok());
}

TEST(AgentGovernor, EvictsTheAgentWithFewestExpiries) {
  AgentGovernor g(5, 2);
  g.record_expiry("a");
  g.record_expiry("a");
  g.record_expiry("a");
  g.record_expiry("b");
  g.record_expiry("c");  // evicts b (1 < 3)
  EXPECT_EQ(g.tracked(), 2u);
  EXPECT_EQ(g.expiries("a"), 3u);
  EXPECT_EQ(g.expiries("b"), 0u);
  EXPECT_EQ(g.expiries("c"), 1u);
  g.record_expiry("d");  // evicts c; the newcomer is always kept
  EXPECT_EQ(g.expiries("c"), 0u);
  EXPECT_EQ(g.expiries("d"), 1u);
  g.record_expiry("a");
  g.record_expiry("a");
  EXPECT_TRUE(g.is_down("a"));

  AgentGovernor ties(5, 2);
  ties.record_expiry("y");
  ties.record_expiry("x");
  ties.record_expiry("z");  // x and y tie at 1: the smaller name goes
  EXPECT_EQ(ties.expiries("x"), 0u);
  EXPECT_EQ(ties.expiries("y"), 1u);
  EXPECT_EQ(ties.expiries("z"), 1u);
}

// Found by the simulator: a down agent cannot succeed, so without a probe it
// would stay down forever.
TEST(AgentGovernor, ADownAgentMayProbeAfterTheWait) {
  AgentGovernor g(2, AgentGovernor::kDefaultAgentsMax, 1'000);
  g.record_expiry("a", 5'000);
  g.record_expiry("a", 6'000);
  EXPECT_EQ(g.admit("a", 6'999).reason(), "agent_down");
  EXPECT_TRUE(g.admit("a", 7'000).ok());  // the probe
  g.record_expiry("a", 8'000);            // the probe's lease expired too
  EXPECT_EQ(g.admit("a", 8'500).reason(), "agent_down");
  EXPECT_TRUE(g.admit("a", 9'000).ok());
  g.record_success("a");
  EXPECT_FALSE(g.is_down("a"));
}

TEST(AgentGovernor, JsonRoundTrip) {
  AgentGovernor g(2);
  g.block("b2");
  g.block("b1");
  g.allow("ok");
  g.record_expiry("z", 10);
  g.record_expiry("z", 20);
  g.record_expiry("y", 30);
  EXPECT_EQ(
      cairn::to_json(g.to_json()),
      R"({"blocked":["b1","b2"],"allowed":["ok"],)"
      R"("expiries":[{"agent":"y","count":1,"last_at":30},{"agent":"z","count":2,"last_at":20}]})");
  AgentGovernor r(2);
  r.record_expiry("stale");
  reload(g, r);
  EXPECT_EQ(cairn::to_json(r.to_json()), cairn::to_json(g.to_json()));
  EXPECT_EQ(r.expiries("stale"), 0u);
  EXPECT_TRUE(r.is_down("z"));
  EXPECT_EQ(r.admit("b1").reason(), "agent_blocked");
  EXPECT_EQ(r.admit("y").reason(), "agent_not_allowed");

  Result<Json> bad = parse_json(R"({"blocked":[],"allowed":[],"expiries":[{"agent":"a"}]})");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(r.from_json(*bad).code(), Code::kInvalid);
  EXPECT_TRUE(r.is_down("z"));  // unchanged
}

// ---- DedupWindow (and the Status encoding its replies use) -------------------------------

TEST(DedupStatusJson, RoundTripsEveryPart) {
  std::vector<Status> cases;
  cases.push_back(Status());
  cases.push_back(conflict("intent is claimed by a1", "stale_epoch",
                           Json(JsonObject{{"holder", Json("a1")}, {"epoch", Json(3)}})));
  cases.push_back(not_found("no such intent"));
  cases.push_back(too_large("", "body_too_large"));
  cases.push_back(Status(Code::kOutcomeUnknown, "commit lost", "", Json(JsonArray{Json(1)})));
  for (const Status& s : cases) {
    Json j = status_to_json(s);
    Result<Json> parsed = parse_json(cairn::to_json(j));
    ASSERT_TRUE(parsed.ok());
    Status back = invalid("sentinel");
    ASSERT_TRUE(status_from_json(*parsed, back).ok()) << cairn::to_json(j);
    EXPECT_EQ(back.code(), s.code());
    EXPECT_EQ(back.message(), s.message());
    EXPECT_EQ(back.reason(), s.reason());
    EXPECT_EQ(back.to_string(), s.to_string());
    EXPECT_EQ(cairn::to_json(back.details()), cairn::to_json(s.details()));
  }
  EXPECT_EQ(cairn::to_json(status_to_json(cases[1])),
            R"({"code":"conflict","message":"intent is claimed by a1","reason":"stale_epoch",)"
            R"("details":{"holder":"a1","epoch":3}})");
  EXPECT_EQ(cairn::to_json(status_to_json(cases[2])),
            R"({"code":"not_found","message":"no such intent"})");
}

TEST(DedupStatusJson, RejectsMalformedStatuses) {
  for (const char* text :
       {R"("conflict")", R"({})", R"({"code":"nope"})", R"({"code":"conflict","message":3})",
        R"({"code":"conflict","extra":1})"}) {
    Result<Json> j = parse_json(text);
    ASSERT_TRUE(j.ok()) << text;
    Status out = invalid("untouched");
    EXPECT_EQ(status_from_json(*j, out).code(), Code::kInvalid) << text;
    EXPECT_EQ(out.message(), "untouched") << text;
  }
}

TEST(DedupWindow, DefaultCapacityIs8192DoneEntries) {
  EXPECT_EQ(DedupWindow::kDefaultCapacity, 8192u);
  DedupWindow w;
  EXPECT_EQ(w.capacity(), 8192u);
  for (int i = 0; i < 8192 + 10; ++i) {
    w.finish("a", "k" + std::to_string(i), StoredReply{Status(), Json(i)});
  }
  EXPECT_EQ(w.size(), 8192u);
  EXPECT_EQ(w.state("a", "k9"), DedupWindow::State::kUnknown);
  EXPECT_EQ(w.state("a", "k10"), DedupWindow::State::kDone);
}

TEST(DedupWindow, PendingThenDoneThenEvictedInFinishOrder) {
  DedupWindow w(2);
  EXPECT_EQ(w.state("a", "k1"), DedupWindow::State::kUnknown);
  w.begin("a", "k1");
  EXPECT_EQ(w.state("a", "k1"), DedupWindow::State::kPending);
  w.finish("a", "k1", StoredReply{Status(), Json(JsonObject{{"epoch", Json(1)}})});
  ASSERT_EQ(w.state("a", "k1"), DedupWindow::State::kDone);
  EXPECT_TRUE(w.reply("a", "k1").status.ok());
  EXPECT_EQ(cairn::to_json(w.reply("a", "k1").body), R"({"epoch":1})");

  // The same key from another agent is another entry.
  EXPECT_EQ(w.state("b", "k1"), DedupWindow::State::kUnknown);
  w.begin("b", "k1");
  w.finish("b", "k1", StoredReply{conflict("taken", "already_claimed"), Json()});
  EXPECT_EQ(w.reply("b", "k1").status.reason(), "already_claimed");

  // begin of a known key changes nothing.
  w.begin("a", "k1");
  EXPECT_EQ(w.state("a", "k1"), DedupWindow::State::kDone);
  EXPECT_EQ(w.done(), 2u);

  // Pending keys are never evicted and do not count against the capacity.
  for (int i = 0; i < 5; ++i) w.begin("p", std::to_string(i));
  EXPECT_EQ(w.size(), 7u);
  EXPECT_EQ(w.state("a", "k1"), DedupWindow::State::kDone);
  EXPECT_EQ(w.state("p", "0"), DedupWindow::State::kPending);

  // Past capacity the done entry finished first goes; pending ones stay.
  w.finish("p", "3", StoredReply{Status(), Json("three")});
  EXPECT_EQ(w.state("a", "k1"), DedupWindow::State::kUnknown);
  EXPECT_EQ(w.state("b", "k1"), DedupWindow::State::kDone);
  EXPECT_EQ(w.state("p", "3"), DedupWindow::State::kDone);
  w.finish("p", "0", StoredReply{Status(), Json("zero")});
  EXPECT_EQ(w.state("b", "k1"), DedupWindow::State::kUnknown);
  EXPECT_EQ(w.state("p", "1"), DedupWindow::State::kPending);
  EXPECT_EQ(w.done(), 2u);
}

TEST(DedupWindow, KeysDoNotCollideAcrossTheSeparator) {
  DedupWindow w;
  w.begin("ab", "c");
  EXPECT_EQ(w.state("a", "bc"), DedupWindow::State::kUnknown);
  EXPECT_EQ(w.state("abc", ""), DedupWindow::State::kUnknown);
}

TEST(DedupWindow, ForgetDropsOnlyPendingKeys) {
  DedupWindow w(3);
  w.begin("a", "k1");
  w.begin("a", "k2");
  w.finish("a", "k3", StoredReply{Status(), Json(3)});
  w.forget("a", "k2");
  w.forget("a", "unknown");  // no-op
  w.forget("a", "k3");       // done: a reply was sent, it stays
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(w.state("a", "k2"), DedupWindow::State::kUnknown);
  EXPECT_EQ(w.state("a", "k1"), DedupWindow::State::kPending);
  EXPECT_EQ(w.state("a", "k3"), DedupWindow::State::kDone);
}

TEST(DedupWindow, EvictedRecordNumbersAreHandedOutOnce) {
  DedupWindow w(2);
  w.finish("a", "k1", StoredReply{Status(), Json(1)}, 11);
  w.finish("a", "k2", StoredReply{Status(), Json(2)});  // no record
  w.finish("a", "k3", StoredReply{Status(), Json(3)}, 13);
  w.finish("a", "k4", StoredReply{Status(), Json(4)}, 14);
  EXPECT_EQ(w.take_evicted(), (std::vector<std::uint64_t>{11}));  // k2 had none
  EXPECT_TRUE(w.take_evicted().empty());
  // A key finished again (a reload over a live window) keeps the newer reply
  // and hands out the older record.
  w.finish("a", "k4", StoredReply{Status(), Json(44)}, 24);
  EXPECT_EQ(cairn::to_json(w.reply("a", "k4").body), "44");
  EXPECT_EQ(w.take_evicted(), (std::vector<std::uint64_t>{14}));
  EXPECT_EQ(w.done(), 2u);
  w.clear();
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.state("a", "k4"), DedupWindow::State::kUnknown);
}

// ---- LatencyTracker ----------------------------------------------------------------------

TEST(LatencyTracker, Defaults) {
  EXPECT_EQ(LatencyTracker::kWarmSamples, 3u);
  EXPECT_EQ(LatencyTracker::kDefaultKeysMax, 10'000u);
  EXPECT_EQ(LatencyTracker().keys_max(), 10'000u);
}

TEST(LatencyTracker, JacobsonKarelsByHand) {
  LatencyTracker t;
  EXPECT_FALSE(t.get("k", "l").has_value());
  t.record("k", "l", 100);  // SRTT 100, RTTVAR 50
  auto e = t.get("k", "l");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->srtt_ms, 100.0);
  EXPECT_EQ(e->rttvar_ms, 50.0);
  EXPECT_EQ(e->samples, 1u);
  EXPECT_FALSE(e->warm());
  EXPECT_EQ(e->budget_ms(), 300.0);

  // RTTVAR = 3/4·50 + 1/4·|100 − 200| = 62.5 (with the old SRTT);
  // SRTT = 7/8·100 + 1/8·200 = 112.5.
  t.record("k", "l", 200);
  e = t.get("k", "l");
  EXPECT_EQ(e->rttvar_ms, 62.5);
  EXPECT_EQ(e->srtt_ms, 112.5);
  EXPECT_FALSE(e->warm());

  // RTTVAR = 3/4·62.5 + 1/4·|112.5 − 50| = 62.5; SRTT = 7/8·112.5 + 1/8·50 = 104.6875.
  t.record("k", "l", 50);
  e = t.get("k", "l");
  EXPECT_EQ(e->rttvar_ms, 62.5);
  EXPECT_EQ(e->srtt_ms, 104.6875);
  EXPECT_EQ(e->samples, 3u);
  EXPECT_TRUE(e->warm());
  EXPECT_EQ(e->budget_ms(), 354.6875);

  // Keys are (kind, lane) pairs.
  EXPECT_FALSE(t.get("k", "other").has_value());
  EXPECT_FALSE(t.get("l", "k").has_value());
}

TEST(LatencyTracker, ClampsNegativeAndIgnoresNonFiniteSamples) {
  LatencyTracker t;
  t.record("k", "l", -5);
  EXPECT_EQ(t.get("k", "l")->srtt_ms, 0.0);
  t.record("k", "l", std::numeric_limits<double>::quiet_NaN());
  t.record("k", "l", std::numeric_limits<double>::infinity());
  EXPECT_EQ(t.get("k", "l")->samples, 1u);
}

TEST(LatencyTracker, EvictsTheKeyWithFewestSamplesTiesByName) {
  LatencyTracker t(2);
  t.record("b", "l", 10);
  t.record("b", "l", 10);
  t.record("a", "l", 10);
  t.record("c", "l", 10);  // a|l has fewest samples
  EXPECT_EQ(t.size(), 2u);
  EXPECT_FALSE(t.get("a", "l").has_value());
  EXPECT_TRUE(t.get("b", "l").has_value());
  t.record("d", "l", 10);  // c|l (1) goes; b|l (2) stays
  EXPECT_FALSE(t.get("c", "l").has_value());
  EXPECT_EQ(t.get("b", "l")->samples, 2u);

  LatencyTracker ties(2);
  ties.record("y", "l", 1);
  ties.record("x", "l", 1);
  ties.record("z", "l", 1);  // x|l < y|l
  EXPECT_FALSE(ties.get("x", "l").has_value());
  EXPECT_TRUE(ties.get("y", "l").has_value());
  EXPECT_TRUE(ties.get("z", "l").has_value());
}

TEST(LatencyTracker, JsonRoundTripIsExact) {
  LatencyTracker t;
  for (double s : {33.3, 0.1, 1234.5678, 7.0}) t.record("kind", "lane", s);
  t.record("other", "lane", 2.5);
  LatencyTracker r;
  reload(t, r);
  EXPECT_EQ(cairn::to_json(r.to_json()), cairn::to_json(t.to_json()));
  EXPECT_EQ(r.get("kind", "lane")->srtt_ms, t.get("kind", "lane")->srtt_ms);
  EXPECT_EQ(r.get("kind", "lane")->rttvar_ms, t.get("kind", "lane")->rttvar_ms);
  EXPECT_EQ(r.get("kind", "lane")->samples, 4u);
  EXPECT_EQ(cairn::to_json(LatencyTracker(1).to_json()), R"({"estimates":[]})");
  // Keeps updating from the restored estimate exactly as the original would.
  t.record("kind", "lane", 50);
  r.record("kind", "lane", 50);
  EXPECT_EQ(r.get("kind", "lane")->srtt_ms, t.get("kind", "lane")->srtt_ms);

  Result<Json> bad =
      parse_json(R"({"estimates":[{"key":"k|l","srtt_ms":-1,"rttvar_ms":0,"samples":1}]})");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(r.from_json(*bad).code(), Code::kInvalid);
  EXPECT_EQ(r.size(), 2u);
}

// ---- TimerHeap -------------------------------------------------------------------------

TEST(TimerHeap, DefaultCapacity) {
  EXPECT_EQ(TimerHeap::kDefaultCapacity, 65'536u);
  EXPECT_EQ(TimerHeap().capacity(), 65'536u);
}

TEST(TimerHeap, PopsDueInTimeThenIdOrderAtMostMax) {
  TimerHeap h;
  EXPECT_FALSE(h.next().has_value());
  ASSERT_TRUE(h.arm(7, 300).ok());
  ASSERT_TRUE(h.arm(5, 100).ok());
  ASSERT_TRUE(h.arm(9, 100).ok());
  ASSERT_TRUE(h.arm(1, 200).ok());
  ASSERT_TRUE(h.arm(2, 500).ok());
  EXPECT_EQ(h.next(), 100);
  EXPECT_TRUE(h.pop_due(99, 10).empty());
  EXPECT_EQ(h.pop_due(300, 2), (std::vector<std::uint64_t>{5, 9}));
  EXPECT_EQ(h.next(), 200);
  EXPECT_EQ(h.pop_due(300, 10), (std::vector<std::uint64_t>{1, 7}));
  EXPECT_EQ(h.size(), 1u);
  EXPECT_TRUE(h.pop_due(1'000, 0).empty());
  EXPECT_EQ(h.pop_due(1'000, 10), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(h.size(), 0u);
  EXPECT_FALSE(h.next().has_value());
}

TEST(TimerHeap, RearmReplacesTheDeadline) {
  TimerHeap h;
  ASSERT_TRUE(h.arm(1, 100).ok());
  ASSERT_TRUE(h.arm(2, 200).ok());
  ASSERT_TRUE(h.arm(1, 300).ok());  // later
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.next(), 200);
  EXPECT_EQ(h.pop_due(250, 10), (std::vector<std::uint64_t>{2}));
  ASSERT_TRUE(h.arm(1, 50).ok());  // earlier
  EXPECT_EQ(h.next(), 50);
  EXPECT_EQ(h.pop_due(299, 10), (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(h.pop_due(1'000, 10).empty());  // the old deadline is gone
}

TEST(TimerHeap, CapacityAndCancel) {
  TimerHeap h(2);
  ASSERT_TRUE(h.arm(1, 10).ok());
  ASSERT_TRUE(h.arm(2, 20).ok());
  Status full = h.arm(3, 30);
  EXPECT_EQ(full.code(), Code::kTooLarge);
  EXPECT_EQ(full.reason(), "too_many_timers");
  EXPECT_TRUE(h.arm(2, 25).ok());  // re-arming needs no room
  EXPECT_FALSE(h.cancel(3));
  EXPECT_TRUE(h.cancel(1));
  EXPECT_FALSE(h.cancel(1));
  EXPECT_EQ(h.next(), 25);
  EXPECT_TRUE(h.arm(3, 30).ok());
  EXPECT_EQ(h.pop_due(100, 10), (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(TimerHeap(0).arm(1, 1).code(), Code::kTooLarge);
}

// ---- RecordRing ----------------------------------------------------------------------------

TEST(RecordRing, Defaults) {
  EXPECT_EQ(RecordRing::kDefaultDepthMax, 1024u);
  EXPECT_EQ(RecordRing::kDefaultNamesMax, 1024u);
  RecordRing r;
  EXPECT_EQ(r.depth_max(), 1024u);
  EXPECT_EQ(r.names_max(), 1024u);
  for (int i = 0; i < 1030; ++i) r.push("n", Json(i));
  auto items = r.recent("n");
  ASSERT_EQ(items.size(), 1024u);
  EXPECT_EQ(items.front().int_if(), 6);
  EXPECT_EQ(r.dropped(), 6u);
}

TEST(RecordRing, KeepsTheLastDepthRecordsOldestFirst) {
  RecordRing r(3, 10);
  EXPECT_TRUE(r.recent("n").empty());
  for (int i = 1; i <= 5; ++i) r.push("n", Json(i));
  std::vector<Json> items = r.recent("n");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].int_if(), 3);
  EXPECT_EQ(items[1].int_if(), 4);
  EXPECT_EQ(items[2].int_if(), 5);
  EXPECT_EQ(r.dropped(), 2u);
}

TEST(RecordRing, DropsTheLeastRecentlyWrittenName) {
  RecordRing r(4, 2);
  r.push("a", Json(1));
  r.push("b", Json(2));
  r.push("b", Json(3));
  r.push("a", Json(4));  // a is the most recent
  r.push("c", Json(5));  // b goes, with its 2 records
  EXPECT_EQ(r.names(), 2u);
  EXPECT_TRUE(r.recent("b").empty());
  EXPECT_EQ(r.recent("a").size(), 2u);
  EXPECT_EQ(r.recent("c").size(), 1u);
  EXPECT_EQ(r.dropped(), 2u);
  r.push("d", Json(6));  // then a
  EXPECT_TRUE(r.recent("a").empty());
  EXPECT_EQ(r.dropped(), 4u);
}

TEST(RecordRing, ZeroBoundsKeepNothing) {
  RecordRing no_depth(0, 4);
  no_depth.push("a", Json(1));
  EXPECT_EQ(no_depth.names(), 0u);
  EXPECT_EQ(no_depth.dropped(), 1u);
  RecordRing no_names(4, 0);
  no_names.push("a", Json(1));
  EXPECT_EQ(no_names.names(), 0u);
  EXPECT_EQ(no_names.dropped(), 1u);
}

// ---- Counters ------------------------------------------------------------------------------

TEST(Counters, AddGetAndOrderedJson) {
  Counters c;
  EXPECT_EQ(c.get("x"), 0u);
  c.add("zeta");
  c.add("alpha", 5);
  c.add("zeta", 2);
  EXPECT_EQ(c.get("zeta"), 3u);
  EXPECT_EQ(c.get("alpha"), 5u);
  EXPECT_EQ(c.all().size(), 2u);
  EXPECT_EQ(cairn::to_json(c.to_json()), R"({"alpha":5,"zeta":3})");
  Counters r;
  r.add("stale");
  reload(c, r);
  EXPECT_EQ(r.get("stale"), 0u);
  EXPECT_EQ(r.get("zeta"), 3u);
  EXPECT_EQ(cairn::to_json(r.to_json()), cairn::to_json(c.to_json()));
}

TEST(Counters, SaturateAtTheLargestExactJsonInteger) {
  EXPECT_EQ(Counters::kMax, 9'007'199'254'740'991u);
  Counters c;
  c.add("n", Counters::kMax - 1);
  c.add("n", 5);
  EXPECT_EQ(c.get("n"), Counters::kMax);
  c.add("n", ~std::uint64_t{0});
  EXPECT_EQ(c.get("n"), Counters::kMax);
  Counters r;
  reload(c, r);
  EXPECT_EQ(r.get("n"), Counters::kMax);
}

TEST(Counters, FromJsonRejectsNonCounts) {
  Counters c;
  c.add("keep");
  for (const char* text : {R"([])", R"({"a":-1})", R"({"a":1.5})", R"({"a":"1"})"}) {
    Result<Json> j = parse_json(text);
    ASSERT_TRUE(j.ok());
    EXPECT_EQ(c.from_json(*j).code(), Code::kInvalid) << text;
    EXPECT_EQ(c.get("keep"), 1u) << text;
  }
}

// ---- Completions ------------------------------------------------------------------------------

TEST(Completions, Defaults) {
  EXPECT_EQ(Completions::kDefaultResultBytesMax, 4u << 20);
  EXPECT_EQ(Completions::kDetailBytesMax, 4096u);
  EXPECT_EQ(Completions::kDefaultInFlightMax, 65'536u);
  Completions c;
  Result<std::uint64_t> id = c.begin();
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(c.complete(*id, std::string(4u << 20, 'x')).ok());
  id = c.begin();
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(c.complete(*id, std::string((4u << 20) + 1, 'x')).status().reason(),
            "completion_too_large");
}

TEST(Completions, IdsAreSequentialAndInFlightIsBounded) {
  Completions c(2);
  EXPECT_EQ(c.next_id(), 1u);
  Result<std::uint64_t> a = c.begin(10);
  Result<std::uint64_t> b = c.begin(10);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, 1u);
  EXPECT_EQ(*b, 2u);
  EXPECT_EQ(c.in_flight(), 2u);
  Result<std::uint64_t> over = c.begin(10);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), Code::kTooLarge);
  EXPECT_EQ(over.status().reason(), "too_many_completions");
  EXPECT_TRUE(c.complete(*a, "ok").ok());
  Result<std::uint64_t> d = c.begin(10);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 3u);
  // set_next_id (a restore) never hands out an id still pending.
  c.set_next_id(2);
  EXPECT_TRUE(c.fail(*d, "x").code() == Code::kUnavailable);
  Result<std::uint64_t> e = c.begin(10);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, 3u);  // 2 is still pending
}

TEST(Completions, CompleteChecksTheCapAndFinishesTheId) {
  Completions c;
  std::uint64_t id = *c.begin(4);
  Result<std::string> ok = c.complete(id, "abcd");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "abcd");
  EXPECT_FALSE(c.pending(id));

  id = *c.begin(4);
  Result<std::string> big = c.complete(id, "abcde");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Code::kTooLarge);
  EXPECT_EQ(big.status().reason(), "completion_too_large");
  EXPECT_EQ(cairn::to_json(big.status().details()),
            "{\"id\":" + std::to_string(id) + ",\"bytes\":5,\"limit\":4}");
  EXPECT_FALSE(c.pending(id));
  EXPECT_EQ(c.in_flight(), 0u);

  Result<std::string> again = c.complete(id, "");
  EXPECT_EQ(again.status().code(), Code::kNotFound);
  EXPECT_EQ(again.status().reason(), "unknown_completion");
  EXPECT_EQ(c.complete(999, "").status().reason(), "unknown_completion");
  EXPECT_EQ(c.fail(999, "x").reason(), "unknown_completion");
}

TEST(Completions, FailIsAlwaysAFailure) {
  Completions c;
  std::uint64_t id = *c.begin();
  Status st = c.fail(id, "upstream 502");
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(st.reason(), "completion_failed");
  EXPECT_EQ(st.message(), "upstream 502");
  EXPECT_FALSE(c.pending(id));
  EXPECT_EQ(c.fail(id, "again").code(), Code::kNotFound);

  id = *c.begin();
  EXPECT_EQ(c.fail(id, "bad input", Code::kInvalid).code(), Code::kInvalid);
  id = *c.begin();
  Status never_ok = c.fail(id, "", Code::kOk);
  EXPECT_FALSE(never_ok.ok());
  EXPECT_EQ(never_ok.code(), Code::kInternal);
  EXPECT_EQ(never_ok.message(), "completion failed");
}

TEST(Completions, FailTruncatesAtAUtf8Boundary) {
  Completions c;
  // "é" is 2 bytes: 4095 + 2 = 4097 > 4096, so the whole "é" goes.
  std::string d1 = std::string(4095, 'a') + "\xC3\xA9";
  Status s1 = c.fail(*c.begin(), d1);
  EXPECT_EQ(s1.message(), std::string(4095, 'a'));
  EXPECT_TRUE(*s1.details().find("truncated")->bool_if());
  EXPECT_EQ(s1.details().find("detail_bytes")->int_if(), 4097);

  // Exactly 4096 bytes fit unchanged.
  std::string d2 = std::string(4094, 'a') + "\xC3\xA9";
  Status s2 = c.fail(*c.begin(), d2);
  EXPECT_EQ(s2.message(), d2);
  EXPECT_FALSE(*s2.details().find("truncated")->bool_if());

  // A 4-byte sequence straddling the cut.
  std::string d3 = std::string(4094, 'a') + "\xF0\x9F\x98\x80" + "tail";
  Status s3 = c.fail(*c.begin(), d3);
  EXPECT_EQ(s3.message(), std::string(4094, 'a'));
  EXPECT_TRUE(is_valid_utf8(s3.message()));
}

TEST(Completions, FailRepairsInvalidUtf8) {
  Completions c;
  Status s = c.fail(*c.begin(),
                    "ab\xFF"
                    "c\xC3");
  EXPECT_EQ(s.message(),
            "ab\xEF\xBF\xBD"
            "c\xEF\xBF\xBD");
  EXPECT_TRUE(is_valid_utf8(s.message()));

  // Overlong and surrogate encodings are invalid too.
  Status s2 = c.fail(*c.begin(),
                     "\xC0\xAF"
                     "x\xED\xA0\x80");
  EXPECT_TRUE(is_valid_utf8(s2.message()));
  EXPECT_EQ(s2.message().find('x'), 6u);  // two replacements before it

  // A replacement that would cross the cap is left out.
  std::string d = std::string(4095, 'a') + "\xFF";
  Status s3 = c.fail(*c.begin(), d);
  EXPECT_EQ(s3.message(), std::string(4095, 'a'));

  // Invalid bytes early and a long tail: still at most 4096 valid bytes.
  std::string d4 = "\xFF" + std::string(5000, 'b');
  Status s4 = c.fail(*c.begin(), d4);
  EXPECT_EQ(s4.message().size(), 4096u);
  EXPECT_TRUE(is_valid_utf8(s4.message()));
  EXPECT_EQ(s4.message().substr(0, 3), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace cairn::engine

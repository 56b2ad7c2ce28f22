// checker_test.cc — the storm's log checker (check_log in storm.h) on small
// hand-written logs: a clean history passes, and each violation the storm
// looks for is reported (so a storm that passes has been checked).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cluster/storm.h"

namespace cairn::testing {
namespace {

// Events of one intent (intent_id(0)) numbered 1.. in order.
class Log {
 public:
  Log& add(std::string type, std::string agent = "", std::uint64_t epoch = 0,
           std::int64_t lease = 0, std::int64_t at = 0, std::string result = "") {
    LogEvent e;
    e.seq = events.size() + 1;
    e.type = std::move(type);
    e.subject = e.type == "fact.recorded" ? result : intent_id(0);
    e.agent = std::move(agent);
    e.epoch = epoch;
    e.lease = lease;
    e.at = at;
    e.result = e.type == "fact.recorded" ? std::string() : std::move(result);
    events.push_back(std::move(e));
    return *this;
  }
  std::vector<LogEvent> events;
};

std::string check(const Log& log, std::vector<Ack> acks = {}) {
  StormOutcome out;
  out.acks = std::move(acks);
  std::string all;
  for (const std::string& v : check_log(log.events, 1, out)) all += v + "\n";
  return all;
}

// created, claimed e1 by a1 until 1000, renewed until 2000, concluded with r1.
Log clean() {
  Log l;
  l.add("intent.created")
      .add("intent.claimed", "a1", 1, 1'000, 10)
      .add("intent.renewed", "a1", 1, 2'000, 500)
      .add("fact.recorded", "", 0, 0, 600, "r1")
      .add("intent.concluded", "a1", 1, 0, 600, "r1");
  return l;
}

TEST(StormChecker, ACleanHistoryWithItsAcknowledgementsPasses) {
  const std::string id = intent_id(0);
  EXPECT_EQ(check(clean(), {Ack{Ack::kCreate, id, "c", 0, 0, "", 0},
                            Ack{Ack::kClaim, id, "a1", 1, 1'000, "", 0},
                            Ack{Ack::kHeartbeat, id, "a1", 1, 2'000, "", 0},
                            Ack{Ack::kConclude, id, "a1", 1, 0, "r1", 0}}),
            "");
  // A lease that expired, then a new claim, release, claim, conclusion.
  Log l;
  l.add("intent.created")
      .add("intent.claimed", "a1", 1, 1'000, 10)
      .add("intent.expired", "", 1, 0, 1'000)
      .add("intent.claimed", "a2", 2, 3'000, 1'001)
      .add("intent.released", "a2", 2, 0, 1'500)
      .add("intent.claimed", "a3", 3, 4'000, 1'600)
      .add("fact.recorded", "", 0, 0, 1'700, "r3")
      .add("intent.concluded", "a3", 3, 0, 1'700, "r3");
  EXPECT_EQ(check(l), "");
}

TEST(StormChecker, ReportsTwoLiveLeases) {
  Log l;
  l.add("intent.created")
      .add("intent.claimed", "a1", 1, 1'000, 10)
      .add("intent.claimed", "a2", 2, 1'500, 500)
      .add("fact.recorded", "", 0, 0, 600, "r2")
      .add("intent.concluded", "a2", 2, 0, 600, "r2");
  EXPECT_NE(check(l).find("two live leases"), std::string::npos) << check(l);
}

TEST(StormChecker, ReportsAConclusionOrRenewalWithAStaleEpoch) {
  Log l;
  l.add("intent.created")
      .add("intent.claimed", "a1", 1, 1'000, 10)
      .add("intent.expired", "", 1, 0, 1'000)
      .add("intent.claimed", "a2", 2, 3'000, 1'001)
      .add("intent.renewed", "a1", 1, 4'000, 1'100)
      .add("fact.recorded", "", 0, 0, 1'200, "r1")
      .add("intent.concluded", "a1", 1, 0, 1'200, "r1");
  const std::string v = check(l);
  EXPECT_NE(v.find("stale epoch accepted: #5 intent.renewed by a1 e1"), std::string::npos) << v;
  EXPECT_NE(v.find("stale epoch accepted: #7 intent.concluded by a1 e1"), std::string::npos) << v;
}

TEST(StormChecker, ReportsAConclusionAfterTheLeaseEnded) {
  Log l;
  l.add("intent.created")
      .add("intent.claimed", "a1", 1, 1'000, 10)
      .add("fact.recorded", "", 0, 0, 1'000, "r1")
      .add("intent.concluded", "a1", 1, 0, 1'000, "r1");
  EXPECT_NE(check(l).find("stale epoch accepted"), std::string::npos) << check(l);
}

TEST(StormChecker, ReportsAnEarlyExpiryADoubleConclusionAndAGap) {
  Log early;
  early.add("intent.created")
      .add("intent.claimed", "a1", 1, 1'000, 10)
      .add("intent.expired", "", 1, 0, 999)
      .add("intent.claimed", "a2", 2, 2'000, 999)
      .add("fact.recorded", "", 0, 0, 1'100, "r2")
      .add("intent.concluded", "a2", 2, 0, 1'100, "r2");
  EXPECT_NE(check(early).find("expiry of a live or absent lease"), std::string::npos);

  Log twice = clean();
  twice.add("intent.concluded", "a1", 1, 0, 700, "r1");
  EXPECT_NE(check(twice).find("after it was concluded"), std::string::npos) << check(twice);
  EXPECT_NE(check(twice).find("not concluded exactly once"), std::string::npos);

  Log gap = clean();
  gap.events[2].seq = 4;
  EXPECT_NE(check(gap).find("event sequence gap"), std::string::npos) << check(gap);
}

TEST(StormChecker, ReportsAnAcknowledgementTheLogDoesNotHold) {
  const std::string id = intent_id(0);
  // A conclusion acknowledged with epoch 2 (the log concluded epoch 1), a
  // heartbeat whose lease end differs, a release that never happened.
  const std::string v = check(clean(), {Ack{Ack::kConclude, id, "a1", 2, 0, "r1", 1},
                                        Ack{Ack::kHeartbeat, id, "a1", 1, 2'500, "", 1},
                                        Ack{Ack::kRelease, id, "a1", 1, 0, "", 1}});
  EXPECT_NE(v.find("acknowledged (2xx) conclude of " + id + " by a1 epoch 2"), std::string::npos)
      << v;
  EXPECT_NE(v.find("acknowledged (2xx) heartbeat"), std::string::npos) << v;
  EXPECT_NE(v.find("acknowledged (2xx) release"), std::string::npos) << v;
}

TEST(StormChecker, ReportsBatchFactsWithDifferentIdsOrRecordedTwice) {
  StormOutcome out;
  out.facts.push_back(BatchFact{0, {"f1", "f2", "f1"}, 1});
  out.facts.push_back(BatchFact{1, {"f3", "f3", "f3"}, 1});
  Log l = clean();
  l.add("fact.recorded", "", 0, 0, 700, "f3").add("fact.recorded", "", 0, 0, 701, "f3");
  std::string all;
  for (const std::string& v : check_log(l.events, 1, out)) all += v + "\n";
  EXPECT_NE(all.find("batch fact 0 posted through each node got the ids 'f1' 'f2' 'f1'"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("batch fact 1 (f3) recorded 2 times"), std::string::npos) << all;
}

}  // namespace
}  // namespace cairn::testing

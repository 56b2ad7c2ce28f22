// When a sense runs: interval, triggers, throttle, backoff — driven by
// explicit times (the scheduler reads no clock of its own).
#include "senses/schedule.h"

#include <gtest/gtest.h>

namespace cairn::senses {
namespace {

Trigger fact(std::string id) {
  Trigger t;
  t.type = "fact";
  t.fact = std::move(id);
  t.kind = "deploy.finished";
  return t;
}

TEST(Schedule, IntervalRunsAtStartThenEveryInterval) {
  SenseSchedule s({.interval_ms = 1'000}, 5'000);
  EXPECT_EQ(s.next_run_at(), 5'000);
  EXPECT_EQ(s.start(5'000).type, "interval");
  EXPECT_EQ(s.next_run_at(), std::nullopt) << "nothing is due while a run is going";
  s.finish(5'200, true);
  EXPECT_EQ(s.next_run_at(), 6'000) << "due one interval after the previous start";
  s.start(6'000);
  s.finish(6'100, true);
  EXPECT_EQ(s.next_run_at(), 7'000);
}

TEST(Schedule, ALongRunGivesOneCatchUpRunNotABurst) {
  SenseSchedule s({.interval_ms = 1'000}, 0);
  s.start(0);
  s.finish(4'500, true);  // ran through four interval ticks
  EXPECT_EQ(s.next_run_at(), 1'000) << "overdue: runs at once";
  s.start(4'500);
  s.finish(4'600, true);
  EXPECT_EQ(s.next_run_at(), 5'500) << "then one interval after that start, no backlog";
}

TEST(Schedule, NoIntervalMeansOnlyTriggersRun) {
  SenseSchedule s({}, 0);
  EXPECT_EQ(s.next_run_at(), std::nullopt);
  s.trigger(fact("a"));
  EXPECT_EQ(s.next_run_at().value() <= 0, true) << "a trigger is due at once";
  Trigger t = s.start(10);
  EXPECT_EQ(t.type, "fact");
  EXPECT_EQ(t.fact, "a");
  s.finish(20, true);
  EXPECT_EQ(s.next_run_at(), std::nullopt);
}

TEST(Schedule, TriggersDuringARunCoalesceIntoOnePendingRunForTheNewest) {
  SenseSchedule s({}, 0);
  s.trigger(fact("a"));
  s.start(0);
  s.trigger(fact("b"));
  s.trigger(fact("c"));
  s.trigger(fact("d"));
  EXPECT_EQ(s.next_run_at(), std::nullopt) << "runs never overlap";
  EXPECT_EQ(s.coalesced(), 2);
  s.finish(100, true);
  ASSERT_TRUE(s.next_run_at().has_value());
  EXPECT_LE(*s.next_run_at(), 100);
  EXPECT_EQ(s.start(100).fact, "d") << "the pending run serves the newest trigger";
  s.finish(150, true);
  EXPECT_EQ(s.next_run_at(), std::nullopt) << "exactly one more run, not three";
  EXPECT_EQ(s.runs(), 2);
}

TEST(Schedule, ThrottleAllowsOneRunPerWindowWithOneDeferredTrigger) {
  SenseSchedule s({.throttle_ms = 10'000}, 0);
  s.trigger(fact("a"));
  s.start(1'000);
  s.finish(1'100, true);
  s.trigger(fact("b"));
  s.trigger(fact("c"));
  EXPECT_EQ(s.next_run_at(), 11'000) << "the window opens 10 s after the last start";
  EXPECT_EQ(s.start(11'000).fact, "c");
  s.finish(11'050, true);
  EXPECT_EQ(s.next_run_at(), std::nullopt);
  s.trigger(fact("d"));
  EXPECT_EQ(s.next_run_at(), 21'000);
}

TEST(Schedule, ThrottleAlsoSpacesIntervalRuns) {
  SenseSchedule s({.interval_ms = 1'000, .throttle_ms = 3'000}, 0);
  s.start(0);
  s.finish(10, true);
  EXPECT_EQ(s.next_run_at(), 3'000);
}

TEST(Schedule, FailuresBackOffExponentiallyUpToTheMaximumAndASuccessResets) {
  SenseSchedule s({.interval_ms = 100, .backoff_initial_ms = 1'000, .backoff_max_ms = 5'000}, 0);
  std::int64_t now = 0;
  const std::int64_t expected_wait[] = {1'000, 2'000, 4'000, 5'000, 5'000};
  for (std::int64_t wait : expected_wait) {
    ASSERT_TRUE(s.next_run_at().has_value());
    now = std::max(now, *s.next_run_at());
    s.start(now);
    now += 10;
    s.finish(now, false);
    EXPECT_EQ(s.next_run_at(), now + wait) << "after " << s.failures() << " failures";
  }
  EXPECT_EQ(s.failures(), 5);
  now = *s.next_run_at();
  s.start(now);
  s.finish(now + 10, true);
  EXPECT_EQ(s.failures(), 0);
  EXPECT_EQ(s.backoff_until(), 0);
  EXPECT_EQ(s.next_run_at(), now + 100) << "back on the interval";
}

TEST(Schedule, TriggersWaitOutABackoffAsOnePendingRun) {
  SenseSchedule s({.backoff_initial_ms = 1'000}, 0);
  s.trigger(fact("a"));
  s.start(0);
  s.finish(50, false);
  s.trigger(fact("b"));
  s.trigger(fact("c"));
  EXPECT_EQ(s.next_run_at(), 1'050);
  EXPECT_EQ(s.start(1'050).fact, "c");
}

TEST(Schedule, TriggerJsonCarriesTheFact) {
  Trigger t = fact("f1");
  t.content = Json(JsonObject{{"used_pct", Json(93)}});
  t.type = "reflex";
  t.reflex = "disk-full";
  EXPECT_EQ(
      to_json(t.to_json()),
      R"({"type":"reflex","fact":{"id":"f1","kind":"deploy.finished","content":{"used_pct":93}},"reflex":"disk-full"})");
  Trigger i;
  i.type = "interval";
  EXPECT_EQ(to_json(i.to_json()), R"({"type":"interval"})");
}

}  // namespace
}  // namespace cairn::senses

namespace cairn::senses {
namespace {

TEST(Schedule, ATriggerRoundTripsThroughJson) {
  Trigger t;
  t.type = "reflex";
  t.fact = "f9";
  t.kind = "signal.disk";
  t.content = Json(JsonObject{{"level", Json("full")}});
  t.reflex = "disk-full";
  auto back = Trigger::from_json(t.to_json());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(to_json(back->to_json()), to_json(t.to_json()));
  EXPECT_FALSE(Trigger::from_json(Json(JsonObject{{"fact", Json(1)}})).has_value());
  EXPECT_FALSE(Trigger::from_json(Json(JsonObject{{"type", Json("fact")},
                                                  {"fact", Json(JsonObject{{"id", Json(1)}})}}))
                   .has_value());
}

}  // namespace
}  // namespace cairn::senses

// admission_test.cc — regressions in the core's admission: coalescing when a
// claimed intent returns to its (lane, identity) group, and defer hints whose
// end is a timer. Both were found by the simulator's I7 checks.
#include <gtest/gtest.h>

#include "core/test_env.h"

namespace cairn {
namespace {

using testing::CoreEnv;

constexpr std::int64_t kT0 = 1'700'000'000'000;

std::string create(CoreEnv& env, const std::string& identity, std::int64_t priority = 0) {
  IntentDraft d = env.draft(env.fact("seed", ++env.facts_made));
  d.identity = identity;
  d.priority = priority;
  d.max_attempts = 5;
  auto r = env.bb.create_intent(std::move(d));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(env.flush().ok());
  return r.ok() ? r->id : std::string();
}

// Claimed intents are not part of their (lane, identity) group, so a twin
// created meanwhile stays open. When the claimed one comes back (released,
// failed or expired) the group would hold two waiting intents: the plan
// coalesces one of them, and claim_next would have handed out either. The
// core coalesces the group again, so exactly one waits.
enum class Return : std::uint8_t { kRelease, kFail, kExpire };

class CoalesceOnReturn : public ::testing::TestWithParam<Return> {};

TEST_P(CoalesceOnReturn, TheGroupKeepsOneWaitingIntent) {
  CoreEnv env;
  env.clock.set_wall_ms(kT0);
  const std::string first = create(env, "job-1");
  auto c = env.bb.claim(first, "w1");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(env.flush().ok());
  const std::string twin = create(env, "job-1");  // newer: wins the group
  ASSERT_EQ(env.bb.intent(twin)->st.state, IntentState::kOpen);

  switch (GetParam()) {
    case Return::kRelease:
      ASSERT_TRUE(env.bb.release(first, "w1", c->epoch).ok());
      break;
    case Return::kFail:
      ASSERT_TRUE(env.bb.fail(first, "w1", c->epoch, "broke", true).ok());
      break;
    case Return::kExpire:
      env.clock.set_wall_ms(c->lease_expires_at);
      env.bb.tick();
      break;
  }
  ASSERT_TRUE(env.flush().ok());
  const Intent* a = env.bb.intent(first);
  const Intent* b = env.bb.intent(twin);
  EXPECT_EQ(a->st.state, IntentState::kCoalesced);
  EXPECT_EQ(a->st.coalesced_into, twin);
  EXPECT_EQ(b->st.state, IntentState::kOpen);
  ASSERT_FALSE(env.last_events.empty());
  EXPECT_EQ(env.last_events.back().type, ev::kIntentCoalesced);
  EXPECT_EQ(env.last_events.back().subject, first);
  // claim_next hands out the survivor, and then there is nothing left.
  auto next = env.bb.claim_next("w2", {});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->id, twin);
  EXPECT_EQ(env.bb.claim_next("w3", {}).status().reason(), "no_work");
}

INSTANTIATE_TEST_SUITE_P(Admission, CoalesceOnReturn,
                         ::testing::Values(Return::kRelease, Return::kFail, Return::kExpire));

TEST(CoalesceOnReturn, AHigherPriorityReturnerWins) {
  CoreEnv env;
  env.clock.set_wall_ms(kT0);
  const std::string first = create(env, "job-1", /*priority=*/5);
  auto c = env.bb.claim(first, "w1");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(env.flush().ok());
  const std::string twin = create(env, "job-1");
  ASSERT_TRUE(env.bb.release(first, "w1", c->epoch).ok());
  ASSERT_TRUE(env.flush().ok());
  EXPECT_EQ(env.bb.intent(first)->st.state, IntentState::kOpen);
  EXPECT_EQ(env.bb.intent(twin)->st.state, IntentState::kCoalesced);
  EXPECT_EQ(env.bb.intent(twin)->st.coalesced_into, first);
}

TEST(CoalesceOnReturn, OtherIdentitiesAndLanesAreLeftAlone) {
  CoreEnv env;
  env.clock.set_wall_ms(kT0);
  const std::string first = create(env, "job-1");
  auto c = env.bb.claim(first, "w1");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(env.flush().ok());
  const std::string other = create(env, "job-2");
  ASSERT_TRUE(env.bb.release(first, "w1", c->epoch).ok());
  ASSERT_TRUE(env.flush().ok());
  EXPECT_EQ(env.bb.intent(first)->st.state, IntentState::kOpen);
  EXPECT_EQ(env.bb.intent(other)->st.state, IntentState::kOpen);
}

HintDraft defer_hint(std::int64_t until) {
  HintDraft h;
  h.kind = "policy";
  h.selector.kind = "work";
  h.effect.type = HintEffectType::kDefer;
  h.effect.until = until;
  h.creator = "ops";
  return h;
}

// A defer hint's `until` is when the intents it holds back become claimable
// by time alone: a timer, so that whoever waits for them (a parked long-poll)
// learns of it without polling.
TEST(DeferHints, TheirEndIsATimer) {
  CoreEnv env;
  env.clock.set_wall_ms(kT0);
  env.intent("work");
  ASSERT_FALSE(env.bb.next_deadline().has_value());
  ASSERT_TRUE(env.bb.create_hint(defer_hint(kT0 + 3'000)).ok());
  ASSERT_TRUE(env.flush().ok());
  EXPECT_EQ(env.bb.next_deadline(), kT0 + 3'000);
  EXPECT_EQ(env.bb.claim_next("w1", {}).status().reason(), "no_work");
  env.clock.set_wall_ms(kT0 + 2'999);
  EXPECT_EQ(env.bb.tick().defers_ended, 0u);
  env.clock.set_wall_ms(kT0 + 3'000);
  EXPECT_EQ(env.bb.tick().defers_ended, 1u);
  EXPECT_FALSE(env.bb.next_deadline().has_value());
  EXPECT_TRUE(env.bb.claim_next("w1", {}).ok());
}

TEST(DeferHints, RevokedRolledBackAndLoadedHintsKeepTheTimerRight) {
  CoreEnv env;
  env.clock.set_wall_ms(kT0);
  // Rolled back: no timer.
  ASSERT_TRUE(env.bb.create_hint(defer_hint(kT0 + 3'000)).ok());
  (void)env.bb.drain();  // the commit did not land
  env.bb.rollback();
  EXPECT_FALSE(env.bb.next_deadline().has_value());
  // Created, then revoked: no timer.
  HintDraft h = defer_hint(kT0 + 4'000);
  h.id = "d1";
  ASSERT_TRUE(env.bb.create_hint(h).ok());
  ASSERT_TRUE(env.flush().ok());
  EXPECT_EQ(env.bb.next_deadline(), kT0 + 4'000);
  ASSERT_TRUE(env.bb.revoke_hint("d1", "ops").ok());
  ASSERT_TRUE(env.flush().ok());
  EXPECT_FALSE(env.bb.next_deadline().has_value());
  // Loaded: a live defer hint's end is a timer again; an ended one is not.
  HintDraft live = defer_hint(kT0 + 5'000);
  live.id = "d2";
  ASSERT_TRUE(env.bb.create_hint(live).ok());
  HintDraft past = defer_hint(kT0 + 1);
  past.id = "d3";
  ASSERT_TRUE(env.bb.create_hint(past).ok());
  ASSERT_TRUE(env.flush().ok());
  env.clock.set_wall_ms(kT0 + 10);
  SeededRng rng(2);
  Blackboard fresh(env.clock, rng);
  ASSERT_TRUE(fresh.load(env.store).ok());
  EXPECT_EQ(fresh.next_deadline(), kT0 + 5'000);
}

}  // namespace
}  // namespace cairn

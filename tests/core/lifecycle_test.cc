// lifecycle_test.cc — every transition of the intent lifecycle and every
// refusal, as tables.
#include "core/lifecycle.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "core/keys.h"
#include "core/test_env.h"

namespace cairn {
namespace {

using testing::CoreEnv;

// ---- the table itself -----------------------------------------------------------

TEST(LifecycleTable, EveryRowIsFoundAndNothingElse) {
  for (const auto& t : lifecycle::kTransitions) {
    EXPECT_EQ(lifecycle::find_transition(t.op, t.from, t.to), &t);
  }
  // No transition leaves a terminal state.
  for (const auto& t : lifecycle::kTransitions) EXPECT_FALSE(is_terminal(t.from));
  EXPECT_EQ(lifecycle::find_transition(lifecycle::Op::kClaim, IntentState::kClaimed,
                                       IntentState::kClaimed),
            nullptr);
  EXPECT_EQ(lifecycle::find_transition(lifecycle::Op::kConclude, IntentState::kOpen,
                                       IntentState::kConcluded),
            nullptr);
}

TEST(LifecycleTable, BackoffIsExponentialCappedAndJittered) {
  lifecycle::BackoffPolicy p{100, 1'000};
  SeededRng rng(7);
  for (int attempts = 1; attempts <= 12; ++attempts) {
    std::int64_t full = 100;
    for (int i = 1; i < attempts; ++i) full = std::min<std::int64_t>(full * 2, 1'000);
    for (int k = 0; k < 50; ++k) {
      const auto d = lifecycle::backoff_delay_ms(p, attempts, rng);
      EXPECT_GE(d, full / 2) << attempts;
      EXPECT_LE(d, full) << attempts;
    }
  }
}

// ---- transitions through the blackboard ---------------------------------------------

struct Step {
  const char* name;
  // Prepares an intent (committed) and returns its id.
  std::function<std::string(CoreEnv&)> setup;
  // The action under test.
  std::function<Status(CoreEnv&, const std::string&)> act;
  Code code;
  const char* reason;       // expected reason when code != kOk
  IntentState state_after;  // expected state after the action
  const char* event;        // event type appended (nullptr: none)
};

std::string open_intent(CoreEnv& e) {
  return e.intent();
}
std::string claimed_by_a1(CoreEnv& e) {
  auto id = e.intent();
  CAIRN_ASSERT(e.bb.claim(id, "a1").ok());
  CAIRN_ASSERT(e.flush().ok());
  return id;
}
std::string expired_lease(CoreEnv& e) {
  auto id = claimed_by_a1(e);
  e.clock.advance_ms(10'000);  // exactly the ttl: the lease has ended
  return id;
}
std::string expired_and_ticked(CoreEnv& e) {
  auto id = expired_lease(e);
  e.bb.tick();
  CAIRN_ASSERT(e.flush().ok());
  return id;
}
std::string concluded(CoreEnv& e) {
  auto id = claimed_by_a1(e);
  CAIRN_ASSERT(e.bb.conclude(id, "a1", 1, e.result()).ok());
  CAIRN_ASSERT(e.flush().ok());
  return id;
}
std::string dead(CoreEnv& e) {
  auto id = claimed_by_a1(e);
  CAIRN_ASSERT(e.bb.fail(id, "a1", 1, "boom", false).ok());
  CAIRN_ASSERT(e.flush().ok());
  return id;
}
std::string cancelled(CoreEnv& e) {
  auto id = e.intent();
  CAIRN_ASSERT(e.bb.cancel(id, "alice").ok());
  CAIRN_ASSERT(e.flush().ok());
  return id;
}
std::string backing_off(CoreEnv& e) {
  auto id = claimed_by_a1(e);
  CAIRN_ASSERT(e.bb.fail(id, "a1", 1, "transient", true).ok());
  CAIRN_ASSERT(e.flush().ok());
  return id;
}

// Admission setups: an intent created with extra draft fields; committed.
std::string admitted_intent(CoreEnv& e, std::vector<std::string> requires_,
                            std::string identity = "", std::int64_t stale_after_ms = 0) {
  IntentDraft d = e.draft(e.fact("seed", 1000 + static_cast<int>(e.bb.intent_count())));
  d.requires_ = std::move(requires_);
  d.identity = std::move(identity);
  d.stale_after_ms = stale_after_ms;
  auto r = e.bb.create_intent(std::move(d));
  CAIRN_ASSERT_MSG(r.ok(), r.status().to_string().c_str());
  CAIRN_ASSERT(e.flush().ok());
  return r->id;
}
std::string waits_for_review(CoreEnv& e) {
  return admitted_intent(e, {"kind:review"});
}
std::string fresh_review_for_1s(CoreEnv& e) {
  e.fact("review");
  return admitted_intent(e, {"kind:review@1s"});
}
std::string goes_stale(CoreEnv& e) {
  return admitted_intent(e, {}, "", 5'000);
}
std::string deferred_goes_stale(CoreEnv& e) {
  return admitted_intent(e, {"kind:review"}, "", 5'000);
}
std::string identity_x(CoreEnv& e) {
  return admitted_intent(e, {}, "x");
}
std::string deferred_identity_x(CoreEnv& e) {
  return admitted_intent(e, {"kind:review"}, "x");
}
Status tick_after(CoreEnv& e, std::int64_t ms) {
  e.clock.advance_ms(ms);
  e.bb.tick();
  return Status();
}
// Not committed: the step's own flush carries the events.
Status newer_identity_x(CoreEnv& e, const std::string&) {
  IntentDraft d = e.draft(e.fact("seed", 2000));
  d.identity = "x";
  return e.bb.create_intent(std::move(d)).status();
}
Status post_review(CoreEnv& e, const std::string&) {
  FactBody b;
  b.kind = "review";
  b.content = Json(JsonObject{{"ok", Json(true)}});
  b.creator = "tester";
  return e.bb.post_fact(std::move(b)).status();
}

Status claim_a2(CoreEnv& e, const std::string& id) {
  return e.bb.claim(id, "a2").status();
}
Status claim_a1(CoreEnv& e, const std::string& id) {
  return e.bb.claim(id, "a1").status();
}
Status hb(CoreEnv& e, const std::string& id, const char* agent, std::uint64_t epoch) {
  return e.bb.heartbeat(id, agent, epoch).status();
}
Status concl(CoreEnv& e, const std::string& id, const char* agent, std::uint64_t epoch, int n = 1) {
  return e.bb.conclude(id, agent, epoch, e.result(n)).status();
}

const Step kSteps[] = {
    // -- claim
    {"claim open", open_intent, claim_a1, Code::kOk, "", IntentState::kClaimed,
     "intent.claimed"},
    {"second claim conflicts", claimed_by_a1, claim_a2, Code::kConflict, "already_claimed",
     IntentState::kClaimed, nullptr},
    {"same agent cannot claim twice", claimed_by_a1, claim_a1, Code::kConflict, "already_claimed",
     IntentState::kClaimed, nullptr},
    {"claim after lease end expires then claims", expired_lease, claim_a2, Code::kOk, "",
     IntentState::kClaimed, "intent.claimed"},
    {"claim concluded", concluded, claim_a2, Code::kConflict, "invalid_state",
     IntentState::kConcluded, nullptr},
    {"claim dead", dead, claim_a2, Code::kConflict, "invalid_state", IntentState::kDead, nullptr},
    {"claim cancelled", cancelled, claim_a2, Code::kConflict, "invalid_state",
     IntentState::kCancelled, nullptr},
    {"claim during backoff", backing_off, claim_a2, Code::kConflict, "backoff", IntentState::kOpen,
     nullptr},
    {"claim unknown intent", open_intent,
     [](CoreEnv& e, const std::string&) { return e.bb.claim("nope", "a1").status(); },
     Code::kNotFound, "not_found", IntentState::kOpen, nullptr},
    {"claim with bad agent name", open_intent,
     [](CoreEnv& e, const std::string& id) { return e.bb.claim(id, "bad agent").status(); },
     Code::kInvalid, "invalid_field", IntentState::kOpen, nullptr},
    {"claim with ttl below minimum", open_intent,
     [](CoreEnv& e, const std::string& id) { return e.bb.claim(id, "a1", 5).status(); },
     Code::kInvalid, "invalid_field", IntentState::kOpen, nullptr},
    // -- heartbeat
    {"heartbeat by holder", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return hb(e, id, "a1", 1); }, Code::kOk, "",
     IntentState::kClaimed, "intent.renewed"},
    {"heartbeat stale epoch", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return hb(e, id, "a1", 0); }, Code::kConflict,
     "stale_epoch", IntentState::kClaimed, nullptr},
    {"heartbeat wrong agent", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return hb(e, id, "a2", 1); }, Code::kConflict,
     "not_holder", IntentState::kClaimed, nullptr},
    {"heartbeat after lease end (before the timer)", expired_lease,
     [](CoreEnv& e, const std::string& id) { return hb(e, id, "a1", 1); }, Code::kConflict,
     "stale_epoch", IntentState::kClaimed, nullptr},
    {"heartbeat after expiry", expired_and_ticked,
     [](CoreEnv& e, const std::string& id) { return hb(e, id, "a1", 1); }, Code::kConflict,
     "stale_epoch", IntentState::kOpen, nullptr},
    {"heartbeat open intent", open_intent,
     [](CoreEnv& e, const std::string& id) { return hb(e, id, "a1", 0); }, Code::kConflict,
     "stale_epoch", IntentState::kOpen, nullptr},
    // -- conclude
    {"conclude by holder", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return concl(e, id, "a1", 1); }, Code::kOk, "",
     IntentState::kConcluded, "intent.concluded"},
    {"conclude retried identically", concluded,
     [](CoreEnv& e, const std::string& id) { return concl(e, id, "a1", 1); }, Code::kOk, "",
     IntentState::kConcluded, nullptr},
    {"conclude again with another result", concluded,
     [](CoreEnv& e, const std::string& id) { return concl(e, id, "a1", 1, 2); }, Code::kConflict,
     "already_concluded", IntentState::kConcluded, nullptr},
    {"conclude concluded with stale epoch", concluded,
     [](CoreEnv& e, const std::string& id) { return concl(e, id, "a1", 0); }, Code::kConflict,
     "stale_epoch", IntentState::kConcluded, nullptr},
    {"conclude stale epoch", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return concl(e, id, "a1", 7); }, Code::kConflict,
     "stale_epoch", IntentState::kClaimed, nullptr},
    {"conclude by non-holder", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return concl(e, id, "a2", 1); }, Code::kConflict,
     "not_holder", IntentState::kClaimed, nullptr},
    {"late conclude after lease end is fenced", expired_lease,
     [](CoreEnv& e, const std::string& id) { return concl(e, id, "a1", 1); }, Code::kConflict,
     "stale_epoch", IntentState::kClaimed, nullptr},
    {"late conclude after reclaim is fenced",
     [](CoreEnv& e) {
       auto id = expired_lease(e);
       CAIRN_ASSERT(e.bb.claim(id, "a2").ok());
       CAIRN_ASSERT(e.flush().ok());
       return id;
     },
     [](CoreEnv& e, const std::string& id) { return concl(e, id, "a1", 1); }, Code::kConflict,
     "stale_epoch", IntentState::kClaimed, nullptr},
    {"conclude with an invalid result", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) {
       FactBody b;
       b.kind = "bad kind!";
       return e.bb.conclude(id, "a1", 1, b).status();
     },
     Code::kInvalid, "invalid_field", IntentState::kClaimed, nullptr},
    // -- fail
    {"fail retryable goes back to open", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return e.bb.fail(id, "a1", 1, "x", true).status(); },
     Code::kOk, "", IntentState::kOpen, "intent.failed"},
    {"fail not retryable is dead", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return e.bb.fail(id, "a1", 1, "x", false).status(); },
     Code::kOk, "", IntentState::kDead, "intent.dead"},
    {"fail on last attempt is dead",
     [](CoreEnv& e) {
       auto id = e.intent("work", 1);
       CAIRN_ASSERT(e.bb.claim(id, "a1").ok());
       CAIRN_ASSERT(e.flush().ok());
       return id;
     },
     [](CoreEnv& e, const std::string& id) { return e.bb.fail(id, "a1", 1, "x", true).status(); },
     Code::kOk, "", IntentState::kDead, "intent.dead"},
    {"fail stale epoch", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return e.bb.fail(id, "a1", 3, "x", true).status(); },
     Code::kConflict, "stale_epoch", IntentState::kClaimed, nullptr},
    {"fail with invalid UTF-8 detail", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) {
       return e.bb.fail(id, "a1", 1, "\xff\xfe", true).status();
     },
     Code::kInvalid, "invalid_field", IntentState::kClaimed, nullptr},
    // -- release
    {"release by holder", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return e.bb.release(id, "a1", 1); }, Code::kOk, "",
     IntentState::kOpen, "intent.released"},
    {"release by another agent is forbidden", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return e.bb.release(id, "a2", 1); },
     Code::kForbidden, "not_holder", IntentState::kClaimed, nullptr},
    {"release stale epoch", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return e.bb.release(id, "a1", 9); },
     Code::kConflict, "stale_epoch", IntentState::kClaimed, nullptr},
    {"release of an open intent is a no-op", open_intent,
     [](CoreEnv& e, const std::string& id) { return e.bb.release(id, "a1", 0); }, Code::kOk, "",
     IntentState::kOpen, nullptr},
    {"release concluded", concluded,
     [](CoreEnv& e, const std::string& id) { return e.bb.release(id, "a1", 1); },
     Code::kConflict, "invalid_state", IntentState::kConcluded, nullptr},
    // -- expiry
    {"tick expires an ended lease", expired_lease,
     [](CoreEnv& e, const std::string&) {
       return e.bb.tick().leases_expired == 1 ? Status() : internal_error("no expiry");
     },
     Code::kOk, "", IntentState::kOpen, "intent.expired"},
    {"tick leaves a live lease", claimed_by_a1,
     [](CoreEnv& e, const std::string&) {
       e.clock.advance_ms(9'999);
       return e.bb.tick().leases_expired == 0 ? Status() : internal_error("expired early");
     },
     Code::kOk, "", IntentState::kClaimed, nullptr},
    // -- cancel
    {"cancel open by creator", open_intent,
     [](CoreEnv& e, const std::string& id) { return e.bb.cancel(id, "alice"); }, Code::kOk, "",
     IntentState::kCancelled, "intent.cancelled"},
    {"cancel claimed by creator fences the holder", claimed_by_a1,
     [](CoreEnv& e, const std::string& id) { return e.bb.cancel(id, "alice"); }, Code::kOk, "",
     IntentState::kCancelled, "intent.cancelled"},
    {"cancel by someone else is forbidden", open_intent,
     [](CoreEnv& e, const std::string& id) { return e.bb.cancel(id, "mallory"); },
     Code::kForbidden, "not_creator", IntentState::kOpen, nullptr},
    {"cancel twice is a no-op", cancelled,
     [](CoreEnv& e, const std::string& id) { return e.bb.cancel(id, "alice"); }, Code::kOk, "",
     IntentState::kCancelled, nullptr},
    {"cancel concluded", concluded,
     [](CoreEnv& e, const std::string& id) { return e.bb.cancel(id, "alice"); }, Code::kConflict,
     "invalid_state", IntentState::kConcluded, nullptr},
    {"cancel dead", dead, [](CoreEnv& e, const std::string& id) { return e.bb.cancel(id, "alice"); },
     Code::kConflict, "invalid_state", IntentState::kDead, nullptr},
    // -- admission
    {"created with a missing dependency is deferred", waits_for_review,
     [](CoreEnv& e, const std::string& id) { return e.bb.cancel(id, "alice"); }, Code::kOk, "",
     IntentState::kCancelled, "intent.cancelled"},
    {"claim deferred", waits_for_review, claim_a1, Code::kConflict, "deferred",
     IntentState::kDeferred, nullptr},
    {"the fact it waits on makes it open", waits_for_review, post_review, Code::kOk, "", IntentState::kOpen, "intent.ready"},
    {"a fact of another kind leaves it deferred", waits_for_review,
     [](CoreEnv& e, const std::string&) {
       e.fact("other");
       return Status();
     },
     Code::kOk, "", IntentState::kDeferred, nullptr},
    {"a readiness TTL running out defers", fresh_review_for_1s,
     [](CoreEnv& e, const std::string&) { return tick_after(e, 1'000); }, Code::kOk, "",
     IntentState::kDeferred, "intent.deferred"},
    {"before the readiness TTL ends it stays open", fresh_review_for_1s,
     [](CoreEnv& e, const std::string&) { return tick_after(e, 999); }, Code::kOk, "",
     IntentState::kOpen, nullptr},
    {"open past stale_after_ms is stale", goes_stale,
     [](CoreEnv& e, const std::string&) { return tick_after(e, 5'000); }, Code::kOk, "",
     IntentState::kStale, "intent.stale"},
    {"deferred past stale_after_ms is stale", deferred_goes_stale,
     [](CoreEnv& e, const std::string&) { return tick_after(e, 5'000); }, Code::kOk, "",
     IntentState::kStale, "intent.stale"},
    {"claim past stale_after_ms before the timer ran", goes_stale,
     [](CoreEnv& e, const std::string& id) {
       e.clock.advance_ms(5'000);
       return claim_a1(e, id);
     },
     Code::kConflict, "stale", IntentState::kOpen, nullptr},
    {"claim stale", [](CoreEnv& e) {
       auto id = goes_stale(e);
       CAIRN_ASSERT(tick_after(e, 5'000).ok());
       CAIRN_ASSERT(e.flush().ok());
       return id;
     },
     claim_a1, Code::kConflict, "invalid_state", IntentState::kStale, nullptr},
    {"a newer intent with the same identity coalesces it", identity_x, newer_identity_x,
     Code::kOk, "", IntentState::kCoalesced, "intent.coalesced"},
    {"a newer intent coalesces a deferred one", deferred_identity_x, newer_identity_x, Code::kOk,
     "", IntentState::kCoalesced, "intent.coalesced"},
    {"cancel coalesced", [](CoreEnv& e) {
       auto id = identity_x(e);
       CAIRN_ASSERT(newer_identity_x(e, id).ok());
       CAIRN_ASSERT(e.flush().ok());
       return id;
     },
     [](CoreEnv& e, const std::string& id) { return e.bb.cancel(id, "alice"); }, Code::kConflict,
     "invalid_state", IntentState::kCoalesced, nullptr},
};

class LifecycleStep : public ::testing::TestWithParam<Step> {};

TEST_P(LifecycleStep, DoesWhatTheTableSays) {
  const Step& s = GetParam();
  CoreEnv e;
  const std::string id = s.setup(e);
  const std::uint64_t seq_before = e.bb.last_seq();
  const IntentStatus status_before = e.bb.intent(id)->st;
  const Digest hash_before = e.bb.state_hash();

  Status st = s.act(e, id);
  EXPECT_EQ(st.code(), s.code) << st.to_string();
  if (s.code != Code::kOk) {
    EXPECT_EQ(st.reason(), s.reason) << st.to_string();
    // A refused command changes nothing: no event, no state, nothing to commit.
    EXPECT_EQ(e.bb.last_seq(), seq_before);
    EXPECT_EQ(e.bb.intent(id)->st, status_before);
    EXPECT_EQ(e.bb.state_hash(), hash_before);
    EXPECT_FALSE(e.bb.has_pending());
  }
  EXPECT_EQ(e.bb.intent(id)->st.state, s.state_after);
  ASSERT_TRUE(e.flush().ok());
  bool found = false;
  for (const auto& ev : e.last_events) {
    if (s.event != nullptr && ev.type == s.event && ev.subject == id) found = true;
  }
  if (s.event != nullptr) {
    EXPECT_TRUE(found) << "missing event " << s.event;
  } else if (s.code == Code::kOk) {
    // Permitted no-ops append no intent event.
    for (const auto& ev : e.last_events) EXPECT_NE(ev.subject, id) << ev.type;
  }
  // Whatever happened, the store now holds exactly the hot state.
  Blackboard again(e.clock, e.rng);
  ASSERT_TRUE(again.load(e.store).ok());
  EXPECT_EQ(again.state_hash(), e.bb.state_hash());
}

INSTANTIATE_TEST_SUITE_P(Table, LifecycleStep, ::testing::ValuesIn(kSteps),
                         [](const ::testing::TestParamInfo<Step>& info) {
                           std::string n = info.param.name;
                           for (char& c : n) {
                             if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                   (c >= '0' && c <= '9'))) {
                               c = '_';
                             }
                           }
                           return n;
                         });

// Every row of kTransitions is exercised by at least one step above.
TEST(LifecycleTable, EveryRowHasAStep) {
  std::set<std::string> events;
  for (const auto& s : kSteps) {
    if (s.event != nullptr) events.insert(s.event);
  }
  for (const auto& t : lifecycle::kTransitions) {
    EXPECT_TRUE(events.count(std::string(t.event))) << t.event;
  }
}

}  // namespace
}  // namespace cairn

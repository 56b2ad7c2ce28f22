// admission_test.cc — the planner wired into the engine: lane budgets decide
// what claims hand out (in plan order), a dependency's fact wakes a parked
// long-poll in the same cycle (no timer), a failed commit leaves the waits as
// they were, and GetPlan answers with the plan of the current state.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/driver.h"
#include "engine/engine.h"
#include "plan/plan.h"

namespace cairn::engine {
namespace {

using testing::Driver;
using testing::kT0;

EngineConfig budgets(std::map<std::string, LaneBudget, std::less<>> lanes) {
  EngineConfig c;
  c.core.admission.budgets = true;
  c.core.admission.lanes = std::move(lanes);
  return c;
}

struct Admission : Driver {
  using Driver::Driver;

  std::string fact(const std::string& kind, std::int64_t n = 0) {
    FactBody f;
    f.kind = kind;
    f.content = Json(JsonObject{{"n", Json(n)}, {"i", Json(++facts)}});
    const ReplyEffect& r = run("sensor", PostFact{f});
    EXPECT_TRUE(r.status.ok()) << r.status.to_string();
    return r.body.find("id")->as_string();
  }

  // Creates an intent; returns the reply (id, state).
  ReplyEffect create(const std::string& lane, const std::string& provider = "",
                     std::vector<std::string> requires_ = {}, std::int64_t priority = 0) {
    IntentDraft d;
    d.kind = "work";
    d.lane = lane;
    d.provider = provider;
    d.priority = priority;
    d.requires_ = std::move(requires_);
    d.from_facts = {fact("seed")};
    d.lease_ttl_ms = 60'000;
    ReplyEffect r = run("producer", CreateIntent{d});
    EXPECT_TRUE(r.status.ok()) << r.status.to_string();
    return r;
  }
  std::string intent(const std::string& lane, const std::string& provider = "",
                     std::vector<std::string> requires_ = {}, std::int64_t priority = 0) {
    return create(lane, provider, std::move(requires_), priority).body.find("id")->as_string();
  }

  // Claims up to `max` intents for `agent`; returns their ids in order.
  std::vector<std::string> claim(const std::string& agent, std::size_t max = 1) {
    ClaimNext cn;
    cn.max = max;
    const ReplyEffect& r = run(agent, cn);
    EXPECT_TRUE(r.status.ok()) << r.status.to_string();
    std::vector<std::string> ids;
    for (const Json& c : r.body.find("claims")->as_array()) {
      ids.push_back(c.find("intent")->find("id")->as_string());
    }
    return ids;
  }

  Plan plan() {
    Result<Plan> p = engine.plan();
    CAIRN_ASSERT(p.ok());
    return *p;
  }
  std::string reason(const std::string& id) {
    const Plan p = plan();
    const PlanDecision* d = p.find(id);
    return d == nullptr ? "(not in plan)" : d->text();
  }
};

TEST(EngineAdmission, ProvidersOfOneLaneFamilyKeepSeparateCaps) {
  Admission d(budgets({{"llm/openai", {2, 2}}, {"llm/anthropic", {1, 1}}}));
  std::vector<std::string> openai, anthropic;
  for (int i = 0; i < 4; ++i) openai.push_back(d.intent("llm", "openai", {}, 10 - i));
  for (int i = 0; i < 3; ++i) anthropic.push_back(d.intent("llm", "anthropic"));

  // The plan admits the two best openai intents and one anthropic one; the
  // claims hand out exactly those, in plan order.
  const Plan p = d.plan();
  ASSERT_EQ(p.admitted.size(), 3u);
  const std::vector<std::string> got = d.claim("agent", 10);
  EXPECT_EQ(got, p.admitted);
  EXPECT_EQ(got[0], openai[0]);  // priority 10 first
  EXPECT_EQ(got[1], openai[1]);
  EXPECT_EQ(got[2], anthropic[2]);  // newest first at equal priority
  // Full: nothing more, whoever asks; each waits with its lane named.
  EXPECT_TRUE(d.claim("other", 10).empty());
  EXPECT_EQ(d.reason(openai[2]), "lane_full(llm/openai)");
  EXPECT_EQ(d.reason(anthropic[0]), "lane_full(llm/anthropic)");
  // An anthropic burst does not use openai capacity and vice versa: ending an
  // openai lease admits the next openai intent only.
  const Intent* first = d.engine.blackboard().intent(openai[0]);
  FactBody result;
  result.kind = "result";
  result.content = Json(1);
  ASSERT_TRUE(d.run("agent", Conclude{openai[0], first->st.epoch, result}).status.ok());
  EXPECT_EQ(d.claim("other", 10), std::vector<std::string>{openai[2]});
  for (const auto& u : d.engine.blackboard().lane_usage()) {
    ASSERT_TRUE(u.configured) << u.key;
    EXPECT_LE(u.running, u.budget.max_concurrency) << u.key;
  }
}

TEST(EngineAdmission, ALaneWithoutBudgetWaitsLoudly) {
  Admission d(budgets({{"gpu", {1, 1}}}));
  const std::string id = d.intent("cpu");
  EXPECT_EQ(d.reason(id), "no_budget(cpu)");
  EXPECT_TRUE(d.claim("agent").empty());
  const std::vector<Notice> n = d.engine.take_notices();
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].code, "no_budget");
  EXPECT_NE(n[0].message.find(id), std::string::npos);
  EXPECT_EQ(d.engine.blackboard().no_budget_open(), 1u);
  EXPECT_TRUE(d.engine.take_notices().empty());  // taken once
  // Claiming it by id says why.
  const ReplyEffect& r = d.run("agent", Claim{id, 0});
  EXPECT_EQ(r.status.reason(), "no_budget");
  // The default lane keeps its built-in budget.
  const std::string dflt = d.intent("default");
  EXPECT_EQ(d.claim("agent"), std::vector<std::string>{dflt});
}

TEST(EngineAdmission, TheDependencyFactWakesAParkedLongPollInTheSameCycle) {
  Admission d;
  const ReplyEffect created = d.create("default", "", {"kind:approval"});
  const std::string id = created.body.find("id")->as_string();
  EXPECT_EQ(created.body.find("state")->as_string(), "deferred");
  EXPECT_EQ(d.reason(id), "missing_dependency(kind:approval)");
  ClaimNext cn;
  cn.wait_ms = 30'000;
  const RequestId poll = d.send("agent", cn);
  d.settle();
  ASSERT_FALSE(d.replied(poll));
  // No time passes: the fact's own commit opens the intent and the parked
  // claim takes it.
  d.fact("other");
  EXPECT_FALSE(d.replied(poll));
  d.fact("approval");
  ASSERT_TRUE(d.replied(poll));
  const Json& claims = *d.reply(poll).body.find("claims");
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims.as_array()[0].find("intent")->find("id")->as_string(), id);
  EXPECT_EQ(d.now, kT0);
  bool ready = false;
  for (const Event& e : d.events) {
    if (e.type == ev::kIntentReady && e.subject == id) ready = true;
  }
  EXPECT_TRUE(ready);
}

TEST(EngineAdmission, AFailedCommitLeavesTheWaitSoTheNextFactStillWakes) {
  Admission d;
  const std::string id = d.intent("default", "", {"kind:approval"});
  EXPECT_EQ(d.engine.blackboard().dependency_waits(), 1u);
  d.faulty.fail_next_commit(store::CommitFault::kUnavailable);
  FactBody f;
  f.kind = "approval";
  f.content = Json("first");
  EXPECT_FALSE(d.run("sensor", PostFact{f}).status.ok());
  EXPECT_EQ(d.engine.blackboard().intent(id)->st.state, IntentState::kDeferred);
  EXPECT_EQ(d.engine.blackboard().dependency_waits(), 1u);
  d.now += 1'000;  // past the commit retry delay
  d.fact("approval");
  EXPECT_EQ(d.engine.blackboard().intent(id)->st.state, IntentState::kOpen);
  EXPECT_EQ(d.engine.blackboard().dependency_waits(), 0u);
}

TEST(EngineAdmission, GetPlanAnswersWithThePlanOfTheCurrentState) {
  Admission d(budgets({{"a", {1, 1}}}));
  const std::string x = d.intent("a");
  const std::string y = d.intent("a");
  const std::string z = d.intent("default", "", {"kind:never"});
  const ReplyEffect& r = d.run("reader", GetPlan{});
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(to_jcs(r.body), plan_to_jcs(d.plan()));
  EXPECT_EQ(d.reason(y), "admitted");  // newest first
  EXPECT_EQ(d.reason(x), "lane_full(a)");
  EXPECT_EQ(d.reason(z), "missing_dependency(kind:never)");
  // The same state plans to the same bytes.
  EXPECT_EQ(plan_to_jcs(d.plan()), plan_to_jcs(d.plan()));
}

TEST(EngineAdmission, BudgetsOffLeaveEveryLaneUnlimited) {
  Admission d;
  for (int i = 0; i < 40; ++i) d.intent(i % 2 == 0 ? "x" : "y");
  EXPECT_EQ(d.claim("agent", 40).size(), 40u);
  EXPECT_EQ(d.engine.blackboard().no_budget_open(), 0u);
}

}  // namespace
}  // namespace cairn::engine

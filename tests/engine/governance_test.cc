// governance_test.cc — contract rules and result checks in the engine: a
// rule turns a newly recorded fact into a hint in the fact's own commit
// (derived_from, deterministic id, TTL); other facts and repeats emit
// nothing; a failing result check refuses a conclusion and the intent stays
// claimed.
#include "engine/governance.h"

#include <gtest/gtest.h>

#include <map>

#include "engine/driver.h"
#include "engine/engine.h"
#include "support/test_data.h"

namespace cairn::engine {
namespace {

using cairn::testing::J;

using testing::kT0;

std::string str(const Json& j, std::string_view key) {
  const Json* v = j.find(key);
  return v != nullptr && v->is_string() ? v->as_string() : std::string();
}

Predicate pred(std::string_view text, bool result_check = false) {
  const Json j = J(text);
  auto p = result_check ? parse_result_check(j, PredicateLimits{})
                        : parse_predicate(j, PredicateLimits{});
  EXPECT_TRUE(p.ok()) << text;
  return p.ok() ? p.value() : Predicate{};
}

// incident with severity >= 3 → deny deploys for 1 s; rate_limited → defer
// the llm lane for 500 ms; score intents must conclude with 0 < value < 100.
std::shared_ptr<Governance> contract() {
  auto g = std::make_shared<Governance>();
  g->file = "contract.yaml";
  g->sha256 = std::string(64, 'a');
  GovernanceRule deny;
  deny.name = "outage-blocks-deploys";
  deny.line = 3;
  deny.when_kind = "incident";
  deny.match = {pred(R"({"path":"$.severity","op":"ge","value":3})")};
  deny.selector.kind = "deploy";
  deny.effect.type = HintEffectType::kDeny;
  deny.ttl_ms = 1'000;
  deny.reason = "an open incident blocks deploys";
  g->rules.push_back(deny);
  GovernanceRule defer;
  defer.name = "cool-down";
  defer.line = 12;
  defer.when_kind = "rate_limited";
  defer.selector.lane = "llm";
  defer.effect.type = HintEffectType::kDefer;
  defer.defer_ms = 500;
  defer.ttl_ms = 2'000;
  g->rules.push_back(defer);
  GovernanceResultCheck rc;
  rc.line = 20;
  rc.intent_kind = "score";
  rc.checks = {pred(R"({"path":"$.value","op":"positive"})", true),
               pred(R"({"path":"$.value","op":"lt","value":100})", true)};
  g->result_checks.push_back(rc);
  return g;
}

struct Driver : testing::Driver {
  explicit Driver(std::shared_ptr<const Governance> g = contract(), std::uint64_t seed = 7)
      : testing::Driver(config(std::move(g)), seed) {}

  static EngineConfig config(std::shared_ptr<const Governance> g) {
    EngineConfig c;
    c.governance = std::move(g);
    return c;
  }

  std::string post(const std::string& kind, std::string_view content) {
    FactBody f;
    f.kind = kind;
    f.content = J(content);
    const ReplyEffect r = run("sensor", PostFact{f});
    EXPECT_TRUE(r.status.ok()) << r.status.to_string();
    return r.status.ok() ? r.body.find("id")->as_string() : std::string();
  }

  std::string intent(const std::string& kind, const std::string& lane = "") {
    IntentDraft d;
    d.kind = kind;
    d.lane = lane;
    d.from_facts = {post("seed", std::to_string(++seeds))};
    d.lease_ttl_ms = 60'000;
    const ReplyEffect r = run("producer", CreateIntent{d});
    EXPECT_TRUE(r.status.ok()) << r.status.to_string();
    return r.body.find("id")->as_string();
  }

  int seeds = 0;
};

std::vector<std::string> hint_ids(const ReplyEffect& r) {
  std::vector<std::string> out;
  const Json* h = r.body.find("hints");
  if (h == nullptr || !h->is_array()) {
    ADD_FAILURE() << "no hints array in " << to_json(r.body);
    return out;
  }
  for (const Json& id : h->as_array()) out.push_back(id.as_string());
  return out;
}

FactBody fact_of(std::string_view kind, std::string_view content) {
  FactBody f;
  f.kind = kind;
  f.content = J(content);
  return f;
}

TEST(GovernanceRules, AMatchingFactEmitsItsHintInTheSameCommit) {
  Driver d;
  const std::string deploy = d.intent("deploy");
  const int commits_before = d.commits;
  const std::size_t batches_before = d.published.size();
  const ReplyEffect r = d.run("sensor", PostFact{fact_of("incident", R"({"severity":4})")});
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  const std::string fact = r.body.find("id")->as_string();
  const std::vector<std::string> ids = hint_ids(r);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], rule_hint_id("outage-blocks-deploys", fact));

  // One commit carries the fact and the hint, events in that order.
  EXPECT_EQ(d.commits, commits_before + 1);
  ASSERT_EQ(d.published.size(), batches_before + 1);
  const std::vector<Event>& evs = d.published.back();
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].type, ev::kFactRecorded);
  EXPECT_EQ(evs[0].subject, fact);
  EXPECT_EQ(evs[1].type, ev::kHintCreated);
  EXPECT_EQ(evs[1].subject, ids[0]);

  const Hint* h = d.engine.blackboard().hint(ids[0]);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->d.derived_from, std::vector<std::string>{fact});
  EXPECT_EQ(h->d.creator, kContractCreator);
  EXPECT_EQ(h->d.kind, "contract");
  EXPECT_EQ(h->d.selector.kind, "deploy");
  EXPECT_EQ(h->d.effect.type, HintEffectType::kDeny);
  EXPECT_EQ(h->d.reason, "an open incident blocks deploys");
  EXPECT_EQ(h->d.expires_at, r.body.find("recorded_at")->int_if().value() + 1'000);

  // The hint gates claims of the selected kind until it expires.
  const ReplyEffect denied = d.run("agent", Claim{deploy, 0});
  EXPECT_EQ(denied.status.reason(), "denied_by_hint");
  const std::string other = d.intent("build");
  EXPECT_TRUE(d.run("agent", Claim{other, 0}).status.ok());
  d.now = h->d.expires_at;
  const ReplyEffect ok = d.run("agent", Claim{deploy, 0});
  EXPECT_TRUE(ok.status.ok()) << ok.status.to_string();

  // Durable: a fresh engine on the same store has the hint.
  Engine reloaded(Driver::config(nullptr), 9, d.now);
  ASSERT_TRUE(reloaded.load(d.store).ok());
  const Hint* again = reloaded.blackboard().hint(ids[0]);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->d.derived_from, std::vector<std::string>{fact});
}

TEST(GovernanceRules, NonMatchingFactsAndRepeatsEmitNothing) {
  Driver d;
  const std::size_t hints_before = d.engine.blackboard().hints().size();
  // Wrong kind, a failing predicate, a missing path.
  for (const auto& [kind, content] :
       std::vector<std::pair<std::string, std::string>>{{"incidents", R"({"severity":9})"},
                                                        {"incident", R"({"severity":2})"},
                                                        {"incident", R"({"sev":9})"},
                                                        {"incident", R"({"severity":"9"})"}}) {
    const ReplyEffect r = d.run("sensor", PostFact{fact_of(kind, content)});
    ASSERT_TRUE(r.status.ok());
    EXPECT_TRUE(hint_ids(r).empty()) << kind << " " << content;
  }
  EXPECT_EQ(d.engine.blackboard().hints().size(), hints_before);

  const ReplyEffect first = d.run("sensor", PostFact{fact_of("incident", R"({"severity":3})")});
  ASSERT_EQ(hint_ids(first).size(), 1u);
  const int commits = d.commits;
  const ReplyEffect repeat = d.run("sensor", PostFact{fact_of("incident", R"({"severity":3})")});
  ASSERT_TRUE(repeat.status.ok());
  EXPECT_FALSE(repeat.body.find("created")->as_bool());
  EXPECT_TRUE(hint_ids(repeat).empty());
  EXPECT_EQ(d.commits, commits);  // nothing changed, nothing written
  EXPECT_EQ(d.engine.blackboard().hints().size(), hints_before + 1);
}

TEST(GovernanceRules, HintIdsAreTheSameOnEveryEngine) {
  Driver a(contract(), 1);
  Driver b(contract(), 99);
  const ReplyEffect ra = a.run("sensor", PostFact{fact_of("incident", R"({"severity":5})")});
  const ReplyEffect rb = b.run("sensor", PostFact{fact_of("incident", R"({"severity":5})")});
  EXPECT_EQ(hint_ids(ra), hint_ids(rb));
  // Different rules or facts give different ids.
  EXPECT_NE(rule_hint_id("a", std::string(64, '0')), rule_hint_id("b", std::string(64, '0')));
  EXPECT_NE(rule_hint_id("a", std::string(64, '0')), rule_hint_id("a", std::string(64, '1')));
}

TEST(GovernanceRules, DeferRunsFromTheFactsTime) {
  Driver d;
  const std::string job = d.intent("summarise", "llm");
  d.now += 250;
  const ReplyEffect r = d.run("sensor", PostFact{fact_of("rate_limited", "{}")});
  const std::vector<std::string> ids = hint_ids(r);
  ASSERT_EQ(ids.size(), 1u);
  const Hint* h = d.engine.blackboard().hint(ids[0]);
  ASSERT_NE(h, nullptr);
  const std::int64_t at = r.body.find("recorded_at")->int_if().value();
  EXPECT_EQ(at, d.now);
  EXPECT_EQ(h->d.effect.until, at + 500);
  EXPECT_EQ(h->d.expires_at, at + 2'000);
  EXPECT_EQ(h->d.reason, "contract rule cool-down");
  EXPECT_EQ(d.run("agent", Claim{job, 0}).status.reason(), "deferred_by_hint");
  d.now = at + 500;
  EXPECT_TRUE(d.run("agent", Claim{job, 0}).status.ok());
}

TEST(GovernanceRules, AFailedCommitTakesTheFactAndTheHintBack) {
  Driver d;
  d.faulty.fail_next_commit(store::CommitFault::kUnavailable);
  const ReplyEffect r = d.run("sensor", PostFact{fact_of("incident", R"({"severity":7})")});
  EXPECT_FALSE(r.status.ok());
  EXPECT_TRUE(d.engine.blackboard().hints().empty());
  d.now += 2'000;  // past the commit retry wait
  const ReplyEffect again = d.run("sensor", PostFact{fact_of("incident", R"({"severity":7})")});
  ASSERT_TRUE(again.status.ok()) << again.status.to_string();
  EXPECT_TRUE(again.body.find("created")->as_bool());
  EXPECT_EQ(hint_ids(again).size(), 1u);
}

TEST(GovernanceRules, ATakenHintIdRefusesTheFactAndChangesNothing) {
  Driver d;
  const FactBody f = fact_of("incident", R"({"severity":3})");
  auto canon = canonicalize_fact(
      [&] {
        FactBody c = f;
        c.creator = "sensor";
        return c;
      }(),
      ModelLimits{});
  ASSERT_TRUE(canon.ok());
  // Someone created a hint with the id the rule would emit.
  const std::string seed = d.post("seed", "1");
  HintDraft squat;
  squat.id = rule_hint_id("outage-blocks-deploys", canon->id);
  squat.kind = "manual";
  squat.derived_from = {seed};
  ASSERT_TRUE(d.run("someone", CreateHint{squat}).status.ok());
  const std::uint64_t seq = d.engine.blackboard().last_seq();
  const ReplyEffect r = d.run("sensor", PostFact{f});
  EXPECT_EQ(r.status.reason(), "id_exists");
  EXPECT_FALSE(d.engine.blackboard().has_fact(canon->id));
  EXPECT_EQ(d.engine.blackboard().last_seq(), seq);
}

TEST(GovernanceRules, AConcludedResultFiresRulesToo) {
  Driver d;
  const std::string id = d.intent("probe");
  const ReplyEffect c = d.run("agent", Claim{id, 0});
  ASSERT_TRUE(c.status.ok());
  Conclude con{id, static_cast<std::uint64_t>(c.body.find("epoch")->int_if().value()),
               fact_of("incident", R"({"severity":3})")};
  const ReplyEffect r = d.run("agent", con);
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  const std::vector<std::string> ids = hint_ids(r);
  ASSERT_EQ(ids.size(), 1u);
  const std::string result = r.body.find("result")->as_string();
  EXPECT_EQ(ids[0], rule_hint_id("outage-blocks-deploys", result));
  EXPECT_EQ(d.engine.blackboard().hint(ids[0])->d.derived_from, std::vector<std::string>{result});
}

TEST(GovernanceRules, ReplacingTheContractChangesWhatFires) {
  Driver d;
  auto g = contract();
  g->rules.erase(g->rules.begin());  // drop the incident rule
  d.engine.set_governance(g);
  EXPECT_TRUE(
      hint_ids(d.run("sensor", PostFact{fact_of("incident", R"({"severity":9})")})).empty());
  d.engine.set_governance(nullptr);
  const ReplyEffect none = d.run("sensor", PostFact{fact_of("rate_limited", "{}")});
  EXPECT_TRUE(hint_ids(none).empty());
  EXPECT_TRUE(d.engine.blackboard().hints().empty());
  const ReplyEffect state = d.run("reader", GetState{});
  EXPECT_EQ(state.body.find("contract"), nullptr);
  d.engine.set_governance(contract());
  const ReplyEffect with = d.run("reader", GetState{});
  ASSERT_NE(with.body.find("contract"), nullptr);
  EXPECT_EQ(to_json(*with.body.find("contract")),
            to_json(J(R"({"file":"contract.yaml","sha256":")" + std::string(64, 'a') +
                      R"(","rules":2,"result_checks":1})")));
}

// ---- result checks ------------------------------------------------------------------

TEST(GovernanceResultChecks, AFailingResultIsRefusedAndTheIntentStaysClaimed) {
  Driver d;
  const std::string id = d.intent("score");
  const ReplyEffect c = d.run("agent", Claim{id, 0});
  ASSERT_TRUE(c.status.ok());
  const auto epoch = static_cast<std::uint64_t>(c.body.find("epoch")->int_if().value());
  const std::uint64_t seq = d.engine.blackboard().last_seq();

  struct Bad {
    std::string content;
    std::string path;
    std::string op;
  };
  for (const Bad& b :
       {Bad{R"({"value":0})", "$.value", "positive"}, Bad{R"({"value":-3})", "$.value", "positive"},
        Bad{R"({"value":"7"})", "$.value", "positive"},
        Bad{R"({"other":7})", "$.value", "positive"}, Bad{R"({"value":100})", "$.value", "lt"}}) {
    const ReplyEffect r = d.run("agent", Conclude{id, epoch, fact_of("score", b.content)});
    EXPECT_EQ(r.status.code(), Code::kInvalid) << b.content;
    EXPECT_EQ(r.status.reason(), "result_check_failed") << b.content;
    EXPECT_EQ(str(r.status.details(), "path"), b.path);
    EXPECT_EQ(str(r.status.details(), "op"), b.op);
    EXPECT_EQ(r.status.details().find("line")->int_if().value_or(0), 20);
    const Intent* in = d.engine.blackboard().intent(id);
    EXPECT_EQ(in->st.state, IntentState::kClaimed);
    EXPECT_EQ(in->st.holder, "agent");
    EXPECT_EQ(in->st.epoch, epoch);
  }
  EXPECT_EQ(d.engine.blackboard().last_seq(), seq);  // nothing recorded

  const ReplyEffect good = d.run("agent", Conclude{id, epoch, fact_of("score", R"({"value":42})")});
  ASSERT_TRUE(good.status.ok()) << good.status.to_string();
  EXPECT_EQ(d.engine.blackboard().intent(id)->st.state, IntentState::kConcluded);
  // Other intent kinds are not checked.
  const std::string other = d.intent("summary");
  const ReplyEffect oc = d.run("agent", Claim{other, 0});
  const ReplyEffect ok = d.run("agent", Conclude{other, 1, fact_of("text", R"({"value":-1})")});
  EXPECT_TRUE(oc.status.ok());
  EXPECT_TRUE(ok.status.ok()) << ok.status.to_string();
}

TEST(GovernanceResultChecks, FencingErrorsComeFirst) {
  Driver d;
  const std::string id = d.intent("score");
  ASSERT_TRUE(d.run("agent", Claim{id, 0}).status.ok());
  // A stale epoch or another agent hears about that, not about the result.
  const ReplyEffect stale = d.run("agent", Conclude{id, 7, fact_of("score", R"({"value":0})")});
  EXPECT_EQ(stale.status.code(), Code::kConflict) << stale.status.to_string();
  const ReplyEffect other = d.run("intruder", Conclude{id, 1, fact_of("score", R"({"value":0})")});
  EXPECT_NE(other.status.reason(), "result_check_failed");
  EXPECT_FALSE(other.status.ok());
}

TEST(GovernanceResultChecks, CheckResultNamesTheFirstFailingCheck) {
  const auto g = contract();
  EXPECT_TRUE(check_result(*g, "score", fact_of("score", R"({"value":1})")).ok());
  EXPECT_TRUE(check_result(*g, "other", fact_of("score", R"({"value":-1})")).ok());
  const Status s = check_result(*g, "score", fact_of("score", R"({"value":250})"));
  EXPECT_EQ(s.reason(), "result_check_failed");
  EXPECT_EQ(
      to_json(s.details()),
      to_json(J(R"({"intent_kind":"score","line":20,"path":"$.value","op":"lt","value":100})")));
  EXPECT_NE(s.message().find("contract.yaml:20"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace cairn::engine

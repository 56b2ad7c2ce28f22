// plan_test.cc — dependency keys and bad planner input: typed errors, never a
// crash.
#include "plan/plan.h"

#include <gtest/gtest.h>

#include "model/json_parse.h"

namespace cairn {
namespace {

TEST(DependencyKey, ParsesFactIdsKindsAndTtls) {
  auto id = parse_dependency_key("0123abc");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->type, DependencyKey::Type::kFactId);
  EXPECT_EQ(id->name, "0123abc");
  auto kind = parse_dependency_key("kind:review");
  ASSERT_TRUE(kind.ok());
  EXPECT_EQ(kind->type, DependencyKey::Type::kKind);
  EXPECT_EQ(kind->name, "review");
  EXPECT_EQ(kind->ttl_ms, 0);
  const std::pair<const char*, std::int64_t> ttls[] = {{"kind:k@250ms", 250},
                                                       {"kind:k@60s", 60'000},
                                                       {"kind:k@5m", 300'000},
                                                       {"kind:k@2h", 7'200'000}};
  for (const auto& [key, ms] : ttls) {
    auto k = parse_dependency_key(key);
    ASSERT_TRUE(k.ok()) << key;
    EXPECT_EQ(k->ttl_ms, ms) << key;
  }
  for (const char* bad : {"", "kind:", "kind:@5s", "kind:k@", "kind:k@5", "kind:k@0s", "kind:k@5d",
                          "kind:k@s", "kind:k@-5s", "kind:k@99999999999999999h"}) {
    auto k = parse_dependency_key(bad);
    EXPECT_FALSE(k.ok()) << bad;
    if (!k.ok()) {
      EXPECT_EQ(k.status().reason(), "invalid_dependency_key") << bad;
    }
  }
}

TEST(DependencyKey, TtlReadinessIsStrictlyYoungerThanTheTtl) {
  MapFacts facts;
  facts.add("f", "price", 1'000);
  auto k = parse_dependency_key("kind:price@10s");
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(dependency_ready(*k, facts, 10'999));
  EXPECT_FALSE(dependency_ready(*k, facts, 11'000));
  facts.add("g", "price", 5'000);  // a newer fact of the kind renews readiness
  EXPECT_TRUE(dependency_ready(*k, facts, 11'000));
  facts.add("h", "price", 2'000);  // an older one does not move it back
  EXPECT_EQ(facts.newest_of_kind("price"), 5'000);
}

Status plan_status(const char* json) {
  auto v = parse_json(json);
  EXPECT_TRUE(v.ok()) << json;
  auto in = plan_input_from_json(*v);
  if (!in.ok()) return in.status();
  auto p = compute_plan(in->input, in->facts);
  return p.ok() ? Status() : p.status();
}

TEST(PlanInput, BadInputIsATypedError) {
  struct Case {
    const char* json;
    Code code;
    const char* reason;
  };
  const Case cases[] = {
      {R"({"now_ms":1,"intents":[{"id":"a"},{"id":"a"}]})", Code::kInvalid, "invalid_plan_input"},
      {R"({"now_ms":1,"intents":[{"id":""}]})", Code::kInvalid, "invalid_plan_input"},
      {R"({"now_ms":1,"intents":[{"id":"a","cost_units":0}]})", Code::kInvalid,
       "invalid_plan_input"},
      {R"({"now_ms":1,"intents":[{"id":"a","hints":["nope"]}]})", Code::kInvalid,
       "invalid_plan_input"},
      {R"({"now_ms":1,"intents":[{"id":"a","requires":["kind:x@1y"]}]})", Code::kInvalid,
       "invalid_plan_input"},
      {R"({"now_ms":1,"intents":[{"id":"a","state":"concluded"}]})", Code::kInvalid,
       "invalid_field"},
      {R"({"now_ms":1,"lanes":{"x":{"max_concurrency":0}}})", Code::kInvalid, "invalid_plan_input"},
      {R"({"now_ms":1,"lanes":{"x":{"max_concurrency":1,"max_cost_units":0}}})", Code::kInvalid,
       "invalid_plan_input"},
      {R"({"now_ms":1,"hints":[{"id":"h","type":"cap","n":-1}]})", Code::kInvalid,
       "invalid_plan_input"},
      {R"({"now_ms":1,"hints":[{"id":"h","type":"require"}]})", Code::kInvalid,
       "invalid_plan_input"},
      {R"({"now_ms":1,"hints":[{"id":"h","type":"sometimes"}]})", Code::kInvalid, "invalid_field"},
      {R"({"now_ms":1,"surprise":true})", Code::kInvalid, "unknown_field"},
      {R"({"now_ms":1,"intents":{}})", Code::kInvalid, "invalid_field"},
      {R"({"intents":[]})", Code::kInvalid, "invalid_field"},
      {R"({"now_ms":1,"default_duration_ms":-1})", Code::kInvalid, "invalid_plan_input"},
  };
  for (const Case& c : cases) {
    Status st = plan_status(c.json);
    EXPECT_EQ(st.code(), c.code) << c.json << " → " << st.to_string();
    EXPECT_EQ(st.reason(), c.reason) << c.json << " → " << st.to_string();
  }
  EXPECT_TRUE(plan_status(R"({"now_ms":1})").ok());
}

TEST(PlanInput, LimitsAreTooLarge) {
  PlanLimits limits;
  limits.intents_max = 2;
  PlanInput in;
  for (const char* id : {"a", "b", "c"}) {
    PlanIntent it;
    it.id = id;
    in.intents.push_back(it);
  }
  MapFacts facts;
  auto p = compute_plan(in, facts, limits);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kTooLarge);
}

}  // namespace
}  // namespace cairn

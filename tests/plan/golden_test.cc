// golden_test.cc — planner inputs (tests/data/plan/<name>.input.json) against
// their expected plans (<name>.plan.json).
//
// Each input carries an `expect` member written by hand: the reason text of
// named intents and the admission order. The test checks those first, then
// that the whole plan equals the golden file byte for byte once both are in
// RFC 8785 form (the golden files are pretty-printed to be read in review).
// CAIRN_UPDATE_GOLDEN=1 rewrites the golden files (in canonical form; run
// `python3 -m json.tool --sort-keys` over them to pretty-print).
//
// Files are read with <cstdio>/<dirent.h>, so this runs natively and on
// wasm32 (scripts/wasm-run.mjs preopens tests/data).
#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/json_parse.h"
#include "plan/plan.h"
#include "support/test_data.h"

namespace cairn {
namespace {

const std::string kDir = std::string(CAIRN_TEST_DATA_DIR) + "/plan";
constexpr std::string_view kInputSuffix = ".input.json";

using cairn::testing::read_file;

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  DIR* dir = opendir(kDir.c_str());
  if (dir == nullptr) return names;
  while (const dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() > kInputSuffix.size() &&
        name.compare(name.size() - kInputSuffix.size(), kInputSuffix.size(), kInputSuffix) == 0) {
      names.push_back(name.substr(0, name.size() - kInputSuffix.size()));
    }
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

TEST(PlanGolden, EveryReasonAndTheDecisionOrderHaveACase) {
  const std::vector<std::string> names = case_names();
  for (const char* want : {"admitted", "missing_dependency", "lane_full", "no_budget",
                           "denied_by_hint", "capped_by_hint", "backoff_until", "coalesced_into",
                           "stale", "decision_order", "waves_estimates"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
}

class PlanGoldenCase : public ::testing::TestWithParam<std::string> {};

TEST_P(PlanGoldenCase, MatchesExpectationsAndGoldenPlan) {
  const std::string name = GetParam();
  std::string text;
  ASSERT_TRUE(read_file(kDir + "/" + name + ".input.json", &text)) << name;
  auto parsed = parse_json(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  Json doc = std::move(parsed).value();
  const Json* expect_ptr = doc.find("expect");
  ASSERT_NE(expect_ptr, nullptr) << name << ": no `expect` member";
  const Json expect = *expect_ptr;
  doc.erase("expect");

  auto input = plan_input_from_json(doc);
  ASSERT_TRUE(input.ok()) << input.status().to_string();
  auto plan = compute_plan(input->input, input->facts);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();

  // Hand-written expectations.
  const Json* reasons = expect.find("reasons");
  ASSERT_NE(reasons, nullptr);
  for (const auto& [id, want] : reasons->as_object()) {
    const PlanDecision* d = plan->find(id);
    ASSERT_NE(d, nullptr) << name << ": no decision for " << id;
    EXPECT_EQ(d->text(), want.as_string()) << name << ": " << id;
  }
  std::vector<std::string> want_admitted;
  for (const Json& id : expect.find("admitted")->as_array())
    want_admitted.push_back(id.as_string());
  EXPECT_EQ(plan->admitted, want_admitted) << name;
  // Every open/deferred intent of the input has exactly one decision.
  std::size_t pending = 0;
  for (const PlanIntent& it : input->input.intents) {
    if (it.state != PlanIntentState::kClaimed) ++pending;
  }
  EXPECT_EQ(plan->decisions.size(), pending) << name;

  // The golden plan, byte for byte in canonical form.
  const std::string got = plan_to_jcs(*plan);
  const std::string golden_path = kDir + "/" + name + ".plan.json";
  if (const char* update = std::getenv("CAIRN_UPDATE_GOLDEN"); update && *update == '1') {
    FILE* f = std::fopen(golden_path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << golden_path;
    std::fwrite(got.data(), 1, got.size(), f);
    std::fclose(f);
    return;
  }
  std::string golden_text;
  ASSERT_TRUE(read_file(golden_path, &golden_text)) << golden_path << " is missing";
  auto golden = parse_json(golden_text);
  ASSERT_TRUE(golden.ok()) << golden.status().to_string();
  EXPECT_EQ(got, to_jcs(*golden)) << name;
  // Planning the same input again gives the same bytes.
  auto again = compute_plan(input->input, input->facts);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(plan_to_jcs(*again), got);
}

INSTANTIATE_TEST_SUITE_P(Cases, PlanGoldenCase, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace cairn

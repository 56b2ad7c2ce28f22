// config_test.cc — cairn.yaml's lanes:, default_lane: and plan: sections:
// what they map to in the engine's configuration, and the file:line errors
// for what is wrong in them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server/config.h"
#include "server/contract.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<server::ServerConfig> load(const std::string& yaml) {
    path_ = dir_ + "/cairn.yaml";
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << yaml;
    return server::load_config_file(path_, server::ServerConfig{});
  }
  // The error for `yaml`, which must be refused.
  Status refused(const std::string& yaml) {
    auto c = load(yaml);
    EXPECT_FALSE(c.ok()) << yaml;
    return c.ok() ? Status() : c.status();
  }

  std::string dir_, path_;
};

TEST_F(ConfigFile, WithoutLanesBudgetsStayOff) {
  auto c = load("log_level: warn\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_FALSE(c->engine.core.admission.budgets);
  EXPECT_TRUE(c->engine.core.admission.lanes.empty());
  EXPECT_EQ(c->engine.plan.first_response_budget_ms, 0);
}

TEST_F(ConfigFile, LanesAndPlanMapIntoTheEngine) {
  auto c = load(
      "lanes:\n"
      "  default: {max_concurrency: 16, max_cost_units: 32}\n"
      "  llm/openai: {max_concurrency: 2}\n"
      "  llm/anthropic: {max_concurrency: 2, duration_ms: 6000}\n"
      "default_lane: false\n"
      "plan:\n"
      "  first_response_budget_ms: 5000\n"
      "  all_responses_budget_ms: 20000\n"
      "  default_duration_ms: 750\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const AdmissionConfig& a = c->engine.core.admission;
  EXPECT_TRUE(a.budgets);
  EXPECT_FALSE(a.default_lane);
  ASSERT_EQ(a.lanes.size(), 3u);
  EXPECT_EQ(a.lanes.at("default").max_concurrency, 16);
  EXPECT_EQ(a.lanes.at("default").max_cost_units, 32);
  EXPECT_EQ(a.lanes.at("llm/openai").max_concurrency, 2);
  EXPECT_EQ(a.lanes.at("llm/openai").max_cost_units, 2);  // defaults to max_concurrency
  const engine::PlanSettings& p = c->engine.plan;
  EXPECT_EQ(p.lane_duration_ms.size(), 1u);
  EXPECT_EQ(p.lane_duration_ms.at("llm/anthropic"), 6000);
  EXPECT_EQ(p.first_response_budget_ms, 5000);
  EXPECT_EQ(p.all_responses_budget_ms, 20000);
  EXPECT_EQ(p.default_duration_ms, 750);
  EXPECT_TRUE(server::validate_config(*c).ok());
}

// The README's tour runs cairnd with examples/planner: it must stay valid.
TEST(ExampleConfig, ThePlannerExampleLoadsWithItsContract) {
  const std::string dir = std::string(CAIRN_TEST_DATA_DIR) + "/../../examples/planner";
  auto c = server::load_config_file(dir + "/cairn.yaml", server::ServerConfig{});
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->engine.core.admission.budgets);
  EXPECT_EQ(c->engine.core.admission.lanes.at("llm/openai").max_concurrency, 2);
  EXPECT_TRUE(server::validate_config(*c).ok());
  auto contract = server::load_contract_file(c->contract_path);
  ASSERT_TRUE(contract.ok()) << contract.status().to_string();
  EXPECT_EQ(contract->rules.size(), 1u);
}

TEST_F(ConfigFile, MistakesAreRefusedWithFileAndLine) {
  struct Case {
    std::string yaml;
    std::size_t line;
    std::string field;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"lanes:\n  gpu: {max_concurrency: 0}\n", 2, "lanes.gpu.max_concurrency", "1..1000000"},
      {"lanes:\n  gpu: {max_concurrency: two}\n", 2, "lanes.gpu.max_concurrency", "integer"},
      {"lanes:\n  gpu: {max_cost_units: 3}\n", 2, "lanes.gpu", "needs max_concurrency"},
      {"lanes:\n  gpu:\n    max_concurrency: 1\n    max_cost_units: 2000000\n", 4,
       "lanes.gpu.max_cost_units", "1..1000000"},
      {"lanes:\n  gpu: {max_concurrency: 1, burst: 3}\n", 2, "lanes.gpu.burst",
       "not a known field"},
      {"lanes:\n  gpu: {max_concurrency: 1, duration_ms: 0}\n", 2, "lanes.gpu.duration_ms",
       "1..604800000"},
      {"lanes:\n  \"bad lane\": {max_concurrency: 1}\n", 2, "lanes.bad lane", "lane name"},
      {"lanes: [gpu]\n", 1, "lanes", "must be a map"},
      {"listen: 127.0.0.1:7400\ndefault_lane: maybe\n", 2, "default_lane", "true or false"},
      {"plan:\n  first_response_budget_ms: -1\n", 2, "plan.first_response_budget_ms",
       "0..604800000"},
      {"plan:\n  budget_ms: 5\n", 2, "plan.budget_ms", "not a known field"},
  };
  for (const Case& k : cases) {
    const Status s = refused(k.yaml);
    EXPECT_EQ(s.reason(), "invalid_config") << k.yaml;
    const std::string where = path_ + ":" + std::to_string(k.line) + ": " + k.field;
    EXPECT_EQ(s.message().rfind(where, 0), 0u) << s.message() << "\nwanted " << where;
    EXPECT_NE(s.message().find(k.says), std::string::npos) << s.message();
    EXPECT_EQ(num(s.details(), "line"), static_cast<std::int64_t>(k.line)) << k.yaml;
    EXPECT_EQ(str(s.details(), "field"), k.field);
    EXPECT_EQ(str(s.details(), "file"), path_);
  }
}

TEST_F(ConfigFile, TooManyLanesAreRefused) {
  std::string yaml = "lanes:\n";
  for (int i = 0; i <= 1024; ++i) yaml += "  l" + std::to_string(i) + ": {max_concurrency: 1}\n";
  const Status s = refused(yaml);
  EXPECT_NE(s.message().find("lanes_max = 1024"), std::string::npos) << s.message();
}

TEST_F(ConfigFile, ValidateRefusesBudgetsOutOfRange) {
  server::ServerConfig c;
  c.engine.core.admission.budgets = true;
  c.engine.core.admission.lanes["gpu"] = LaneBudget{0, 1};
  EXPECT_EQ(server::validate_config(c).reason(), "invalid_config");
  c.engine.core.admission.lanes["gpu"] = LaneBudget{1, 1};
  EXPECT_TRUE(server::validate_config(c).ok());
  c.engine.plan.default_duration_ms = -5;
  EXPECT_EQ(server::validate_config(c).reason(), "invalid_config");
}

}  // namespace
}  // namespace cairn::testing

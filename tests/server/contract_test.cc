// contract_test.cc — loading contract.yaml: a file using every section and
// effect reads into the expected struct; every broken file under
// tests/data/contract/ (first line "# expect: <line> <field>") is refused with
// an error naming that file, line and field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "model/json_parse.h"
#include "model/predicate.h"
#include "server/contract.h"
#include "support/test_data.h"

namespace cairn::server {
namespace {

const std::string kDir = std::string(CAIRN_TEST_DATA_DIR) + "/contract/";

using cairn::testing::J;

TEST(Contract, ValidFileReadsEverySection) {
  Result<Contract> r = load_contract_file(kDir + "valid.yaml");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Contract& c = *r;
  EXPECT_EQ(c.file, kDir + "valid.yaml");
  ASSERT_EQ(c.rules.size(), 5u);

  const ContractRule& deny = c.rules[0];
  EXPECT_EQ(deny.name, "outage-blocks-deploys");
  EXPECT_EQ(deny.line, 4u);
  EXPECT_EQ(deny.when_kind, "incident");
  ASSERT_EQ(deny.match.size(), 2u);
  EXPECT_EQ(to_jcs(predicate_to_json(deny.match[0])),
            R"({"op":"ge","path":"$.severity","value":3})");
  EXPECT_EQ(to_jcs(predicate_to_json(deny.match[1])),
            R"({"op":"in","path":"$.service","value":["api","web"]})");
  EXPECT_EQ(deny.effect.type, HintEffectType::kDeny);
  EXPECT_EQ(deny.ttl_ms, 600000);
  EXPECT_EQ(deny.selector.kind, "deploy");
  EXPECT_EQ(deny.hint_kind, "contract");
  EXPECT_EQ(deny.reason, "an open incident blocks deploys");
  // The rule's predicates decide on fact content.
  EXPECT_TRUE(evaluate_all(deny.match, J(R"({"severity":4,"service":"api"})")));
  EXPECT_FALSE(evaluate_all(deny.match, J(R"({"severity":2,"service":"api"})")));
  EXPECT_FALSE(evaluate_all(deny.match, J(R"({"severity":"4","service":"api"})")));
  EXPECT_FALSE(evaluate_all(deny.match, J(R"({"severity":5,"service":"db"})")));

  const ContractRule& cap = c.rules[1];
  EXPECT_EQ(cap.effect.type, HintEffectType::kCap);
  EXPECT_EQ(cap.effect.n, 2);
  EXPECT_EQ(cap.selector.lane, "llm/openai");
  EXPECT_EQ(cap.hint_kind, "throttle");
  EXPECT_EQ(to_jcs(predicate_to_json(cap.match[0])),
            R"({"op":"gt","path":"$.p99_ms","value":2500.5})");

  const ContractRule& defer = c.rules[2];
  EXPECT_EQ(defer.effect.type, HintEffectType::kDefer);
  EXPECT_EQ(defer.defer_ms, 30000);
  EXPECT_TRUE(defer.match.empty());

  const ContractRule& prio = c.rules[3];
  EXPECT_EQ(prio.effect.type, HintEffectType::kPriority);
  EXPECT_EQ(prio.effect.n, -5);
  EXPECT_EQ(prio.selector.identity, "report");
  EXPECT_EQ(prio.selector.creator, "planner");
  // A quoted "3" stays a string; a plain false is a boolean.
  EXPECT_EQ(to_jcs(predicate_to_json(prio.match[0])), R"({"op":"eq","path":"$.tier","value":"3"})");
  EXPECT_EQ(to_jcs(predicate_to_json(prio.match[2])),
            R"({"op":"exists","path":"$.flag","value":false})");

  const ContractRule& req = c.rules[4];
  EXPECT_EQ(req.effect.type, HintEffectType::kRequire);
  EXPECT_EQ(req.effect.fact_kind, "approval");
  EXPECT_TRUE(evaluate_all(req.match, J(R"({"risk level":"high"})")));

  ASSERT_TRUE(c.schema.has_value());
  ASSERT_EQ(c.schema->size(), 2u);
  EXPECT_TRUE(schema_allows(c, Scope::kAgent, "build", "application/json"));
  EXPECT_TRUE(schema_allows(c, Scope::kAgent, "ci.lint", "application/json"));
  EXPECT_FALSE(schema_allows(c, Scope::kAgent, "ci", "application/json"));  // "ci.*" needs "ci."
  EXPECT_FALSE(schema_allows(c, Scope::kAgent, "deploy", "application/json"));
  EXPECT_FALSE(schema_allows(c, Scope::kAgent, "build", "text/plain"));
  EXPECT_TRUE(schema_allows(c, Scope::kAdmin, "anything", "text/plain"));
  EXPECT_FALSE(schema_allows(c, Scope::kRead, "build", "application/json"));  // not listed

  ASSERT_EQ(c.result_checks.size(), 2u);
  EXPECT_EQ(c.result_checks[0].intent_kind, "score");
  EXPECT_TRUE(evaluate_all(c.result_checks[0].checks, J(R"({"value":42})")));
  EXPECT_FALSE(evaluate_all(c.result_checks[0].checks, J(R"({"value":0})")));
  EXPECT_FALSE(evaluate_all(c.result_checks[0].checks, J(R"({"value":100})")));
  EXPECT_EQ(c.result_checks[1].intent_kind, "");  // every intent
  EXPECT_TRUE(evaluate_all(c.result_checks[1].checks, J(R"({"count":4})")));
  EXPECT_FALSE(evaluate_all(c.result_checks[1].checks, J(R"({"count":3})")));
}

TEST(Contract, AbsentSchemaGatesNothing) {
  Result<Contract> r = load_contract_file(kDir + "empty_sections.yaml");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r->schema.has_value());
  EXPECT_TRUE(schema_allows(*r, Scope::kRead, "x", "text/plain"));
  EXPECT_TRUE(r->result_checks.empty());
  ASSERT_EQ(r->rules.size(), 1u);
  EXPECT_EQ(r->rules[0].ttl_ms, 5);
}

TEST(Contract, BrokenFilesNameFileLineAndField) {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    const std::string path = entry.path().string();
    std::ifstream in(path);
    std::string first;
    std::getline(in, first);
    const std::string tag = "# expect: ";
    if (first.rfind(tag, 0) != 0) continue;
    ++files;
    const std::string rest = first.substr(tag.size());
    const std::size_t sp = rest.find(' ');
    const std::uint64_t line = std::stoull(rest.substr(0, sp));
    const std::string field = sp == std::string::npos ? "" : rest.substr(sp + 1);

    Result<Contract> r = load_contract_file(path);
    ASSERT_FALSE(r.ok()) << path;
    const Status& st = r.status();
    EXPECT_EQ(st.code(), Code::kInvalid) << st.to_string();
    EXPECT_EQ(st.reason(), "invalid_contract") << st.to_string();
    EXPECT_EQ(st.message().rfind(path + ":" + std::to_string(line) + ": ", 0), 0u)
        << path << ": " << st.message();
    EXPECT_EQ(st.details().find("line")->int_if(), static_cast<std::int64_t>(line)) << path;
    EXPECT_EQ(st.details().find("file")->as_string(), path);
    EXPECT_EQ(st.details().find("field")->as_string(), field) << st.message();
    if (!field.empty()) {
      EXPECT_NE(st.message().find(field), std::string::npos) << st.message();
    }
  }
  EXPECT_GE(files, 14u);
}

TEST(Contract, InlineErrorsAndLimits) {
  // The text form names the given file.
  Result<Contract> r = parse_contract("rules: 3\n", "inline.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "inline.yaml:1: rules must be a list");

  ContractLimits small;
  small.rules_max = 1;
  small.match_max = 1;
  const char* two_rules =
      "rules:\n"
      "  - {name: a, when: {kind: k}, emit: {effect: deny, ttl_ms: 1}}\n"
      "  - {name: b, when: {kind: k}, emit: {effect: deny, ttl_ms: 1}}\n";
  EXPECT_TRUE(parse_contract(two_rules, "f").ok());
  r = parse_contract(two_rules, "f", small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("more than 1 rules"), std::string::npos);
  const char* two_preds =
      "rules:\n"
      "  - name: a\n"
      "    when: {kind: k, match: [{path: $.a, op: exists}, {path: $.b, op: exists}]}\n"
      "    emit: {effect: deny, ttl_ms: 1}\n";
  r = parse_contract(two_preds, "f", small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().details().find("field")->as_string(), "rules[0].when.match");
  EXPECT_EQ(r.status().details().find("line")->int_if(), 3);

  small = ContractLimits{};
  small.file_bytes_max = 10;
  EXPECT_EQ(parse_contract(two_rules, "f", small).status().code(), Code::kTooLarge);

  // TTL bounds.
  r = parse_contract("rules: [{name: a, when: {kind: k}, emit: {effect: deny, ttl_ms: 0}}]", "f");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().details().find("field")->as_string(), "rules[0].emit.ttl_ms");
  r = parse_contract("rules: [{name: a, when: {kind: k}, emit: {effect: deny, ttl_ms: 1x}}]", "f");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("must be an integer"), std::string::npos);

  EXPECT_FALSE(load_contract_file(kDir + "does-not-exist.yaml").ok());
}

TEST(Contract, PatternMatching) {
  EXPECT_TRUE(pattern_matches("*", ""));
  EXPECT_TRUE(pattern_matches("*", "x"));
  EXPECT_TRUE(pattern_matches("ci.*", "ci.x"));
  EXPECT_TRUE(pattern_matches("ci.*", "ci."));
  EXPECT_FALSE(pattern_matches("ci.*", "cix"));
  EXPECT_TRUE(pattern_matches("build", "build"));
  EXPECT_FALSE(pattern_matches("build", "builds"));
}

}  // namespace
}  // namespace cairn::server

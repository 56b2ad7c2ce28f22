// governance.cc — contract rules and result checks (see governance.h).
#include "engine/governance.h"

#include "model/sha256.h"

namespace cairn::engine {

namespace {

// Hex digits of the digest kept in a rule hint's id (128 bits).
constexpr std::size_t kRuleHintIdHexDigits = 32;

}  // namespace

std::string rule_hint_id(std::string_view rule, std::string_view fact_id) {
  std::string pre = "cairn.contract.v1";
  pre += '\x1f';
  pre += rule;
  pre += '\x1f';
  pre += fact_id;
  std::string id(kRuleHintIdPrefix);
  id += to_hex(sha256(pre)).substr(0, kRuleHintIdHexDigits);
  return id;
}

bool rule_matches(const GovernanceRule& r, std::string_view kind, const Json& content) {
  return r.when_kind == kind && evaluate_all(r.match, content);
}

HintDraft rule_hint(const GovernanceRule& r, std::string_view fact_id, std::int64_t recorded_at) {
  HintDraft d;
  d.id = rule_hint_id(r.name, fact_id);
  d.kind = r.hint_kind;
  d.selector = r.selector;
  d.effect = r.effect;
  if (d.effect.type == HintEffectType::kDefer) d.effect.until = recorded_at + r.defer_ms;
  d.expires_at = recorded_at + r.ttl_ms;
  d.reason = r.reason.empty() ? "contract rule " + r.name : r.reason;
  d.derived_from = {std::string(fact_id)};
  d.creator = std::string(kContractCreator);
  return d;
}

std::vector<HintDraft> hints_for_fact(const Governance& g, const FactBody& fact,
                                      std::string_view fact_id, std::int64_t recorded_at) {
  std::vector<HintDraft> out;
  for (const GovernanceRule& r : g.rules) {
    if (rule_matches(r, fact.kind, fact.content)) out.push_back(rule_hint(r, fact_id, recorded_at));
  }
  return out;
}

Status check_result(const Governance& g, std::string_view intent_kind, const FactBody& result) {
  for (const GovernanceResultCheck& rc : g.result_checks) {
    if (!rc.intent_kind.empty() && rc.intent_kind != intent_kind) continue;
    for (const Predicate& p : rc.checks) {
      if (evaluate(p, result.content)) continue;
      JsonObject details{{"intent_kind", Json(intent_kind)},
                         {"line", Json(static_cast<std::uint64_t>(rc.line))},
                         {"path", Json(p.path.text)},
                         {"op", Json(op_name(p.op))}};
      std::string msg =
          "the result fails the check " + p.path.text + " " + std::string(op_name(p.op));
      if (!p.value.is_null()) {
        details.emplace_back("value", p.value);
        msg += " " + to_json(p.value);
      }
      if (!g.file.empty()) msg += " (" + g.file + ":" + std::to_string(rc.line) + ")";
      return invalid(std::move(msg), "result_check_failed", Json(std::move(details)));
    }
  }
  return Status();
}

Json governance_identity(const Governance& g) {
  return Json(
      JsonObject{{"file", Json(g.file)},
                 {"sha256", Json(g.sha256)},
                 {"rules", Json(static_cast<std::uint64_t>(g.rules.size()))},
                 {"result_checks", Json(static_cast<std::uint64_t>(g.result_checks.size()))}});
}

}  // namespace cairn::engine

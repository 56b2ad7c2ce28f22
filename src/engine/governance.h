// governance.h — the contract as the engine applies it: rules that turn a
// newly recorded fact into hints, and result checks on conclude (pure).
//
// The shell reads `contract.yaml` (server/contract.h) into these types and
// hands a Governance to the engine (Engine::set_governance, on the engine
// thread, between cycles). Nothing here does I/O or throws.
//
// Rules. A rule fires on a fact that is newly recorded (not an idempotent
// repeat) when the fact's kind equals `when_kind` and every predicate of
// `match` holds on its content. Every matching rule fires, in file order,
// each emitting one hint in the same commit as the fact:
//
//   id            rule_hint_id(rule name, fact id): "ct-" + 32 hex digits of
//                 SHA-256("cairn.contract.v1" 0x1f rule 0x1f fact id), so
//                 replays and every node agree on it
//   kind          the rule's hint kind (default "contract")
//   selector      the rule's selector
//   effect        the rule's effect; defer: until = recorded_at + defer_ms
//   expires_at    recorded_at + ttl_ms
//   derived_from  [the fact id]
//   creator       "contract" (kContractCreator)
//   reason        the rule's reason, or "contract rule <name>"
//
// Result checks. On conclude, every entry whose intent_kind is empty or the
// intent's kind applies; all its checks must hold on the result's content.
// The first failing check (file order) refuses the conclusion with
// invalid/"result_check_failed" (HTTP 422).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/fact.h"
#include "model/hint.h"
#include "model/json.h"
#include "model/predicate.h"
#include "model/status.h"

namespace cairn::engine {

inline constexpr std::string_view kContractCreator = "contract";
inline constexpr std::string_view kRuleHintIdPrefix = "ct-";

struct GovernanceRule {
  std::string name;
  std::size_t line = 0;  // where the rule starts in its file, 1-based (0: unknown)
  std::string when_kind;
  std::vector<Predicate> match;
  // The hint to emit; `effect.until` stays 0 — for defer, `defer_ms` is added
  // to the triggering fact's time when the rule fires.
  std::string hint_kind = "contract";
  HintSelector selector;
  HintEffect effect;
  std::int64_t defer_ms = 0;
  std::int64_t ttl_ms = 0;
  std::string reason;
};

struct GovernanceResultCheck {
  std::size_t line = 0;
  std::string intent_kind;  // empty: every intent
  std::vector<Predicate> checks;
};

struct Governance {
  // Identity of what is loaded (reported by GetState): the file and the
  // lowercase hex SHA-256 of its bytes. Informational only.
  std::string file;
  std::string sha256;
  std::vector<GovernanceRule> rules;
  std::vector<GovernanceResultCheck> result_checks;
};

// The deterministic id of the hint `rule` emits for fact `fact_id`.
std::string rule_hint_id(std::string_view rule, std::string_view fact_id);

// True when `r` fires on a fact of `kind` with `content`.
bool rule_matches(const GovernanceRule& r, std::string_view kind, const Json& content);

// The hint `r` emits for the fact `fact_id` recorded at `recorded_at`.
HintDraft rule_hint(const GovernanceRule& r, std::string_view fact_id, std::int64_t recorded_at);

// The hints every matching rule emits for a fact, in rule order.
std::vector<HintDraft> hints_for_fact(const Governance& g, const FactBody& fact,
                                      std::string_view fact_id, std::int64_t recorded_at);

// Ok, or invalid/"result_check_failed" with details {intent_kind, line, path,
// op, value?} naming the first check that fails on `result`'s content.
Status check_result(const Governance& g, std::string_view intent_kind, const FactBody& result);

// {file, sha256, rules, result_checks}: what GetState reports.
Json governance_identity(const Governance& g);

}  // namespace cairn::engine

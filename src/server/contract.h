// contract.h — the governance contract file, `contract.yaml` (shell).
//
// Reads and validates the contract into a plain struct. The engine applies
// its rules and result checks (to_governance, engine/governance.h); the API
// applies its schema gate (schema_allows). The format (docs/governance.md has the full reference):
//
//   version: 1
//   rules:                       # a posted fact → an emitted hint
//     - name: outage-blocks-deploys
//       when:
//         kind: incident         # the fact's kind (required)
//         match:                 # predicates on its content (model/predicate.h), all must hold
//           - {path: $.severity, op: ge, value: 3}
//       emit:
//         effect: deny           # deny | cap | defer | priority | require
//         n: 2                   # cap: max concurrent claims; priority: delta
//         defer_ms: 60000        # defer: how long from the fact
//         fact_kind: fixed       # require: the fact kind that releases the intents
//         ttl_ms: 600000         # the hint's lifetime from the fact (required, > 0)
//         selector: {kind: deploy, lane: "", identity: "", creator: ""}
//         kind: contract         # the hint's kind (default "contract")
//         reason: "…"            # optional
//   schema:                      # which token scope may post which facts
//     agent: {kinds: [build, "ci.*"], content_types: [application/json]}
//     admin: {kinds: ["*"], content_types: ["*"]}
//   result_checks:               # numeric checks on a concluded intent's result
//     - intent_kind: score       # "*" or absent: every intent
//       checks:
//         - {path: $.value, op: positive}
//
// Every error is `invalid` / "invalid_contract" with a message starting
// "<file>:<line>: " and details {file, line, field}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/governance.h"
#include "model/hint.h"
#include "model/predicate.h"
#include "model/status.h"
#include "server/config.h"

namespace cairn::server {

struct ContractLimits {
  std::size_t file_bytes_max = 1u << 20;
  std::size_t rules_max = 256;
  std::size_t match_max = 16;  // predicates in one rule's `when.match`
  std::size_t result_checks_max = 256;
  std::size_t checks_max = 16;            // predicates in one result check
  std::size_t schema_patterns_max = 256;  // kinds or content types of one scope
  std::int64_t ttl_ms_max = 30LL * 24 * 3600 * 1000;
  PredicateLimits predicate;
};

// A rule and a result check are the engine's types (engine/governance.h):
// the loader fills them, the engine applies them.
using ContractRule = engine::GovernanceRule;
using ResultCheck = engine::GovernanceResultCheck;

// Which facts a scope may post. A pattern is a name, a prefix ending in '*'
// ("ci.*"), or "*" for any.
struct SchemaGate {
  Scope scope = Scope::kRead;
  std::vector<std::string> kinds;
  std::vector<std::string> content_types;
};

struct Contract {
  std::string file;
  std::string sha256;  // lowercase hex SHA-256 of the file's bytes
  std::vector<ContractRule> rules;
  // Absent section: no gate (everyone may post anything). Present: a scope
  // that is not listed may post nothing.
  std::optional<std::vector<SchemaGate>> schema;
  std::vector<ResultCheck> result_checks;
};

// Reads and validates `path`.
Result<Contract> load_contract_file(const std::string& path, const ContractLimits& limits = {});
// The same from text; `file` names it in errors.
Result<Contract> parse_contract(std::string_view yaml, std::string_view file,
                                const ContractLimits& limits = {});

// What the engine applies: the rules and result checks, with the file's name
// and digest.
std::shared_ptr<const engine::Governance> to_governance(const Contract& c);

// The schema gate's answer (true when the contract has no schema section).
bool schema_allows(const Contract& c, Scope scope, std::string_view kind,
                   std::string_view content_type);

// True when `pattern` ("*", "prefix*" or an exact name) matches `name`.
bool pattern_matches(std::string_view pattern, std::string_view name);

}  // namespace cairn::server

// verify.h — client-side verification of a fact and its provenance (shell
// helpers over the pure model).
//
// A fact's id is the hex SHA-256 of the RFC 8785 canonical JSON of its five
// hashed fields {content, content_type, creator, derived_from, kind}
// (model/fact.h). `verify_provenance` fetches a fact, recomputes that id and
// compares it with the id it asked for, then walks `derived_from`
// breadth-first, each fact once, re-hashing every ancestor and recording the
// ones that are missing or malformed. The walk is bounded by VerifyLimits;
// a walk cut short says so (`truncated`), since an unchecked ancestor is not
// a verified one.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.h"
#include "model/status.h"

namespace cairn::client {

struct VerifyLimits {
  std::size_t facts_max = 10'000;  // facts fetched, the root included
  std::size_t depth_max = 1'000;   // derived_from hops from the root
};

enum class VerifyOutcome {
  kOk,         // re-hashes to its id
  kMismatch,   // re-hashes to another id (or the server labels it with another id)
  kMissing,    // referenced but not found (404)
  kMalformed,  // the fetched object lacks a hashed field or has one of the wrong type
};
std::string_view outcome_name(VerifyOutcome o);  // "ok", "mismatch", "missing", "malformed"

struct VerifiedFact {
  std::string id;             // the id asked for
  std::string kind;           // "" when missing or malformed
  std::size_t depth = 0;      // 0 for the root
  std::string referenced_by;  // the fact whose derived_from named it ("" for the root)
  VerifyOutcome outcome = VerifyOutcome::kOk;
  std::string computed_id;  // the recomputed id (when the fields were readable)
  std::string detail;       // why it is not ok
};

struct VerifyReport {
  std::string root;
  std::vector<VerifiedFact> facts;  // visit order (breadth-first)
  std::size_t mismatches = 0;
  std::size_t missing = 0;
  std::size_t malformed = 0;
  std::size_t max_depth = 0;  // deepest level visited
  bool truncated = false;     // a limit stopped the walk before every ancestor was checked
  std::string truncated_reason;
  bool ok() const { return mismatches == 0 && missing == 0 && malformed == 0 && !truncated; }
};

// Fetches one fact in its API form; a not_found Status means missing.
using FetchFact = std::function<Result<Json>(const std::string& id)>;

// Recomputes the id of a fact given in its API form (the five hashed fields
// plus anything else, which is ignored). content_type and derived_from take
// their defaults when absent. invalid when a field is missing or mistyped.
Result<std::string> recompute_fact_id(const Json& fact);

// Verifies `root` and its ancestors. Errors: the root's own not_found, and any
// fetch error other than not_found (the server is unreachable, refuses, ...).
Result<VerifyReport> verify_provenance(const std::string& root, const FetchFact& fetch,
                                       const VerifyLimits& limits = {});

// {"ok", "root", "checked", "mismatches", "missing", "malformed", "max_depth",
//  "truncated", "truncated_reason"?, "facts": [{id, kind, depth, outcome,
//  computed_id?, referenced_by?, detail?}]}
Json verify_report_to_json(const VerifyReport& r);

}  // namespace cairn::client

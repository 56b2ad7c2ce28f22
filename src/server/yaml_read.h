// yaml_read.h — reading cairnd's YAML files (shell; internal to src/server:
// config.cc, contract.cc and observe_config.cc include it, no public header
// does, so yaml-cpp stays out of them).
//
// Every error points into the file: the message is "FILE:LINE: field problem"
// and the details are {file, line, field}; the reason is the document's
// (invalid_config for cairn.yaml, invalid_contract for contract.yaml).
// yaml-cpp throws: callers wrap their use of these in one try block.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.h"
#include "model/predicate.h"
#include "model/status.h"

namespace cairn::server {

// The file being read and the reason its errors carry.
struct YamlDoc {
  std::string file;
  std::string reason;
};

// The node's 1-based line, or `fallback` when it has none.
std::size_t yaml_line(const YAML::Node& n, std::size_t fallback = 0);

// "FILE:LINE: message" with details {file, line, field}.
Status yaml_error_at(const YamlDoc& doc, std::size_t line, std::string_view field,
                     std::string message);
// "FILE:LINE: field problem" at node `n`.
Status yaml_error(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                  std::string_view problem);
// A syntax error yaml-cpp threw while parsing the file, at its line.
Status yaml_syntax_error(const YamlDoc& doc, const YAML::Exception& e);

// "a.b" (or "b" when `where` is empty) and "a[3]".
std::string yaml_join(std::string_view where, std::string_view key);
std::string yaml_index(std::string_view where, std::size_t i);

// `n` must be a map whose keys are among `allowed`, each at most once (YAML
// parsers keep a repeated key; yaml-cpp's lookups would see only the first).
Status only_members(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                    std::initializer_list<std::string_view> allowed);

// An integer scalar in [lo, hi].
Status read_bounded(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                    std::int64_t lo, std::int64_t hi, std::int64_t& out);

// YAML → Json: quoted scalars are strings; plain scalars are null (null, ~,
// empty), booleans (true/false), JSON numbers, or strings; maps (no repeated
// keys) are objects, sequences arrays; at most 16 levels deep.
Result<Json> yaml_to_json(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                          std::size_t depth = 0);

// A predicate map (model/predicate.h), or a result check when
// `result_check`; the error points at the offending member's line.
Result<Predicate> read_predicate(const YamlDoc& doc, const YAML::Node& n, std::string_view where,
                                 const PredicateLimits& limits, bool result_check);
// A list of at most `max` of them; absent or null: none.
Result<std::vector<Predicate>> read_predicates(const YamlDoc& doc, const YAML::Node& n,
                                               std::string_view where, std::size_t max,
                                               const PredicateLimits& limits, bool result_check);

}  // namespace cairn::server

// predicate.h — predicates on a JSON document by path (pure).
//
// The condition language of contracts: a rule's `when` tests a posted fact's
// content, a result check tests a concluded intent's result. A predicate is
//
//   {"path": "$.score", "op": "gt", "value": 3}
//
// and evaluates to true or false on any Json document. Evaluation never fails:
// a missing path or a value of the wrong type makes the predicate false (the
// one exception is `exists` with "value": false, which asks for absence).
//
// Path syntax (a small subset of JSONPath):
//
//   path  = "$" step*
//   step  = "." name | "[" index "]" | "[" quoted "]"
//   name  = 1*( ALPHA / DIGIT / "_" / "-" )           an object member
//   index = "0" / ( %x31-39 *8DIGIT )                 an array element (< 10^9)
//   quoted = DQUOTE *( char / "\" DQUOTE / "\\" ) DQUOTE  any member name
//
// `$` alone is the whole document. A name or quoted step on a non-object, or
// an index step on a non-array, finds nothing: `$.a.0` never indexes an array
// and `$.a[0]` never reads a member called "0".
//
// Operators (`value` is the predicate's operand; "the value" is what the path
// finds):
//
//   eq, ne          same JSON type and deep-equal / not deep-equal. Numbers
//                   compare as numbers (1 == 1.0). A value of another type
//                   than the operand makes both false.
//   gt lt ge le     numbers numerically, strings by Unicode code points (UTF-8
//                   byte order); the operand must be a number or a string;
//                   any other pairing is false.
//   exists          the path finds a value (null counts). With "value": false
//                   (optional; default true) the path must find nothing.
//   in              the operand is an array of at most in_values_max items; true
//                   when the value is eq to one of them.
//   prefix          operand and value are strings and the value starts with it.
//   positive        the value is a number > 0 (no operand).
//   even            the value is an integer within ±2^53 divisible by 2 (no
//                   operand).
//
// Parsing refuses predicates that could never be meaningful with `invalid`
// (reason "invalid_field", details.field naming the member, prefixed by the
// caller's location), unknown members with "unknown_field", and size bounds
// with `too_large`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.h"
#include "model/status.h"

namespace cairn {

struct PredicateLimits {
  std::size_t path_bytes_max = 256;  // the path text
  std::size_t path_steps_max = 16;   // steps after `$` (the depth a path reaches)
  std::size_t in_values_max = 64;    // operands of `in`
  // Canonical (JCS) size of the operand (eq/ne may compare whole objects).
  std::size_t value_bytes_max = 4096;
};

// One step of a path: a member name or an array index.
struct PathStep {
  bool is_index = false;
  std::string name;         // when !is_index
  std::uint32_t index = 0;  // when is_index

  friend bool operator==(const PathStep&, const PathStep&) = default;
};

struct JsonPath {
  std::string text;  // as written, e.g. "$.a[0]"
  std::vector<PathStep> steps;
};

// Parses `text` with the grammar above. Errors: `invalid` / "invalid_path"
// (message names the byte offset), `too_large` when a bound is exceeded.
Result<JsonPath> parse_json_path(std::string_view text, const PredicateLimits& limits);

// The value at `path` in `doc`, or nullptr when there is none.
const Json* resolve(const JsonPath& path, const Json& doc);

enum class PredicateOp : std::uint8_t {
  kEq,
  kNe,
  kGt,
  kLt,
  kGe,
  kLe,
  kExists,
  kIn,
  kPrefix,
  kPositive,
  kEven,
};

// "eq", "ne", ... as written in predicates.
std::string_view op_name(PredicateOp op);
bool op_from_name(std::string_view name, PredicateOp& out);

struct Predicate {
  JsonPath path;
  PredicateOp op = PredicateOp::kExists;
  // The operand: null for positive/even, a bool for exists, an array for in.
  Json value;
};

// Parses {"path", "op", "value"?}. `where` prefixes every field name in
// errors (e.g. "when.match[2]" gives field "when.match[2].op"); empty for
// none.
Result<Predicate> parse_predicate(const Json& obj, const PredicateLimits& limits,
                                  std::string_view where = {});

// Parses a result check: a predicate restricted to the numeric operators
// eq, ne, gt, lt, ge, le (with a number operand), positive and even.
Result<Predicate> parse_result_check(const Json& obj, const PredicateLimits& limits,
                                     std::string_view where = {});

// The predicate as JSON ({"path", "op", "value"?}); parses back to an equal
// predicate.
Json predicate_to_json(const Predicate& p);

// True when `doc` satisfies `p`. Total: never fails, never asserts on input.
bool evaluate(const Predicate& p, const Json& doc);

// True when every predicate holds (an empty list holds).
bool evaluate_all(const std::vector<Predicate>& ps, const Json& doc);

}  // namespace cairn

// json_parse.h — strict JSON text → Json value (pure).
//
// RFC 8259 grammar, UTF-8 only (invalid UTF-8 and lone surrogate escapes are
// rejected), duplicate object keys rejected, one value per text with only
// whitespace around it. Every dimension is bounded by JsonLimits; exceeding a
// bound is an error value, never a crash.
//
// Errors (Status):
//   invalid  reason "invalid_json"   — not JSON (message names the byte offset)
//   invalid  reason "duplicate_key"  — an object repeats a key
//   invalid  reason "json_too_deep"  — nesting beyond depth_max
//   invalid  reason "number_out_of_range" — a number that is not a finite double
//   too_large reason "too_large"     — text, string, array or object over its bound
#pragma once

#include <cstddef>
#include <string_view>

#include "model/json.h"
#include "model/status.h"

namespace cairn {

struct JsonLimits {
  std::size_t text_bytes_max = 8u << 20;    // whole input
  std::size_t depth_max = 64;               // nested arrays/objects
  std::size_t string_bytes_max = 1u << 20;  // one string (key or value), decoded
  std::size_t array_items_max = 100'000;    // one array
  std::size_t object_members_max = 10'000;  // one object
};

Result<Json> parse_json(std::string_view text, const JsonLimits& limits = JsonLimits{});

}  // namespace cairn

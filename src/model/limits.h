// limits.h — the named bounds of cairn's data model (pure).
//
// Every string, list and payload a client can send has a bound here, with its
// unit in the name. Validation (validate.h) enforces them; exceeding a size
// bound is `too_large`, breaking a shape rule is `invalid`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cairn {

struct ModelLimits {
  // Kinds of facts, intents and hints: [A-Za-z0-9] then [A-Za-z0-9._:-].
  std::size_t kind_bytes_max = 128;
  // Names of agents, creators, lanes, identities, dependency keys and
  // client-chosen ids: [A-Za-z0-9] then [A-Za-z0-9._:@/+=-].
  std::size_t name_bytes_max = 128;
  std::size_t content_type_bytes_max = 128;
  // Canonical (JCS) size of a fact's content and of an intent's spec.
  std::size_t content_bytes_max = 1u << 20;
  std::size_t spec_bytes_max = 256u << 10;
  std::size_t derived_from_max = 256;
  std::size_t from_facts_max = 256;
  std::size_t requires_max = 64;
  std::size_t reason_bytes_max = 1024;
  std::size_t error_bytes_max = 4096;  // a failure's detail (truncated, not refused)

  std::int64_t priority_abs_max = 1'000'000'000;
  std::int64_t lease_ttl_ms_min = 100;
  std::int64_t lease_ttl_ms_max = 24LL * 3600 * 1000;
  std::int64_t lease_ttl_ms_default = 30'000;
  std::int64_t max_attempts_max = 1000;
  std::int64_t max_attempts_default = 3;
  std::int64_t hint_cap_max = 1'000'000;
  // An intent's cost against its lane budget (default 1).
  std::int64_t cost_units_max = 1'000'000;
  // An intent's stale_after_ms (0 = never stale): at most a year.
  std::int64_t stale_after_ms_max = 365LL * 24 * 3600 * 1000;
};

}  // namespace cairn

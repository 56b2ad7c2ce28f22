// duration.h — durations as cairn.yaml spells them (shell helper, no I/O).
#pragma once

#include <cstdint>
#include <string_view>

#include "model/status.h"

namespace cairn::senses {

// The longest duration the file may name: 366 days.
inline constexpr std::int64_t kDurationMsMax = 366LL * 24 * 3'600'000;

// "250ms", "5s", "10m", "1h", "1d" (a positive integer and one unit; no
// spaces, no fractions, no bare numbers) → milliseconds in 1..kDurationMsMax.
// Anything else: invalid, reason "invalid_duration".
Result<std::int64_t> parse_duration_ms(std::string_view text);

}  // namespace cairn::senses

// duration.cc — see duration.h.
#include "senses/duration.h"

#include <charconv>
#include <string>

namespace cairn::senses {

Result<std::int64_t> parse_duration_ms(std::string_view text) {
  const auto bad = [&] {
    return invalid("duration \"" + std::string(text.substr(0, 64)) +
                       "\" must be a positive integer with a unit: ms, s, m, h or d (e.g. 30s)",
                   "invalid_duration");
  };
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return bad();
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (ec != std::errc() || p != text.data() + digits || n <= 0) return bad();
  const std::string_view unit = text.substr(digits);
  std::int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1'000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit == "d") {
    scale = 86'400'000;
  } else {
    return bad();
  }
  if (n > kDurationMsMax / scale) {
    return invalid("duration \"" + std::string(text) + "\" is longer than 366d",
                   "invalid_duration");
  }
  return n * scale;
}

}  // namespace cairn::senses

// clock.cc — SimClock.
#include "model/clock.h"

#include "model/assert.h"

namespace cairn {

void SimClock::advance_ms(std::int64_t ms) {
  CAIRN_ASSERT(ms >= 0);
  mono_ns_ += ms * 1'000'000;
  wall_ms_ += ms;
}

void SimClock::advance_ns(std::int64_t ns) {
  CAIRN_ASSERT(ns >= 0);
  mono_ns_ += ns;
  sub_ms_ns_ += ns;
  wall_ms_ += sub_ms_ns_ / 1'000'000;
  sub_ms_ns_ %= 1'000'000;
}

}  // namespace cairn

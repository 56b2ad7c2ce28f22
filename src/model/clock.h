// clock.h — the only way time enters the pure layers.
//
// Two readings: monotonic time (for durations, timers, latency) and wall time
// (epoch milliseconds, for lease ends, backoff ends and expiries that clients
// see and that survive restarts). The shell gives the core a real clock; the
// simulator and tests give it a SimClock they move by hand.
#pragma once

#include <cstdint>

namespace cairn {

class Clock {
 public:
  virtual ~Clock() = default;
  // Nanoseconds since an arbitrary fixed origin; never goes backwards.
  virtual std::int64_t monotonic_ns() const = 0;
  // Milliseconds since the Unix epoch (UTC). May jump (NTP, operator).
  virtual std::int64_t wall_ms() const = 0;

  std::int64_t monotonic_ms() const { return monotonic_ns() / 1'000'000; }
};

// A clock moved only by its owner: deterministic time for the engine,
// simulator and tests. Monotonic time never goes backwards (asserted);
// wall time may be set anywhere, including backwards, to model clock jumps.
class SimClock final : public Clock {
 public:
  explicit SimClock(std::int64_t wall_ms_start = 1'700'000'000'000, std::int64_t mono_ns_start = 0)
      : mono_ns_(mono_ns_start), wall_ms_(wall_ms_start) {}

  std::int64_t monotonic_ns() const override { return mono_ns_; }
  std::int64_t wall_ms() const override { return wall_ms_; }

  // Moves both readings forward by `ms` (REQUIRES: ms >= 0).
  void advance_ms(std::int64_t ms);
  // Moves monotonic time forward by `ns` (and wall time by the whole ms).
  void advance_ns(std::int64_t ns);
  // Jumps wall time to `wall_ms` without touching monotonic time.
  void set_wall_ms(std::int64_t wall_ms) { wall_ms_ = wall_ms; }

 private:
  std::int64_t mono_ns_;
  std::int64_t wall_ms_;
  std::int64_t sub_ms_ns_ = 0;  // monotonic ns not yet carried into wall time
};

}  // namespace cairn

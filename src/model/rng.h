// rng.h — the only way randomness enters the pure layers.
//
// The shell seeds a SeededRng from the OS; the simulator and tests seed it
// from a fixed number so every run replays exactly. The generator is
// xoshiro256** seeded through splitmix64: fast, small state, identical output
// on every platform (no std::random distributions, whose output is
// implementation-defined).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace cairn {

class Rng {
 public:
  virtual ~Rng() = default;
  virtual std::uint64_t next_u64() = 0;

  // Uniform in [0, bound) without modulo bias. REQUIRES: bound > 0.
  std::uint64_t uniform(std::uint64_t bound);
  // Uniform in [lo, hi]. REQUIRES: lo <= hi.
  std::int64_t range(std::int64_t lo, std::int64_t hi);
  // Uniform in [0, 1).
  double unit();
  // True with probability p (p in [0, 1]).
  bool chance(double p);
  // `n_bytes` random bytes as lowercase hex (2·n_bytes characters).
  std::string hex(std::size_t n_bytes);
};

class SeededRng final : public Rng {
 public:
  explicit SeededRng(std::uint64_t seed);
  std::uint64_t next_u64() override;

  // The generator's full state, for snapshots; restore reproduces the stream.
  std::array<std::uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<std::uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<std::uint64_t, 4> s_;
};

}  // namespace cairn

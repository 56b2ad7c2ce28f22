// cairn-sim — run the deterministic simulator over one seed or a range.
//
//   cairn-sim --seed N | --seeds A..B [--steps K] [--canary | --canary-wake] [--quiet] [--log]
//
// For every seed it prints one line (seed, trace hash, steps, simulated ms,
// verdict) and, unless --quiet, the run's details; a failing seed also gets
// its violations and the command that replays it. Lines starting with
// "seed " are identical natively and on wasm32 (`make wasm-test` compares
// them); the closing "cairn-sim:" line carries wall time and differs.
//
// Exit status: 0 when no seed found a violation, 1 when one did, 2 on a
// usage error. With --canary (the engine's fencing check is broken on
// purpose) the verdict flips: a seed passes when the checkers catch the
// break (an I1 violation), and the exit status is 0 when they caught it in
// at least half of the seeds run (every seed usually; some seeds never
// produce a stale-epoch request at all). --canary-wake does the same for a
// skipped wake (a new fact leaves the intents deferred on it waiting): the
// checkers must report I7.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sim/simulator.h"

namespace {

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --seed N | --seeds A..B [--steps K] [--canary | --canary-wake] [--quiet] "
               "[--log]\n"
               "  --seed N      run one seed\n"
               "  --seeds A..B  run seeds A through B (inclusive)\n"
               "  --steps K     events in the fault phase (default %llu)\n"
               "  --canary      break the engine's epoch check; the checkers must catch it\n"
               "  --canary-wake skip the wake of deferred intents; the checkers must catch it\n"
               "  --quiet       one line per seed\n"
               "  --log         print every request, reply, commit and fault of the run\n",
               argv0, static_cast<unsigned long long>(cairn::sim::SimOptions::kDefaultSteps));
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t first = 0, last = 0, steps = cairn::sim::SimOptions::kDefaultSteps;
  bool have_seed = false, canary = false, canary_wake = false, quiet = false, log = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--seed" && has_value) {
      if (!parse_u64(argv[++i], first)) return usage(argv[0]), 2;
      last = first;
      have_seed = true;
    } else if (arg == "--seeds" && has_value) {
      const std::string_view range = argv[++i];
      const auto dots = range.find("..");
      if (dots == std::string_view::npos || !parse_u64(range.substr(0, dots), first) ||
          !parse_u64(range.substr(dots + 2), last) || last < first) {
        return usage(argv[0]), 2;
      }
      have_seed = true;
    } else if (arg == "--steps" && has_value) {
      if (!parse_u64(argv[++i], steps) || steps == 0) return usage(argv[0]), 2;
    } else if (arg == "--canary") {
      canary = true;
    } else if (arg == "--canary-wake") {
      canary_wake = true;
    } else if (arg == "--quiet") {
      quiet = true;
    } else if (arg == "--log") {
      log = true;
    } else {
      usage(argv[0]);
      return 2;
    }
  }
  if (!have_seed || (canary && canary_wake)) {
    usage(argv[0]);
    return 2;
  }

  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t seeds = 0, failed = 0, caught = 0, total_steps = 0;
  for (std::uint64_t seed = first;; ++seed) {
    cairn::sim::SimOptions o;
    o.seed = seed;
    o.steps = steps;
    o.canary = canary;
    o.canary_wake = canary_wake;
    o.log = log;
    const cairn::sim::SimResult r = cairn::sim::run_simulation(o);
    ++seeds;
    total_steps += r.summary.steps;
    if (!r.ok()) ++failed;
    if (r.caught(canary_wake ? "I7" : "I1")) ++caught;
    for (const std::string& line : r.log) std::printf("  | %s\n", line.c_str());
    std::printf("%s\n", cairn::sim::result_line(o, r).c_str());
    if (!quiet || (!r.ok() && !canary && !canary_wake)) {
      std::printf("%s", cairn::sim::result_details(o, r).c_str());
    }
    std::fflush(stdout);
    if (seed == last) break;
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("cairn-sim: %llu seeds, %llu with violations, %llu steps in %.2f s (%.0f steps/s)\n",
              static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(failed),
              static_cast<unsigned long long>(total_steps), wall_s,
              wall_s > 0 ? static_cast<double>(total_steps) / wall_s : 0.0);
  if (canary || canary_wake) {
    std::printf("canary: the %s was caught (%s) in %llu of %llu seeds\n",
                canary ? "broken epoch check" : "skipped wake", canary ? "I1" : "I7",
                static_cast<unsigned long long>(caught), static_cast<unsigned long long>(seeds));
    return 2 * caught >= seeds ? 0 : 1;
  }
  return failed == 0 ? 0 : 1;
}

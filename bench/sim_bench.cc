// sim_bench.cc — how fast the deterministic simulator runs, one thread.
//
//   BM_SimulatorSeed/steps:N   one whole run per iteration (fault phase of N
//       events, then the calm phase until every intent is terminal), a new
//       seed each time. Counters: steps/s (simulator events per second,
//       engine polls, store commits and checkers included) and seeds/s.
//       A seed that finds a violation stops early; the rates stay honest
//       because they count the steps actually run.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "sim/simulator.h"

namespace cairn::sim {
namespace {

void BM_SimulatorSeed(benchmark::State& state) {
  std::uint64_t seed = 1;
  std::uint64_t steps = 0;
  for (auto _ : state) {
    SimOptions o;
    o.seed = seed++;
    o.steps = static_cast<std::uint64_t>(state.range(0));
    SimResult r = run_simulation(o);
    steps += r.summary.steps;
    benchmark::DoNotOptimize(r.trace_hash);
  }
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsRate);
  state.counters["seeds/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimulatorSeed)
    ->ArgName("steps")
    ->Arg(SimOptions::kDefaultSteps)
    ->Arg(5'000)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

}  // namespace
}  // namespace cairn::sim

// simulator.h — cairn's deterministic simulator (pure).
//
// One run drives one engine (engine/engine.h) with simulated agents
// (sim/agents.h) over a MemoryStore behind a FaultStore, for one seed. It is
// a discrete-event simulation on one thread: the simulator owns time (wall
// ms), and every choice — the cast of agents, their behaviour, network and
// commit latencies, which commit fails and how, when the engine crashes,
// when its clock jumps — is drawn from SeededRngs derived from the seed. The
// same seed therefore gives the same run, byte for byte, natively and on
// wasm32; the trace hash (SHA-256 over engine::describe() of every effect the
// engine emitted, in order) is the evidence.
//
// A run has two phases:
//   1. faults (`steps` events): commit failures, outcome_unknown commits
//      (applied or not, then resync), commit latency, store crashes, engine
//      crashes (everything not committed is lost; restart restores the last
//      snapshot or loads the store afresh), engine clock jumps, and agents
//      that pause, crash, drift, retry and misbehave. Safety is checked
//      after every event (sim/checker.h).
//   2. calm: faults off, agents behave, hints are lifted; every intent must
//      reach a terminal state within `liveness_ms_max` of simulated time.
//
// A violation stops the run at the end of the step that found it; the
// result names the invariant, the step and the command line that replays it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/checker.h"

namespace cairn::sim {

struct SimOptions {
  static constexpr std::uint64_t kDefaultSteps = 1'500;
  std::uint64_t seed = 1;
  std::uint64_t steps = kDefaultSteps;  // events in the fault phase
  // Test hook: the engine accepts heartbeat / conclude / fail with any epoch
  // (engine::Engine::set_canary_broken_epoch_check); the checkers must catch it.
  bool canary = false;
  // Test hook: a new fact does not wake the intents deferred on it
  // (engine::Engine::set_canary_skipped_wake); the checkers must report I7.
  bool canary_wake = false;
  // Liveness bound for the calm phase, in simulated time and in events.
  std::int64_t liveness_ms_max = 30 * 60'000;
  std::uint64_t liveness_steps_max = 400'000;
  // The calm phase also fails early when the store stops changing for this
  // long while intents are left: every wait in a run (backoff, deferral,
  // lease, hint expiry) is far shorter.
  std::int64_t stall_ms_max = 5 * 60'000;
  // Keep a line per request, reply, commit and fault (SimResult::log), for
  // reading a failing run.
  bool log = false;
};

struct SimSummary {
  std::uint64_t steps = 0;       // events processed, both phases
  std::uint64_t calm_steps = 0;  // of which in the calm phase
  std::int64_t sim_ms = 0;       // simulated time elapsed
  std::int64_t calm_ms = 0;      // of which in the calm phase (until all terminal)
  std::uint64_t agents = 0;
  std::uint64_t requests = 0;      // sent by agents
  std::uint64_t replies = 0;       // ReplyEffects from the engine
  std::uint64_t acked_writes = 0;  // 2xx replies to mutations
  std::uint64_t overloaded = 0;    // refused at submit (ingress full)
  std::uint64_t refused_down = 0;  // arrived while the engine was down
  std::uint64_t commits = 0;
  std::uint64_t commit_faults = 0;
  std::uint64_t store_crashes = 0;
  std::uint64_t resyncs = 0;
  std::uint64_t engine_crashes = 0;
  std::uint64_t restores = 0;      // restarts from a snapshot
  std::uint64_t fresh_starts = 0;  // restarts without one (load)
  std::uint64_t snapshots = 0;
  std::uint64_t clock_jumps = 0;
  std::uint64_t pauses = 0;
  std::uint64_t agent_crashes = 0;
  std::uint64_t request_timeouts = 0;
  std::uint64_t idem_compared = 0;  // keyed retries whose reply was compared
  std::uint64_t replay_checks = 0;  // I8 fresh-load comparisons
  std::uint64_t plan_checks = 0;    // I7 checkpoints (the engine's plan against its state)
  std::uint64_t deferrals = 0;      // intent.deferred events checked
  std::uint64_t wakes = 0;          // intent.ready events checked
  std::uint64_t events = 0;         // durable events at the end
  std::uint64_t facts = 0;
  std::uint64_t hints = 0;
  std::uint64_t intents[kIntentStateCount] = {};  // final state counts
};

struct SimResult {
  std::string trace_hash;  // lowercase hex SHA-256
  SimSummary summary;
  std::vector<Violation> violations;
  std::string cast;              // the agents, e.g. "producer(normal) w1-normal ..."
  std::string knobs;             // the drawn fault settings
  std::vector<std::string> log;  // when SimOptions::log
  bool ok() const { return violations.empty(); }
  // A canary counts as caught when the checkers found its invariant: I1
  // for the broken epoch check, I7 for the skipped wake.
  bool caught(std::string_view invariant) const;
  bool caught_i1() const { return caught("I1"); }
};

SimResult run_simulation(const SimOptions& options);

// The command that replays `options`: "build/bin/cairn-sim --seed N ...".
std::string replay_command(const SimOptions& options);

// One line: "seed N trace <hex> steps S sim_ms M ok|violation" — identical
// natively and on wasm32 (no wall time in it).
std::string result_line(const SimOptions& options, const SimResult& r);
// Multi-line details: cast, knobs, counters, final states, violations.
std::string result_details(const SimOptions& options, const SimResult& r);

}  // namespace cairn::sim

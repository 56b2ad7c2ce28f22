// checker.h — the simulator's invariant checkers (pure).
//
// The checker never asks the engine whether it behaved: it rebuilds what
// happened from the durable record — the event log and the records in the
// store (read straight from the MemoryStore, below the fault injector) — and
// from what the simulated clients were told (acknowledged replies, published
// events). Each check restates a rule of ARCHITECTURE.md "Invariants" in the
// most direct way, independently of core/lifecycle.cc:
//
//   I1  per intent, a claim starts a lease (epoch + 1, no other live lease);
//       renewed / concluded / failed / dead need the holder, the current
//       epoch and `at` before the lease end; released needs holder + epoch;
//       expired needs `at` at or past the lease end.
//   I2  concluded at most once; the result fact exists and x/fc links it.
//   I3  every published event is in the store, identical, in increasing
//       order; every acknowledged write is in the durable log, and after a
//       restart in the new engine's hot state.
//   I4  every recorded fact re-hashes to its id; fact records and events
//       never change once written.
//   I5  derived_from / from_facts / hint derived_from name facts recorded
//       earlier in the log.
//   I6  a claim never exceeds the per-agent lease limit nor its lane
//       budget (claimed intents per budget key, and their cost_units), and
//       no live hint denies, defers, caps or gates it at the time of the
//       claim.
//   I7  every wait is explained and clears without polling: a deferral
//       names a dependency of the intent that is really not ready; ready,
//       stale and coalesced follow their rules; a claimed intent's
//       dependencies are ready; a fact that makes every dependency of a
//       deferred intent ready reopens it in the same commit. At
//       checkpoints (check_replay with an AdmissionProbe): the engine's
//       plan gives every open and deferred intent exactly one reason,
//       deferred ⇔ missing_dependency of its own key (really missing),
//       claim_next on the same state takes the plan's first admitted
//       intent, and no parked long-poll waits while the plan admits an
//       intent its filter matches.
//   I8  the engine's hot state equals a fresh Blackboard loaded from the
//       store (whenever the engine is idle).
//   IDEM one idempotent request never creates two intents or hints (each
//       carries a token the checker counts).
//
// Violations are recorded with the simulator's step number; the simulator
// stops a run at the end of the step that found the first one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/blackboard.h"
#include "model/event.h"
#include "model/hint.h"
#include "model/intent.h"
#include "model/limits.h"
#include "model/sha256.h"
#include "plan/plan.h"
#include "store/memory_store.h"

namespace cairn::sim {

struct Violation {
  std::string invariant;  // "I1" ... "I8", "IDEM", "LIVENESS"
  std::uint64_t step = 0;
  std::string detail;
};

// An acknowledged (2xx) mutation a client was told about, for I3.
struct AckedWrite {
  enum class Kind : std::uint8_t {
    kFact,       // id: the fact exists
    kIntent,     // id: the intent exists
    kHint,       // id: the hint exists
    kClaim,      // id, epoch: the claim is in the log
    kHeartbeat,  // id, epoch: a renewal with that epoch is in the log
    kConclude,   // id, result: the intent is concluded with that result
    kFail,       // id, epoch: a failure with that epoch is in the log
    kCancel,     // id: the intent is cancelled
    kRevoke,     // id: the hint is revoked
  };
  Kind kind = Kind::kFact;
  std::string id;
  std::uint64_t epoch = 0;
  std::string result;
  std::uint64_t step = 0;
};

// What the checker needs at an I7 checkpoint besides the store: the
// engine's plan and the long-polls it has parked.
struct AdmissionProbe {
  const Plan* plan = nullptr;  // the engine's plan as of now_ms
  std::string plan_error;      // why there is none
  // The engine has timer work due (tick() would change states) or is
  // holding off after failed commits: only the time-independent checks run.
  bool timers_due = false;
  struct Waiter {
    std::string agent;
    ClaimFilter filter;
  };
  // Long-polls parked in the engine whose agent passes the engine's gates
  // (not down, not backing off, under the lease limit).
  std::vector<Waiter> parked;
};

struct CheckerConfig {
  ModelLimits limits;
  AdmissionConfig admission;             // lane budgets (I6)
  std::size_t leases_per_agent_max = 0;  // 0: unchecked
  std::size_t violations_max = 16;       // stop recording past this many
};

class Checker {
 public:
  Checker(store::MemoryStore& store, CheckerConfig config);

  void set_step(std::uint64_t step) { step_ = step; }

  // Reads the events the store gained since the last scan and checks each
  // (I1, I2, I4, I5, I6, IDEM); then verifies the acknowledgements received
  // since the last scan against the durable log (I3).
  void scan();
  // Events a PublishEffect carried (I3: durable, identical, increasing).
  void on_publish(const std::vector<Event>& events);
  // A 2xx reply to a mutation. Checked at the next scan().
  void on_ack(AckedWrite w);
  // I3 after a restart: every acknowledged write is visible in `bb`.
  void check_acks_against(const Blackboard& bb);
  // I8: `bb` equals a fresh load of the store. REQUIRES: the engine is idle
  // (no commit in flight, nothing undrained). With `probe`, the I7
  // checkpoint runs too (on the same fresh load).
  void check_replay(const Blackboard& bb, std::int64_t now_ms,
                    const AdmissionProbe* probe = nullptr);
  // I7 checks that need no fresh load: the plan against the engine's state
  // and the parked long-polls (cheap; run often).
  void check_plan(const Blackboard& bb, const AdmissionProbe& probe, std::int64_t now_ms);
  // A full pass at the end: every fact re-hashes (I4) and resolves (I5),
  // every intent's from_facts resolves, the stored log is unchanged since it
  // was checked (I4), every acknowledgement holds in the store (I3).
  void final_checks();

  // For checks the simulator makes itself (IDEM replies, LIVENESS, I4 ids).
  void report(std::string invariant, std::string detail);

  const std::vector<Violation>& violations() const { return violations_; }
  bool failed() const { return !violations_.empty(); }
  bool found(std::string_view invariant) const;
  std::uint64_t events_checked() const { return last_seq_; }
  std::uint64_t replays_checked() const { return replays_checked_; }
  std::uint64_t plans_checked() const { return plans_checked_; }
  std::uint64_t deferrals() const { return deferrals_; }
  std::uint64_t wakes() const { return wakes_; }

 private:
  struct IntentView {
    bool defined = false;
    IntentDef def;
    bool claimed = false;  // a lease started and has not ended in the log
    std::uint64_t epoch = 0;
    std::int64_t lease_end = 0;
    std::string holder;
    bool deferred = false;  // per the log: intent.deferred and no intent.ready since
    bool terminal = false;
    IntentState final_state = IntentState::kOpen;
    int concluded = 0;
    std::string result;
    std::set<std::uint64_t> claimed_epochs;
    std::set<std::uint64_t> renewed_epochs;
    std::set<std::uint64_t> failed_epochs;
  };
  struct HintView {
    bool recorded = false;
    Hint rec;           // the record as first read (selector, effect, expiry are immutable)
    bool live = false;  // per the log: created, neither revoked nor expired yet
    bool revoked = false;
  };

  void check_event(const Event& e, std::string_view raw);
  void on_fact_recorded(const Event& e);
  void on_intent_created(const Event& e);
  void on_hint_created(const Event& e);
  void on_claimed(const Event& e, IntentView& v);
  void check_ack(const AckedWrite& w);
  // Admission (I6 budgets, I7).
  std::string budget_key(const IntentDef& d) const;
  const LaneBudget* budget_for(const std::string& key) const;
  // Is `key` ready at `at` per the log (facts recorded, newest per kind)?
  bool ready(const std::string& key, std::int64_t at) const;
  std::optional<std::string> first_missing(const IntentDef& d, std::int64_t at) const;
  void on_admission_event(const Event& e, IntentView& v, const std::string& where);
  void on_fact_for_waiters(const Event& e);
  void check_wakes();
  void check_claim_admission(const Event& e, IntentView& v, const std::string& where);
  void check_admission(Blackboard& fresh, const AdmissionProbe& probe, std::int64_t now_ms);
  bool store_has(const std::string& key);
  void note_token(std::map<std::string, std::uint64_t>& seen, const std::string& token,
                  std::uint64_t seq, std::string_view what);

  store::MemoryStore& store_;
  CheckerConfig config_;
  std::uint64_t step_ = 0;
  std::vector<Violation> violations_;

  std::uint64_t last_seq_ = 0;         // events checked so far
  std::vector<Digest> event_digests_;  // SHA-256 of each checked event record, by seq-1
  std::uint64_t last_published_ = 0;
  std::map<std::string, IntentView> intents_;
  std::map<std::string, HintView> hints_;
  std::map<std::string, Digest> facts_;  // id → SHA-256 of its record
  std::set<std::string> fact_kinds_;
  std::map<std::string, std::int64_t> kind_newest_at_;  // kind → newest fact's recorded time
  // Budget key → (claimed intents, their cost_units) per the log.
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> running_;
  // Deferred intents a fact of the current scan made ready: intent → fact.
  std::map<std::string, std::string> must_wake_;
  std::set<std::string> deferred_;                      // intents deferred per the log
  std::map<std::string, std::set<std::string>> held_;   // agent → intents it holds per the log
  std::map<std::string, std::uint64_t> intent_tokens_;  // spec.token → seq of intent.created
  std::map<std::string, std::uint64_t> hint_tokens_;    // reason → seq of hint.created
  std::vector<AckedWrite> acks_;                        // all acknowledgements
  std::size_t acks_checked_ = 0;                        // prefix of acks_ checked in the log
  std::uint64_t replays_checked_ = 0;
  std::uint64_t plans_checked_ = 0;
  std::uint64_t deferrals_ = 0;
  std::uint64_t wakes_ = 0;
};

}  // namespace cairn::sim

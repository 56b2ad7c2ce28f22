// schedule.h — when a sense runs next (shell helper: no I/O, no clock of its
// own; every call takes the caller's monotonic `now` in ms, so tests drive it
// with any times they like).
//
// One SenseSchedule per sense. The rules (docs/senses.md#scheduling):
//   - interval: a run is due `interval_ms` after the previous run started
//     (the first one at start). A due time that passed during a run or a
//     backoff gives one run, not a burst of catch-up runs.
//   - triggers (a fact of an `on:` kind, a reflex's `run:`): a run is due at
//     once. Triggers that arrive while a run is going, while the throttle
//     window is closed or during a backoff collapse into ONE pending run,
//     which serves the newest trigger.
//   - runs never overlap: nothing is due while one is running.
//   - throttle: a run starts at least `throttle_ms` after the previous start.
//   - backoff: after `n` failures in a row the next run waits
//     min(backoff_initial_ms · 2^(n−1), backoff_max_ms) after the failed
//     run ended; one success resets it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/json.h"

namespace cairn::senses {

struct SchedulePolicy {
  std::int64_t interval_ms = 0;  // 0: none
  std::int64_t throttle_ms = 0;  // 0: none
  std::int64_t backoff_initial_ms = 1'000;
  std::int64_t backoff_max_ms = 300'000;
};

// Why a run starts: what the sense reads as `trigger` on stdin.
struct Trigger {
  std::string type;    // "interval" | "fact" | "reflex"
  std::string fact;    // the fact's id (fact, reflex)
  std::string kind;    // the fact's kind (fact, reflex)
  Json content;        // the fact's content (fact, reflex)
  std::string reflex;  // the reflex that ran the sense (reflex)
  Json to_json() const;
  // The inverse of to_json (runtime.db keeps a pending trigger); nullopt for
  // anything to_json does not produce.
  static std::optional<Trigger> from_json(const Json& j);
};

class SenseSchedule {
 public:
  SenseSchedule(SchedulePolicy policy, std::int64_t now_ms);

  // A trigger arrived. It becomes the pending one (replacing an older pending
  // trigger, which is counted in coalesced()).
  void trigger(Trigger t);
  // When the next run may start (≥ the given times' rules above), or nullopt
  // when nothing is due ever (no interval, no pending trigger) or a run is
  // going.
  std::optional<std::int64_t> next_run_at() const;
  // Starts a run at `now` (REQUIRES: next_run_at() <= now). Returns what the
  // run serves: the pending trigger if there is one, else the interval.
  Trigger start(std::int64_t now_ms);
  // The run that start() began has ended.
  void finish(std::int64_t now_ms, bool ok);
  // Failures in a row carried over from before a restart (shown as health;
  // the backoff itself starts afresh).
  void restore_failures(std::int64_t n) { failures_ = n; }

  bool running() const { return running_; }
  bool pending() const { return pending_.has_value(); }
  const std::optional<Trigger>& pending_trigger() const { return pending_; }
  std::int64_t failures() const { return failures_; }
  std::int64_t coalesced() const { return coalesced_; }
  std::int64_t runs() const { return runs_; }
  // The current backoff's end (0: none).
  std::int64_t backoff_until() const { return backoff_until_; }
  const SchedulePolicy& policy() const { return policy_; }

 private:
  SchedulePolicy policy_;
  bool running_ = false;
  std::optional<Trigger> pending_;
  std::int64_t interval_due_ = 0;  // valid when policy_.interval_ms > 0
  std::optional<std::int64_t> last_start_;
  std::int64_t backoff_until_ = 0;
  std::int64_t failures_ = 0;
  std::int64_t coalesced_ = 0;
  std::int64_t runs_ = 0;
};

}  // namespace cairn::senses

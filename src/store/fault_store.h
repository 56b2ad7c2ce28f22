// fault_store.h — a Store wrapper that injects faults (pure; tests and the
// simulator).
//
// FaultStore forwards every call to an inner Store and, on a schedule the
// test writes down, makes calls fail the ways real backends fail:
//
//   CommitFault::kUnavailable        — the commit is refused: nothing applied,
//                                      returns unavailable.
//   CommitFault::kUnknownApplied     — the commit goes to the inner store
//                                      (applied if it accepts it), then its
//                                      acknowledgement is "lost": returns
//                                      outcome_unknown whatever the inner
//                                      result was.
//   CommitFault::kUnknownNotApplied  — nothing applied, returns
//                                      outcome_unknown.
//   CommitFault::kCrashBefore        — the store crashes before applying:
//                                      nothing applied, returns unavailable,
//                                      the store is down until restart().
//   CommitFault::kCrashAfter         — the store crashes after applying:
//                                      returns outcome_unknown, down until
//                                      restart().
//
// Schedules are deterministic: rules name the 1-based number of the call they
// hit (`fail_commit(3, ...)` hits the third commit this wrapper sees;
// `fail_next_commit(...)` the next one). An optional random mode draws faults
// from an injected Rng with fixed probabilities, so a seeded simulation
// replays exactly. Explicit rules win over random draws.
//
// A crash models a process or machine losing the backend: since commits are
// atomic and the inner store keeps exactly what was committed, a crash drops
// nothing committed; it only makes every call return unavailable until
// restart(). Faulted calls are counted; a call made while down, or failed by a
// fault, never reaches the inner store (except kUnknownApplied/kCrashAfter,
// which apply first).
//
// limits() always forwards (it cannot fail). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "model/rng.h"
#include "store/store.h"

namespace cairn::store {

enum class CommitFault : std::uint8_t {
  kUnavailable,
  kUnknownApplied,
  kUnknownNotApplied,
  kCrashBefore,
  kCrashAfter,
};

// Probabilities for the random mode (each in [0, 1]; the three commit ones
// sum to at most 1). Exactly one Rng::unit() draw is made per commit or read
// that reaches the decision (store up, no explicit rule for that call), so a
// seeded run consumes the stream identically every time.
struct RandomFaults {
  double commit_unavailable = 0;
  double commit_unknown_applied = 0;
  double commit_unknown_not_applied = 0;
  double read_unavailable = 0;  // get, range, get_blob, last_version
};

struct FaultCounters {
  std::uint64_t commits = 0;          // commit calls seen
  std::uint64_t commits_applied = 0;  // commits the inner store applied (ok or unknown)
  std::uint64_t reads = 0;            // get + range + get_blob + last_version calls seen
  std::uint64_t gets = 0;
  std::uint64_t ranges = 0;
  std::uint64_t blob_gets = 0;
  std::uint64_t last_versions = 0;
  std::uint64_t faults = 0;  // calls answered by an injected fault (down included)
  std::uint64_t crashes = 0;
};

class FaultStore final : public Store {
 public:
  // REQUIRES: inner outlives this wrapper.
  explicit FaultStore(Store* inner);
  // Owns its inner store (e.g. to hand a faulty store to code that takes a
  // std::unique_ptr<Store>).
  explicit FaultStore(std::unique_ptr<Store> owned);

  Result<std::optional<Entry>> get(std::string_view key) override;
  Result<RangePage> range(std::string_view prefix, std::string_view after,
                          std::size_t limit) override;
  Result<CommitInfo> commit(const Batch& batch) override;
  Result<std::optional<std::string>> get_blob(std::string_view id) override;
  Result<Version> last_version() override;
  const StoreLimits& limits() const override { return inner_->limits(); }

  // Deterministic rules. `n` is the 1-based number of the commit (or read)
  // call as counted by counters(); a later rule for the same call replaces an
  // earlier one. REQUIRES: n is a future call (n > calls so far).
  void fail_commit(std::uint64_t n, CommitFault fault);
  void fail_next_commit(CommitFault fault) { fail_commit(counters_.commits + 1, fault); }
  void fail_read(std::uint64_t n);
  void fail_next_read() { fail_read(counters_.reads + 1); }
  // Every read fails (unavailable) while set; commits are unaffected.
  void set_reads_down(bool down) { reads_down_ = down; }

  // Random mode: `rng` must outlive the wrapper or the next
  // disable_random_faults(). Draws happen only in calls with no explicit rule.
  void set_random_faults(Rng& rng, RandomFaults probabilities);
  void disable_random_faults() { rng_ = nullptr; }

  // Crash: every call returns unavailable until restart(). Committed state is
  // kept (commits are atomic; there is nothing uncommitted to drop).
  void crash();
  void restart() { down_ = false; }
  bool down() const { return down_; }

  // Removes every rule and the random mode, and restarts the store. Counters
  // are kept.
  void clear_faults();

  const FaultCounters& counters() const { return counters_; }
  std::size_t pending_rules() const { return commit_rules_.size() + read_rules_.size(); }

 private:
  // The fault for the read just counted, if any (explicit rule, reads_down,
  // then a random draw).
  bool read_fault();
  Status down_status() const;

  std::unique_ptr<Store> owned_;  // null when borrowing
  Store* inner_;
  FaultCounters counters_;
  std::map<std::uint64_t, CommitFault> commit_rules_;
  std::set<std::uint64_t> read_rules_;
  bool reads_down_ = false;
  bool down_ = false;
  Rng* rng_ = nullptr;
  RandomFaults random_;
};

}  // namespace cairn::store

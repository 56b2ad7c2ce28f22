// primitives.h — the engine's framework primitives (pure).
//
// Small, independently tested building blocks the engine composes: each has
// named bounds with their defaults, takes time as an argument (wall or
// monotonic ms, never a clock read), and keeps its state in plain containers
// so the engine can snapshot and restore it (see to_json / from_json).
//
//   AgentGate        max leases one agent may hold at once
//   AgentBackoff     per-agent exponential backoff after repeated failures
//   AgentGovernor    block / allow lists; down after N consecutive expired
//                    leases, up again on success
//   DedupWindow      Idempotency-Key + agent → the original reply, sliding
//   LatencyTracker   Jacobson/Karels EMA of claim→conclude per (kind, lane)
//   TimerHeap        deadlines by time, bounded
//   RecordRing       recent records per name, bounded in names and depth
//   Counters         named monotonic counters
//   Completions      async effect ids, result byte caps, failure truncation
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/json.h"
#include "model/status.h"

namespace cairn::engine {

// ---- Status <-> JSON -----------------------------------------------------------
// {"code": "conflict", "message": "...", "reason": "...", "details": {...}};
// ok is {"code": "ok"}. "reason" is omitted when it is the code's own name
// (Status::reason() falls back to it), "details" when null. Used to store
// replies in snapshots (DedupWindow).
Json status_to_json(const Status& s);
// Decodes into `out`; returns invalid/invalid_field (and leaves `out` alone)
// when `j` is not such an object. Not a Result<Status>: the decoded value is
// itself a Status.
Status status_from_json(const Json& j, Status& out);

// ---- AgentGate ---------------------------------------------------------------
// Counts leases per agent against one limit. The engine asks admit() before a
// claim and keeps the count in step with the blackboard's held_by().
class AgentGate {
 public:
  static constexpr std::size_t kDefaultLeasesPerAgentMax = 64;
  explicit AgentGate(std::size_t leases_per_agent_max = kDefaultLeasesPerAgentMax)
      : max_(leases_per_agent_max) {}
  // ok, or conflict/too_many_leases when `held` already reaches the limit.
  Status admit(std::string_view agent, std::size_t held) const;
  std::size_t limit() const { return max_; }

 private:
  std::size_t max_;
};

// ---- AgentBackoff --------------------------------------------------------------
// After a failure, an agent waits base·2^(failures−1) (capped) before it may
// claim again; a success resets it. Entries are bounded (oldest evicted).
class AgentBackoff {
 public:
  static constexpr std::int64_t kDefaultBaseMs = 10;
  static constexpr std::int64_t kDefaultCapMs = 60'000;
  static constexpr std::size_t kDefaultAgentsMax = 100'000;
  explicit AgentBackoff(std::int64_t base_ms = kDefaultBaseMs, std::int64_t cap_ms = kDefaultCapMs,
                        std::size_t agents_max = kDefaultAgentsMax);
  void record_failure(std::string_view agent, std::int64_t now_ms);
  void record_success(std::string_view agent);
  bool should_retry(std::string_view agent, std::int64_t now_ms) const;
  // When the agent may claim again; 0 when it has no recorded failures.
  std::int64_t retry_at(std::string_view agent) const;
  // Consecutive failures recorded for the agent (0 when none).
  std::uint32_t failures(std::string_view agent) const;
  std::size_t size() const { return entries_.size(); }
  std::size_t agents_max() const { return agents_max_; }
  Json to_json() const;
  Status from_json(const Json& j);

 private:
  struct Entry {
    std::uint32_t failures = 0;
    std::int64_t retry_at = 0;
    std::uint64_t touched = 0;  // for eviction of the least recently failed
  };
  std::int64_t base_ms_, cap_ms_;
  std::size_t agents_max_;
  std::uint64_t clock_ = 0;
  std::map<std::string, Entry, std::less<>> entries_;
  std::map<std::uint64_t, std::string> by_touch_;  // touched → agent (eviction order)
};

// ---- AgentGovernor ---------------------------------------------------------------
// Policy (block list; allow list — when non-empty, only listed agents) and
// health: an agent is down after `down_after_expiries` consecutive expired
// leases (0 disables this) and up again at its next success. At most
// `agents_max` agents' expiry counts are kept; a new one past that evicts the
// agent with the fewest expiries (ties: the smallest name).
//
// Down is not forever: a down agent may try one claim (a probe) once
// probe_after_ms have passed since its last expired lease; a success brings it
// up, another expiry keeps it down for another period. (Found by the
// simulator: without the probe, an agent that paused while holding a few
// leases could never claim again — down agents cannot succeed.)
class AgentGovernor {
 public:
  static constexpr std::uint32_t kDefaultDownAfterExpiries = 5;
  static constexpr std::size_t kDefaultAgentsMax = 100'000;
  static constexpr std::int64_t kDefaultProbeAfterMs = 30'000;
  explicit AgentGovernor(std::uint32_t down_after_expiries = kDefaultDownAfterExpiries,
                         std::size_t agents_max = kDefaultAgentsMax,
                         std::int64_t probe_after_ms = kDefaultProbeAfterMs)
      : down_after_(down_after_expiries),
        agents_max_(agents_max),
        probe_after_ms_(probe_after_ms) {}
  void block(std::string_view agent);
  void unblock(std::string_view agent);
  void allow(std::string_view agent);     // adds to the allow list
  void disallow(std::string_view agent);  // removes from the allow list
  // `now_ms`: the wall time of the expiry (starts the probe wait).
  void record_expiry(std::string_view agent, std::int64_t now_ms = 0);
  void record_success(std::string_view agent);
  bool is_down(std::string_view agent) const;
  std::uint32_t expiries(std::string_view agent) const;
  std::size_t tracked() const { return expiries_.size(); }
  // ok, or forbidden/agent_blocked, forbidden/agent_not_allowed,
  // unavailable/agent_down (details.retry_at: when a probe is allowed).
  Status admit(std::string_view agent, std::int64_t now_ms = 0) const;
  Json to_json() const;
  Status from_json(const Json& j);

 private:
  void set_expiries(const std::string& agent, std::uint32_t n);

  std::uint32_t down_after_;
  std::size_t agents_max_;
  std::map<std::string, bool, std::less<>> blocked_;  // set
  std::map<std::string, bool, std::less<>> allowed_;  // set
  std::int64_t probe_after_ms_;
  std::map<std::string, std::uint32_t, std::less<>> expiries_;
  std::set<std::pair<std::uint32_t, std::string>> by_count_;         // eviction order
  std::map<std::string, std::int64_t, std::less<>> last_expiry_at_;  // agents in expiries_
};

// ---- DedupWindow --------------------------------------------------------------------
// Remembers the final reply to the last `capacity` keyed requests. A retry
// with the same (agent, key) gets the stored reply instead of a second effect.
// A key whose first request is still in flight is `pending`; the engine
// attaches the retry to it. Pending keys are bounded by the engine's own
// in-flight bounds (ingress, cycle, parked) and are never evicted; past
// `capacity` done entries, the one finished first is evicted. Each done entry
// may carry the number of its durable record (engine: keys::idempotency_record);
// evicted record numbers are collected for the engine to delete.
struct StoredReply {
  Status status;
  Json body;
};
class DedupWindow {
 public:
  static constexpr std::size_t kDefaultCapacity = 8192;
  explicit DedupWindow(std::size_t capacity = kDefaultCapacity) : capacity_(capacity) {}
  enum class State : std::uint8_t { kUnknown, kPending, kDone };
  State state(std::string_view agent, std::string_view key) const;
  // The stored reply. REQUIRES: state() == kDone.
  const StoredReply& reply(std::string_view agent, std::string_view key) const;
  void begin(std::string_view agent, std::string_view key);  // unknown → kPending
  // → kDone (the newest done entry); `record` 0: no durable record.
  void finish(std::string_view agent, std::string_view key, StoredReply reply,
              std::uint64_t record = 0);
  void forget(std::string_view agent, std::string_view key);  // a pending key: nothing happened
  void clear();
  std::size_t size() const { return entries_.size(); }  // pending + done
  std::size_t done() const { return order_.size(); }
  std::size_t capacity() const { return capacity_; }
  // Record numbers of evicted done entries, oldest first; the caller deletes them.
  std::vector<std::uint64_t> take_evicted();

 private:
  struct Entry {
    State state = State::kPending;
    StoredReply reply;
    std::uint64_t record = 0;
  };
  static std::string key_of(std::string_view agent, std::string_view key);
  void evict_over_capacity();
  std::size_t capacity_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::string> order_;  // done entries in finish order, oldest first
  std::vector<std::uint64_t> evicted_;
};

// ---- LatencyTracker ------------------------------------------------------------------
// Per (kind, lane): SRTT and RTTVAR in ms with α = 1/8, β = 1/4 (RFC 6298's
// constants); the first sample sets SRTT = s, RTTVAR = s/2. budget = SRTT +
// 4·RTTVAR. Warm after kWarmSamples samples. Bounded number of keys: a new
// key past keys_max evicts the key with the fewest samples (ties: the
// smallest "kind|lane"). Negative samples count as 0; non-finite ones are
// ignored.
class LatencyTracker {
 public:
  static constexpr std::uint32_t kWarmSamples = 3;
  static constexpr std::size_t kDefaultKeysMax = 10'000;
  explicit LatencyTracker(std::size_t keys_max = kDefaultKeysMax) : keys_max_(keys_max) {}
  struct Estimate {
    double srtt_ms = 0;
    double rttvar_ms = 0;
    std::uint32_t samples = 0;
    bool warm() const { return samples >= kWarmSamples; }
    double budget_ms() const { return srtt_ms + 4 * rttvar_ms; }
  };
  void record(std::string_view kind, std::string_view lane, double sample_ms);
  std::optional<Estimate> get(std::string_view kind, std::string_view lane) const;
  std::size_t size() const { return estimates_.size(); }
  std::size_t keys_max() const { return keys_max_; }
  Json to_json() const;
  Status from_json(const Json& j);

 private:
  std::size_t keys_max_;
  std::map<std::string, Estimate, std::less<>> estimates_;      // "kind|lane"
  std::set<std::pair<std::uint32_t, std::string>> by_samples_;  // eviction order
};

// ---- TimerHeap ------------------------------------------------------------------------
// Deadlines (time, id) in time order; ties by id. Bounded: arm() past
// capacity returns too_large/too_many_timers. Re-arming an id replaces its
// deadline (and needs no extra room).
class TimerHeap {
 public:
  static constexpr std::size_t kDefaultCapacity = 65'536;
  explicit TimerHeap(std::size_t capacity = kDefaultCapacity) : capacity_(capacity) {}
  Status arm(std::uint64_t id, std::int64_t at);
  bool cancel(std::uint64_t id);
  std::optional<std::int64_t> next() const;
  // Removes and returns the ids due at `now` (deadline <= now), in order, at
  // most `max`.
  std::vector<std::uint64_t> pop_due(std::int64_t now, std::size_t max);
  std::size_t size() const { return by_id_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  std::map<std::pair<std::int64_t, std::uint64_t>, bool> by_time_;
  std::unordered_map<std::uint64_t, std::int64_t> by_id_;
};

// ---- RecordRing -------------------------------------------------------------------------
// The last `depth_max` records per name, for at most `names_max` names (the
// least recently written name is dropped past that). Bounded both ways.
// dropped() counts every record discarded: pushed out of a full ring, lost
// with an evicted name, or refused because a bound is 0.
class RecordRing {
 public:
  static constexpr std::size_t kDefaultDepthMax = 1024;
  static constexpr std::size_t kDefaultNamesMax = 1024;
  explicit RecordRing(std::size_t depth_max = kDefaultDepthMax,
                      std::size_t names_max = kDefaultNamesMax)
      : depth_max_(depth_max), names_max_(names_max) {}
  void push(std::string_view name, Json record);
  // Oldest first; empty when unknown.
  std::vector<Json> recent(std::string_view name) const;
  std::size_t names() const { return rings_.size(); }
  std::size_t depth_max() const { return depth_max_; }
  std::size_t names_max() const { return names_max_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  struct Ring {
    std::deque<Json> items;
    std::uint64_t touched = 0;
  };
  std::size_t depth_max_, names_max_;
  std::uint64_t clock_ = 0;
  std::uint64_t dropped_ = 0;
  std::map<std::string, Ring, std::less<>> rings_;
  std::map<std::uint64_t, std::string> by_touch_;  // touched → name (eviction order)
};

// ---- Counters ------------------------------------------------------------------------------
// Saturate at kMax (2^53 − 1, the largest integer JSON carries exactly), so
// to_json/from_json round-trip. to_json is {"name": n, ...} in name order.
class Counters {
 public:
  static constexpr std::uint64_t kMax = 9'007'199'254'740'991;
  void add(std::string_view name, std::uint64_t n = 1);
  std::uint64_t get(std::string_view name) const;
  const std::map<std::string, std::uint64_t, std::less<>>& all() const { return values_; }
  Json to_json() const;
  Status from_json(const Json& j);

 private:
  std::map<std::string, std::uint64_t, std::less<>> values_;
};

// ---- Completions -------------------------------------------------------------------------------
// Ids for async effects the engine asked the shell to perform. A result over
// its byte cap becomes a typed error (too_large/completion_too_large); a
// failure's detail is truncated at a UTF-8 boundary to kDetailBytesMax and
// surfaces as a failure, never as a success. Unknown or already completed ids
// are refused (not_found/unknown_completion). Either outcome finishes the id.
// Invalid UTF-8 in a failure's detail is replaced by U+FFFD before the cut;
// an empty detail reads "completion failed"; Code::kOk is reported as
// kInternal (a failure is never a success).
class Completions {
 public:
  static constexpr std::size_t kDefaultResultBytesMax = 4u << 20;
  static constexpr std::size_t kDetailBytesMax = 4096;
  static constexpr std::size_t kDefaultInFlightMax = 65'536;
  explicit Completions(std::size_t in_flight_max = kDefaultInFlightMax)
      : in_flight_max_(in_flight_max) {}
  // A fresh id (skipping ids still pending) with its result cap;
  // too_large/too_many_completions when in_flight_max are in flight.
  Result<std::uint64_t> begin(std::size_t result_bytes_max = kDefaultResultBytesMax);
  // The outcome of a completion, after the cap check.
  Result<std::string> complete(std::uint64_t id, std::string result);
  // Always an error Status (the failure, truncated); not_found for unknown ids.
  Status fail(std::uint64_t id, std::string_view detail, Code code = Code::kUnavailable);
  bool pending(std::uint64_t id) const { return caps_.count(id) != 0; }
  std::size_t in_flight() const { return caps_.size(); }
  std::uint64_t next_id() const { return next_; }
  void set_next_id(std::uint64_t next) { next_ = next; }

 private:
  std::size_t in_flight_max_;
  std::uint64_t next_ = 1;
  std::unordered_map<std::uint64_t, std::size_t> caps_;
};

}  // namespace cairn::engine

// blackboard.h — the blackboard state machine: facts, intents, hints, events (pure).
//
// The Blackboard holds the hot state (typed, in memory) and turns every
// command into (a) a change of that state, (b) an entry in its undo log (the
// before-image), and (c) events with the next numbers of one gap-free
// sequence. drain() turns the batch's dirty entities into puts and deletes of
// records and secondary-index keys — once per key, however many commands
// touched it — packed into one Batch (deletes first, then puts, as the
// storage contract orders them). Nothing is durable until the caller commits:
//
//   run commands ...              // each validates first, then changes state
//   auto p = bb.drain();          // the delta (one Batch) and its events
//   commit p.batch to the store   // the caller's I/O
//   bb.accept();                  // durable: forget the undo log
//   or bb.rollback();             // not applied: undo every change since drain
//
// Between drain() and accept()/rollback() no command may run (asserted): the
// engine has one commit in flight at a time.
//
// A command that returns an error changed nothing. Time comes from the
// injected Clock (wall ms), randomness (ids, backoff jitter) from the Rng.
//
// Single-writer mode: the hot state is authoritative, so the delta carries no
// read preconditions and needs no Session buffer: the undo log already names
// every dirty entity once per change, and drain() derives each key once.
// Shared mode (several nodes on one database): the hot state is a cache of
// the store as of last_seq(); catch_up() brings it forward, and the engine
// adds the precondition that makes a commit from a stale cache fail
// (engine/engine.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/evidence.h"
#include "core/lifecycle.h"
#include "model/clock.h"
#include "model/event.h"
#include "model/fact.h"
#include "model/hint.h"
#include "model/intent.h"
#include "model/limits.h"
#include "model/rng.h"
#include "model/sha256.h"
#include "model/status.h"
#include "plan/plan.h"
#include "plan/wake.h"
#include "store/session.h"
#include "store/store.h"

namespace cairn {

// Admission (docs/planner.md): lane budgets decide what claim_next hands out.
// Dependencies, coalescing and staleness apply whether or not budgets are on.
struct AdmissionConfig {
  // Off (no `lanes:` configured): every lane is unlimited. On: an intent is
  // charged to "lane/provider" when configured, else "lane", else the
  // built-in `default` budget (default_lane); otherwise it waits no_budget.
  bool budgets = false;
  std::map<std::string, LaneBudget, std::less<>> lanes;
  bool default_lane = true;
};

struct CoreConfig {
  ModelLimits limits;
  AdmissionConfig admission;
  lifecycle::BackoffPolicy fail_backoff;
  // Open intents one claim_next may examine before giving up.
  std::size_t claim_scan_max = 10'000;
  // Lease and hint expiries one tick() may process (the rest on the next tick).
  std::size_t tick_expiries_max = 10'000;
  // Records read per range call while loading.
  std::size_t load_page_size = 1'000;
  // Shared mode: other writers' events one catch_up() applies at most (a
  // node further behind catches up over several calls).
  std::size_t catch_up_events_max = 10'000;
};

struct PostFactReply {
  std::string id;
  std::uint64_t seq = 0;
  std::int64_t recorded_at = 0;
  bool created = false;  // false: the fact already existed (same id, same seq)
};

struct CreateIntentReply {
  std::string id;
  IntentState state = IntentState::kOpen;  // open, deferred (a dependency) or coalesced
  bool created = false;                    // false: an identical intent with this id existed
  std::string coalesced_into;              // coalesced: the intent that took its place
};

struct ClaimReply {
  std::string id;
  std::uint64_t epoch = 0;
  std::int64_t lease_expires_at = 0;
};

struct ConcludeReply {
  std::string result;  // fact id
};

struct FailReply {
  IntentState state = IntentState::kOpen;  // open (retry later) or dead
  std::int64_t not_before = 0;
};

struct HintReply {
  std::string id;
  std::uint64_t seq = 0;
  bool created = false;
};

struct ClaimFilter {
  std::vector<std::string> kinds;  // empty: any
  std::vector<std::string> lanes;  // empty: any
};

struct PendingCommit {
  store::Batch batch;
  std::vector<Event> events;  // in sequence order
};

struct TickReport {
  std::size_t leases_expired = 0;
  std::size_t hints_expired = 0;
  std::size_t backoffs_ended = 0;
  // Defer hints whose `until` passed: what they held back may be claimable.
  std::size_t defers_ended = 0;
};

class Blackboard {
 public:
  Blackboard(const Clock& clock, Rng& rng, CoreConfig config = {});
  Blackboard(const Blackboard&) = delete;
  Blackboard& operator=(const Blackboard&) = delete;

  // Replaces the hot state with what `store` holds. REQUIRES: nothing pending.
  Status load(store::Store& store);

  // Shared mode (several nodes writing one store): brings the hot state up
  // to the store's event sequence. Reads the events after last_seq() (at
  // most catch_up_events_max) and re-reads every record they name — intent
  // statuses and definitions, hints, facts — replacing the hot state's. The
  // reads are not one snapshot: a record may already show a later change;
  // a commit whose preconditions name `seq_version` fails whenever that is
  // so, and the next catch_up() re-reads it. REQUIRES: nothing pending.
  struct CatchUp {
    std::vector<Event> events;                    // the events applied, in order
    store::Version seq_version = store::kAbsent;  // version of m/event_seq that was read
    bool more = false;  // events beyond catch_up_events_max wait: call again
  };
  Result<CatchUp> catch_up(store::Store& store);

  // ---- commands ----------------------------------------------------------
  // Records a fact (idempotent by id). derived_from must resolve
  // (invalid/unknown_reference otherwise).
  Result<PostFactReply> post_fact(FactBody body);
  // Creates an intent; from_facts must resolve.
  Result<CreateIntentReply> create_intent(IntentDraft draft);
  // Claims one intent. ttl_ms 0 → the intent's lease_ttl_ms.
  Result<ClaimReply> claim(std::string_view id, std::string_view agent, std::int64_t ttl_ms = 0);
  // Claims the best claimable intent matching `filter`, in plan order
  // (priority desc incl. hint deltas, then newest, then id) among the
  // intents whose budget has room (concurrency and cost), that are past any
  // backoff, that no live hint gates and whose dependencies are ready (an
  // open intent whose `kind:K@ttl` dependency ran out is deferred on the
  // way); not_found/no_work when none.
  Result<ClaimReply> claim_next(std::string_view agent, const ClaimFilter& filter,
                                std::int64_t ttl_ms = 0);
  Result<ClaimReply> heartbeat(std::string_view id, std::string_view agent, std::uint64_t epoch,
                               std::int64_t ttl_ms = 0);
  // `result` gets creator = agent and derived_from = the intent's from_facts
  // followed by any extra ids it lists.
  Result<ConcludeReply> conclude(std::string_view id, std::string_view agent, std::uint64_t epoch,
                                 FactBody result);
  Result<FailReply> fail(std::string_view id, std::string_view agent, std::uint64_t epoch,
                         std::string_view error, bool retryable);
  Status release(std::string_view id, std::string_view agent, std::uint64_t epoch);
  Status cancel(std::string_view id, std::string_view requester);
  Result<HintReply> create_hint(HintDraft draft);
  // Only the creator may revoke, unless `admin`.
  Status revoke_hint(std::string_view id, std::string_view requester, bool admin = false);

  // Timers: expires ended leases and hints, turns intents past
  // stale_after_ms stale, and forgets ended backoffs and defer-hint waits,
  // as of the clock's now.
  TickReport tick();
  // The earliest wall time at which tick() has work (lease end, hint expiry,
  // backoff end, a defer hint's `until`, an intent turning stale), or nullopt.
  std::optional<std::int64_t> next_deadline() const;

  // ---- group commit --------------------------------------------------------
  bool has_pending() const { return !outbox_.empty(); }
  PendingCommit drain();
  void accept();
  void rollback();

  // ---- reads (hot state) -------------------------------------------------------
  const Intent* intent(std::string_view id) const;
  const Hint* hint(std::string_view id) const;
  bool has_fact(std::string_view id) const { return facts_.find(id) != facts_.end(); }
  std::optional<std::uint64_t> fact_seq(std::string_view id) const;
  bool any_fact_of_kind(std::string_view kind) const;
  // recorded_at of the newest fact of `kind`, or nullopt.
  std::optional<std::int64_t> newest_fact_at(std::string_view kind) const;
  // The facts as the planner sees them (ids and the newest time per kind).
  const PlanFacts& plan_facts() const { return facts_view_; }

  // ---- admission ---------------------------------------------------------------------
  // The budget key `d` is charged to (see AdmissionConfig), and its budget
  // (nullptr: none, the intent waits no_budget).
  std::string budget_key(const IntentDef& d) const;
  const LaneBudget* budget_of(std::string_view key) const;
  // The first of the intent's dependency keys that is not ready now, if any.
  std::optional<std::string> first_missing_dependency(const IntentDef& d,
                                                      std::int64_t now_ms) const;
  struct LaneUse {
    std::string key;
    bool configured = false;
    LaneBudget budget;         // zero when not configured
    std::int64_t running = 0;  // claimed intents charged to it
    std::int64_t running_cost = 0;
    std::size_t open = 0;  // open intents charged to it
  };
  // Budget keys in key order: every configured one and every one in use.
  std::vector<LaneUse> lane_usage() const;
  // Open intents charged to a key without a budget (they wait no_budget).
  std::size_t no_budget_open() const;
  // The planner's input for the hot state as of `now_ms`: budgets (budgets
  // off: every lane in use unlimited), live hints matched to intents, and
  // the open, deferred and claimed intents (no claim times or estimates:
  // the engine adds those).
  PlanInput plan_input(std::int64_t now_ms, const PlanLimits& limits = {}) const;
  // Deferred intents indexed by the dependency they wait on.
  std::size_t dependency_waits() const { return waiters_.size(); }
  std::uint64_t last_seq() const { return last_seq_; }
  // Where the evidence chain ends (durable): one link per event, written
  // as v/<seq> in the event's batch (core/evidence.h). A store written before
  // the chain existed starts it after its last event, anchored on genesis.
  const EvidenceHead& evidence_head() const { return evidence_head_; }
  std::size_t count(IntentState s) const { return by_state_[static_cast<int>(s)]; }
  // Intents per state, per lane (only lanes that have intents).
  using LaneCounts = std::array<std::size_t, kIntentStateCount>;
  const std::map<std::string, LaneCounts, std::less<>>& lane_counts() const { return by_lane_; }
  std::size_t intent_count() const { return intents_.size(); }
  std::size_t fact_count() const { return facts_.size(); }
  std::size_t held_by(std::string_view agent) const;
  bool hint_live(const Hint& h) const { return h.live(clock_.wall_ms()); }
  // Hash maps keyed by std::string that also look up by string_view.
  struct StrHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <class V>
  using StrMap = std::unordered_map<std::string, V, StrHash, std::equal_to<>>;

  const StrMap<Intent>& intents() const { return intents_; }
  // Hints in id order: every pass over them (which hint refuses a claim,
  // priority sums) is the same on every platform — a hash map's order is
  // not (libstdc++ and libc++ differ; the simulator caught it).
  using HintMap = std::map<std::string, Hint, std::less<>>;
  const HintMap& hints() const { return hints_; }
  const CoreConfig& config() const { return config_; }
  const Clock& clock() const { return clock_; }

  // Test hook for the simulator's canary: heartbeat, conclude and fail on a
  // claimed intent skip the fencing check (any agent, any epoch is taken as
  // the holder's current one). The checkers must catch the result. Never
  // set outside tests.
  void set_canary_skip_fencing(bool on) { canary_skip_fencing_ = on; }
  // Test hook for the simulator's wake canary: a new fact does not wake the
  // deferred intents waiting on it (they stay deferred until something else
  // re-plans them). The checkers must report I7. Never set outside tests.
  void set_canary_skip_wake(bool on) { canary_skip_wake_ = on; }

  // Why `id` may not be claimed now by a hint (ok when no live hint blocks).
  Status hint_gate(const Intent& in, std::int64_t now_ms) const;

  // A digest of the whole hot state in a canonical order (intents, facts,
  // hints, sequence). Equal states give equal digests on every platform.
  Digest state_hash() const;

  // ---- reads (durable records) -----------------------------------------------------
  static Result<Fact> read_fact(store::Store& store, std::string_view id);
  // Events with seq > after, at most `limit`.
  static Result<std::vector<Event>> read_events(store::Store& store, std::uint64_t after,
                                                std::size_t limit);

 private:
  struct KindInfo {
    std::uint64_t count = 0;
    std::uint64_t latest_seq = 0;
    std::int64_t latest_at = 0;
  };
  struct FactMeta {
    std::uint64_t seq = 0;
    std::int64_t recorded_at = 0;
  };
  // Open intents in claim order (per budget key): priority desc, newest first, id.
  struct OpenEntry {
    std::int64_t priority;
    std::uint64_t created_seq;
    std::string_view id;  // points into the Intent stored in intents_
    bool operator<(const OpenEntry& o) const {
      if (priority != o.priority) return priority > o.priority;
      if (created_seq != o.created_seq) return created_seq > o.created_seq;
      return id < o.id;
    }
  };
  using TimeEntry = std::pair<std::int64_t, std::string_view>;

  struct Undo {
    enum class Kind : std::uint8_t { kStatus, kIntentAdded, kFactAdded, kHint };
    Kind kind;
    // Views of the keys of intents_ / facts_ / hints_ / fact_kinds_: stable
    // while the entry exists, and an entry outlives every undo record that
    // names it (rollback walks the log backwards, so the record of an
    // entry's creation is the last one to touch it).
    std::string_view id;
    IntentStatus status;                // kStatus: the status before
    std::optional<Hint> hint;           // kHint: the hint before (nullopt: absent)
    std::string_view fact_kind;         // kFactAdded
    std::optional<KindInfo> kind_info;  // kFactAdded: before (nullopt: absent)
  };

  // A fact recorded in the current batch, written out at drain().
  struct NewFact {
    std::string_view id;    // key of facts_
    std::string_view kind;  // key of fact_kinds_
    std::uint64_t seq;
    std::int64_t recorded_at;
    std::string canonical;
  };

  std::int64_t now() const { return clock_.wall_ms(); }
  // The (agent, epoch) the fencing check sees: the caller's, unless the
  // canary hook is on. Events record the caller's.
  struct Fencing {
    std::string agent;
    std::uint64_t epoch;
  };
  Fencing fencing(const Intent& in, std::string_view agent, std::uint64_t epoch) const;
  // The current batch's delta (see drain()).
  store::Batch write_delta();
  void begin_command();
  std::uint64_t append_event(std::string_view type, std::string_view subject, Json data);
  void record_fact(const FactBody& body, CanonicalFact&& canon);
  Status check_facts_exist(std::string_view field, const std::vector<std::string>& ids) const;
  Result<Intent*> find_intent(std::string_view id);
  // Applies a lifecycle decision: status, in-memory indexes, durable record
  // and index keys, undo entry and event.
  void apply(Intent& in, const lifecycle::Decision& d, Json event_data);
  void set_status(Intent& in, const IntentStatus& next);
  void index_memory(const Intent& in);
  void unindex_memory(const Intent& in);
  static void durable_index_keys(const IntentDef& d, const IntentStatus& s,
                                 std::vector<std::string>& out);
  void set_hint(Hint h);
  // Replaces (or adds) a hint read from the store: no undo record.
  void put_loaded_hint(Hint h);
  // The timers of a live hint: its expiry, and the end of a defer effect.
  void index_hint_timers(const Hint& h, std::string_view id);
  void unindex_hint_timers(const Hint& h, std::string_view id);
  Result<ClaimReply> claim_intent(Intent& in, std::string_view agent, std::int64_t ttl_ms,
                                  std::int64_t now_ms);
  void expire_if_ended(Intent& in, std::int64_t now_ms);
  std::int64_t effective_priority(const Intent& in, std::int64_t now_ms) const;
  // Admission at creation: coalesces the (lane, identity) group, then defers
  // the survivor when a dependency is missing.
  void admit_created(Intent& in, std::int64_t now_ms);
  // Coalesces the open and deferred intents of d's (lane, identity) group
  // into the first in plan order. At creation, and whenever a claimed intent
  // returns to open (released, failed, expired): the group never holds two.
  void coalesce_group(const IntentDef& d, std::int64_t now_ms);
  // A fact of `kind` arrived: the deferred intents it wakes become open (or
  // wait on their next missing key).
  void wake_waiters(std::string_view fact_id, std::string_view kind, std::int64_t recorded_at,
                    bool transitions);
  // Why `in` (open, or claimed with an ended lease) may not take a slot of its
  // budget now: no_budget or lane_full; ok otherwise.
  Status budget_gate(const Intent& in) const;
  void clear_state();
  // The chain's head at event `seq` from the store's v/<seq> (genesis-anchored
  // at `seq` when absent: a store older than the chain).
  Status set_evidence_head(std::uint64_t seq, const std::optional<store::Entry>& link);

  const Clock& clock_;
  Rng& rng_;
  CoreConfig config_;

  StrMap<Intent> intents_;
  StrMap<FactMeta> facts_;
  StrMap<KindInfo> fact_kinds_;
  HintMap hints_;
  // Admission state per budget key (configured keys always; others while in use).
  struct LaneState {
    bool configured = false;
    LaneBudget budget{0, 0};
    std::int64_t running = 0;
    std::int64_t running_cost = 0;
    std::set<OpenEntry> open;
    // Open intents claim_next found gated by a deny, defer or require hint:
    // set aside so later claims do not re-check them at the head of `open`.
    // Moved back whenever a hint changes, a fact of a required kind arrives,
    // a defer ends or a batch rolls back; a cache, not state.
    std::set<OpenEntry> gated;
  };
  std::map<std::string, LaneState, std::less<>> budgets_;
  LaneState& lane_state(const IntentDef& d);
  // Claimed intents each active cap hint selects, kept as claims come and go
  // (a cap check is then O(1), not a pass over every lease).
  std::map<std::string_view, std::int64_t> cap_held_;  // hint id (key of hints_) → count
  void refresh_cap(HintMap::iterator h);
  std::size_t gated_count_ = 0;
  std::int64_t gated_until_ = 0;  // the earliest defer end among gated intents (0: none)
  void ungate_all();
  DependencyWaiters waiters_;                 // deferred intents by the key they wait on
  std::set<std::string_view> ready_pending_;  // deferred with every key ready: tick() opens them
  // Woken this batch: their waits are rebuilt on rollback. Copies, not views:
  // rollback may erase an intent created in the same batch.
  std::vector<std::string> woken_;
  std::set<TimeEntry> stales_;  // open/deferred intents by when they turn stale
  // Open intents with `kind:K@ttl` keys, by when the first such key runs out
  // (tick() re-checks then: deferred, or a newer fact moved the time).
  std::set<TimeEntry> lapses_;
  std::unordered_map<std::string_view, std::int64_t> lapse_at_;
  std::int64_t readiness_ends(const IntentDef& d) const;  // 0: no such key
  // Open/deferred intents with an identity, by lane '\n' identity.
  std::map<std::string, std::set<std::string_view>, std::less<>> by_identity_;
  class FactsView final : public PlanFacts {
   public:
    explicit FactsView(const Blackboard& bb) : bb_(bb) {}
    bool has_fact(std::string_view id) const override { return bb_.has_fact(id); }
    std::optional<std::int64_t> newest_of_kind(std::string_view kind) const override {
      return bb_.newest_fact_at(kind);
    }

   private:
    const Blackboard& bb_;
  };
  FactsView facts_view_{*this};
  std::set<TimeEntry> leases_;      // claimed intents by lease end
  std::set<TimeEntry> backoffs_;    // open intents by not_before (future only)
  std::set<TimeEntry> hint_ends_;   // live hints with an expiry, by expires_at
  std::set<TimeEntry> defer_ends_;  // live defer hints by `until` (future only)
  StrMap<std::size_t> held_;        // agent → leases held
  std::size_t by_state_[kIntentStateCount] = {};
  std::map<std::string, LaneCounts, std::less<>> by_lane_;  // lanes with at least one intent
  std::uint64_t last_seq_ = 0;

  // Uncommitted work since the last accept()/rollback().
  std::vector<Undo> undo_;
  std::vector<Event> outbox_;
  std::vector<NewFact> new_facts_;
  std::vector<std::pair<std::string, std::string>> new_links_;  // result fact → intent
  std::uint64_t durable_seq_ = 0;
  EvidenceHead evidence_head_;          // durable
  EvidenceHead pending_evidence_head_;  // after the drained batch, until accept()
  bool drained_ = false;
  bool canary_skip_fencing_ = false;
  bool canary_skip_wake_ = false;
};

}  // namespace cairn

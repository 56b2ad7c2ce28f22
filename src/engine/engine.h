// engine.h — the sans-IO cairn node: requests in, effects out (pure).
//
// The server, the CLI tests and the simulator all drive this one engine. It
// owns the blackboard (core/blackboard.h), an injected-time clock and a seeded
// Rng, and the framework primitives (engine/primitives.h). It does no I/O:
// the shell feeds it inputs and performs the effects it returns.
//
// Inputs
//   submit(request)            a command from a client; bounded ingress
//   complete_commit(id, r)     the outcome of a CommitEffect the shell performed
//   resync(store)              answer to a ResyncEffect (after outcome_unknown)
//   catch_up(store)            shared mode: answer to a CatchUpEffect, or
//                              whenever another node may have committed
//   poll(now)                  the current time; runs one cycle
//
// Outputs (Effect)
//   CommitEffect   write this batch to the store, atomically, then call
//                  complete_commit with its id
//   ReplyEffect    answer request N (a JSON body, or a typed error)
//   PublishEffect  these events are durable: hand them to watchers
//   ResyncEffect   a commit's outcome is unknown: call resync(store)
//   CatchUpEffect  shared mode: another node committed first; call
//                  catch_up(store) before the next poll
//
// The drain contract: feed inputs, then call poll(now) until it returns no
// effects; then wait until `next_deadline` (wall ms) or the next input,
// whichever comes first, and repeat. poll never blocks and never reads a
// clock: `now` is the only time the engine knows.
//
// One poll cycle, in a fixed phase order:
//   1. drain the ingress queue, at most commands_per_cycle_max requests
//      (while a commit or resync is outstanding nothing is drained: one batch
//      is in flight at a time, and the ingress queue absorbs the wait);
//   2. fire matured timers: lease and hint expiries, backoff ends, long-poll
//      deadlines;
//   3. dispatch the cycle's requests against the blackboard, in order;
//   4. emit one CommitEffect for everything the cycle changed (group commit;
//      no reply of the cycle is released before it completes);
//   5. on completion, release the replies and then the events, in order. A
//      failed commit fails every reply of the batch with its code and rolls
//      the hot state back to the last durable state; an outcome_unknown
//      commit fails them with outcome_unknown and asks for a resync, which
//      reads the store to learn whether the batch landed;
//   6. update counters and the record rings.
// A cycle that changed nothing releases its replies at once.
//
// Requests carrying an idempotency key are de-duplicated per caller: a retry
// gets the original reply (or waits for it while the original is in flight)
// and causes no second effect. The final reply to a keyed mutation is written
// to the store (keys::idempotency_record) in the same batch as its effect —
// a cycle whose keyed requests changed nothing still commits their records —
// so a retry after a crash and restart is answered, not run again.
//
// Shared mode (EngineConfig::node set): several engines — cairnd nodes —
// write one store, which arbitrates. The blackboard is then a cache of the
// store as of the event sequence number it has seen. Every cycle that ran a
// mutation commits, even when nothing changed, with a precondition that the
// store's event sequence key still has the version this engine last saw: a
// reply to a mutation is only released when no other node committed between
// the state it was computed from and its commit. When the precondition
// fails, nothing was applied: the engine rolls back, asks for catch_up() (which
// reads the other nodes' events and the records they name) and runs the
// cycle's requests again, each up to lost_races_max times, after which it
// answers 409 conflict/lost_race. Foreign events are published in sequence
// order, so watchers see one gap-free sequence. Each batch also writes
// m/commit/<node> (a marker naming the batch) so that resync() can tell
// whether an in-doubt batch landed although other nodes advanced the
// sequence meanwhile. Idempotency records are per node (k:<node>/...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/blackboard.h"
#include "engine/governance.h"
#include "engine/primitives.h"
#include "model/clock.h"
#include "model/rng.h"
#include "store/store.h"

namespace cairn::engine {

using RequestId = std::uint64_t;

// ---- commands ------------------------------------------------------------------
// The caller (agent or creator name) travels in the Request; each command
// takes its actor from there unless noted.
struct PostFact {
  FactBody body;  // body.creator is the caller's (the shell enforces it)
};
struct CreateIntent {
  IntentDraft draft;  // draft.creator likewise
};
struct CreateHint {
  HintDraft draft;  // draft.creator likewise
};
struct Claim {
  std::string intent;
  std::int64_t ttl_ms = 0;  // 0: the intent's lease_ttl_ms
};
struct ClaimNext {
  ClaimFilter filter;
  std::int64_t ttl_ms = 0;
  std::size_t max = 1;       // 1..claim_next_max
  std::int64_t wait_ms = 0;  // long-poll: 0..long_poll_ms_max
};
struct Heartbeat {
  std::string intent;
  std::uint64_t epoch = 0;
  std::int64_t ttl_ms = 0;
};
struct Conclude {
  std::string intent;
  std::uint64_t epoch = 0;
  FactBody result;  // kind, content, content_type; creator and derived_from are filled in
};
struct Fail {
  std::string intent;
  std::uint64_t epoch = 0;
  std::string error;
  bool retryable = true;
};
struct Release {
  std::string intent;
  std::uint64_t epoch = 0;
};
struct Cancel {
  std::string intent;
};
struct RevokeHint {
  std::string hint;
  bool admin = false;  // the shell sets it for admin-scoped callers
};
struct GetIntent {
  std::string intent;
};
struct GetHint {
  std::string hint;
};
struct GetState {};
// The admission plan of the current state (plan/plan.h; GET /v1/plan), as
// of `at_ms` (wall ms; 0: now). The same state and `at_ms` give the same bytes.
struct GetPlan {
  std::int64_t at_ms = 0;
};

using Command =
    std::variant<PostFact, CreateIntent, CreateHint, Claim, ClaimNext, Heartbeat, Conclude, Fail,
                 Release, Cancel, RevokeHint, GetIntent, GetHint, GetState, GetPlan>;

// "post_fact", "claim", ... (for counters, logs and traces).
std::string_view command_name(const Command& c);
// True for commands that can change state (and so may carry an idempotency key).
bool is_mutation(const Command& c);

struct Request {
  RequestId id = 0;
  std::string caller;           // agent / creator name
  std::string idempotency_key;  // optional
  Command command;
};

// ---- effects --------------------------------------------------------------------
struct CommitEffect {
  std::uint64_t commit_id = 0;
  store::Batch batch;
};
struct ReplyEffect {
  RequestId request = 0;
  Status status;  // ok, or the typed error
  Json body;      // the reply body when ok
};
struct PublishEffect {
  std::vector<Event> events;
};
struct ResyncEffect {
  std::uint64_t commit_id = 0;
};
struct CatchUpEffect {};
using Effect = std::variant<CommitEffect, ReplyEffect, PublishEffect, ResyncEffect, CatchUpEffect>;

// A stable text form of an effect (JSON), for trace hashes and logs.
std::string describe(const Effect& e);

struct PollResult {
  std::vector<Effect> effects;
  // The next wall time at which a timer matures (lease end, hint expiry,
  // backoff end, long-poll deadline), if any.
  std::optional<std::int64_t> next_deadline;
};

// What the plan (GET /v1/plan) estimates with; budgets are core.admission.
struct PlanSettings {
  std::int64_t first_response_budget_ms = 0;  // 0: kDefaultFirstResponseBudgetMs
  std::int64_t all_responses_budget_ms = 0;   // 0: kDefaultAllResponsesBudgetMs
  // A duration per budget key or lane for kinds whose latency is not warm yet.
  std::map<std::string, std::int64_t, std::less<>> lane_duration_ms;
  std::int64_t default_duration_ms = 0;  // 0: kDefaultDurationMs
  PlanLimits limits;
};

// Something the operator must hear about (the shell logs it), e.g. an intent
// created in a lane without a budget.
struct Notice {
  std::string code;  // "no_budget"
  std::string message;
  Json details;
};

struct EngineConfig {
  CoreConfig core;
  PlanSettings plan;
  std::size_t notices_max = 1'000;   // kept until the shell takes them; the oldest are dropped
  std::size_t ingress_max = 10'000;  // queued requests; past it: overloaded
  std::size_t commands_per_cycle_max = 1'024;  // requests dispatched per cycle
  std::size_t claim_next_max = 256;            // claims one ClaimNext may return
  std::size_t claim_filter_items_max = 64;     // kinds, and lanes, one ClaimNext may name
  std::int64_t long_poll_ms_max = 30'000;
  std::size_t parked_max = 10'000;  // long-polling requests waiting for work
  std::size_t leases_per_agent_max = AgentGate::kDefaultLeasesPerAgentMax;
  std::int64_t agent_backoff_base_ms = AgentBackoff::kDefaultBaseMs;
  std::int64_t agent_backoff_cap_ms = AgentBackoff::kDefaultCapMs;
  std::uint32_t down_after_expiries = AgentGovernor::kDefaultDownAfterExpiries;
  std::size_t dedup_capacity = DedupWindow::kDefaultCapacity;
  std::size_t record_depth_max = RecordRing::kDefaultDepthMax;
  std::size_t record_names_max = RecordRing::kDefaultNamesMax;
  // After a failed commit the next one waits base·2^(failures−1), capped, so
  // a shell that polls until idle does not spin while the store is down.
  std::int64_t commit_retry_base_ms = 10;
  std::int64_t commit_retry_cap_ms = 1'000;
  // Shared mode: this node's name ([a-z0-9][a-z0-9_-]{0,62}, distinct per
  // node and stable across restarts: it names the node's idempotency
  // records). Empty: single-writer mode.
  std::string node;
  // Shared mode: times one request is run again after losing a race to
  // another node's commit before it is answered conflict/lost_race.
  std::uint32_t lost_races_max = 16;
  // The contract in force (engine/governance.h); null: none. Replaced with
  // Engine::set_governance.
  std::shared_ptr<const Governance> governance;
};

class Engine {
 public:
  // `seed` seeds the engine's Rng (ids, backoff jitter). The shell seeds it
  // from the OS; the simulator from the run's seed.
  Engine(EngineConfig config, std::uint64_t seed, std::int64_t now_wall_ms = 0);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Startup: rebuild the blackboard from the store (synchronous reads through
  // the Store interface, before the first poll). REQUIRES: idle.
  Status load(store::Store& store);

  // Queues a request. Past ingress_max it is refused at once with
  // unavailable/overloaded (never dropped silently); the caller answers it.
  Status submit(Request request);

  // The outcome of CommitEffect `commit_id`.
  void complete_commit(std::uint64_t commit_id, Result<store::CommitInfo> outcome);

  // After a ResyncEffect: reads the store's event sequence (or, for a batch
  // of idempotency records only, its newest record; in shared mode the
  // node's commit marker) to learn whether the in-doubt batch was applied
  // (keeps it) or not (rolls it back). unavailable when the store cannot be
  // read; call again later.
  Status resync(store::Store& store);

  // Shared mode: brings the blackboard up to the other nodes' commits
  // (Blackboard::catch_up), publishes their events and wakes long-polls that
  // may now find work. A no-op while a commit is in flight (its outcome
  // decides) or when nothing changed. Another CatchUpEffect follows when the
  // node is more than catch_up_events_max behind. unavailable when the store
  // cannot be read: the next commit then fails or conflicts and asks again.
  Status catch_up(store::Store& store);
  bool shared() const { return !config_.node.empty(); }
  // Shared mode: the version of the event sequence key the blackboard matches.
  store::Version seq_version() const { return seq_version_; }

  // Removes and returns the queued requests that no cycle has taken yet
  // (the ingress queue; not parked long-polls nor the retries of a lost
  // race), all of them or only the mutations. Nothing of theirs was
  // recorded, so the caller may answer them with an error (the shell does,
  // with 503, while the store cannot be reached).
  std::vector<Request> take_ingress(bool mutations_only);

  // Runs one cycle at wall time `now_ms` (never earlier than the last now).
  PollResult poll(std::int64_t now_ms);

  // The client of a parked long-poll went away (its connection closed): the
  // request stops waiting, so it cannot take work nobody will do. It is
  // answered (unavailable/abandoned, on the next poll) with the retries that
  // joined its key, and its key is forgotten: nothing happened. Returns false
  // when `id` is not parked (still queued, already dispatched or answered):
  // then it runs its course.
  bool abandon(RequestId id);

  // Replaces the contract in force (null: none). It applies from the next
  // command dispatched; a command already answered keeps the outcome it had.
  // Rules fire on newly recorded facts (PostFact, and Conclude's result) in
  // the fact's own commit; result checks refuse a Conclude before the
  // blackboard sees it (the intent stays claimed). See governance.h.
  void set_governance(std::shared_ptr<const Governance> g) { config_.governance = std::move(g); }
  const Governance* governance() const { return config_.governance.get(); }

  // ---- snapshot / restore --------------------------------------------------------
  // The engine's own in-memory state (framework tables, rng, counters,
  // incarnation) — the blackboard itself is durable in the store. Refused
  // (conflict/busy) while work is in flight: queued requests, an outstanding
  // commit or resync, or parked long-polls.
  Result<Json> snapshot() const;
  // A new engine from a snapshot and the store; incarnation = snapshot's + 1.
  static Result<std::unique_ptr<Engine>> restore(EngineConfig config, const Json& snapshot,
                                                 store::Store& store, std::int64_t now_wall_ms);

  // ---- introspection ------------------------------------------------------------------------
  // The admission plan as of now: every open and deferred intent with its one
  // reason, waves and estimates (durations from the latency tracker once warm).
  // `at_ms` (wall ms, 0: now) plans the same state as of another time.
  Result<Plan> plan(std::int64_t at_ms = 0) const;
  // The planner's input for the current state (what plan() plans).
  PlanInput plan_input(std::int64_t at_ms = 0) const;
  // Notices since the last call, oldest first.
  std::vector<Notice> take_notices();

  const Blackboard& blackboard() const { return bb_; }
  bool canary() const { return canary_; }
  const Counters& counters() const { return counters_; }
  const LatencyTracker& latency() const { return latency_; }
  const RecordRing& records() const { return records_; }
  AgentGovernor& governor() { return governor_; }
  const AgentBackoff& agent_backoff() const { return backoff_; }
  std::uint64_t incarnation() const { return incarnation_; }
  std::size_t ingress_depth() const { return ingress_.size(); }
  std::size_t parked() const { return parked_.size(); }
  bool busy() const { return inflight_.has_value() || resync_needed_; }
  // A commit's outcome is unknown and resync() has not yet learned it.
  bool resync_pending() const { return resync_needed_; }
  // Wall time before which no new batch is dispatched (after failed commits).
  std::int64_t commit_retry_at() const { return commit_retry_at_; }
  std::int64_t now() const { return clock_.wall_ms(); }

  // Test hook: the simulator's canary breaks the fencing check on purpose
  // (heartbeat / conclude / fail accept a stale epoch) and must see the
  // checker report it. Never set outside tests.
  void set_canary_broken_epoch_check(bool on) {
    canary_ = on;
    bb_.set_canary_skip_fencing(on);
  }
  // Test hook: the simulator's wake canary — a new fact does not wake the
  // intents deferred on it; the checkers must report I7. Never set outside
  // tests.
  void set_canary_skipped_wake(bool on) { bb_.set_canary_skip_wake(on); }

 private:
  struct Pending {  // a dispatched request awaiting the batch's commit
    RequestId id;
    std::string caller;
    std::string idempotency_key;
    Status status;
    Json body;
    std::vector<RequestId> duplicates;  // retries that arrived meanwhile
    std::uint64_t record = 0;           // its idempotency record in the batch (0: none)
    std::optional<Request> redo{};      // shared mode: run it again if the race is lost
    std::uint32_t races = 0;            // races it lost so far
  };
  struct Redo {
    Request request;
    std::uint32_t races;
  };
  struct Inflight {
    std::uint64_t commit_id;
    std::uint64_t last_seq;  // the batch's last event sequence number
    std::vector<Pending> replies;
    std::vector<Event> events;
    bool drained = false;                 // the batch carries a blackboard delta
    std::uint64_t last_record = 0;        // the batch's newest idempotency record
    std::vector<std::uint64_t> unrecord;  // evicted idempotency records it deletes
    std::string marker{};                 // shared mode: its m/commit/<node> value
  };
  struct Parked {
    Request request;
    std::int64_t deadline;
  };

  // `resumed`: a parked long-poll run again; its idempotency key is already
  // pending for this very request, so the dedup check is skipped.
  void dispatch(Request& r, std::vector<Pending>& out, bool resumed = false,
                std::uint32_t races = 0);
  // Shared mode: the batch lost a race; roll back and queue its requests again.
  void lost_race(const Status& why);
  // Rolls back the blackboard's drained batch (the commit did not land).
  void undo_batch();
  void want_catch_up();  // emits a CatchUpEffect and holds the next cycle until catch_up()
  // Runs one command; fills status/body.
  void execute(const Request& r, Status& status, Json& body);
  Json claim_next(const Request& r, const ClaimNext& c, Status& status);
  Status check_claim_next(const ClaimNext& c) const;
  void after_events(const std::vector<Event>& events);
  void release(std::vector<Pending>& replies, std::vector<Effect>& effects);
  // Answers the retries that joined `p`'s idempotency key while it was in
  // flight with the same status and body.
  void answer_waiting(const Pending& p, const Status& status, const Json& body,
                      std::vector<Effect>& effects);
  void fail_all(std::vector<Pending>& replies, const Status& why, std::vector<Effect>& effects);
  // Adds the idempotency records of this cycle's keyed replies (and deletes
  // of evicted ones) to `batch`; returns whether it added anything.
  bool record_replies(std::vector<Pending>& replies, store::Batch& batch, Inflight& inflight);
  void requeue_unrecord(Inflight& f);
  Status load_idempotency(store::Store& store);
  bool work_may_have_appeared(const std::vector<Event>& events) const;
  // Governance: the hints the rules emit for `fact` if it is recorded now
  // (none when it exists already), each checked so that creating it after
  // the fact cannot fail; an error refuses the command before it changes
  // anything.
  Result<std::vector<HintDraft>> rule_hints(const FactBody& fact) const;
  // Creates the hints of rule_hints() once the fact is recorded; their ids.
  Json emit_rule_hints(std::vector<HintDraft>& drafts);

  EngineConfig config_;
  SimClock clock_;
  SeededRng rng_;
  Blackboard bb_;
  std::uint64_t incarnation_ = 0;
  bool canary_ = false;

  std::deque<Request> ingress_;
  std::deque<Parked> parked_;
  // Parked long-polls to run again (work may have appeared): each once per
  // wake, so one that finds nothing and parks again cannot spin the cycle.
  std::size_t resume_parked_ = 0;
  std::optional<Inflight> inflight_;
  bool resync_needed_ = false;
  std::uint32_t commit_failures_ = 0;  // consecutive failed commits
  std::int64_t commit_retry_at_ = 0;
  std::uint64_t next_commit_id_ = 1;
  std::vector<Effect> carry_;  // effects produced outside poll (e.g. completion)

  AgentGate gate_;
  AgentBackoff backoff_;
  AgentGovernor governor_;
  DedupWindow dedup_;
  std::uint64_t next_record_ = 1;  // the next idempotency record number
  std::string record_prefix_;      // keys::idempotency_prefix(node)
  // Shared mode.
  store::Version seq_version_ = store::kAbsent;
  std::deque<Redo> redo_;    // requests of a lost race, run first in the next cycle
  std::string marker_base_;  // random per engine: commit markers never repeat
  bool cycle_mutated_ = false;
  bool catch_up_wanted_ = false;         // a CatchUpEffect is out: no cycle runs before catch_up()
  std::vector<std::uint64_t> unrecord_;  // evicted records to delete in the next batch
  LatencyTracker latency_;
  RecordRing records_;
  Counters counters_;
  std::map<std::string, std::int64_t, std::less<>> claimed_at_;  // intent → claim wall ms
  std::deque<Notice> notices_;
  void notice(Notice n);
  // Duplicates of in-flight keyed requests: (caller \x1f key) → request ids.
  std::map<std::string, std::vector<RequestId>, std::less<>> waiting_;
};

}  // namespace cairn::engine

// simulator.cc — the world of one run: clock, network, store, faults, engine.
#include "sim/simulator.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "engine/engine.h"
#include "model/sha256.h"
#include "sim/agents.h"
#include "sim/event_queue.h"
#include "store/fault_store.h"
#include "store/memory_store.h"

namespace cairn::sim {

namespace {

constexpr std::int64_t kStartWallMs = 1'700'000'000'000;
// Seed mixers: independent streams for the world, the fault injector's
// random read faults and the engine's own Rng.
constexpr std::uint64_t kFaultStream = 0x9e3779b97f4a7c15ULL;
constexpr std::uint64_t kEngineStream = 0xd1b54a32d192ed03ULL;
// Lane budgets are drawn from their own stream so that the rest of a seed's
// knobs stay what they were before budgets existed.
constexpr std::uint64_t kAdmissionStream = 0x94d049bb133111ebULL;
// One drive of the engine polls at most this many times (each poll that
// returns effects is followed by another, per the drain contract).
constexpr int kPollRoundsMax = 64;
// I8's fresh-load comparison runs at least this many steps apart (more as
// the log grows), when the engine is idle, and after every restart and at
// the end.
constexpr std::uint64_t kReplayEverySteps = 40;
// I7's plan checks (no fresh load: the engine's plan against its state, the
// log and the parked long-polls) run this many steps apart when the engine
// is idle; the claim_next probe runs with I8's fresh load.
constexpr std::uint64_t kPlanEverySteps = 8;
constexpr std::size_t kLivenessReportMax = 5;

template <class T, std::size_t N>
const T& pick(Rng& rng, const T (&xs)[N]) {
  return xs[rng.uniform(N)];
}

std::string key_of(std::string_view caller, std::string_view key) {
  std::string k(caller);
  k += '\x1f';
  k += key;
  return k;
}

std::string fixed(double v, int decimals) {
  // Formatting without <cstdio>: v ≥ 0, small.
  std::int64_t scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  const auto n = static_cast<std::int64_t>(v * static_cast<double>(scale) + 0.5);
  std::string frac = std::to_string(n % scale);
  while (static_cast<int>(frac.size()) < decimals) frac.insert(frac.begin(), '0');
  return std::to_string(n / scale) + (decimals > 0 ? "." + frac : "");
}

// Settings drawn once per seed.
struct Knobs {
  std::size_t intents_max = 0;
  std::int64_t net_latency_max_ms = 0;
  std::int64_t commit_latency_max_ms = 0;
  double commit_fault_p = 0;
  std::int64_t engine_crash_every_ms = 0;  // 0: never
  std::int64_t clock_jump_every_ms = 0;    // 0: never
  double read_fault_p = 0;
  std::int64_t snapshot_every_ms = 0;  // simulated time between engine snapshots
  engine::EngineConfig engine;
};

struct SimEvent {
  enum class Kind : std::uint8_t {
    kAgentWake,
    kRequestArrive,
    kReplyArrive,
    kStoreApply,
    kCommitAck,
    kResync,
    kEngineTimer,
    kEngineCrash,
    kEngineRestart,
    kStoreRestart,
    kClockJump,
  };
  Kind kind = Kind::kAgentWake;
  std::size_t agent = 0;
  std::uint64_t gen = 0;  // agent wake generation, or the engine incarnation
  std::uint64_t commit_id = 0;
  std::unique_ptr<engine::Request> request;    // kRequestArrive
  std::unique_ptr<engine::ReplyEffect> reply;  // kReplyArrive
  std::unique_ptr<store::Batch> batch;         // kStoreApply
  std::optional<store::CommitFault> fault;     // kStoreApply
  Status status;                               // kCommitAck
  store::CommitInfo info;                      // kCommitAck
  std::int64_t ack_delay_ms = 0;               // kStoreApply → kCommitAck
};

Knobs draw_knobs(Rng& rng, std::uint64_t steps, std::uint64_t seed);
CheckerConfig checker_config(const Knobs& k);

bool belongs_to_engine_process(const SimEvent& e) {
  using K = SimEvent::Kind;
  return e.kind == K::kStoreApply || e.kind == K::kCommitAck || e.kind == K::kResync ||
         e.kind == K::kEngineTimer;
}

class Simulator final : public World {
 public:
  explicit Simulator(const SimOptions& o)
      : opt_(o),
        rng_(o.seed),
        fault_rng_(o.seed ^ kFaultStream),
        knobs_(draw_knobs(rng_, o.steps, o.seed)),
        faulty_(&store_),
        checker_(store_, checker_config(knobs_)) {}

  SimResult run();

  // ---- World ----
  std::int64_t local_now(const Agent& a) const override { return local_of(a, now_); }
  engine::RequestId send(Agent& a, engine::Command cmd, const std::string& key) override;
  void wake_at(Agent& a, std::int64_t local_ms) override;
  Rng& rng() override { return rng_; }
  bool calm() const override { return calm_; }
  const std::vector<std::string>& known_facts() const override { return known_facts_; }
  const std::vector<KnownIntent>& known_intents() const override { return known_intents_; }
  void note_intent(std::string id, std::int64_t lease_ttl_ms) override;
  void count(std::string_view what) override;

 private:
  struct InFlight {
    std::size_t agent = 0;
    engine::Request request;
    bool submitted = false;  // accepted into the engine's ingress
  };
  struct FirstReply {
    Code code = Code::kOk;
    std::string reason;
    std::string body;
    std::uint64_t index = 0;
    std::uint64_t keyed_at = 0;
  };

  std::int64_t engine_now() const { return now_ + engine_skew_; }
  std::int64_t local_of(const Agent& a, std::int64_t t) const {
    return t + a.clock_offset_ms + (t - t0_) * a.clock_drift_ppm / 1'000'000;
  }
  std::int64_t net_delay() { return rng_.range(0, knobs_.net_latency_max_ms); }
  void push(std::int64_t at, SimEvent e) { queue_.push(std::max(at, now_), std::move(e)); }
  void push_kind(std::int64_t at, SimEvent::Kind k) {
    SimEvent e;
    e.kind = k;
    e.gen = incarnation_;
    push(at, std::move(e));
  }

  bool step_once();
  // A run stops at the first violation; a canary run only once the checkers
  // caught the canary (I1), so that another finding cannot mask it.
  bool stop() const {
    if (opt_.canary) return checker_.found("I1");
    if (opt_.canary_wake) return checker_.found("I7");
    return checker_.failed();
  }
  void handle(SimEvent& e);
  void drive_engine();
  void handle_effect(engine::Effect& effect);
  void on_reply_effect(engine::ReplyEffect& r);
  void record_acks(const engine::Request& req, const engine::ReplyEffect& r);
  void check_idempotent(const engine::Request& req, const engine::ReplyEffect& r);
  void deliver(std::size_t agent, engine::ReplyEffect reply);
  void arm_timer(std::optional<std::int64_t> deadline);
  void maybe_snapshot();
  void crash_engine();
  void restart_engine();
  void clock_jump();
  void after_step();
  // The I7 checkpoint's view of the engine: its plan (kept in `plan`) and
  // the long-polls it holds whose agents could claim now.
  AdmissionProbe probe(std::optional<Plan>& plan);
  void set_canaries();
  bool engine_idle() const {
    return engine_ != nullptr && !engine_->busy() && !engine_->blackboard().has_pending();
  }
  void go_calm();
  bool all_terminal() const;
  void report_liveness();
  void summarize(SimResult& out);
  void add_fact(const std::string& id);

  SimOptions opt_;
  SeededRng rng_;
  SeededRng fault_rng_;
  Knobs knobs_;
  store::MemoryStore store_;
  store::FaultStore faulty_;
  std::unique_ptr<engine::Engine> engine_;
  std::uint64_t incarnation_ = 0;  // bumps at every engine crash
  std::optional<Json> snapshot_;
  std::int64_t last_snapshot_at_ = 0;
  std::uint64_t next_replay_step_ = kReplayEverySteps;
  store::Version replayed_version_ = store::kAbsent;  // store version at the last I8 check
  store::Version progress_version_ = store::kAbsent;  // calm phase: last version seen
  std::int64_t progress_at_ = 0;                      // calm phase: when it last changed

  std::int64_t t0_ = kStartWallMs;
  std::int64_t now_ = kStartWallMs;              // true simulated time
  std::int64_t engine_skew_ = 0;                 // the engine's clock = now_ + skew (jumps forward)
  std::int64_t timer_at_ = 0;                    // true time of the armed engine timer (0: none)
  std::optional<std::int64_t> engine_deadline_;  // from the engine's last poll
  std::int64_t calm_start_ = 0;
  EventQueue<SimEvent> queue_;
  std::vector<std::unique_ptr<Agent>> agents_;
  std::map<engine::RequestId, InFlight> requests_;
  engine::RequestId next_request_ = 1;
  Sha256 trace_;
  Checker checker_;
  bool calm_ = false;
  std::uint64_t step_ = 0;

  std::vector<std::string> known_facts_;
  std::set<std::string> known_fact_set_;
  std::vector<KnownIntent> known_intents_;
  std::set<std::string> known_intent_set_;

  // Idempotency: the first final reply per (caller, key). The engine writes
  // final replies to keyed requests to the store with their effects, so a
  // crash forgets none of them: only eviction past the window's capacity does.
  std::map<std::string, FirstReply> first_replies_;
  std::uint64_t reply_index_ = 0;
  std::uint64_t keyed_sent_ = 0;

  SimSummary sum_;
  std::vector<std::string> log_;
  void log(std::string line) {
    if (opt_.log)
      log_.push_back("[" + std::to_string(step_) + " @" + std::to_string(now_ - t0_) + "] " +
                     std::move(line));
  }
};

// ---- setup --------------------------------------------------------------------------------------

// Lane budgets: off in a quarter of the seeds (every lane unlimited, as
// before budgets existed); otherwise small caps on bulk, llm and its two
// providers, and sometimes on default. Every max_cost_units is at least 2
// (the producer's largest cost_units); the lane `orphan` never has one.
void draw_admission(Rng& rng, AdmissionConfig& a) {
  if (rng.chance(0.25)) return;
  a.budgets = true;
  auto budget = [&rng](std::int64_t conc_max) {
    const std::int64_t conc = rng.range(1, conc_max);
    return LaneBudget{conc, rng.range(2, std::max<std::int64_t>(2, 2 * conc))};
  };
  a.lanes["bulk"] = budget(3);
  a.lanes["llm"] = budget(2);
  a.lanes["llm/openai"] = budget(2);
  a.lanes["llm/anthropic"] = budget(2);
  if (rng.chance(0.5)) a.lanes["default"] = budget(4);
}

std::string admission_text(const AdmissionConfig& a) {
  if (!a.budgets) return "budgets=off";
  std::string out = "budgets";
  for (const auto& [key, b] : a.lanes) {
    out += " " + key + "=" + std::to_string(b.max_concurrency) + "/" +
           std::to_string(b.max_cost_units);
  }
  return out;
}

Knobs draw_knobs(Rng& rng, std::uint64_t steps, std::uint64_t seed) {
  Knobs k;
  SeededRng admission_rng(seed ^ kAdmissionStream);
  draw_admission(admission_rng, k.engine.core.admission);
  static constexpr std::int64_t kNetLatency[] = {0, 3, 20};
  static constexpr std::int64_t kCommitLatency[] = {0, 2, 15, 60};
  static constexpr double kCommitFault[] = {0.0, 0.03, 0.08, 0.15};
  static constexpr std::int64_t kCrashEvery[] = {0, 4'000, 15'000, 40'000};
  static constexpr std::int64_t kJumpEvery[] = {0, 10'000, 30'000};
  static constexpr double kReadFault[] = {0.0, 0.01, 0.05};
  static constexpr std::int64_t kSnapshotEveryMs[] = {1'000, 5'000, 30'000};
  static constexpr std::size_t kPerCycle[] = {1, 4, 16, 64};
  // The producer's budget grows with the run, so long runs keep working.
  k.intents_max =
      static_cast<std::size_t>(rng.range(12, 40)) *
      static_cast<std::size_t>(std::max<std::uint64_t>(1, steps / SimOptions::kDefaultSteps));
  k.net_latency_max_ms = pick(rng, kNetLatency);
  k.commit_latency_max_ms = pick(rng, kCommitLatency);
  k.commit_fault_p = pick(rng, kCommitFault);
  k.engine_crash_every_ms = pick(rng, kCrashEvery);
  k.clock_jump_every_ms = pick(rng, kJumpEvery);
  k.read_fault_p = pick(rng, kReadFault);
  k.snapshot_every_ms = pick(rng, kSnapshotEveryMs);
  engine::EngineConfig& c = k.engine;
  c.core.fail_backoff = {rng.range(100, 500), rng.range(2'000, 10'000)};
  static constexpr std::size_t kIngressMax[] = {2, 4, 8, 16, 64};
  c.ingress_max = pick(rng, kIngressMax);
  c.commands_per_cycle_max = pick(rng, kPerCycle);
  c.leases_per_agent_max = static_cast<std::size_t>(rng.range(1, 4));
  return k;
}

CheckerConfig checker_config(const Knobs& k) {
  CheckerConfig cc;
  cc.limits = k.engine.core.limits;
  cc.leases_per_agent_max = k.engine.leases_per_agent_max;
  cc.admission = k.engine.core.admission;
  return cc;
}

SimResult Simulator::run() {
  faulty_.set_random_faults(fault_rng_, store::RandomFaults{0, 0, 0, knobs_.read_fault_p});

  engine_ =
      std::make_unique<engine::Engine>(knobs_.engine, opt_.seed ^ kEngineStream, engine_now());
  set_canaries();

  agents_ = make_agents(rng_, knobs_.intents_max);
  sum_.agents = agents_.size();
  for (auto& a : agents_) a->start(*this);
  if (knobs_.engine_crash_every_ms > 0) {
    push_kind(now_ + rng_.range(1, 2 * knobs_.engine_crash_every_ms), SimEvent::Kind::kEngineCrash);
  }
  if (knobs_.clock_jump_every_ms > 0) {
    push_kind(now_ + rng_.range(1, 2 * knobs_.clock_jump_every_ms), SimEvent::Kind::kClockJump);
  }

  // Phase 1: faults on.
  while (step_ < opt_.steps && !stop()) {
    if (!step_once()) break;
  }
  // Phase 2: calm, until every intent is terminal.
  if (!stop()) {
    go_calm();
    while (!stop() && !all_terminal()) {
      if (store_.last_version().value() != progress_version_) {
        progress_version_ = store_.last_version().value();
        progress_at_ = now_;
      }
      if (now_ - calm_start_ > opt_.liveness_ms_max || sum_.calm_steps >= opt_.liveness_steps_max ||
          now_ - progress_at_ > opt_.stall_ms_max || !step_once()) {
        report_liveness();
        break;
      }
      ++sum_.calm_steps;
    }
    sum_.calm_ms = now_ - calm_start_;
  }
  if (!stop()) {
    checker_.set_step(step_);
    checker_.final_checks();
    if (engine_idle()) {
      std::optional<Plan> plan;
      const AdmissionProbe p = probe(plan);
      checker_.check_replay(engine_->blackboard(), engine_now(), &p);
    }
  }
  SimResult out;
  summarize(out);
  return out;
}

// ---- the event loop -----------------------------------------------------------------------------

bool Simulator::step_once() {
  if (queue_.empty()) return false;
  auto [at, e] = queue_.pop();
  if (at > now_) now_ = at;
  ++step_;
  checker_.set_step(step_);
  handle(e);
  drive_engine();
  after_step();
  return true;
}

void Simulator::handle(SimEvent& e) {
  using K = SimEvent::Kind;
  switch (e.kind) {
    case K::kAgentWake: {
      Agent& a = *agents_[e.agent];
      if (e.gen == a.wake_generation) a.on_wake(*this);
      break;
    }
    case K::kRequestArrive: {
      engine::Request& r = *e.request;
      const engine::RequestId id = r.id;
      auto it = requests_.find(id);
      if (it == requests_.end()) break;
      const std::size_t agent = it->second.agent;
      Status refused;
      if (engine_ == nullptr) {
        ++sum_.refused_down;
        refused = unavailable("connection refused: the engine is down", "engine_down");
      } else {
        refused = engine_->submit(std::move(r));
        if (!refused.ok()) ++sum_.overloaded;
        it->second.submitted = refused.ok();
      }
      if (!refused.ok()) {
        log("refused #" + std::to_string(id) + ": " + refused.to_string());
        requests_.erase(it);
        deliver(agent, engine::ReplyEffect{id, std::move(refused), Json()});
      }
      break;
    }
    case K::kReplyArrive: {
      Agent& a = *agents_[e.agent];
      a.on_reply(*this, e.reply->request, e.reply->status, e.reply->body);
      break;
    }
    case K::kStoreApply: {
      if (e.gen != incarnation_) break;
      const bool was_down = faulty_.down();
      if (e.fault && !was_down && !calm_) {
        faulty_.fail_next_commit(*e.fault);
        ++sum_.commit_faults;
      }
      Result<store::CommitInfo> r = faulty_.commit(*e.batch);
      log("store commit " + std::to_string(e.commit_id) +
          (e.fault && !was_down ? " fault " + std::to_string(static_cast<int>(*e.fault)) : "") +
          ": " + (r.ok() ? std::string("ok") : r.status().to_string()));
      if (!was_down && faulty_.down()) {
        ++sum_.store_crashes;
        push_kind(now_ + rng_.range(50, 2'000), K::kStoreRestart);
      }
      SimEvent ack;
      ack.kind = K::kCommitAck;
      ack.gen = incarnation_;
      ack.commit_id = e.commit_id;
      std::int64_t delay = e.ack_delay_ms;
      if (r.ok()) {
        ack.info = r.value();
      } else {
        ack.status = r.take_status();
        // A refusal still takes a round trip: the engine retries whatever
        // its timers redo at once, so time must move for the store to
        // come back.
        delay = std::max<std::int64_t>(delay, 1);
      }
      push(now_ + delay, std::move(ack));
      break;
    }
    case K::kCommitAck:
      if (e.gen != incarnation_ || engine_ == nullptr) break;
      if (e.status.ok()) {
        engine_->complete_commit(e.commit_id, Result<store::CommitInfo>(e.info));
      } else {
        engine_->complete_commit(e.commit_id, Result<store::CommitInfo>(std::move(e.status)));
      }
      break;
    case K::kResync:
      if (e.gen != incarnation_ || engine_ == nullptr) break;
      ++sum_.resyncs;
      log("resync");
      if (!engine_->resync(faulty_).ok()) push_kind(now_ + rng_.range(20, 200), K::kResync);
      break;
    case K::kEngineTimer:
      if (timer_at_ == now_) timer_at_ = 0;
      break;
    case K::kEngineCrash:
      if (!calm_) crash_engine();
      break;
    case K::kEngineRestart:
      restart_engine();
      break;
    case K::kStoreRestart:
      faulty_.restart();
      break;
    case K::kClockJump:
      if (!calm_) clock_jump();
      break;
  }
}

void Simulator::drive_engine() {
  if (engine_ == nullptr) return;
  for (int round = 0; round < kPollRoundsMax; ++round) {
    engine::PollResult r = engine_->poll(engine_now());
    if (r.effects.empty()) {
      engine_deadline_ = r.next_deadline;
      arm_timer(r.next_deadline);
      break;
    }
    for (engine::Effect& e : r.effects) handle_effect(e);
  }
  maybe_snapshot();
}

void Simulator::handle_effect(engine::Effect& effect) {
  if (opt_.log) log("effect " + engine::describe(effect).substr(0, 300));
  trace_.update(engine::describe(effect));
  trace_.update("\n");
  if (auto* c = std::get_if<engine::CommitEffect>(&effect)) {
    ++sum_.commits;
    SimEvent e;
    e.kind = SimEvent::Kind::kStoreApply;
    e.gen = incarnation_;
    e.commit_id = c->commit_id;
    e.batch = std::make_unique<store::Batch>(std::move(c->batch));
    if (!calm_ && rng_.chance(knobs_.commit_fault_p)) {
      const double f = rng_.unit();
      e.fault = f < 0.35  ? store::CommitFault::kUnavailable
                : f < 0.6 ? store::CommitFault::kUnknownApplied
                : f < 0.8 ? store::CommitFault::kUnknownNotApplied
                : f < 0.9 ? store::CommitFault::kCrashBefore
                          : store::CommitFault::kCrashAfter;
    }
    const std::int64_t apply = rng_.range(0, knobs_.commit_latency_max_ms);
    e.ack_delay_ms = rng_.range(0, knobs_.commit_latency_max_ms);
    push(now_ + apply, std::move(e));
  } else if (auto* r = std::get_if<engine::ReplyEffect>(&effect)) {
    on_reply_effect(*r);
  } else if (auto* p = std::get_if<engine::PublishEffect>(&effect)) {
    checker_.on_publish(p->events);
  } else if (std::get_if<engine::ResyncEffect>(&effect) != nullptr) {
    push_kind(now_ + rng_.range(0, 20), SimEvent::Kind::kResync);
  }
}

void Simulator::on_reply_effect(engine::ReplyEffect& r) {
  ++sum_.replies;
  auto it = requests_.find(r.request);
  if (it == requests_.end()) {
    checker_.report("I3", "the engine answered request " + std::to_string(r.request) +
                              ", which it never had or already answered");
    return;
  }
  const engine::Request& req = it->second.request;
  check_idempotent(req, r);
  if (r.status.ok() && engine::is_mutation(req.command)) record_acks(req, r);
  const std::size_t agent = it->second.agent;
  requests_.erase(it);
  deliver(agent, std::move(r));
}

void Simulator::record_acks(const engine::Request& req, const engine::ReplyEffect& r) {
  ++sum_.acked_writes;
  using AK = AckedWrite::Kind;
  auto str = [&](const Json& obj, std::string_view key) {
    const Json* j = obj.find(key);
    return j != nullptr && j->is_string() ? j->as_string() : std::string();
  };
  auto epoch_of = [&](const Json& obj) {
    const Json* j = obj.find("epoch");
    auto v = j != nullptr ? j->int_if() : std::nullopt;
    return v ? static_cast<std::uint64_t>(*v) : std::uint64_t{0};
  };
  const engine::Command& c = req.command;
  if (const auto* p = std::get_if<engine::PostFact>(&c)) {
    const std::string id = str(r.body, "id");
    FactBody b = p->body;
    if (b.creator.empty()) b.creator = req.caller;
    auto canon = canonicalize_fact(b, knobs_.engine.core.limits);
    if (!canon.ok() || canon->id != id) {
      checker_.report("I4", "post_fact by " + req.caller + " answered with id " + id.substr(0, 12) +
                                ", but the body hashes to " +
                                (canon.ok() ? canon->id.substr(0, 12) : std::string("(invalid)")));
    }
    checker_.on_ack(AckedWrite{AK::kFact, id, 0, {}, 0});
    add_fact(id);
  } else if (const auto* ci = std::get_if<engine::CreateIntent>(&c)) {
    const std::string id = str(r.body, "id");
    checker_.on_ack(AckedWrite{AK::kIntent, id, 0, {}, 0});
    note_intent(id, ci->draft.lease_ttl_ms != 0 ? ci->draft.lease_ttl_ms
                                                : knobs_.engine.core.limits.lease_ttl_ms_default);
  } else if (std::get_if<engine::CreateHint>(&c) != nullptr) {
    checker_.on_ack(AckedWrite{AK::kHint, str(r.body, "id"), 0, {}, 0});
  } else if (std::get_if<engine::Claim>(&c) != nullptr) {
    checker_.on_ack(AckedWrite{AK::kClaim, str(r.body, "id"), epoch_of(r.body), {}, 0});
  } else if (std::get_if<engine::ClaimNext>(&c) != nullptr) {
    if (const Json* claims = r.body.find("claims"); claims != nullptr && claims->is_array()) {
      for (const Json& cl : claims->as_array()) {
        const Json* in = cl.find("intent");
        if (in == nullptr) continue;
        checker_.on_ack(AckedWrite{AK::kClaim, str(*in, "id"), epoch_of(cl), {}, 0});
      }
    }
  } else if (const auto* h = std::get_if<engine::Heartbeat>(&c)) {
    checker_.on_ack(AckedWrite{AK::kHeartbeat, h->intent, h->epoch, {}, 0});
  } else if (const auto* cc = std::get_if<engine::Conclude>(&c)) {
    const std::string result = str(r.body, "result");
    checker_.on_ack(AckedWrite{AK::kConclude, cc->intent, cc->epoch, result, 0});
    add_fact(result);
  } else if (const auto* f = std::get_if<engine::Fail>(&c)) {
    checker_.on_ack(AckedWrite{AK::kFail, f->intent, f->epoch, {}, 0});
  } else if (const auto* x = std::get_if<engine::Cancel>(&c)) {
    checker_.on_ack(AckedWrite{AK::kCancel, x->intent, 0, {}, 0});
  } else if (const auto* rv = std::get_if<engine::RevokeHint>(&c)) {
    checker_.on_ack(AckedWrite{AK::kRevoke, rv->hint, 0, {}, 0});
  }
}

void Simulator::check_idempotent(const engine::Request& req, const engine::ReplyEffect& r) {
  if (req.idempotency_key.empty() || !engine::is_mutation(req.command)) return;
  const Code code = r.status.code();
  if (code == Code::kUnavailable || code == Code::kOutcomeUnknown) return;  // not final
  const std::string k = key_of(req.caller, req.idempotency_key);
  const std::string body = to_json(r.body);
  auto it = first_replies_.find(k);
  if (it == first_replies_.end()) {
    first_replies_.emplace(
        k, FirstReply{code, std::string(r.status.reason()), body, ++reply_index_, keyed_sent_});
    return;
  }
  const FirstReply& first = it->second;
  if (keyed_sent_ - first.keyed_at >= knobs_.engine.dedup_capacity / 2) return;  // evicted
  ++sum_.idem_compared;
  if (first.code != code || first.reason != r.status.reason() || first.body != body) {
    checker_.report("IDEM", "a retry of " + std::string(engine::command_name(req.command)) +
                                " by " + req.caller + " with key " + req.idempotency_key + " got " +
                                std::string(r.status.reason()) + " " + body +
                                ", the original got " + first.reason + " " + first.body);
  }
}

void Simulator::deliver(std::size_t agent, engine::ReplyEffect reply) {
  SimEvent e;
  e.kind = SimEvent::Kind::kReplyArrive;
  e.agent = agent;
  e.reply = std::make_unique<engine::ReplyEffect>(std::move(reply));
  push(now_ + net_delay(), std::move(e));
}

void Simulator::arm_timer(std::optional<std::int64_t> deadline) {
  if (!deadline || engine_ == nullptr || engine_->busy()) return;
  std::int64_t at = *deadline - engine_skew_;
  if (at <= now_) at = now_ + 1;
  if (timer_at_ > now_ && timer_at_ <= at) return;  // an earlier wake-up stands
  timer_at_ = at;
  push_kind(at, SimEvent::Kind::kEngineTimer);
}

void Simulator::maybe_snapshot() {
  // Snapshots matter only to a restart: none without crashes, none in the
  // calm phase.
  if (engine_ == nullptr || knobs_.engine_crash_every_ms == 0 || calm_ ||
      now_ < last_snapshot_at_ + knobs_.snapshot_every_ms) {
    return;
  }
  if (engine_->busy() || engine_->ingress_depth() != 0 || engine_->parked() != 0) return;
  Result<Json> s = engine_->snapshot();
  if (!s.ok()) return;
  snapshot_ = std::move(s).value();
  last_snapshot_at_ = now_;
  ++sum_.snapshots;
}

void Simulator::crash_engine() {
  if (knobs_.engine_crash_every_ms > 0) {
    push_kind(now_ + rng_.range(knobs_.engine_crash_every_ms / 2, 2 * knobs_.engine_crash_every_ms),
              SimEvent::Kind::kEngineCrash);
  }
  if (engine_ == nullptr) return;
  ++sum_.engine_crashes;
  log("engine crash");
  engine_.reset();
  engine_deadline_.reset();
  ++incarnation_;
  timer_at_ = 0;
  queue_.remove_if(belongs_to_engine_process);
  // Requests the engine had accepted vanish with it (no reply will come);
  // those still on the network arrive later and are refused until restart.
  for (auto it = requests_.begin(); it != requests_.end();) {
    it = it->second.submitted ? requests_.erase(it) : std::next(it);
  }
  push_kind(now_ + rng_.range(20, 3'000), SimEvent::Kind::kEngineRestart);
}

void Simulator::restart_engine() {
  if (engine_ != nullptr) return;
  std::unique_ptr<engine::Engine> e;
  if (snapshot_) {
    auto r = engine::Engine::restore(knobs_.engine, *snapshot_, faulty_, engine_now());
    if (r.ok()) e = std::move(r).value();
  } else {
    e = std::make_unique<engine::Engine>(knobs_.engine, rng_.next_u64(), engine_now());
    if (!e->load(faulty_).ok()) e.reset();
  }
  if (e == nullptr) {
    // The store could not be read (a read fault or a store crash): try again.
    push_kind(now_ + rng_.range(50, 500), SimEvent::Kind::kEngineRestart);
    return;
  }
  engine_ = std::move(e);
  log(std::string("engine restart ") + (snapshot_ ? "from a snapshot" : "from the store"));
  set_canaries();
  ++(snapshot_ ? sum_.restores : sum_.fresh_starts);
  checker_.scan();
  checker_.check_acks_against(engine_->blackboard());
  std::optional<Plan> plan;
  const AdmissionProbe p = probe(plan);
  checker_.check_replay(engine_->blackboard(), engine_now(), &p);
}

void Simulator::set_canaries() {
  engine_->set_canary_broken_epoch_check(opt_.canary);
  engine_->set_canary_skipped_wake(opt_.canary_wake);
}

AdmissionProbe Simulator::probe(std::optional<Plan>& plan) {
  AdmissionProbe p;
  const std::int64_t now = engine_now();
  Result<Plan> r = engine_->plan();
  if (r.ok()) {
    plan = std::move(r).value();
    p.plan = &*plan;
  } else {
    p.plan_error = r.status().to_string();
  }
  const Blackboard& bb = engine_->blackboard();
  // The last poll's deadline: the blackboard's timers and the engine's own
  // (long-polls still to run again, a commit retry).
  const auto bb_deadline = bb.next_deadline();
  p.timers_due = (engine_deadline_ && *engine_deadline_ <= now) ||
                 (bb_deadline && *bb_deadline <= now) || engine_->commit_retry_at() > now ||
                 engine_->ingress_depth() != 0;
  // Claim requests the engine accepted and has not answered: with the
  // ingress empty and nothing in flight, those are parked long-polls.
  for (const auto& [id, f] : requests_) {
    (void)id;
    const auto* cn = std::get_if<engine::ClaimNext>(&f.request.command);
    if (!f.submitted || cn == nullptr || cn->wait_ms <= 0) continue;
    const std::string& agent = f.request.caller;
    if (!engine_->governor().admit(agent, now).ok() ||
        !engine_->agent_backoff().should_retry(agent, now) ||
        bb.held_by(agent) >= knobs_.engine.leases_per_agent_max) {
      continue;
    }
    p.parked.push_back(AdmissionProbe::Waiter{agent, cn->filter});
  }
  return p;
}

void Simulator::clock_jump() {
  engine_skew_ += rng_.range(500, 8'000);
  log("engine clock jumps to skew " + std::to_string(engine_skew_));
  ++sum_.clock_jumps;
  push_kind(now_ + rng_.range(knobs_.clock_jump_every_ms / 2, 2 * knobs_.clock_jump_every_ms),
            SimEvent::Kind::kClockJump);
}

void Simulator::after_step() {
  checker_.scan();
  if (step_ >= next_replay_step_ && engine_idle() &&
      store_.last_version().value() != replayed_version_) {
    replayed_version_ = store_.last_version().value();
    std::optional<Plan> plan;
    const AdmissionProbe p = probe(plan);
    checker_.check_replay(engine_->blackboard(), engine_now(), &p);
    // A fresh load costs in proportion to the store: space the checks out
    // as the log grows.
    next_replay_step_ = step_ + kReplayEverySteps + checker_.events_checked() / 4;
  } else if (step_ % kPlanEverySteps == 0 && engine_idle()) {
    std::optional<Plan> plan;
    const AdmissionProbe p = probe(plan);
    checker_.check_plan(engine_->blackboard(), p, engine_now());
  }
}

// ---- the calm phase -----------------------------------------------------------------------------

void Simulator::go_calm() {
  calm_ = true;
  calm_start_ = now_;
  progress_at_ = now_;
  faulty_.clear_faults();  // also restarts a crashed store
  faulty_.disable_random_faults();
  queue_.remove_if([](const SimEvent& e) {
    return e.kind == SimEvent::Kind::kEngineCrash || e.kind == SimEvent::Kind::kClockJump ||
           e.kind == SimEvent::Kind::kStoreRestart;
  });
  for (auto& a : agents_) a->calm_down(*this);
}

bool Simulator::all_terminal() const {
  if (!engine_idle() || engine_->ingress_depth() != 0) return false;
  if (!agents_.front()->quiet()) return false;  // the producer may still create
  const Blackboard& bb = engine_->blackboard();
  return bb.count(IntentState::kOpen) + bb.count(IntentState::kClaimed) +
             bb.count(IntentState::kDeferred) ==
         0;
}

void Simulator::report_liveness() {
  std::string detail = "not every intent reached a terminal state within " +
                       std::to_string((now_ - calm_start_) / 1'000) + " s (" +
                       std::to_string(sum_.calm_steps) + " steps) of the calm phase";
  if (now_ - progress_at_ > opt_.stall_ms_max) {
    detail += " (nothing changed in the store for the last " +
              std::to_string((now_ - progress_at_) / 1'000) + " s)";
  }
  if (engine_ == nullptr) {
    checker_.report("LIVENESS", detail + "; the engine is down");
    return;
  }
  const Blackboard& bb = engine_->blackboard();
  std::map<std::string, const Intent*> stuck;
  for (const auto& [id, in] : bb.intents()) {
    if (!is_terminal(in.st.state)) stuck.emplace(id, &in);
  }
  detail += "; " + std::to_string(stuck.size()) + " not terminal";
  std::size_t n = 0;
  for (const auto& [id, in] : stuck) {
    if (++n > kLivenessReportMax) break;
    detail += "; " + id.substr(0, 12) + " " + std::string(state_name(in->st.state)) + " attempts " +
              std::to_string(in->st.attempts);
    if (!in->st.holder.empty()) detail += " holder " + in->st.holder;
    if (in->st.not_before > engine_now()) {
      detail += " backoff " + std::to_string(in->st.not_before - engine_now()) + " ms";
    }
    if (Status g = bb.hint_gate(*in, engine_now()); !g.ok()) detail += " gate " + g.to_string();
  }
  for (const auto& a : agents_) {
    if (engine_->governor().is_down(a->name())) detail += "; agent " + a->name() + " is down";
  }
  if (engine_->busy()) detail += "; a commit is in flight";
  checker_.report("LIVENESS", detail);
}

// ---- World --------------------------------------------------------------------------------------

engine::RequestId Simulator::send(Agent& a, engine::Command cmd, const std::string& key) {
  const engine::RequestId id = next_request_++;
  ++sum_.requests;
  if (!key.empty() && engine::is_mutation(cmd)) ++keyed_sent_;
  engine::Request req{id, a.name(), key, std::move(cmd)};
  std::string what;  // a claim's filter and wait, for reading a log
  if (const auto* cn = std::get_if<engine::ClaimNext>(&req.command)) {
    for (const auto& k : cn->filter.kinds) what += " kind=" + k;
    for (const auto& l : cn->filter.lanes) what += " lane=" + l;
    what += " max=" + std::to_string(cn->max) + " wait_ms=" + std::to_string(cn->wait_ms);
  } else if (const auto* ci = std::get_if<engine::CreateIntent>(&req.command)) {
    what += " lane=" + ci->draft.lane;
    if (!ci->draft.provider.empty()) what += "/" + ci->draft.provider;
    for (const auto& k : ci->draft.requires_) what += " requires=" + k.substr(0, 16);
    if (!ci->draft.identity.empty()) what += " identity=" + ci->draft.identity;
  }
  log("send #" + std::to_string(id) + " " + a.name() + " " +
      std::string(engine::command_name(req.command)) + " key " + key + what);
  SimEvent e;
  e.kind = SimEvent::Kind::kRequestArrive;
  e.request = std::make_unique<engine::Request>(req);
  requests_.emplace(id, InFlight{a.index(), std::move(req), false});
  push(now_ + net_delay(), std::move(e));
  return id;
}

void Simulator::wake_at(Agent& a, std::int64_t local_ms) {
  std::int64_t at = now_;
  if (local_of(a, now_) < local_ms) {
    // Invert local = t + offset + (t − t0)·drift/1e6, rounding up.
    const std::int64_t den = 1'000'000 + a.clock_drift_ppm;
    const std::int64_t num = (local_ms - a.clock_offset_ms - t0_) * 1'000'000;
    std::int64_t q = num / den;
    if (num % den > 0) ++q;
    at = std::max(t0_ + q, now_ + 1);
  }
  SimEvent e;
  e.kind = SimEvent::Kind::kAgentWake;
  e.agent = a.index();
  e.gen = ++a.wake_generation;
  push(at, std::move(e));
}

void Simulator::note_intent(std::string id, std::int64_t lease_ttl_ms) {
  if (id.empty() || !known_intent_set_.insert(id).second) return;
  known_intents_.push_back(KnownIntent{std::move(id), lease_ttl_ms});
}

void Simulator::add_fact(const std::string& id) {
  if (id.empty() || !known_fact_set_.insert(id).second) return;
  known_facts_.push_back(id);
}

void Simulator::count(std::string_view what) {
  if (what == "pauses") ++sum_.pauses;
  if (what == "agent_crashes") ++sum_.agent_crashes;
  if (what == "request_timeouts") ++sum_.request_timeouts;
}

// ---- results ------------------------------------------------------------------------------------

void Simulator::summarize(SimResult& out) {
  out.trace_hash = to_hex(trace_.finish());
  sum_.steps = step_;
  sum_.sim_ms = now_ - t0_;
  sum_.replay_checks = checker_.replays_checked();
  sum_.plan_checks = checker_.plans_checked();
  sum_.deferrals = checker_.deferrals();
  sum_.wakes = checker_.wakes();
  // Final states from the durable store (the engine may be down).
  SimClock clock(engine_now());
  SeededRng rng(1);
  Blackboard bb(clock, rng, knobs_.engine.core);
  if (bb.load(store_).ok()) {
    for (int i = 0; i < kIntentStateCount; ++i)
      sum_.intents[i] = bb.count(static_cast<IntentState>(i));
    sum_.events = bb.last_seq();
    sum_.facts = bb.fact_count();
    sum_.hints = bb.hints().size();
  }
  out.summary = sum_;
  out.violations = checker_.violations();
  out.log = std::move(log_);
  for (const auto& a : agents_) {
    if (!out.cast.empty()) out.cast += ' ';
    out.cast += a->name();
    if (a->role() != "worker") out.cast += "(" + std::string(temper_name(a->temper())) + ")";
  }
  const Knobs& k = knobs_;
  out.knobs = "intents<=" + std::to_string(k.intents_max) +
              " net<=" + std::to_string(k.net_latency_max_ms) + "ms" +
              " commit<=" + std::to_string(k.commit_latency_max_ms) + "ms" +
              " commit_fault_p=" + fixed(k.commit_fault_p, 2) +
              " crash_every=" + std::to_string(k.engine_crash_every_ms) + "ms" +
              " jump_every=" + std::to_string(k.clock_jump_every_ms) + "ms" +
              " read_fault_p=" + fixed(k.read_fault_p, 2) +
              " snapshot_every=" + std::to_string(k.snapshot_every_ms) + "ms" +
              " ingress_max=" + std::to_string(k.engine.ingress_max) +
              " per_cycle=" + std::to_string(k.engine.commands_per_cycle_max) +
              " leases_per_agent=" + std::to_string(k.engine.leases_per_agent_max) + " " +
              admission_text(k.engine.core.admission);
}

}  // namespace

bool SimResult::caught(std::string_view invariant) const {
  for (const Violation& v : violations) {
    if (v.invariant == invariant) return true;
  }
  return false;
}

SimResult run_simulation(const SimOptions& options) {
  // The world is large (store, engine, agents): keep it off the stack.
  auto sim = std::make_unique<Simulator>(options);
  return sim->run();
}

std::string replay_command(const SimOptions& o) {
  std::string cmd = "build/bin/cairn-sim --seed " + std::to_string(o.seed);
  if (o.steps != SimOptions::kDefaultSteps) cmd += " --steps " + std::to_string(o.steps);
  if (o.canary) cmd += " --canary";
  if (o.canary_wake) cmd += " --canary-wake";
  return cmd;
}

std::string result_line(const SimOptions& o, const SimResult& r) {
  std::string line = "seed " + std::to_string(o.seed) + " trace " + r.trace_hash + " steps " +
                     std::to_string(r.summary.steps) + " sim_ms " +
                     std::to_string(r.summary.sim_ms);
  if (r.ok()) {
    line += " ok";
  } else {
    line += " violation " + r.violations.front().invariant + " at step " +
            std::to_string(r.violations.front().step);
  }
  return line;
}

std::string result_details(const SimOptions& o, const SimResult& r) {
  const SimSummary& s = r.summary;
  auto n = [](std::uint64_t v) { return std::to_string(v); };
  std::string out;
  out += "  cast:    " + r.cast + "\n";
  out += "  knobs:   " + r.knobs + "\n";
  out += "  run:     steps " + n(s.steps) + " (calm " + n(s.calm_steps) + "), simulated " +
         std::to_string(s.sim_ms / 1'000) + " s (calm " + std::to_string(s.calm_ms / 1'000) +
         " s)\n";
  out += "  traffic: requests " + n(s.requests) + ", replies " + n(s.replies) + ", acked writes " +
         n(s.acked_writes) + ", overloaded " + n(s.overloaded) + ", refused while down " +
         n(s.refused_down) + ", client timeouts " + n(s.request_timeouts) + "\n";
  out += "  faults:  commits " + n(s.commits) + ", commit faults " + n(s.commit_faults) +
         ", store crashes " + n(s.store_crashes) + ", resyncs " + n(s.resyncs) +
         ", engine crashes " + n(s.engine_crashes) + " (restored " + n(s.restores) + ", fresh " +
         n(s.fresh_starts) + ", snapshots " + n(s.snapshots) + "), clock jumps " +
         n(s.clock_jumps) + ", agent pauses " + n(s.pauses) + ", agent crashes " +
         n(s.agent_crashes) + "\n";
  out += "  checks:  events " + n(s.events) + ", replay checks " + n(s.replay_checks) +
         ", plan checks " + n(s.plan_checks) + ", deferrals " + n(s.deferrals) + ", wakes " +
         n(s.wakes) + ", idempotent retries compared " + n(s.idem_compared) + "\n";
  out += "  final:   facts " + n(s.facts) + ", hints " + n(s.hints) + ", intents";
  for (int i = 0; i < kIntentStateCount; ++i) {
    out += " " + std::string(state_name(static_cast<IntentState>(i))) + " " + n(s.intents[i]);
  }
  out += "\n";
  for (const Violation& v : r.violations) {
    out += "  VIOLATION " + v.invariant + " at step " + n(v.step) + ": " + v.detail + "\n";
  }
  if (!r.ok()) out += "  replay:  " + replay_command(o) + "\n";
  return out;
}

}  // namespace cairn::sim

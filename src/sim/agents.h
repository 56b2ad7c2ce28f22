// agents.h — the simulated clients of one simulation run (pure).
//
// Agents act only through a World (the simulator): they send requests,
// receive replies (or nothing, when a crash ate them), and ask to be woken
// at a time on their *own* clock, which drifts and is offset from the
// engine's. Every choice an agent makes is drawn from the World's seeded Rng,
// so a run replays exactly.
//
//   Producer    posts facts and creates intents grounded in acknowledged
//               facts (each create carries a unique spec.token); cancels a
//               few of its own intents. Intents carry admission fields:
//               lanes (llm with a provider), cost_units, dependencies (fact
//               ids, `kind:K`, `kind:K@ttl`, and ids of facts it promises
//               to post later), coalescing identities and stale_after_ms;
//               a few go to a lane without a budget. When calm it keeps
//               its promises, cancels those orphans and keeps posting a
//               fact of each dependency kind.
//   Worker      claim_next (sometimes a specific claim, sometimes a
//               long-poll) → heartbeat → conclude, fail or release. Tempers:
//                 normal   heartbeats every ttl/3, works 0.2–2 ttl
//                 slow     never heartbeats and works 1.5–4 ttl: its leases
//                          expire and it concludes late with an old epoch
//                 pauser   freezes mid-lease for 1–3 ttl (a GC pause), then
//                          carries on with the epoch it had
//                 crasher  vanishes mid-lease (state lost), returns later
//                          under the same name
//                 retrier  sends some requests twice at once and retries
//                          timeouts with the same Idempotency-Key
//                 skewed   schedules heartbeats by comparing the engine's
//                          lease_expires_at with its own, wrong, clock
//   HintWriter  creates deny / cap / defer / priority / require hints and
//               revokes them; in the calm phase revokes everything it made.
//   DupPoster   posts the same fact body twice, concurrently or in turn
//               (same id both times), and reads the state in bursts.
//
// Every agent retries `unavailable` and `outcome_unknown` replies with the
// same Idempotency-Key (what the status codes tell a client to do). On a
// timeout only the retrier re-sends the same key; the others start over
// with a new key, as a client that lost its context would.
//
// In the calm (liveness) phase every agent behaves: no pauses, crashes,
// skew-driven heartbeats or failures; crashed agents come back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "model/rng.h"

namespace cairn::sim {

class Agent;

enum class Temper : std::uint8_t { kNormal, kSlow, kPauser, kCrasher, kRetrier, kSkewed };
std::string_view temper_name(Temper t);

struct KnownIntent {
  std::string id;
  std::int64_t lease_ttl_ms = 0;
};

// What agents may do and know; the simulator implements it.
class World {
 public:
  virtual ~World() = default;
  // The agent's own clock (drifting, offset), in ms.
  virtual std::int64_t local_now(const Agent& a) const = 0;
  // Sends a request over the simulated network; returns its id.
  virtual engine::RequestId send(Agent& a, engine::Command cmd, const std::string& key) = 0;
  // Wakes the agent once its clock reads `local_ms` (replaces any earlier
  // wake-up request).
  virtual void wake_at(Agent& a, std::int64_t local_ms) = 0;
  virtual Rng& rng() = 0;
  // The liveness phase: faults are off and agents behave.
  virtual bool calm() const = 0;
  // Facts and intents some client got a 2xx for.
  virtual const std::vector<std::string>& known_facts() const = 0;
  virtual const std::vector<KnownIntent>& known_intents() const = 0;
  virtual void note_intent(std::string id, std::int64_t lease_ttl_ms) = 0;
  // Summary counters ("pauses", "agent_crashes", ...).
  virtual void count(std::string_view what) = 0;
};

class Agent {
 public:
  Agent(std::string name, std::size_t index, Temper temper);
  virtual ~Agent() = default;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  const std::string& name() const { return name_; }
  std::size_t index() const { return index_; }
  Temper temper() const { return temper_; }
  virtual std::string_view role() const = 0;

  // The agent's clock: local = true + offset + (true − origin) · drift_ppm / 1e6.
  std::int64_t clock_offset_ms = 0;
  std::int64_t clock_drift_ppm = 0;
  // The simulator's wake-up bookkeeping: only the latest request counts.
  std::uint64_t wake_generation = 0;

  virtual void start(World& w) = 0;
  void on_wake(World& w);
  void on_reply(World& w, engine::RequestId id, const Status& status, const Json& body);
  // Switches to the liveness phase's good behaviour.
  virtual void calm_down(World& w);
  // True when the agent has nothing outstanding (the liveness phase ends
  // when all intents are terminal and the producer is quiet).
  bool quiet() const { return !pending_.active; }

 protected:
  // The next step, when nothing is outstanding.
  virtual void act(World& w) = 0;
  // The final reply to the current request (transient errors were retried;
  // a timeout arrives as unavailable/timeout).
  virtual void handle(World& w, int purpose, const Status& status, const Json& body) = 0;

  // Sends `cmd` (keyed) and waits for its reply. REQUIRES: nothing pending.
  void request(World& w, engine::Command cmd, int purpose, std::string subject = {},
               std::uint64_t epoch = 0);
  // Fire and forget (a concurrent duplicate): the reply is not awaited.
  void send_unawaited(World& w, engine::Command cmd);
  bool waiting() const { return pending_.active; }
  const std::string& pending_subject() const { return pending_.subject; }
  std::uint64_t pending_epoch() const { return pending_.epoch; }
  std::string next_token(std::string_view what);
  // Wakes the agent at `local_ms` unless a request is outstanding (its
  // timeout wake-up then stands).
  void sleep_until(World& w, std::int64_t local_ms);

  // Crash (lose all state until `until_local`) and pause (freeze).
  void vanish(World& w, std::int64_t until_local);
  void freeze(World& w, std::int64_t until_local);
  virtual void forget() {}

  std::string name_;
  std::size_t index_;
  Temper temper_;
  bool calm_ = false;

 private:
  struct Pending {
    bool active = false;
    std::vector<engine::RequestId> ids;  // every attempt with this key
    std::string key;
    engine::Command cmd;
    int purpose = 0;
    std::string subject;
    std::uint64_t epoch = 0;
    int tries = 0;
    std::int64_t timeout_at = 0;  // local ms
    std::int64_t resend_at = 0;   // local ms; 0: not waiting to resend
  };
  struct Stashed {
    engine::RequestId id;
    Status status;
    Json body;
  };
  void send_attempt(World& w);
  void settle(World& w, const Status& status, const Json& body);
  void continue_after(World& w);

  Pending pending_;
  std::uint64_t keys_ = 0;
  std::uint64_t tokens_ = 0;
  std::int64_t gone_until_ = 0;    // local ms; > now: crashed
  std::int64_t frozen_until_ = 0;  // local ms; > now: paused
  std::deque<Stashed> stashed_;    // replies that arrived during a pause
};

// Builds the agents of one run from the seed's Rng: one producer, 3–7
// workers of drawn tempers (at least one normal), 0–2 hint writers, 0–1
// duplicate posters.
std::vector<std::unique_ptr<Agent>> make_agents(Rng& rng, std::size_t intents_max);

}  // namespace cairn::sim

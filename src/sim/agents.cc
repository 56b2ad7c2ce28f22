// agents.cc — producer, workers, hint writers and duplicate posters.
#include "sim/agents.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

#include "model/fact.h"
#include "model/sha256.h"

namespace cairn::sim {

namespace {

constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max() / 4;
// A request with no reply for this long (on the agent's clock) timed out.
constexpr std::int64_t kRequestTimeoutMs = 3'000;
// Attempts per request with one Idempotency-Key (transient errors, and the
// retrier's timeouts).
constexpr int kTriesMax = 6;
// Backoff before resending after a transient error: base·2^tries, capped.
constexpr std::int64_t kResendBaseMs = 20;
constexpr std::int64_t kResendCapMs = 1'000;

constexpr const char* kIntentKinds[] = {"crawl", "build", "index"};
// Lanes with budgets when the seed turns budgets on (simulator.cc): `llm`
// also per provider. `orphan` never has one: its intents wait no_budget
// until the producer cancels them in the calm phase.
constexpr const char* kLanes[] = {"default", "bulk", "llm"};
constexpr const char* kProviders[] = {"openai", "anthropic"};
constexpr const char* kOrphanLane = "orphan";
constexpr std::int64_t kTtlChoicesMs[] = {400, 1'000, 2'500, 5'000};
// Dependencies: fact kinds the producer posts, and readiness TTLs for
// `kind:K@ttl` keys (all longer than the calm phase's refresh interval).
constexpr const char* kDependencyKinds[] = {"obs", "page", "gate"};
constexpr const char* kReadinessTtls[] = {"2s", "5s", "20s"};
// In the calm phase the producer posts a fact of each dependency kind this
// often, so `kind:K@ttl` waits clear however late a worker comes.
constexpr std::int64_t kCalmRefreshMinMs = 300;
constexpr std::int64_t kCalmRefreshMaxMs = 900;

template <class T, std::size_t N>
const T& pick(Rng& rng, const T (&xs)[N]) {
  return xs[rng.uniform(N)];
}

bool transient(const Status& s) {
  return (s.code() == Code::kUnavailable || s.code() == Code::kOutcomeUnknown) &&
         s.reason() != "timeout";
}

std::int64_t json_int(const Json& obj, std::string_view key, std::int64_t fallback) {
  const Json* j = obj.find(key);
  if (j == nullptr) return fallback;
  auto v = j->int_if();
  return v ? *v : fallback;
}

std::string json_string(const Json& obj, std::string_view key) {
  const Json* j = obj.find(key);
  return j != nullptr && j->is_string() ? j->as_string() : std::string();
}

// ---- worker -------------------------------------------------------------------------------------

class Worker final : public Agent {
 public:
  Worker(std::string name, std::size_t index, Temper temper, Rng& rng)
      : Agent(std::move(name), index, temper),
        want_(1 + rng.uniform(3)),
        fail_p_(rng.chance(0.5) ? 0.0 : 0.05 + 0.15 * rng.unit()),
        long_poll_(rng.chance(0.3)) {}

  std::string_view role() const override { return "worker"; }

  void start(World& w) override {
    next_claim_ = w.local_now(*this) + w.rng().range(0, 500);
    sleep_until(w, next_claim_);
  }

  void calm_down(World& w) override {
    Agent::calm_down(w);
    const std::int64_t now = w.local_now(*this);
    for (Lease& l : leases_) {
      l.next_hb = std::min(l.next_hb, now);
      l.work_until = std::min(l.work_until, now + l.ttl);
    }
    next_claim_ = std::min(next_claim_, now);
    sleep_until(w, now);
  }

 protected:
  enum Purpose { kClaim = 1, kHeartbeat, kConclude, kFail, kRelease };

  void forget() override {
    leases_.clear();
    next_claim_ = 0;
  }

  void act(World& w) override {
    Rng& rng = w.rng();
    const std::int64_t now = w.local_now(*this);
    if (!calm_ && !leases_.empty()) {
      if (temper_ == Temper::kCrasher && rng.chance(0.08)) {
        return vanish(w, now + rng.range(500, 12'000));
      }
      // Pausers freeze often; anyone else now and then (a GC pause, a
      // laptop lid): either way the agent carries on with its old epoch.
      if (rng.chance(temper_ == Temper::kPauser ? 0.15 : 0.02)) {
        const std::int64_t ttl = leases_.front().ttl;
        return freeze(w, now + rng.range(ttl, 3 * ttl));
      }
    }
    for (std::size_t i = 0; i < leases_.size(); ++i) {
      if (now >= leases_[i].work_until) return finish(w, leases_[i]);
    }
    for (std::size_t i = 0; i < leases_.size(); ++i) {
      if (now >= leases_[i].next_hb) return heartbeat(w, leases_[i]);
    }
    if (leases_.size() < want_ && now >= next_claim_) return claim(w);
    std::int64_t next = leases_.size() < want_ ? next_claim_ : kNever;
    for (const Lease& l : leases_) next = std::min({next, l.work_until, l.next_hb});
    sleep_until(w, next);
  }

  void handle(World& w, int purpose, const Status& st, const Json& body) override {
    const std::int64_t now = w.local_now(*this);
    Rng& rng = w.rng();
    // No reply, or transient errors past the retries: the outcome is open.
    const bool unsure =
        !st.ok() && (st.code() == Code::kUnavailable || st.code() == Code::kOutcomeUnknown);
    switch (purpose) {
      case kClaim: {
        if (unsure) {
          // After a timeout ask again at once; after refusals (engine down,
          // agent backing off or marked down) give it a moment.
          next_claim_ =
              now + (st.reason() == "timeout" ? rng.range(0, 100) : rng.range(500, 3'000));
          return;
        }
        if (!st.ok()) {
          next_claim_ = now + rng.range(200, 1'500);
          return;
        }
        if (const Json* claims = body.find("claims")) {
          for (const Json& c : claims->as_array()) {
            const Json* in = c.find("intent");
            if (in == nullptr) continue;
            const std::int64_t ttl =
                requested_ttl_ != 0 ? requested_ttl_ : json_int(*in, "lease_ttl_ms", 1'000);
            add_lease(w, json_string(*in, "id"),
                      static_cast<std::uint64_t>(json_int(c, "epoch", 0)),
                      json_int(c, "lease_expires_at", 0), ttl);
          }
          next_claim_ = claims->size() == 0
                            ? now + (long_poll_ ? rng.range(0, 200) : rng.range(100, 1'000))
                            : now;
        } else {
          std::int64_t ttl = 1'000;
          const std::string id = json_string(body, "id");
          for (const KnownIntent& k : w.known_intents()) {
            if (k.id == id) ttl = k.lease_ttl_ms;
          }
          if (requested_ttl_ != 0) ttl = requested_ttl_;
          add_lease(w, id, static_cast<std::uint64_t>(json_int(body, "epoch", 0)),
                    json_int(body, "lease_expires_at", 0), ttl);
          next_claim_ = now;
        }
        return;
      }
      case kHeartbeat: {
        Lease* l = find(pending_subject(), pending_epoch());
        if (l == nullptr) return;
        if (unsure) {
          l->next_hb = now;
          return;
        }
        if (!st.ok()) return drop(pending_subject(), pending_epoch());
        l->lease_end = json_int(body, "lease_expires_at", l->lease_end);
        l->next_hb = heartbeat_at(now, *l);
        return;
      }
      case kConclude:
      case kFail:
      case kRelease: {
        // An open outcome leaves the lease in place: act() tries again
        // (new key); a retried conclude that already landed is a no-op.
        if (unsure) return;
        return drop(pending_subject(), pending_epoch());
      }
      default:
        return;
    }
  }

 private:
  struct Lease {
    std::string intent;
    std::uint64_t epoch = 0;
    std::int64_t lease_end = 0;  // engine wall ms, as the reply said
    std::int64_t ttl = 0;
    std::int64_t work_until = 0;  // local ms
    std::int64_t next_hb = 0;     // local ms
  };

  Lease* find(const std::string& intent, std::uint64_t epoch) {
    for (Lease& l : leases_) {
      if (l.intent == intent && l.epoch == epoch) return &l;
    }
    return nullptr;
  }

  void drop(const std::string& intent, std::uint64_t epoch) {
    leases_.erase(
        std::remove_if(leases_.begin(), leases_.end(),
                       [&](const Lease& l) { return l.intent == intent && l.epoch == epoch; }),
        leases_.end());
  }

  std::int64_t heartbeat_at(std::int64_t now, const Lease& l) const {
    if (!calm_ && temper_ == Temper::kSlow) return kNever;
    // The skewed worker compares the engine's lease end with its own clock.
    if (!calm_ && temper_ == Temper::kSkewed) return l.lease_end - 2 * l.ttl / 3;
    return now + l.ttl / 3;
  }

  void add_lease(World& w, std::string intent, std::uint64_t epoch, std::int64_t lease_end,
                 std::int64_t ttl) {
    if (intent.empty()) return;
    const std::int64_t now = w.local_now(*this);
    leases_.erase(std::remove_if(leases_.begin(), leases_.end(),
                                 [&](const Lease& l) { return l.intent == intent; }),
                  leases_.end());
    Lease l;
    l.intent = std::move(intent);
    l.epoch = epoch;
    l.lease_end = lease_end;
    l.ttl = std::max<std::int64_t>(ttl, 100);
    const bool slow = !calm_ && temper_ == Temper::kSlow;
    l.work_until = now + (slow ? w.rng().range(l.ttl * 3 / 2, 4 * l.ttl)
                               : w.rng().range(l.ttl / 5, 2 * l.ttl));
    l.next_hb = heartbeat_at(now, l);
    leases_.push_back(std::move(l));
  }

  void claim(World& w) {
    Rng& rng = w.rng();
    requested_ttl_ = rng.chance(0.2) ? rng.range(300, 3'000) : 0;
    const auto& known = w.known_intents();
    if (!known.empty() && rng.chance(0.1)) {
      const KnownIntent& k = known[rng.uniform(known.size())];
      return request(w, engine::Claim{k.id, requested_ttl_}, kClaim, k.id);
    }
    engine::ClaimNext c;
    if (rng.chance(0.2)) c.filter.kinds = {pick(rng, kIntentKinds)};
    if (rng.chance(0.1)) c.filter.lanes = {pick(rng, kLanes)};
    c.ttl_ms = requested_ttl_;
    c.max = want_ - leases_.size();
    c.wait_ms = long_poll_ ? rng.range(100, 2'000) : 0;
    request(w, std::move(c), kClaim);
  }

  void heartbeat(World& w, const Lease& l) {
    request(w, engine::Heartbeat{l.intent, l.epoch, 0}, kHeartbeat, l.intent, l.epoch);
  }

  void finish(World& w, const Lease& l) {
    Rng& rng = w.rng();
    if (!calm_ && fail_p_ > 0 && rng.chance(fail_p_)) {
      engine::Fail f{l.intent, l.epoch, "worker " + name_ + " gave up", rng.chance(0.75)};
      return request(w, std::move(f), kFail, l.intent, l.epoch);
    }
    if (!calm_ && rng.chance(0.04)) {
      return request(w, engine::Release{l.intent, l.epoch}, kRelease, l.intent, l.epoch);
    }
    FactBody result;
    result.kind = "result";
    result.content = Json(JsonObject{{"by", Json(name_)},
                                     {"intent", Json(l.intent)},
                                     {"epoch", Json(l.epoch)},
                                     {"n", Json(++results_)}});
    request(w, engine::Conclude{l.intent, l.epoch, std::move(result)}, kConclude, l.intent,
            l.epoch);
  }

  std::size_t want_;
  double fail_p_;
  bool long_poll_;
  std::vector<Lease> leases_;
  std::int64_t next_claim_ = 0;
  std::int64_t requested_ttl_ = 0;
  std::uint64_t results_ = 0;
};

// ---- producer -----------------------------------------------------------------------------------

class Producer final : public Agent {
 public:
  Producer(std::string name, std::size_t index, Temper temper, std::size_t intents_max)
      : Agent(std::move(name), index, temper), intents_max_(intents_max) {}

  std::string_view role() const override { return "producer"; }

  void start(World& w) override {
    next_ = w.local_now(*this);
    sleep_until(w, next_);
  }

  void calm_down(World& w) override {
    Agent::calm_down(w);
    next_ = w.local_now(*this);
    sleep_until(w, next_);
  }

 protected:
  enum Purpose { kPost = 1, kCreate, kCancel, kKeep };

  void act(World& w) override {
    Rng& rng = w.rng();
    const std::int64_t now = w.local_now(*this);
    if (calm_) return act_calm(w, now);
    if (now < next_) return sleep_until(w, next_);
    next_ = now + rng.range(50, 900);
    const auto& facts = w.known_facts();
    if (facts.empty() || rng.chance(0.25)) return post_fact(w);
    // Keep a promise now and then: the intents that require it wake.
    if (!promised_.empty() && rng.chance(0.15)) return keep_promise(w);
    if (created_ < intents_max_) return create_intent(w);
    if (!mine_.empty() && rng.chance(0.15)) {
      const std::string id = mine_[rng.uniform(mine_.size())];
      return request(w, engine::Cancel{id}, kCancel, id);
    }
    if (rng.chance(0.2)) return post_fact(w);
    sleep_until(w, next_);
  }

  void handle(World& w, int purpose, const Status& st, const Json& body) override {
    (void)w;
    const bool unsure = st.code() == Code::kUnavailable || st.code() == Code::kOutcomeUnknown;
    if (purpose == kCreate && st.ok()) mine_.push_back(json_string(body, "id"));
    if (purpose == kCancel && !unsure) {
      mine_.erase(std::remove(mine_.begin(), mine_.end(), pending_subject()), mine_.end());
      orphans_.erase(std::remove(orphans_.begin(), orphans_.end(), pending_subject()),
                     orphans_.end());
    }
    // A kept promise is posted again until a final reply says it is recorded.
    if (purpose == kKeep && !unsure && !promised_.empty()) promised_.erase(promised_.begin());
  }

 private:
  // The calm phase: no new intents; keep every promise, lift the orphans
  // (their lane has no budget), then refresh each dependency kind so no
  // `kind:K@ttl` wait outlives the phase.
  void act_calm(World& w, std::int64_t now) {
    if (!promised_.empty()) return keep_promise(w);
    if (!orphans_.empty()) {
      const std::string id = orphans_.back();
      return request(w, engine::Cancel{id}, kCancel, id);
    }
    if (now < next_) return sleep_until(w, next_);
    next_ = now + w.rng().range(kCalmRefreshMinMs, kCalmRefreshMaxMs);
    FactBody b;
    b.kind = kDependencyKinds[refresh_++ % std::size(kDependencyKinds)];
    b.content = Json(JsonObject{{"n", Json(++facts_)}, {"by", Json(name_)}});
    request(w, engine::PostFact{std::move(b)}, kPost);
  }

  void post_fact(World& w) {
    Rng& rng = w.rng();
    FactBody b;
    const double k = rng.unit();
    b.kind = k < 0.6 ? "obs" : (k < 0.9 ? "page" : "gate");
    b.content = Json(JsonObject{{"n", Json(++facts_)}, {"by", Json(name_)}});
    const auto& facts = w.known_facts();
    if (!facts.empty() && rng.chance(0.5)) {
      b.derived_from.push_back(facts[rng.uniform(facts.size())]);
      const std::string& second = facts[rng.uniform(facts.size())];
      if (second != b.derived_from.front() && rng.chance(0.5)) b.derived_from.push_back(second);
    }
    if (rng.chance(0.03)) {
      // A reference to a fact nobody recorded: refused (unknown_reference).
      b.derived_from.push_back(to_hex(sha256("missing-" + std::to_string(facts_))));
    }
    request(w, engine::PostFact{std::move(b)}, kPost);
  }

  void keep_promise(World& w) { request(w, engine::PostFact{promised_.front()}, kKeep); }

  // A fact the producer will post later; its id (a content hash) can be
  // required now.
  std::string promise() {
    FactBody b;
    b.kind = "promised";
    b.creator = name_;
    b.content = Json(JsonObject{{"promise", Json(++promises_)}, {"by", Json(name_)}});
    auto canon = canonicalize_fact(b, ModelLimits{});
    CAIRN_ASSERT(canon.ok());
    promised_.push_back(std::move(b));
    return canon->id;
  }

  // Admission fields: lane (and provider), cost, dependencies, coalescing
  // identity, staleness.
  void admission_fields(Rng& rng, const std::vector<std::string>& facts, IntentDraft& d) {
    d.lane = pick(rng, kLanes);
    if (d.lane == "llm" && rng.chance(0.75)) d.provider = pick(rng, kProviders);
    if (rng.chance(0.05)) {
      // A lane nobody budgeted: a client-chosen id lets the producer cancel
      // it even when the reply is lost.
      d.lane = kOrphanLane;
      d.id = name_ + "-orphan-" + std::to_string(created_);
      orphans_.push_back(d.id);
    }
    d.cost_units = rng.range(1, 2);
    if (rng.chance(0.35)) {
      const std::int64_t keys = rng.range(1, 2);
      for (std::int64_t i = 0; i < keys; ++i) {
        const double r = rng.unit();
        if (r < 0.2 && !facts.empty()) {
          d.requires_.push_back(facts[rng.uniform(facts.size())]);
        } else if (r < 0.45) {
          d.requires_.push_back("kind:" + std::string(pick(rng, kDependencyKinds)));
        } else if (r < 0.75) {
          // One draw per statement: the order in which operands of one
          // expression are evaluated differs between compilers (and so
          // between the native and the wasm32 build).
          const std::string kind = pick(rng, kDependencyKinds);
          d.requires_.push_back("kind:" + kind + "@" + pick(rng, kReadinessTtls));
        } else {
          d.requires_.push_back(promise());
        }
      }
    }
    // Keys are unique (a repeat is refused as invalid).
    std::vector<std::string> keys_once;
    for (std::string& k : d.requires_) {
      if (std::find(keys_once.begin(), keys_once.end(), k) == keys_once.end()) {
        keys_once.push_back(std::move(k));
      }
    }
    d.requires_ = std::move(keys_once);
    if (rng.chance(0.3)) d.identity = "job-" + std::to_string(rng.range(1, 3));
    if (rng.chance(0.12)) d.stale_after_ms = rng.range(3'000, 30'000);
  }

  void create_intent(World& w) {
    Rng& rng = w.rng();
    ++created_;
    const auto& facts = w.known_facts();
    IntentDraft d;
    d.kind = pick(rng, kIntentKinds);
    d.from_facts.push_back(facts[rng.uniform(facts.size())]);
    const std::string& second = facts[rng.uniform(facts.size())];
    if (second != d.from_facts.front() && rng.chance(0.3)) d.from_facts.push_back(second);
    admission_fields(rng, facts, d);
    d.priority = rng.range(-3, 3);
    d.lease_ttl_ms = pick(rng, kTtlChoicesMs);
    d.max_attempts = rng.range(1, 5);
    d.spec = Json(JsonObject{{"token", Json(next_token("intent"))},
                             {"n", Json(static_cast<std::uint64_t>(created_))}});
    request(w, engine::CreateIntent{std::move(d)}, kCreate);
  }

  std::size_t intents_max_;
  std::size_t created_ = 0;
  std::uint64_t facts_ = 0;
  std::uint64_t promises_ = 0;
  std::size_t refresh_ = 0;
  std::int64_t next_ = 0;
  std::vector<std::string> mine_;
  std::vector<std::string> orphans_;  // intents in the orphan lane, cancelled when calm
  std::vector<FactBody> promised_;    // facts required by id, not yet posted
};

// ---- hint writer --------------------------------------------------------------------------------

class HintWriter final : public Agent {
 public:
  HintWriter(std::string name, std::size_t index, Temper temper)
      : Agent(std::move(name), index, temper) {}

  std::string_view role() const override { return "hint-writer"; }

  void start(World& w) override {
    next_ = w.local_now(*this) + w.rng().range(200, 3'000);
    sleep_until(w, next_);
  }

  void calm_down(World& w) override {
    Agent::calm_down(w);
    next_ = w.local_now(*this);
    sleep_until(w, next_);
  }

 protected:
  enum Purpose { kCreate = 1, kRevoke };

  void act(World& w) override {
    Rng& rng = w.rng();
    const std::int64_t now = w.local_now(*this);
    if (calm_) {
      // Lift every hint it ever made (or may have made: a reply can be lost).
      if (made_.empty()) return;
      const std::string id = made_.back();
      return request(w, engine::RevokeHint{id, false}, kRevoke, id);
    }
    if (now < next_) return sleep_until(w, next_);
    next_ = now + rng.range(300, 4'000);
    if (live_.size() < 2 && rng.chance(0.6)) return create(w, now);
    if (!live_.empty()) {
      const std::string id = live_[rng.uniform(live_.size())];
      return request(w, engine::RevokeHint{id, false}, kRevoke, id);
    }
    sleep_until(w, next_);
  }

  void handle(World& w, int purpose, const Status& st, const Json& body) override {
    (void)w;
    const bool unsure = st.code() == Code::kUnavailable || st.code() == Code::kOutcomeUnknown;
    if (purpose == kCreate) {
      if (st.ok()) {
        live_.push_back(json_string(body, "id"));
        if (made_.empty() || made_.back() != live_.back()) remember(live_.back());
      } else if (st.reason() == "id_exists") {
        live_.push_back(pending_subject());
      }
    } else if (purpose == kRevoke && !unsure) {
      const std::string& id = pending_subject();
      live_.erase(std::remove(live_.begin(), live_.end(), id), live_.end());
      made_.erase(std::remove(made_.begin(), made_.end(), id), made_.end());
    }
  }

 private:
  void remember(const std::string& id) {
    if (std::find(made_.begin(), made_.end(), id) == made_.end()) made_.push_back(id);
  }

  void create(World& w, std::int64_t now) {
    Rng& rng = w.rng();
    HintDraft d;
    d.kind = "policy";
    // A client-chosen id lets the writer lift the hint even when the reply
    // is lost; generated ids always get an expiry instead.
    if (rng.chance(0.7)) d.id = name_ + "-h" + std::to_string(++n_);
    if (d.id.empty() || rng.chance(0.6)) d.expires_at = now + rng.range(500, 8'000);
    if (rng.chance(0.6)) {
      d.selector.kind = pick(rng, kIntentKinds);
    } else {
      d.selector.lane = pick(rng, kLanes);
    }
    const double e = rng.unit();
    if (e < 0.35) {
      d.effect.type = HintEffectType::kDeny;
    } else if (e < 0.6) {
      d.effect.type = HintEffectType::kCap;
      d.effect.n = rng.range(1, 2);
    } else if (e < 0.8) {
      d.effect.type = HintEffectType::kDefer;
      d.effect.until = now + rng.range(300, 5'000);
    } else if (e < 0.9) {
      d.effect.type = HintEffectType::kPriority;
      d.effect.n = rng.range(-5, 5);
    } else {
      d.effect.type = HintEffectType::kRequire;
      d.effect.fact_kind = "gate";
    }
    d.reason = next_token("hint");
    const auto& facts = w.known_facts();
    if (!facts.empty() && rng.chance(0.5))
      d.derived_from.push_back(facts[rng.uniform(facts.size())]);
    const std::string id = d.id;
    if (!id.empty()) remember(id);
    request(w, engine::CreateHint{std::move(d)}, kCreate, id);
  }

  std::int64_t next_ = 0;
  std::uint64_t n_ = 0;
  std::vector<std::string> live_;  // acknowledged and not yet revoked
  std::vector<std::string> made_;  // every id it made or tried to make
};

// ---- duplicate poster ---------------------------------------------------------------------------

class DupPoster final : public Agent {
 public:
  DupPoster(std::string name, std::size_t index, Temper temper)
      : Agent(std::move(name), index, temper) {}

  std::string_view role() const override { return "dup-poster"; }

  void start(World& w) override {
    next_ = w.local_now(*this) + w.rng().range(100, 2'000);
    sleep_until(w, next_);
  }

 protected:
  enum Purpose { kFirst = 1, kSecond, kRead };

  void act(World& w) override {
    if (calm_) return;
    Rng& rng = w.rng();
    const std::int64_t now = w.local_now(*this);
    if (now < next_) return sleep_until(w, next_);
    next_ = now + rng.range(200, 3'000);
    if (rng.chance(0.2)) {
      // A burst of reads on other connections: fills a small ingress queue.
      const std::int64_t burst = rng.range(0, 8);
      for (std::int64_t i = 0; i < burst; ++i) send_unawaited(w, engine::GetState{});
      return request(w, engine::GetState{}, kRead);
    }
    body_ = FactBody{};
    body_.kind = "dup";
    body_.creator = name_;
    body_.content = Json(JsonObject{{"k", Json(++k_)}});
    const auto& facts = w.known_facts();
    if (!facts.empty() && rng.chance(0.5)) body_.derived_from = {facts[rng.uniform(facts.size())]};
    // Concurrently (another connection, another key) or one after another.
    if (rng.chance(0.5)) send_unawaited(w, engine::PostFact{body_});
    request(w, engine::PostFact{body_}, kFirst);
  }

  void handle(World& w, int purpose, const Status& st, const Json& body) override {
    (void)st;
    (void)body;
    if (purpose == kFirst) request(w, engine::PostFact{body_}, kSecond);
  }

 private:
  std::int64_t next_ = 0;
  std::uint64_t k_ = 0;
  FactBody body_;
};

}  // namespace

std::string_view temper_name(Temper t) {
  switch (t) {
    case Temper::kNormal:
      return "normal";
    case Temper::kSlow:
      return "slow";
    case Temper::kPauser:
      return "pauser";
    case Temper::kCrasher:
      return "crasher";
    case Temper::kRetrier:
      return "retrier";
    case Temper::kSkewed:
      return "skewed";
  }
  return "?";
}

// ---- the request machinery every agent shares ---------------------------------------------------

Agent::Agent(std::string name, std::size_t index, Temper temper)
    : name_(std::move(name)), index_(index), temper_(temper) {}

std::string Agent::next_token(std::string_view what) {
  return name_ + "-" + std::string(what) + "-" + std::to_string(++tokens_);
}

void Agent::request(World& w, engine::Command cmd, int purpose, std::string subject,
                    std::uint64_t epoch) {
  CAIRN_ASSERT(!pending_.active);
  pending_ = Pending{};
  pending_.active = true;
  pending_.key = name_ + "-k" + std::to_string(++keys_);
  pending_.cmd = std::move(cmd);
  pending_.purpose = purpose;
  pending_.subject = std::move(subject);
  pending_.epoch = epoch;
  send_attempt(w);
}

void Agent::send_unawaited(World& w, engine::Command cmd) {
  w.send(*this, std::move(cmd), name_ + "-k" + std::to_string(++keys_));
}

void Agent::send_attempt(World& w) {
  ++pending_.tries;
  pending_.resend_at = 0;
  pending_.ids.push_back(w.send(*this, pending_.cmd, pending_.key));
  // The retrier sometimes sends the same request twice at once (a client
  // library that retries on a slow connection).
  if (temper_ == Temper::kRetrier && engine::is_mutation(pending_.cmd) && w.rng().chance(0.3)) {
    pending_.ids.push_back(w.send(*this, pending_.cmd, pending_.key));
  }
  std::int64_t timeout = kRequestTimeoutMs;
  if (const auto* cn = std::get_if<engine::ClaimNext>(&pending_.cmd)) timeout += cn->wait_ms;
  pending_.timeout_at = w.local_now(*this) + timeout;
  w.wake_at(*this, pending_.timeout_at);
}

void Agent::sleep_until(World& w, std::int64_t local_ms) {
  if (pending_.active || local_ms >= kNever) return;
  w.wake_at(*this, local_ms);
}

void Agent::vanish(World& w, std::int64_t until_local) {
  gone_until_ = until_local;
  frozen_until_ = 0;
  pending_ = Pending{};
  stashed_.clear();
  forget();
  w.count("agent_crashes");
  w.wake_at(*this, until_local);
}

void Agent::freeze(World& w, std::int64_t until_local) {
  frozen_until_ = until_local;
  w.count("pauses");
  w.wake_at(*this, until_local);
}

void Agent::calm_down(World& w) {
  calm_ = true;
  const std::int64_t now = w.local_now(*this);
  if (gone_until_ > now) {
    gone_until_ = now;
    w.wake_at(*this, now);
  }
}

void Agent::on_wake(World& w) {
  const std::int64_t now = w.local_now(*this);
  if (now < gone_until_) return w.wake_at(*this, gone_until_);
  gone_until_ = 0;
  if (now < frozen_until_) return w.wake_at(*this, frozen_until_);
  if (frozen_until_ != 0) {
    // Back from a pause: the replies that arrived meanwhile, in order.
    frozen_until_ = 0;
    bool handled = false;
    while (!stashed_.empty()) {
      Stashed s = std::move(stashed_.front());
      stashed_.pop_front();
      if (pending_.active &&
          std::find(pending_.ids.begin(), pending_.ids.end(), s.id) != pending_.ids.end()) {
        handled = true;
        on_reply(w, s.id, s.status, s.body);
      }
    }
    if (handled) return;
  }
  if (pending_.active) {
    if (pending_.resend_at != 0) {
      if (now >= pending_.resend_at) return send_attempt(w);
      return w.wake_at(*this, pending_.resend_at);
    }
    if (now < pending_.timeout_at) return w.wake_at(*this, pending_.timeout_at);
    w.count("request_timeouts");
    if (temper_ == Temper::kRetrier && pending_.tries < kTriesMax) return send_attempt(w);
    return settle(w, unavailable("no reply before the client's timeout", "timeout"), Json());
  }
  act(w);
}

void Agent::on_reply(World& w, engine::RequestId id, const Status& status, const Json& body) {
  const std::int64_t now = w.local_now(*this);
  if (now < gone_until_) return;  // the process that asked is gone
  if (now < frozen_until_) {
    stashed_.push_back(Stashed{id, status, body});
    return;
  }
  if (!pending_.active ||
      std::find(pending_.ids.begin(), pending_.ids.end(), id) == pending_.ids.end()) {
    return;  // a late reply to an attempt the agent gave up on
  }
  if (transient(status) && pending_.tries < kTriesMax) {
    if (pending_.resend_at != 0) return;  // already waiting to resend
    std::int64_t backoff = kResendBaseMs;
    for (int i = 1; i < pending_.tries && backoff < kResendCapMs; ++i) backoff *= 2;
    backoff = std::min(backoff, kResendCapMs);
    pending_.resend_at = now + backoff / 2 + w.rng().range(0, backoff / 2);
    w.wake_at(*this, pending_.resend_at);
    return;
  }
  settle(w, status, body);
}

void Agent::settle(World& w, const Status& status, const Json& body) {
  const int purpose = pending_.purpose;
  // Keep subject/epoch readable in handle(); the request is no longer active.
  pending_.active = false;
  handle(w, purpose, status, body);
  continue_after(w);
}

void Agent::continue_after(World& w) {
  const std::int64_t now = w.local_now(*this);
  if (pending_.active || now < gone_until_ || now < frozen_until_) return;
  act(w);
}

// ---- the cast -----------------------------------------------------------------------------------

std::vector<std::unique_ptr<Agent>> make_agents(Rng& rng, std::size_t intents_max) {
  std::vector<std::unique_ptr<Agent>> out;
  auto producer_temper = rng.chance(0.3) ? Temper::kRetrier : Temper::kNormal;
  out.push_back(std::make_unique<Producer>("producer", out.size(), producer_temper, intents_max));
  const std::size_t workers = static_cast<std::size_t>(rng.range(3, 7));
  for (std::size_t i = 0; i < workers; ++i) {
    Temper t = Temper::kNormal;
    if (i > 0) {
      // Weights: normal 2, each misbehaviour 1.
      const std::uint64_t r = rng.uniform(7);
      t = r < 2 ? Temper::kNormal : static_cast<Temper>(r - 1);
    }
    out.push_back(std::make_unique<Worker>(
        "w" + std::to_string(i + 1) + "-" + std::string(temper_name(t)), out.size(), t, rng));
  }
  const std::size_t writers = static_cast<std::size_t>(rng.range(0, 2));
  for (std::size_t i = 0; i < writers; ++i) {
    out.push_back(
        std::make_unique<HintWriter>("ops" + std::to_string(i + 1), out.size(), Temper::kNormal));
  }
  if (rng.chance(0.6)) {
    out.push_back(std::make_unique<DupPoster>(
        "dup", out.size(), rng.chance(0.3) ? Temper::kRetrier : Temper::kNormal));
  }
  // Clocks: most agents are close to the engine's; some drift or sit off.
  for (auto& a : out) {
    const bool skewed = a->temper() == Temper::kSkewed;
    a->clock_offset_ms = skewed ? rng.range(-4'000, 1'000) : rng.range(-50, 50);
    a->clock_drift_ppm = skewed ? rng.range(-200'000, 100'000) : rng.range(-10'000, 10'000);
  }
  return out;
}

}  // namespace cairn::sim

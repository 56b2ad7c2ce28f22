// property_test.cc — random operation sequences against a simple reference
// model of the lifecycle, with failing commits, checking invariants I1, I2,
// I4 and I5 of the architecture after every committed batch.
//
// The reference model is written independently of core/lifecycle.cc: it
// restates the rules in the most direct way and predicts, for every command,
// whether it is accepted and what the intent looks like afterwards.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/blackboard.h"
#include "core/keys.h"
#include "store/fault_store.h"
#include "store/memory_store.h"

namespace cairn {
namespace {

constexpr std::int64_t kTtl = 5'000;

struct ModelIntent {
  std::string kind;
  std::string creator;
  IntentState state = IntentState::kOpen;
  std::uint64_t epoch = 0;
  std::string holder;
  std::int64_t lease_end = 0;
  std::int64_t attempts = 0;
  std::int64_t max_attempts = 3;
  std::int64_t not_before = 0;
  int result = -1;  // which result payload concluded it
  std::uint64_t order = 0;
};

struct Model {
  std::map<std::string, ModelIntent> intents;
  std::set<std::string> facts;
  std::map<std::string, std::string> deny_hints;  // hint id → intent kind
  std::uint64_t created = 0;

  bool denied(const std::string& kind) const {
    for (const auto& [id, k] : deny_hints) {
      if (k == kind) return true;
    }
    return false;
  }
  void expire_if_ended(ModelIntent& m, std::int64_t now) {
    if (m.state == IntentState::kClaimed && now >= m.lease_end) {
      m.state = IntentState::kOpen;
      m.holder.clear();
    }
  }
  bool holds(const ModelIntent& m, const std::string& agent, std::uint64_t epoch,
             std::int64_t now) const {
    return m.state == IntentState::kClaimed && m.epoch == epoch && m.holder == agent &&
           now < m.lease_end;
  }
};

class Harness {
 public:
  explicit Harness(std::uint64_t seed)
      : pick_(seed), bb_rng_(seed ^ 0x5eed), faulty_(&store_), bb_(clock_, bb_rng_, config()) {}

  static CoreConfig config() {
    CoreConfig c;
    c.fail_backoff = {200, 2'000};
    return c;
  }

  void run(int steps) {
    for (int i = 0; i < steps && !::testing::Test::HasFailure(); ++i) {
      step_ = i;
      one_step();
      check_against_model();
    }
    // Finish with a successful commit and the log checks.
    faulty_.clear_faults();
    flush();
    check_durable();
    check_event_log();
  }

 private:
  const std::string& any_intent() {
    auto it = model_.intents.begin();
    std::advance(it, static_cast<long>(pick_.uniform(model_.intents.size())));
    return it->first;
  }
  const char* agent() { return kAgents[pick_.uniform(3)]; }
  const char* kind() { return kKinds[pick_.uniform(2)]; }
  std::uint64_t epoch_near(std::uint64_t e) {
    switch (pick_.uniform(5)) {
      case 0:
        return e + 1;
      case 1:
        return e == 0 ? 0 : e - 1;
      default:
        return e;
    }
  }

  void one_step() {
    const std::int64_t now = clock_.wall_ms();
    const auto op = pick_.uniform(100);
    if (op < 8 || model_.facts.empty()) return post_fact();
    if (op < 18 || model_.intents.empty()) return create_intent();
    const std::string id = any_intent();
    ModelIntent& m = model_.intents[id];
    const std::string ag = agent();
    if (op < 33) {  // claim
      ModelIntent expect = m;
      model_.expire_if_ended(expect, now);
      const bool ok = expect.state == IntentState::kOpen && now >= expect.not_before &&
                      !model_.denied(expect.kind);
      auto r = bb_.claim(id, ag);
      ASSERT_EQ(r.ok(), ok) << where() << r.status().to_string();
      if (ok) {
        expect.state = IntentState::kClaimed;
        expect.epoch += 1;
        expect.holder = ag;
        expect.lease_end = now + kTtl;
        expect.attempts += 1;
        expect.not_before = 0;
        m = expect;
        EXPECT_EQ(r->epoch, m.epoch) << where();
      }
    } else if (op < 40) {  // claim_next: newest claimable first
      const ModelIntent* best = nullptr;
      std::string best_id;
      for (auto& [iid, mi] : model_.intents) {
        if (mi.state == IntentState::kOpen && now >= mi.not_before && !model_.denied(mi.kind) &&
            (best == nullptr || mi.order > best->order)) {
          best = &mi;
          best_id = iid;
        }
      }
      auto r = bb_.claim_next(ag, ClaimFilter{});
      ASSERT_EQ(r.ok(), best != nullptr) << where() << r.status().to_string();
      if (best != nullptr) {
        EXPECT_EQ(r->id, best_id) << where();
        ModelIntent& w = model_.intents[best_id];
        w.state = IntentState::kClaimed;
        w.epoch += 1;
        w.holder = ag;
        w.lease_end = now + kTtl;
        w.attempts += 1;
        w.not_before = 0;
      }
    } else if (op < 50) {  // heartbeat
      const std::string who = pick_.chance(0.7) && !m.holder.empty() ? m.holder : ag;
      const auto ep = epoch_near(m.epoch);
      const bool ok = model_.holds(m, who, ep, now);
      auto r = bb_.heartbeat(id, who, ep);
      ASSERT_EQ(r.ok(), ok) << where() << r.status().to_string();
      if (ok) m.lease_end = std::max(m.lease_end, now + kTtl);
    } else if (op < 62) {  // conclude
      const std::string who = pick_.chance(0.8) && !m.holder.empty() ? m.holder : ag;
      const auto ep = epoch_near(m.epoch);
      const int res = static_cast<int>(pick_.uniform(2));
      bool ok;
      if (m.state == IntentState::kConcluded) {
        ok = ep == m.epoch && who == m.holder && res == m.result;
      } else {
        ok = model_.holds(m, who, ep, now);
      }
      FactBody b;
      b.kind = "result";
      b.content = Json(JsonObject{{"r", Json(res)}});
      auto r = bb_.conclude(id, who, ep, b);
      ASSERT_EQ(r.ok(), ok) << where() << r.status().to_string();
      if (ok && m.state != IntentState::kConcluded) {
        m.state = IntentState::kConcluded;
        m.lease_end = 0;
        m.result = res;
        model_.facts.insert(r->result);
      }
    } else if (op < 70) {  // fail
      const std::string who = pick_.chance(0.8) && !m.holder.empty() ? m.holder : ag;
      const auto ep = epoch_near(m.epoch);
      const bool retryable = pick_.chance(0.7);
      const bool ok = model_.holds(m, who, ep, now);
      auto r = bb_.fail(id, who, ep, "oops", retryable);
      ASSERT_EQ(r.ok(), ok) << where() << r.status().to_string();
      if (ok) {
        m.holder.clear();
        m.lease_end = 0;
        if (!retryable || m.attempts >= m.max_attempts) {
          m.state = IntentState::kDead;
          EXPECT_EQ(r->state, IntentState::kDead) << where();
        } else {
          m.state = IntentState::kOpen;
          EXPECT_EQ(r->state, IntentState::kOpen) << where();
          EXPECT_GE(r->not_before, now + 100) << where();
          EXPECT_LE(r->not_before, now + 2'000) << where();
          m.not_before = r->not_before;
        }
      }
    } else if (op < 76) {  // release
      const std::string who = pick_.chance(0.7) && !m.holder.empty() ? m.holder : ag;
      const auto ep = epoch_near(m.epoch);
      Code expect = Code::kOk;
      if (is_terminal(m.state)) {
        expect = Code::kConflict;
      } else if (m.state == IntentState::kClaimed) {
        if (who != m.holder) {
          expect = Code::kForbidden;
        } else if (ep != m.epoch) {
          expect = Code::kConflict;
        }
      }
      Status st = bb_.release(id, who, ep);
      ASSERT_EQ(st.code(), expect) << where() << st.to_string();
      if (st.ok() && m.state == IntentState::kClaimed) {
        m.state = IntentState::kOpen;
        m.holder.clear();
        m.lease_end = 0;
      }
    } else if (op < 80) {  // cancel
      const std::string who = pick_.chance(0.8) ? m.creator : std::string("mallory");
      Code expect = Code::kOk;
      if (who != m.creator) {
        expect = Code::kForbidden;
      } else if (m.state == IntentState::kConcluded || m.state == IntentState::kDead) {
        expect = Code::kConflict;
      }
      Status st = bb_.cancel(id, who);
      ASSERT_EQ(st.code(), expect) << where() << st.to_string();
      if (st.ok()) {
        m.state = IntentState::kCancelled;
        m.holder.clear();
        m.lease_end = 0;
      }
    } else if (op < 83) {  // deny hint
      HintDraft h;
      h.kind = "policy";
      h.selector.kind = kind();
      h.creator = "ops";
      auto r = bb_.create_hint(h);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      model_.deny_hints[r->id] = h.selector.kind;
    } else if (op < 87) {  // revoke a hint
      if (model_.deny_hints.empty()) return;
      const std::string hid = model_.deny_hints.begin()->first;
      ASSERT_TRUE(bb_.revoke_hint(hid, "ops").ok());
      model_.deny_hints.erase(hid);
    } else if (op < 94) {  // time passes
      clock_.advance_ms(static_cast<std::int64_t>(pick_.uniform(3'000)));
    } else if (op < 97) {  // timers
      bb_.tick();
      for (auto& [iid, mi] : model_.intents) model_.expire_if_ended(mi, clock_.wall_ms());
    } else {
      flush();
    }
  }

  void post_fact() {
    FactBody b;
    b.kind = "obs";
    b.creator = "poster";
    b.content = Json(JsonObject{{"v", Json(static_cast<std::int64_t>(pick_.uniform(40)))}});
    const bool ghost = pick_.chance(0.1);
    if (ghost) {
      b.derived_from = {std::string(64, 'e')};
    } else if (!model_.facts.empty() && pick_.chance(0.5)) {
      b.derived_from = {*model_.facts.begin()};
    }
    auto r = bb_.post_fact(b);
    ASSERT_EQ(r.ok(), !ghost || model_.facts.count(std::string(64, 'e')) > 0)
        << where() << r.status().to_string();
    if (r.ok()) model_.facts.insert(r->id);
  }

  void create_intent() {
    IntentDraft d;
    d.kind = kind();
    d.creator = "alice";
    d.lease_ttl_ms = kTtl;
    d.max_attempts = 1 + static_cast<std::int64_t>(pick_.uniform(3));
    if (!model_.facts.empty())
      d.from_facts = {
          *std::next(model_.facts.begin(), static_cast<long>(pick_.uniform(model_.facts.size())))};
    const bool grounded = !d.from_facts.empty();
    auto r = bb_.create_intent(d);
    ASSERT_EQ(r.ok(), grounded) << where() << r.status().to_string();
    if (!r.ok()) return;
    ModelIntent m;
    m.kind = d.kind;
    m.creator = d.creator;
    m.max_attempts = d.max_attempts;
    m.order = ++model_.created;
    model_.intents[r->id] = m;
  }

  void flush() {
    if (!bb_.has_pending()) return;
    if (pick_.chance(0.15)) faulty_.fail_next_commit(store::CommitFault::kUnavailable);
    PendingCommit p = bb_.drain();
    auto r = faulty_.commit(p.batch);
    if (r.ok()) {
      bb_.accept();
      durable_model_ = model_;
      check_durable();
    } else {
      bb_.rollback();
      model_ = durable_model_;
      // A refused batch left the store untouched and the hot state equal to
      // what the store holds.
      Blackboard again(clock_, bb_rng_, config());
      ASSERT_TRUE(again.load(store_).ok());
      ASSERT_EQ(again.state_hash(), bb_.state_hash()) << where();
    }
  }

  void check_against_model() {
    for (const auto& [id, m] : model_.intents) {
      const Intent* in = bb_.intent(id);
      ASSERT_NE(in, nullptr) << where();
      EXPECT_EQ(in->st.state, m.state) << where() << " " << id;
      EXPECT_EQ(in->st.epoch, m.epoch) << where();
      EXPECT_EQ(in->st.attempts, m.attempts) << where();
      if (m.state == IntentState::kClaimed) {
        EXPECT_EQ(in->st.holder, m.holder) << where();
        EXPECT_EQ(in->st.lease_expires_at, m.lease_end) << where();
      }
    }
    EXPECT_EQ(bb_.intent_count(), model_.intents.size()) << where();
  }

  // I4 and I5 over what the store holds; the store reloads to the hot state.
  void check_durable() {
    auto facts = store_.range(keys::kFact, "", 10'000);
    ASSERT_TRUE(facts.ok());
    for (const auto& e : facts->entries) {
      auto f = decode_fact_record(e.value);
      ASSERT_TRUE(f.ok());
      auto canon = canonicalize_fact(f->body, ModelLimits{});
      ASSERT_TRUE(canon.ok());
      EXPECT_EQ(canon->id, f->id) << "I4: a stored fact does not re-hash to its id";
      for (const auto& d : f->body.derived_from) {
        EXPECT_TRUE(store_.get(keys::fact(d))->has_value()) << "I5: dangling derived_from";
      }
    }
    auto defs = store_.range(keys::kIntentDef, "", 10'000);
    ASSERT_TRUE(defs.ok());
    for (const auto& e : defs->entries) {
      auto d = decode_intent_def(e.value);
      ASSERT_TRUE(d.ok());
      for (const auto& f : d->from_facts) {
        EXPECT_TRUE(store_.get(keys::fact(f))->has_value()) << "I5: dangling from_facts";
      }
    }
    Blackboard again(clock_, bb_rng_, config());
    ASSERT_TRUE(again.load(store_).ok());
    EXPECT_EQ(again.state_hash(), bb_.state_hash()) << where();
  }

  // I1 and I2 from the durable event log.
  void check_event_log() {
    std::vector<Event> all;
    for (;;) {
      auto page = Blackboard::read_events(store_, all.size(), 1'000);
      ASSERT_TRUE(page.ok()) << page.status().to_string();
      if (page->empty()) break;
      all.insert(all.end(), page->begin(), page->end());
    }
    const std::vector<Event>* evs = &all;
    ASSERT_EQ(evs->size(), bb_.last_seq());
    struct Lease {
      std::uint64_t epoch = 0;
      std::int64_t end = 0;
      bool live = false;
    };
    std::map<std::string, Lease> leases;
    std::map<std::string, int> concluded;
    for (std::size_t i = 0; i < evs->size(); ++i) {
      const Event& e = (*evs)[i];
      ASSERT_EQ(e.seq, i + 1) << "event sequence has a gap";
      Lease& l = leases[e.subject];
      auto epoch = [&] { return static_cast<std::uint64_t>(*e.data.find("epoch")->int_if()); };
      if (e.type == ev::kIntentClaimed) {
        EXPECT_FALSE(l.live && e.at < l.end) << "I1: two live leases on " << e.subject;
        EXPECT_EQ(epoch(), l.epoch + 1) << "claim did not advance the epoch";
        l = Lease{epoch(), *e.data.find("lease_expires_at")->int_if(), true};
      } else if (e.type == ev::kIntentRenewed || e.type == ev::kIntentConcluded ||
                 e.type == ev::kIntentFailed || e.type == ev::kIntentDead) {
        EXPECT_TRUE(l.live && e.at < l.end && epoch() == l.epoch)
            << "I1: " << e.type << " accepted without the live lease of the current epoch";
        if (e.type == ev::kIntentRenewed) {
          l.end = *e.data.find("lease_expires_at")->int_if();
        } else {
          l.live = false;
        }
        if (e.type == ev::kIntentConcluded) {
          ++concluded[e.subject];
          const std::string& result = e.data.find("result")->as_string();
          EXPECT_TRUE(store_.get(keys::fact(result))->has_value()) << "I2: no result fact";
          EXPECT_TRUE(store_.get(keys::fact_concludes(result, e.subject))->has_value())
              << "I2: result fact not linked to the intent";
        }
      } else if (e.type == ev::kIntentReleased || e.type == ev::kIntentExpired ||
                 e.type == ev::kIntentCancelled) {
        l.live = false;
      }
    }
    for (const auto& [id, n] : concluded) EXPECT_EQ(n, 1) << "I2: concluded twice: " << id;
  }

  std::string where() const { return "[step " + std::to_string(step_) + "] "; }

  static constexpr const char* kAgents[] = {"a1", "a2", "a3"};
  static constexpr const char* kKinds[] = {"work", "crawl"};

  SeededRng pick_;
  SeededRng bb_rng_;
  SimClock clock_;
  store::MemoryStore store_;
  store::FaultStore faulty_;
  Blackboard bb_;
  Model model_;
  Model durable_model_;
  int step_ = 0;
};

class Property : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(Property, RandomOperationsMatchTheReferenceModelAndKeepInvariants) {
  Harness h(GetParam());
  h.run(1'000);
}

INSTANTIATE_TEST_SUITE_P(Seeds, Property, ::testing::Range<std::uint64_t>(1, 41));

}  // namespace
}  // namespace cairn

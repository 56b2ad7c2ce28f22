// shared_test.cc — shared mode: several engines (nodes) on one store, which
// arbitrates every race through the event sequence precondition.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "core/keys.h"
#include "engine/engine.h"
#include "model/rng.h"
#include "store/fault_store.h"
#include "store/memory_store.h"

namespace cairn::engine {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000;

std::uint64_t num(const Json* j) {
  CAIRN_ASSERT(j != nullptr && j->int_if().has_value());
  return static_cast<std::uint64_t>(*j->int_if());
}

// One node: an engine in shared mode over the common store (through a
// FaultStore of its own). Commits may be held to interleave nodes.
struct Node {
  Node(std::string name, store::Store& common, std::uint64_t seed, EngineConfig cfg = {})
      : faulty(&common) {
    cfg.node = std::move(name);
    engine = std::make_unique<Engine>(std::move(cfg), seed, kT0);
    CAIRN_ASSERT(engine->load(faulty).ok());
  }

  RequestId send(std::string caller, Command c, std::string key = {}) {
    const RequestId id = next_id++;
    Status st = engine->submit(Request{id, std::move(caller), std::move(key), std::move(c)});
    if (!st.ok()) replies[id] = ReplyEffect{id, st, Json()};
    return id;
  }

  std::size_t step() {
    PollResult r = engine->poll(now);
    for (Effect& e : r.effects) handle(e);
    return r.effects.size();
  }

  void handle(Effect& e) {
    if (auto* c = std::get_if<CommitEffect>(&e)) {
      if (hold_commits) {
        held.push_back(std::move(*c));
      } else {
        engine->complete_commit(c->commit_id, faulty.commit(c->batch));
      }
    } else if (auto* r = std::get_if<ReplyEffect>(&e)) {
      replies[r->request] = std::move(*r);
    } else if (auto* p = std::get_if<PublishEffect>(&e)) {
      for (auto& ev : p->events) events.push_back(ev);
    } else if (std::get_if<ResyncEffect>(&e) != nullptr) {
      if (hold_resync) {
        resync_pending = true;
      } else {
        CAIRN_ASSERT(engine->resync(faulty).ok());
      }
    } else if (std::get_if<CatchUpEffect>(&e) != nullptr) {
      ++catch_ups;
      CAIRN_ASSERT(engine->catch_up(faulty).ok());
    }
  }

  void release_held() {
    std::vector<CommitEffect> h = std::move(held);
    held.clear();
    for (auto& c : h) engine->complete_commit(c.commit_id, faulty.commit(c.batch));
  }

  void settle() {
    for (int i = 0; i < 200; ++i) {
      if (step() == 0 && held.empty()) return;
    }
    ADD_FAILURE() << "node did not settle";
  }

  void catch_up() {
    CAIRN_ASSERT(engine->catch_up(faulty).ok());
    settle();
  }

  const ReplyEffect& reply(RequestId id) const {
    auto it = replies.find(id);
    CAIRN_ASSERT_MSG(it != replies.end(), "no reply yet");
    return it->second;
  }
  bool replied(RequestId id) const { return replies.count(id) != 0; }

  store::FaultStore faulty;
  std::unique_ptr<Engine> engine;
  std::int64_t now = kT0;
  RequestId next_id = 1;
  bool hold_commits = false;
  bool hold_resync = false;
  bool resync_pending = false;
  int catch_ups = 0;
  std::vector<CommitEffect> held;
  std::map<RequestId, ReplyEffect> replies;
  std::vector<Event> events;
};

// A fact and an intent grounded in it, made through `n`; returns the intent.
std::string make_intent(Node& n, const std::string& seed = "s") {
  FactBody f;
  f.kind = "seed";
  f.content = Json(seed);
  const RequestId fr = n.send("producer", PostFact{f});
  n.settle();
  IntentDraft d;
  d.kind = "work";
  d.from_facts = {n.reply(fr).body.find("id")->as_string()};
  d.lease_ttl_ms = 1'000;
  const RequestId ir = n.send("producer", CreateIntent{d});
  n.settle();
  CAIRN_ASSERT(n.reply(ir).status.ok());
  return n.reply(ir).body.find("id")->as_string();
}

FactBody result(const std::string& v = "done") {
  FactBody f;
  f.kind = "result";
  f.content = Json(v);
  return f;
}

std::vector<Event> store_events(store::Store& s) {
  auto r = Blackboard::read_events(s, 0, 10'000);
  CAIRN_ASSERT(r.ok());
  return std::move(r).value();
}

Digest loaded_hash(store::Store& s) {
  SimClock clock(kT0, 0);
  SeededRng rng(1);
  Blackboard bb(clock, rng);
  CAIRN_ASSERT(bb.load(s).ok());
  return bb.state_hash();
}

TEST(EngineShared, ALostClaimRaceRunsAgainAndIsAnsweredFromTheWinnersState) {
  store::MemoryStore common;
  Node a("a", common, 1), b("b", common, 2);
  const std::string x = make_intent(a);
  b.catch_up();
  ASSERT_NE(b.engine->blackboard().intent(x), nullptr);

  a.hold_commits = true;
  const RequestId ra = a.send("agent-a", Claim{x});
  a.step();  // a's claim is decided and waits for its commit
  ASSERT_EQ(a.held.size(), 1u);
  const RequestId rb = b.send("agent-b", Claim{x});
  b.settle();
  ASSERT_TRUE(b.reply(rb).status.ok()) << b.reply(rb).status.to_string();

  a.hold_commits = false;
  a.release_held();             // conflicts: b committed first
  EXPECT_FALSE(a.replied(ra));  // not answered from the lost state
  a.settle();
  ASSERT_TRUE(a.replied(ra));
  EXPECT_EQ(a.reply(ra).status.code(), Code::kConflict);
  EXPECT_NE(a.reply(ra).status.reason(), "lost_race");
  EXPECT_GE(a.catch_ups, 1);
  EXPECT_GE(a.engine->counters().get("commit.lost_race"), 1u);

  const Intent* in = a.engine->blackboard().intent(x);
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->st.holder, "agent-b");
  EXPECT_EQ(in->st.epoch, 1u);
  // Both nodes published the same gap-free sequence: the store's.
  const std::vector<Event> log = store_events(common);
  ASSERT_EQ(a.events.size(), log.size());
  ASSERT_EQ(b.events.size(), log.size());
  for (std::size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].seq, i + 1);
    EXPECT_EQ(a.events[i].seq, log[i].seq);
    EXPECT_EQ(b.events[i].seq, log[i].seq);
    EXPECT_EQ(a.events[i].type, log[i].type);
  }
  EXPECT_EQ(a.engine->blackboard().state_hash(), loaded_hash(common));
  EXPECT_EQ(b.engine->blackboard().state_hash(), loaded_hash(common));
}

TEST(EngineShared, AStaleNodeChecksBeforeAnsweringAMutation) {
  store::MemoryStore common;
  Node a("a", common, 1), b("b", common, 2);
  const std::string x = make_intent(a);  // b has not seen it
  ASSERT_EQ(b.engine->blackboard().intent(x), nullptr);
  const RequestId r = b.send("agent-b", Claim{x});
  b.settle();
  // Its first run found no such intent; the commit that would have
  // confirmed that answer failed, b caught up and ran the claim again.
  ASSERT_TRUE(b.reply(r).status.ok()) << b.reply(r).status.to_string();
  EXPECT_EQ(b.engine->blackboard().intent(x)->st.holder, "agent-b");
}

TEST(EngineShared, RacesLostTooOftenAre409AndChangeNothing) {
  store::MemoryStore common;
  EngineConfig cfg;
  cfg.lost_races_max = 0;
  Node a("a", common, 1), b("b", common, 2, cfg);
  const std::string x = make_intent(a);
  const auto before = loaded_hash(common);
  const RequestId r = b.send("agent-b", Claim{x}, "key-1");
  b.settle();
  EXPECT_EQ(b.reply(r).status.code(), Code::kConflict);
  EXPECT_EQ(b.reply(r).status.reason(), "lost_race");
  EXPECT_EQ(loaded_hash(common), before);
  // The key was forgotten: a retry runs (and now wins, b has caught up).
  const RequestId again = b.send("agent-b", Claim{x}, "key-1");
  b.settle();
  EXPECT_TRUE(b.reply(again).status.ok()) << b.reply(again).status.to_string();
}

TEST(EngineShared, OneFactPostedOnTwoNodesHasOneIdAndOneSequenceNumber) {
  store::MemoryStore common;
  Node a("a", common, 1), b("b", common, 2);
  a.hold_commits = true;
  FactBody f;
  f.kind = "obs";
  f.content = Json("same");
  const RequestId ra = a.send("p", PostFact{f});
  a.step();
  const RequestId rb = b.send("p", PostFact{f});
  b.settle();
  a.hold_commits = false;
  a.release_held();
  a.settle();
  ASSERT_TRUE(a.reply(ra).status.ok());
  ASSERT_TRUE(b.reply(rb).status.ok());
  EXPECT_EQ(a.reply(ra).body.find("id")->as_string(), b.reply(rb).body.find("id")->as_string());
  EXPECT_EQ(num(a.reply(ra).body.find("seq")), num(b.reply(rb).body.find("seq")));
  std::size_t recorded = 0;
  for (const Event& e : store_events(common)) recorded += e.type == ev::kFactRecorded ? 1 : 0;
  EXPECT_EQ(recorded, 1u);
}

TEST(EngineShared, AHeartbeatDecidedOnAStaleViewIsCheckedAgainstTheWinner) {
  store::MemoryStore common;
  Node a("a", common, 1), b("b", common, 2);
  const std::string x = make_intent(a);
  const RequestId c1 = a.send("agent-1", Claim{x});
  a.settle();
  ASSERT_TRUE(a.reply(c1).status.ok());
  // On b the lease has ended: b expires it and another agent claims.
  b.catch_up();
  b.now = kT0 + 5'000;
  const RequestId c2 = b.send("agent-2", Claim{x});
  b.settle();
  ASSERT_TRUE(b.reply(c2).status.ok()) << b.reply(c2).status.to_string();
  // a still believes agent-1's lease is live (its clock says so, and it has
  // not seen b's commits): the heartbeat it decides cannot commit.
  a.now = kT0 + 500;
  const RequestId hb = a.send("agent-1", Heartbeat{x, 1});
  a.settle();
  EXPECT_EQ(a.reply(hb).status.code(), Code::kConflict);
  EXPECT_EQ(a.reply(hb).status.reason(), "stale_epoch");
  EXPECT_EQ(a.engine->blackboard().intent(x)->st.holder, "agent-2");
}

TEST(EngineShared, IdempotencyRecordsBelongToTheNodeAndSurviveItsRestart) {
  store::MemoryStore common;
  auto a = std::make_unique<Node>("a", common, 1);
  const std::string x = make_intent(*a);
  const RequestId r = a->send("agent-1", Claim{x}, "k1");
  a->settle();
  ASSERT_TRUE(a->reply(r).status.ok());
  const Json first = a->reply(r).body;
  auto page = common.range("k:a/", "", 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries.size(), 1u);
  auto single = common.range(keys::kIdempotency, "", 100);
  EXPECT_TRUE(single->entries.empty());

  a = std::make_unique<Node>("a", common, 3);  // a restart of node a
  const RequestId retry = a->send("agent-1", Claim{x}, "k1");
  a->settle();
  ASSERT_TRUE(a->reply(retry).status.ok());
  EXPECT_EQ(a->reply(retry).body, first);
  EXPECT_EQ(a->engine->blackboard().intent(x)->st.epoch, 1u);  // no second claim
}

TEST(EngineShared, AnInDoubtBatchIsResolvedByTheNodeMarkerAfterOthersCommitted) {
  for (auto fault : {store::CommitFault::kUnknownApplied, store::CommitFault::kUnknownNotApplied}) {
    store::MemoryStore common;
    Node a("a", common, 1), b("b", common, 2);
    const std::string x = make_intent(a);
    const std::string y = make_intent(a, "other");
    b.catch_up();
    a.hold_resync = true;
    a.faulty.fail_next_commit(fault);
    const RequestId r = a.send("agent-a", Claim{x});
    a.settle();
    EXPECT_EQ(a.reply(r).status.code(), Code::kOutcomeUnknown);
    ASSERT_TRUE(a.resync_pending);
    const RequestId rb = b.send("agent-b", Claim{y});  // the sequence moves on
    b.settle();
    ASSERT_TRUE(b.reply(rb).status.ok());
    ASSERT_TRUE(a.engine->resync(a.faulty).ok());
    a.settle();
    const bool applied = fault == store::CommitFault::kUnknownApplied;
    EXPECT_EQ(a.engine->blackboard().intent(x)->st.state,
              applied ? IntentState::kClaimed : IntentState::kOpen);
    EXPECT_EQ(a.engine->blackboard().intent(y)->st.holder, "agent-b");
    EXPECT_EQ(a.engine->blackboard().state_hash(), loaded_hash(common));
  }
}

// Random operations on three nodes with commits held and released in random
// order: the store's log stays gap-free, every node publishes exactly that
// log, no intent is concluded twice or claimed under a live lease, and every
// node's view equals a fresh load once it has caught up.
TEST(EngineShared, RandomInterleavingsKeepOneHistory) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    store::MemoryStore common;
    SeededRng rng(seed);
    std::vector<std::unique_ptr<Node>> nodes;
    for (int i = 0; i < 3; ++i) {
      nodes.push_back(std::make_unique<Node>(std::string(1, static_cast<char>('a' + i)), common,
                                             seed * 10 + static_cast<std::uint64_t>(i)));
    }
    std::vector<std::string> intents;
    for (int i = 0; i < 4; ++i) intents.push_back(make_intent(*nodes[0], "s" + std::to_string(i)));
    // (node, request) → (intent, agent) for claims, to follow up.
    struct Held {
      std::string intent;
      std::string agent;
      std::uint64_t epoch;
    };
    std::vector<Held> leases;
    std::map<std::pair<int, RequestId>, std::string> claims;  // → agent
    std::int64_t now = kT0;
    for (int step = 0; step < 400; ++step) {
      const int n = static_cast<int>(rng.uniform(3));
      Node& node = *nodes[static_cast<std::size_t>(n)];
      node.hold_commits = rng.uniform(3) == 0;
      const std::uint64_t op = rng.uniform(10);
      if (op < 3) {
        const std::string agent = "ag" + std::to_string(rng.uniform(5));
        ClaimNext c;
        claims[{n, node.send(agent, c)}] = agent;
      } else if (op < 6 && !leases.empty()) {
        const Held& h = leases[rng.uniform(leases.size())];
        if (rng.uniform(2) == 0) {
          node.send(h.agent, Heartbeat{h.intent, h.epoch});
        } else {
          Conclude c{h.intent, h.epoch, result("r" + std::to_string(step))};
          node.send(h.agent, c);
        }
      } else if (op == 6) {
        now += static_cast<std::int64_t>(rng.uniform(700));
      } else if (op == 7 && intents.size() < 12) {
        IntentDraft d;
        d.kind = "work";
        d.from_facts = {nodes[0]->engine->blackboard().intents().begin()->second.def.from_facts[0]};
        d.lease_ttl_ms = 1'000;
        node.send("producer", CreateIntent{d});
      } else if (op == 8) {
        node.release_held();
      } else {
        CAIRN_ASSERT(node.engine->catch_up(node.faulty).ok());
      }
      for (auto& m : nodes) m->now = now;
      node.step();
      // Follow the claims that were answered.
      for (auto it = claims.begin(); it != claims.end();) {
        Node& cn = *nodes[static_cast<std::size_t>(it->first.first)];
        if (!cn.replied(it->first.second)) {
          ++it;
          continue;
        }
        const ReplyEffect& r = cn.reply(it->first.second);
        if (r.status.ok()) {
          for (const Json& c : r.body.find("claims")->as_array()) {
            leases.push_back(
                Held{c.find("intent")->find("id")->as_string(), it->second, num(c.find("epoch"))});
          }
        }
        it = claims.erase(it);
      }
    }
    for (auto& m : nodes) {
      m->hold_commits = false;
      m->release_held();
      m->settle();
    }
    for (auto& m : nodes) m->catch_up();

    const std::vector<Event> log = store_events(common);
    for (std::size_t i = 0; i < log.size(); ++i) ASSERT_EQ(log[i].seq, i + 1);
    const Digest truth = loaded_hash(common);
    for (auto& m : nodes) {
      ASSERT_EQ(m->events.size(), log.size());
      for (std::size_t i = 0; i < log.size(); ++i) {
        ASSERT_EQ(m->events[i].seq, log[i].seq);
        ASSERT_EQ(m->events[i].type, log[i].type);
        ASSERT_EQ(m->events[i].subject, log[i].subject);
      }
      EXPECT_EQ(m->engine->blackboard().state_hash(), truth);
    }
    // One history: per intent, a claim only when no lease is live, and at
    // most one conclude.
    struct Life {
      bool live = false;
      std::int64_t until = 0;
      std::uint64_t epoch = 0;
      int concluded = 0;
    };
    std::map<std::string, Life> life;
    std::size_t claims_seen = 0;
    for (const Event& e : log) {
      Life& l = life[e.subject];
      if (e.type == ev::kIntentClaimed) {
        ++claims_seen;
        EXPECT_FALSE(l.live && e.at < l.until)
            << "claim of " << e.subject << " at seq " << e.seq << " under a live lease";
        EXPECT_GT(num(e.data.find("epoch")), l.epoch);
        l = Life{true, static_cast<std::int64_t>(num(e.data.find("lease_expires_at"))),
                 num(e.data.find("epoch")), l.concluded};
      } else if (e.type == ev::kIntentRenewed) {
        EXPECT_EQ(num(e.data.find("epoch")), l.epoch);
        l.until = static_cast<std::int64_t>(num(e.data.find("lease_expires_at")));
      } else if (e.type == ev::kIntentConcluded) {
        ++l.concluded;
        EXPECT_EQ(l.concluded, 1) << e.subject;
        l.live = false;
      } else if (e.type.starts_with("intent.") && e.type != ev::kIntentCreated) {
        l.live = false;
      }
    }
    EXPECT_GT(claims_seen, 0u);
  }
}

}  // namespace
}  // namespace cairn::engine

// test_env.h — a blackboard over a memory store with a simulated clock, for
// core tests.
#pragma once

#include <string>

#include "core/blackboard.h"
#include "model/clock.h"
#include "model/rng.h"
#include "store/memory_store.h"

namespace cairn::testing {

struct CoreEnv {
  explicit CoreEnv(std::uint64_t seed = 1, CoreConfig cfg = {})
      : rng(seed), bb(clock, rng, std::move(cfg)) {}

  // Drains the blackboard and commits to the store; accepts or rolls back.
  Status flush() {
    PendingCommit p = bb.drain();
    last_events = p.events;
    auto r = store.commit(p.batch);
    if (r.ok()) {
      bb.accept();
      return Status();
    }
    bb.rollback();
    return r.take_status();
  }

  // A fact of `kind` with content {"n": n}; committed.
  std::string fact(const std::string& kind = "obs", int n = 0,
                   std::vector<std::string> derived = {}) {
    FactBody b;
    b.kind = kind;
    b.content = Json(JsonObject{{"n", Json(n)}});
    b.creator = "tester";
    b.derived_from = std::move(derived);
    auto r = bb.post_fact(std::move(b));
    CAIRN_ASSERT_MSG(r.ok(), r.status().to_string().c_str());
    CAIRN_ASSERT(flush().ok());
    return r->id;
  }

  IntentDraft draft(const std::string& from_fact, const std::string& kind = "work") {
    IntentDraft d;
    d.kind = kind;
    d.from_facts = {from_fact};
    d.creator = "alice";
    d.lease_ttl_ms = 10'000;
    return d;
  }

  // An open intent grounded in a fresh fact; committed.
  std::string intent(const std::string& kind = "work", int max_attempts = 3) {
    IntentDraft d = draft(fact("seed", ++facts_made), kind);
    d.max_attempts = max_attempts;
    auto r = bb.create_intent(std::move(d));
    CAIRN_ASSERT_MSG(r.ok(), r.status().to_string().c_str());
    CAIRN_ASSERT(flush().ok());
    return r->id;
  }

  FactBody result(int n = 1) {
    FactBody b;
    b.kind = "result";
    b.content = Json(JsonObject{{"answer", Json(n)}});
    return b;
  }

  SimClock clock;
  SeededRng rng;
  store::MemoryStore store;
  Blackboard bb;
  std::vector<Event> last_events;
  int facts_made = 0;
};

}  // namespace cairn::testing

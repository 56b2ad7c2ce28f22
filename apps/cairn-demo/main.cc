// cairn-demo — a two-minute tour of the core, in memory.
//
// Posts an observation fact, creates intents grounded in it, lets three
// simulated agents claim and conclude them (one of them stalls, loses its
// lease and is fenced off when it wakes up), adds a deny hint, and prints
// every event. Time is simulated, so the run is instant and identical every
// time. `make run` starts this program until the server exists.
#include <cstdio>
#include <string>

#include "core/blackboard.h"
#include "model/clock.h"
#include "model/rng.h"
#include "store/memory_store.h"

namespace {

using namespace cairn;

struct Demo {
  SimClock clock;
  SeededRng rng{2026};
  store::MemoryStore store;
  Blackboard bb{clock, rng};
  std::uint64_t printed = 0;

  void commit() {
    PendingCommit p = bb.drain();
    auto r = store.commit(p.batch);
    if (!r.ok()) {
      std::fprintf(stderr, "commit failed: %s\n", r.status().to_string().c_str());
      std::exit(1);
    }
    bb.accept();
    for (const Event& e : p.events) {
      std::printf("  #%-3llu %-17s %.12s…  %s\n", static_cast<unsigned long long>(e.seq),
                  e.type.c_str(), e.subject.c_str(), to_json(e.data).c_str());
    }
  }

  template <class T>
  T must(Result<T> r, const char* what) {
    if (!r.ok()) {
      std::fprintf(stderr, "%s: %s\n", what, r.status().to_string().c_str());
      std::exit(1);
    }
    return std::move(r).value();
  }
};

}  // namespace

int main() {
  Demo d;
  std::printf("cairn demo — the blackboard core on an in-memory store\n\n");

  std::printf("1. An agent posts an observation (a fact, content-addressed):\n");
  FactBody obs;
  obs.kind = "page.seen";
  obs.content = Json(JsonObject{{"url", Json("https://example.org")}, {"status", Json(200)}});
  obs.creator = "crawler";
  auto fact = d.must(d.bb.post_fact(obs), "post fact");
  d.commit();
  std::printf("   fact id = sha256(JCS of its five fields) = %s\n\n", fact.id.c_str());

  std::printf("2. Three intents grounded in it:\n");
  std::string ids[3];
  for (int i = 0; i < 3; ++i) {
    IntentDraft in;
    in.kind = i == 2 ? "summarise" : "extract";
    in.from_facts = {fact.id};
    in.priority = i;
    in.lease_ttl_ms = 5'000;
    in.creator = "planner";
    in.spec = Json(JsonObject{{"part", Json(i)}});
    ids[i] = d.must(d.bb.create_intent(in), "create intent").id;
  }
  d.commit();

  std::printf("\n3. Agents claim the best open work (priority first):\n");
  auto a = d.must(d.bb.claim_next("agent-a", ClaimFilter{}), "claim");
  auto b = d.must(d.bb.claim_next("agent-b", ClaimFilter{}), "claim");
  d.commit();

  std::printf("\n4. agent-a concludes with a result fact; agent-b stalls for 6 s:\n");
  FactBody result;
  result.kind = "summary";
  result.content = Json("three paragraphs");
  d.must(d.bb.conclude(a.id, "agent-a", a.epoch, result), "conclude");
  d.commit();
  d.clock.advance_ms(6'000);
  d.bb.tick();
  d.commit();

  std::printf("\n5. agent-c takes over the expired lease; agent-b wakes up too late:\n");
  auto c = d.must(d.bb.claim(b.id, "agent-c"), "reclaim");
  d.commit();
  auto late = d.bb.conclude(b.id, "agent-b", b.epoch, result);
  std::printf("   agent-b conclude with epoch %llu -> %s\n",
              static_cast<unsigned long long>(b.epoch), late.status().to_string().c_str());
  result.content = Json("done by c");
  d.must(d.bb.conclude(b.id, "agent-c", c.epoch, result), "conclude");
  d.commit();

  std::printf("\n6. An operator denies the remaining kind with a hint:\n");
  HintDraft h;
  h.kind = "policy";
  h.selector.kind = "extract";
  h.effect.type = HintEffectType::kDeny;
  h.reason = "extractor is being upgraded";
  h.creator = "ops";
  h.derived_from = {fact.id};
  d.must(d.bb.create_hint(h), "hint");
  d.commit();
  auto blocked = d.bb.claim_next("agent-a", ClaimFilter{{"extract"}, {}});
  std::printf("   agent-a claim_next(extract) -> %s\n", blocked.status().to_string().c_str());

  std::printf(
      "\nState: %zu open, %zu claimed, %zu concluded; %zu facts; %llu events; %zu keys "
      "stored.\n",
      d.bb.count(IntentState::kOpen), d.bb.count(IntentState::kClaimed),
      d.bb.count(IntentState::kConcluded), d.bb.fact_count(),
      static_cast<unsigned long long>(d.bb.last_seq()), d.store.size());
  std::printf("The server (cairnd) arrives in a later release; see README.md.\n");
  return 0;
}

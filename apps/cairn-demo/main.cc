// cairn-demo — a two-minute tour of cairn, in memory.
//
// Drives the sans-IO engine the way the server does: requests in, effects
// out, commits performed against an in-memory store. An agent posts an
// observation fact, intents are created from it, three simulated agents claim
// and conclude them (one stalls, loses its lease and is fenced off when it
// wakes up), and an operator adds a deny hint. Every durable event is
// printed. Time is simulated, so the run is instant and identical every time
// — natively and on wasm32 (`make wasm-test` compares the two outputs).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/engine.h"
#include "store/memory_store.h"

namespace {

using namespace cairn;
using namespace cairn::engine;

constexpr std::int64_t kStart = 1'700'000'000'000;

class Demo {
 public:
  // Sends one request, runs the engine until it is quiet, and returns the
  // reply (printing the events that became durable on the way).
  ReplyEffect call(std::string caller, Command command) {
    const RequestId id = next_++;
    Status st = engine_.submit(Request{id, std::move(caller), {}, std::move(command)});
    if (!st.ok()) die("submit", st);
    std::optional<ReplyEffect> reply;
    for (;;) {
      PollResult r = engine_.poll(now_);
      if (r.effects.empty()) break;
      for (Effect& e : r.effects) {
        if (auto* c = std::get_if<CommitEffect>(&e)) {
          engine_.complete_commit(c->commit_id, store_.commit(c->batch));
        } else if (auto* rep = std::get_if<ReplyEffect>(&e)) {
          if (rep->request == id) reply = std::move(*rep);
        } else if (auto* p = std::get_if<PublishEffect>(&e)) {
          for (const Event& ev : p->events) {
            std::printf("  #%-3llu %-17s %.12s…  %s\n", static_cast<unsigned long long>(ev.seq),
                        ev.type.c_str(), ev.subject.c_str(), to_json(ev.data).c_str());
          }
        }
      }
    }
    if (!reply) die("no reply", Status());
    return std::move(*reply);
  }

  Json must(std::string caller, Command command, const char* what) {
    ReplyEffect r = call(std::move(caller), std::move(command));
    if (!r.status.ok()) die(what, r.status);
    return std::move(r.body);
  }

  void advance_ms(std::int64_t ms) { now_ += ms; }
  const Blackboard& bb() const { return engine_.blackboard(); }
  std::size_t stored_keys() const { return store_.size(); }

 private:
  [[noreturn]] static void die(const char* what, const Status& st) {
    std::fprintf(stderr, "%s: %s\n", what, st.to_string().c_str());
    std::exit(1);
  }

  store::MemoryStore store_;
  Engine engine_{EngineConfig{}, 2026, kStart};
  std::int64_t now_ = kStart;
  RequestId next_ = 1;
};

std::string str(const Json& body, const char* key) {
  return body.find(key)->as_string();
}
std::uint64_t u64(const Json& body, const char* key) {
  return static_cast<std::uint64_t>(*body.find(key)->int_if());
}

}  // namespace

int main() {
  Demo d;
  std::printf("cairn demo — the engine and the blackboard core on an in-memory store\n\n");

  std::printf("1. An agent posts an observation (a fact, content-addressed):\n");
  FactBody obs;
  obs.kind = "page.seen";
  obs.content = Json(JsonObject{{"url", Json("https://example.org")}, {"status", Json(200)}});
  const std::string fact = str(d.must("crawler", PostFact{obs}, "post fact"), "id");
  std::printf("   fact id = sha256(JCS of its five fields) = %s\n\n", fact.c_str());

  std::printf("2. Three intents grounded in it:\n");
  for (int i = 0; i < 3; ++i) {
    IntentDraft in;
    in.kind = i == 2 ? "summarise" : "extract";
    in.from_facts = {fact};
    in.priority = i;
    in.lease_ttl_ms = 5'000;
    in.spec = Json(JsonObject{{"part", Json(i)}});
    d.must("planner", CreateIntent{in}, "create intent");
  }

  std::printf("\n3. Agents claim the best open work (priority first):\n");
  const Json a = d.must("agent-a", ClaimNext{}, "claim").find("claims")->as_array()[0];
  const Json b = d.must("agent-b", ClaimNext{}, "claim").find("claims")->as_array()[0];
  const std::string a_id = str(*a.find("intent"), "id");
  const std::string b_id = str(*b.find("intent"), "id");

  std::printf("\n4. agent-a concludes with a result fact; agent-b stalls for 6 s:\n");
  FactBody result;
  result.kind = "summary";
  result.content = Json("three paragraphs");
  d.must("agent-a", Conclude{a_id, u64(a, "epoch"), result}, "conclude");
  d.advance_ms(6'000);
  d.must("agent-c", GetState{}, "state");  // any poll fires the matured lease timer

  std::printf("\n5. agent-c takes over the expired lease; agent-b wakes up too late:\n");
  const Json c = d.must("agent-c", Claim{b_id}, "reclaim");
  ReplyEffect late = d.call("agent-b", Conclude{b_id, u64(b, "epoch"), result});
  std::printf("   agent-b conclude with epoch %llu -> %s\n",
              static_cast<unsigned long long>(u64(b, "epoch")), late.status.to_string().c_str());
  result.content = Json("done by c");
  d.must("agent-c", Conclude{b_id, u64(c, "epoch"), result}, "conclude");

  std::printf("\n6. An operator denies the remaining kind with a hint:\n");
  HintDraft h;
  h.kind = "policy";
  h.selector.kind = "extract";
  h.effect.type = HintEffectType::kDeny;
  h.reason = "extractor is being upgraded";
  h.derived_from = {fact};
  d.must("ops", CreateHint{h}, "hint");
  ClaimNext extract;
  extract.filter.kinds = {"extract"};
  const Json none = d.must("agent-a", extract, "claim");
  std::printf("   agent-a claim_next(extract) -> %zu claims (denied by the hint)\n",
              none.find("claims")->size());

  std::printf(
      "\nState: %zu open, %zu claimed, %zu concluded; %zu facts; %llu events; %zu keys "
      "stored.\n",
      d.bb().count(IntentState::kOpen), d.bb().count(IntentState::kClaimed),
      d.bb().count(IntentState::kConcluded), d.bb().fact_count(),
      static_cast<unsigned long long>(d.bb().last_seq()), d.stored_keys());
  std::printf("The server (cairnd) arrives in a later release; see README.md.\n");
  return 0;
}

// engine_bench.cc — commands per second through the engine's full poll
// cycle (ingress → dispatch → group commit to the memory store → replies and
// events), one thread.
//
//   BM_EngineClaimConclude/batch:N   N agents each submit claim-next, then
//       conclude, per round; one poll cycle carries the N requests, so N is
//       the group-commit batch size (1, 16, 256). Items = commands.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "store/memory_store.h"

namespace cairn::engine {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000;

struct Node {
  store::MemoryStore store;
  Engine engine{EngineConfig{}, 1, kT0};
  std::int64_t now = kT0;
  std::vector<ReplyEffect> replies;

  // Polls until quiet, committing synchronously.
  void run() {
    for (;;) {
      PollResult r = engine.poll(now);
      if (r.effects.empty()) return;
      for (Effect& e : r.effects) {
        if (auto* c = std::get_if<CommitEffect>(&e)) {
          engine.complete_commit(c->commit_id, store.commit(c->batch));
        } else if (auto* rep = std::get_if<ReplyEffect>(&e)) {
          if (!rep->status.ok()) std::abort();
          replies.push_back(std::move(*rep));
        }
      }
    }
  }
};

void BM_EngineClaimConclude(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  Node n;
  RequestId next = 1;
  FactBody seed;
  seed.kind = "seed";
  seed.content = Json("grounding");
  n.engine.submit(Request{next++, "producer", {}, PostFact{seed}}).ignore();
  n.run();
  const std::string fact = n.replies.back().body.find("id")->as_string();
  IntentDraft d;
  d.kind = "work";
  d.from_facts = {fact};
  FactBody result;
  result.kind = "result";
  std::int64_t salt = 0;
  std::uint64_t commands = 0;
  for (auto _ : state) {
    // Not timed: this round's intents.
    for (std::size_t i = 0; i < batch; ++i) {
      n.engine.submit(Request{next++, "producer", {}, CreateIntent{d}}).ignore();
    }
    n.run();
    n.replies.clear();
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < batch; ++i) {
      n.engine.submit(Request{next++, "agent-" + std::to_string(i), {}, ClaimNext{}}).ignore();
    }
    n.run();
    std::vector<ReplyEffect> claims = std::move(n.replies);
    n.replies.clear();
    for (std::size_t i = 0; i < claims.size(); ++i) {
      const Json& c = claims[i].body.find("claims")->as_array().at(0);
      result.content = Json(JsonObject{{"n", Json(++salt)}});
      n.engine
          .submit(Request{next++,
                          "agent-" + std::to_string(i),
                          {},
                          Conclude{c.find("intent")->find("id")->as_string(),
                                   static_cast<std::uint64_t>(*c.find("epoch")->int_if()), result}})
          .ignore();
    }
    n.run();
    const auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    if (n.replies.size() != claims.size()) std::abort();
    commands += 2 * batch;
    n.replies.clear();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(commands));
  state.counters["batch"] = static_cast<double>(batch);
}
BENCHMARK(BM_EngineClaimConclude)->ArgName("batch")->Arg(1)->Arg(16)->Arg(256)->UseManualTime();

}  // namespace
}  // namespace cairn::engine

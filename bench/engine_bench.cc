// engine_bench.cc — commands per second through the engine's full poll
// cycle (ingress → dispatch → group commit to the memory store → replies and
// events), one thread.
//
//   BM_EngineClaimConclude/batch:N   N agents each submit claim-next, then
//       conclude, per round; one poll cycle carries the N requests, so N is
//       the group-commit batch size (1, 16, 256). Items = commands.
//   BM_EnginePostFactGoverned/contract:C   rounds of 16 new 1 KiB-ish facts
//       (kind "obs") posted through the engine: C = 0 no contract; 1 a
//       contract of 16 rules on the fact's kind whose predicates do not hold
//       (the cost of evaluating rules); 2 one of them fires on every fact (a
//       deny hint in the fact's commit). Items = facts.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/json_parse.h"
#include "store/memory_store.h"

namespace cairn::engine {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000;

struct Node {
  explicit Node(EngineConfig c = {}) : engine(std::move(c), 1, kT0) {}
  store::MemoryStore store;
  Engine engine;
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
          if (!rep->status.ok()) {
            std::fprintf(stderr, "%s\n", rep->status.to_string().c_str());
            std::abort();
          }
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

std::shared_ptr<const Governance> bench_contract(bool fires) {
  auto g = std::make_shared<Governance>();
  for (int i = 0; i < 16; ++i) {
    GovernanceRule r;
    r.name = "rule-" + std::to_string(i);
    r.when_kind = "obs";
    const std::int64_t bound = (fires && i == 15) ? 0 : 1'000'000;
    auto p = parse_predicate(
        *parse_json(R"({"path":"$.severity","op":"ge","value":)" + std::to_string(bound) + "}"),
        PredicateLimits{});
    if (!p.ok()) std::abort();
    r.match = {std::move(p).value()};
    r.selector.kind = "deploy";
    r.effect.type = HintEffectType::kDeny;
    r.ttl_ms = 3'600'000;
    g->rules.push_back(std::move(r));
  }
  return g;
}

void BM_EnginePostFactGoverned(benchmark::State& state) {
  const auto mode = state.range(0);
  EngineConfig cfg;
  if (mode > 0) cfg.governance = bench_contract(mode == 2);
  Node n(std::move(cfg));
  constexpr std::size_t kBatch = 16;
  RequestId next = 1;
  std::int64_t salt = 0;
  const std::string filler(1'000, 'x');
  std::uint64_t facts = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < kBatch; ++i) {
      FactBody f;
      f.kind = "obs";
      ++salt;
      f.content = Json(
          JsonObject{{"n", Json(salt)}, {"severity", Json(salt % 10)}, {"text", Json(filler)}});
      n.engine.submit(Request{next++, "sensor", {}, PostFact{std::move(f)}}).ignore();
    }
    n.run();
    const auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    if (n.replies.size() != kBatch) std::abort();
    if (mode == 2 && n.replies.back().body.find("hints")->size() != 1) std::abort();
    n.replies.clear();
    facts += kBatch;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(facts));
}
BENCHMARK(BM_EnginePostFactGoverned)->ArgName("contract")->Arg(0)->Arg(1)->Arg(2)->UseManualTime();

}  // namespace
}  // namespace cairn::engine

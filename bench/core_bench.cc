// core_bench.cc — the pure core on the memory store, one thread.
//
//   BM_ClaimConclude   claim + conclude of one intent (result fact hashed and
//                      recorded), group-committed every kBatch cycles
//   BM_FactCreate1KiB  post a distinct ~1 KiB fact (canonicalise + hash + record)
//   BM_Sha256_1KiB     raw SHA-256 of 1 KiB, the yardstick for fact creation
//   BM_Jcs1KiB         RFC 8785 canonicalisation of the same 1 KiB object
//
// Results go to docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <string>

#include "core/blackboard.h"
#include "model/clock.h"
#include "model/rng.h"
#include "model/sha256.h"
#include "store/memory_store.h"

namespace cairn {
namespace {

constexpr int kBatch = 256;  // commands per group commit

struct Bench {
  SimClock clock;
  SeededRng rng{42};
  store::MemoryStore store;
  Blackboard bb{clock, rng};

  void flush() {
    PendingCommit p = bb.drain();
    auto r = store.commit(p.batch);
    if (!r.ok()) std::abort();
    bb.accept();
  }
};

// A ~1 KiB JSON object: 16 members of mixed types.
Json kib_object(std::uint64_t salt) {
  JsonObject o;
  o.emplace_back("salt", Json(salt));
  for (int i = 0; i < 15; ++i) {
    o.emplace_back("field_" + std::to_string(i),
                   Json(JsonObject{{"text", Json(std::string(40, static_cast<char>('a' + i)))},
                                   {"n", Json(i * 1.5)}}));
  }
  return Json(std::move(o));
}

void BM_ClaimConclude(benchmark::State& state) {
  Bench b;
  FactBody seed;
  seed.kind = "seed";
  seed.content = Json("grounding");
  seed.creator = "bench";
  const std::string fact = b.bb.post_fact(seed)->id;
  b.flush();
  std::vector<std::string> ids;
  std::size_t next = 0;
  auto refill = [&] {
    ids.clear();
    next = 0;
    for (int i = 0; i < 100'000; ++i) {
      IntentDraft d;
      d.kind = "work";
      d.from_facts = {fact};
      d.creator = "bench";
      ids.push_back(b.bb.create_intent(d)->id);
      if (i % kBatch == kBatch - 1) b.flush();
    }
    b.flush();
  };
  refill();
  FactBody result;
  result.kind = "result";
  std::int64_t n = 0;
  for (auto _ : state) {
    if (next == ids.size()) {
      state.PauseTiming();
      refill();
      state.ResumeTiming();
    }
    const std::string& id = ids[next++];
    auto c = b.bb.claim(id, "agent-1");
    result.content = Json(JsonObject{{"n", Json(++n)}});
    auto r = b.bb.conclude(id, "agent-1", c->epoch, result);
    benchmark::DoNotOptimize(r);
    if (n % kBatch == 0) b.flush();
  }
  b.flush();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClaimConclude);

void BM_FactCreate1KiB(benchmark::State& state) {
  Bench b;
  FactBody f;
  f.kind = "obs";
  f.creator = "bench";
  std::uint64_t salt = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    f.content = kib_object(++salt);
    state.ResumeTiming();
    auto r = b.bb.post_fact(f);
    benchmark::DoNotOptimize(r);
    if (salt % kBatch == 0) b.flush();
  }
  b.flush();
  bytes = to_jcs(kib_object(1)).size();
  state.SetItemsProcessed(state.iterations());
  state.counters["content_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_FactCreate1KiB);

void BM_Sha256_1KiB(benchmark::State& state) {
  std::string data(1024, 'x');
  for (auto _ : state) {
    data[0] = static_cast<char>(data[0] + 1);
    benchmark::DoNotOptimize(sha256(data));
  }
  state.SetBytesProcessed(state.iterations() * 1024);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Sha256_1KiB);

void BM_Jcs1KiB(benchmark::State& state) {
  const Json obj = kib_object(7);
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_jcs(out, obj);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Jcs1KiB);

}  // namespace
}  // namespace cairn

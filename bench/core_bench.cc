// core_bench.cc — the pure core on the memory store, one thread.
//
//   BM_ClaimConclude   claim + conclude of one intent (result fact hashed and
//                      recorded), group-committed every kBatch cycles; with
//                      and without the memory store, at two backlog sizes
//   BM_FactCreate1KiB  post a distinct ~1 KiB fact (canonicalise + hash +
//                      record), with and without the memory store
//   BM_Sha256_1KiB     raw SHA-256 of 1 KiB, the yardstick for fact creation
//   BM_Jcs1KiB         RFC 8785 canonicalisation of the same 1 KiB object
//
// Results go to docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <chrono>
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

// Claim + conclude at a steady backlog: `backlog` open intents wait, and each
// concluded intent is replaced by a new one outside the timed region, so the
// working set stays the size of a real queue instead of growing. Arg 1 = 1:
// every kBatch cycles the delta is committed to the memory store (the full
// path); 0: the delta is drained and accepted without a store (the pure core
// alone: commands, hot-state indexes, undo log, encoding the batch).
void BM_ClaimConclude(benchmark::State& state) {
  const auto backlog = static_cast<std::size_t>(state.range(0));
  const bool with_store = state.range(1) != 0;
  Bench b;
  FactBody seed;
  seed.kind = "seed";
  seed.content = Json("grounding");
  seed.creator = "bench";
  const std::string fact = b.bb.post_fact(seed)->id;
  b.flush();
  auto commit = [&] {
    if (with_store) {
      b.flush();
    } else {
      (void)b.bb.drain();
      b.bb.accept();
    }
  };
  IntentDraft d;
  d.kind = "work";
  d.from_facts = {fact};
  d.creator = "bench";
  std::vector<std::string> ids;
  ids.reserve(backlog);
  for (std::size_t i = 0; i < backlog; ++i) {
    ids.push_back(b.bb.create_intent(d)->id);
    if (i % kBatch == kBatch - 1) commit();
  }
  commit();
  FactBody result;
  result.kind = "result";
  std::int64_t n = 0;
  std::size_t next = 0;
  std::vector<FactBody> results(kBatch, result);
  // One iteration = one group-committed batch of kBatch claim+conclude
  // cycles, timed by hand so that refilling the backlog stays outside.
  for (auto _ : state) {
    for (auto& r : results) {
      r = result;
      r.content = Json(JsonObject{{"n", Json(++n)}});
    }
    const std::size_t first = next;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kBatch; ++i) {
      const std::string& id = ids[(first + i) % ids.size()];
      auto c = b.bb.claim(id, "agent-1");
      if (!c.ok() || !b.bb.conclude(id, "agent-1", c->epoch, std::move(results[i])).ok()) {
        std::abort();
      }
    }
    commit();
    const auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    for (int i = 0; i < kBatch; ++i) {  // keep the backlog steady
      ids[(first + i) % ids.size()] = b.bb.create_intent(d)->id;
    }
    next = (first + kBatch) % ids.size();
    commit();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ClaimConclude)
    ->ArgNames({"backlog", "store"})
    ->Args({1'000, 0})
    ->Args({1'000, 1})
    ->Args({100'000, 0})
    ->Args({100'000, 1})
    ->UseManualTime();

// Arg 1 = 1: committed to the memory store every kBatch facts; 0: drained and
// accepted without a store (the pure core: validate, canonicalise, hash,
// record, encode the batch).
void BM_FactCreate1KiB(benchmark::State& state) {
  const bool with_store = state.range(0) != 0;
  Bench b;
  std::vector<FactBody> facts(kBatch);
  std::uint64_t salt = 0;
  for (auto& f : facts) {
    f.kind = "obs";
    f.creator = "bench";
  }
  // One iteration = kBatch distinct facts posted and group-committed.
  for (auto _ : state) {
    for (auto& f : facts) {
      f = FactBody{};
      f.kind = "obs";
      f.creator = "bench";
      f.content = kib_object(++salt);
    }
    const auto t0 = std::chrono::steady_clock::now();
    // Moved in, as the server hands over a body it has just parsed.
    for (auto& f : facts) {
      if (!b.bb.post_fact(std::move(f)).ok()) std::abort();
    }
    if (with_store) {
      b.flush();
    } else {
      (void)b.bb.drain();
      b.bb.accept();
    }
    const auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["content_bytes"] = static_cast<double>(to_jcs(kib_object(1)).size());
}
BENCHMARK(BM_FactCreate1KiB)->ArgName("store")->Arg(0)->Arg(1)->UseManualTime();

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

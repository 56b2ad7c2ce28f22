// fault_store_test.cc — FaultStore: transparent without faults (the whole
// contract suite runs through it), deterministic commit/read faults, crash and
// restart, counters, and the seeded random mode.
#include "store/fault_store.h"

#include <gtest/gtest.h>

#include "model/rng.h"
#include "store/contract_runner.h"
#include "store/memory_store.h"

CAIRN_STORE_CONTRACT_TESTS(FaultStoreWithoutFaults,
                           {"fault(memory)", [] {
                              return std::unique_ptr<cairn::store::Store>(
                                  std::make_unique<cairn::store::FaultStore>(
                                      std::make_unique<cairn::store::MemoryStore>()));
                            }});

namespace cairn::store {
namespace {

Batch put(const char* k, const char* v) {
  Batch b;
  b.mutations.push_back({Mutation::Op::kPut, k, v});
  return b;
}

bool has(Store& s, const char* k) {
  auto r = s.get(k);
  CAIRN_ASSERT(r.ok());
  return r->has_value();
}

TEST(FaultStore, FailsTheNthCommitWithNothingApplied) {
  MemoryStore mem;
  FaultStore fs(&mem);
  fs.fail_commit(2, CommitFault::kUnavailable);
  EXPECT_EQ(fs.pending_rules(), 1u);
  EXPECT_TRUE(fs.commit(put("a", "1")).ok());
  auto r = fs.commit(put("b", "1"));
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_FALSE(has(mem, "b"));
  EXPECT_TRUE(fs.commit(put("c", "1")).ok());
  EXPECT_EQ(fs.pending_rules(), 0u);
  EXPECT_EQ(fs.counters().commits, 3u);
  EXPECT_EQ(fs.counters().commits_applied, 2u);
  EXPECT_EQ(fs.counters().faults, 1u);
}

TEST(FaultStore, OutcomeUnknownAfterApplying) {
  MemoryStore mem;
  FaultStore fs(&mem);
  fs.fail_next_commit(CommitFault::kUnknownApplied);
  auto r = fs.commit(put("a", "1"));
  EXPECT_EQ(r.status().code(), Code::kOutcomeUnknown);
  EXPECT_TRUE(has(fs, "a"));  // reading back tells the truth
  EXPECT_EQ(fs.counters().commits_applied, 1u);
  EXPECT_EQ(*fs.last_version(), 1u);
}

TEST(FaultStore, OutcomeUnknownWithoutApplying) {
  MemoryStore mem;
  FaultStore fs(&mem);
  fs.fail_next_commit(CommitFault::kUnknownNotApplied);
  EXPECT_EQ(fs.commit(put("a", "1")).status().code(), Code::kOutcomeUnknown);
  EXPECT_FALSE(has(fs, "a"));
  EXPECT_EQ(fs.counters().commits_applied, 0u);
  EXPECT_EQ(*fs.last_version(), 0u);
}

TEST(FaultStore, OutcomeUnknownHidesTheInnerResultToo) {
  MemoryStore mem;
  FaultStore fs(&mem);
  ASSERT_TRUE(fs.commit(put("a", "1")).ok());
  Batch cas = put("a", "2");
  cas.preconditions.push_back(Precondition::absent("a"));  // will fail inside
  fs.fail_next_commit(CommitFault::kUnknownApplied);
  EXPECT_EQ(fs.commit(cas).status().code(), Code::kOutcomeUnknown);
  EXPECT_EQ((*mem.get("a"))->value, "1");
  EXPECT_EQ(fs.counters().commits_applied, 1u);
}

TEST(FaultStore, RetryAfterAnUnknownOutcomeIsSafeWithPreconditions) {
  // The classic ambiguity: the first attempt was applied but reported
  // outcome_unknown; the retry of the same CAS batch conflicts, and reading
  // back shows the first attempt landed.
  MemoryStore mem;
  FaultStore fs(&mem);
  Batch create = put("job", "claimed");
  create.preconditions.push_back(Precondition::absent("job"));
  fs.fail_next_commit(CommitFault::kUnknownApplied);
  EXPECT_EQ(fs.commit(create).status().code(), Code::kOutcomeUnknown);
  EXPECT_EQ(fs.commit(create).status().code(), Code::kConflict);
  EXPECT_EQ((*fs.get("job"))->value, "claimed");
}

TEST(FaultStore, CrashMakesEveryCallUnavailableUntilRestart) {
  MemoryStore mem;
  FaultStore fs(&mem);
  ASSERT_TRUE(fs.commit(put("a", "1")).ok());
  fs.crash();
  EXPECT_TRUE(fs.down());
  EXPECT_EQ(fs.get("a").status().code(), Code::kUnavailable);
  EXPECT_EQ(fs.range("", "", 10).status().code(), Code::kUnavailable);
  EXPECT_EQ(fs.get_blob("x").status().code(), Code::kUnavailable);
  EXPECT_EQ(fs.last_version().status().code(), Code::kUnavailable);
  EXPECT_EQ(fs.commit(put("b", "1")).status().code(), Code::kUnavailable);
  EXPECT_FALSE(has(mem, "b"));
  EXPECT_EQ(fs.limits().key_bytes_max, mem.limits().key_bytes_max);  // never fails
  fs.restart();
  EXPECT_FALSE(fs.down());
  EXPECT_TRUE(has(fs, "a"));  // committed state survives the crash
  EXPECT_EQ(fs.counters().crashes, 1u);
  EXPECT_EQ(fs.counters().faults, 5u);
}

TEST(FaultStore, CrashBeforeApplyLosesTheCommit) {
  MemoryStore mem;
  FaultStore fs(&mem);
  fs.fail_next_commit(CommitFault::kCrashBefore);
  EXPECT_EQ(fs.commit(put("a", "1")).status().code(), Code::kUnavailable);
  EXPECT_TRUE(fs.down());
  fs.restart();
  EXPECT_FALSE(has(fs, "a"));
}

TEST(FaultStore, CrashAfterApplyKeepsTheCommit) {
  MemoryStore mem;
  FaultStore fs(&mem);
  fs.fail_next_commit(CommitFault::kCrashAfter);
  EXPECT_EQ(fs.commit(put("a", "1")).status().code(), Code::kOutcomeUnknown);
  EXPECT_TRUE(fs.down());
  EXPECT_EQ(fs.get("a").status().code(), Code::kUnavailable);
  fs.restart();
  EXPECT_TRUE(has(fs, "a"));
}

TEST(FaultStore, CallsWhileDownStillCountTowardsRules) {
  MemoryStore mem;
  FaultStore fs(&mem);
  fs.fail_commit(2, CommitFault::kUnavailable);
  fs.crash();
  EXPECT_EQ(fs.commit(put("a", "1")).status().code(), Code::kUnavailable);  // #1, down
  fs.restart();
  EXPECT_EQ(fs.commit(put("a", "1")).status().code(), Code::kUnavailable);  // #2, rule
  EXPECT_TRUE(fs.commit(put("a", "1")).ok());                               // #3
}

TEST(FaultStore, ReadFaults) {
  MemoryStore mem;
  FaultStore fs(&mem);
  ASSERT_TRUE(fs.commit(put("a", "1")).ok());
  fs.fail_read(2);
  EXPECT_TRUE(fs.get("a").ok());                                       // read #1
  EXPECT_EQ(fs.range("", "", 5).status().code(), Code::kUnavailable);  // read #2
  EXPECT_TRUE(fs.range("", "", 5).ok());                               // read #3
  fs.fail_next_read();
  EXPECT_EQ(fs.get_blob("x").status().code(), Code::kUnavailable);
  fs.set_reads_down(true);
  EXPECT_EQ(fs.get("a").status().code(), Code::kUnavailable);
  EXPECT_EQ(fs.last_version().status().code(), Code::kUnavailable);
  EXPECT_TRUE(fs.commit(put("b", "1")).ok());  // commits are unaffected
  fs.set_reads_down(false);
  EXPECT_TRUE(fs.get("b").ok());

  const FaultCounters& c = fs.counters();
  EXPECT_EQ(c.reads, 7u);
  EXPECT_EQ(c.gets, 3u);
  EXPECT_EQ(c.ranges, 2u);
  EXPECT_EQ(c.blob_gets, 1u);
  EXPECT_EQ(c.last_versions, 1u);
  EXPECT_EQ(c.faults, 4u);
}

TEST(FaultStore, LaterRuleForTheSameCallReplacesTheEarlierOne) {
  MemoryStore mem;
  FaultStore fs(&mem);
  fs.fail_commit(1, CommitFault::kUnavailable);
  fs.fail_commit(1, CommitFault::kUnknownNotApplied);
  EXPECT_EQ(fs.commit(put("a", "1")).status().code(), Code::kOutcomeUnknown);
}

TEST(FaultStore, ClearFaultsRemovesRulesAndRestarts) {
  MemoryStore mem;
  FaultStore fs(&mem);
  fs.fail_commit(1, CommitFault::kUnavailable);
  fs.fail_read(1);
  fs.set_reads_down(true);
  fs.crash();
  fs.clear_faults();
  EXPECT_EQ(fs.pending_rules(), 0u);
  EXPECT_TRUE(fs.commit(put("a", "1")).ok());
  EXPECT_TRUE(fs.get("a").ok());
}

// Runs `n` commits and reads under random faults; returns the outcome codes.
std::vector<Code> random_run(std::uint64_t seed, int n) {
  MemoryStore mem;
  FaultStore fs(&mem);
  SeededRng rng(seed);
  RandomFaults p;
  p.commit_unavailable = 0.2;
  p.commit_unknown_applied = 0.1;
  p.commit_unknown_not_applied = 0.1;
  p.read_unavailable = 0.25;
  fs.set_random_faults(rng, p);
  std::vector<Code> codes;
  for (int i = 0; i < n; ++i) {
    const std::string k = "k" + std::to_string(i);
    codes.push_back(fs.commit(put(k.c_str(), "v")).status().code());
    codes.push_back(fs.get(k).status().code());
  }
  return codes;
}

TEST(FaultStore, RandomModeIsDeterministicPerSeed) {
  const std::vector<Code> a = random_run(42, 400);
  const std::vector<Code> b = random_run(42, 400);
  const std::vector<Code> c = random_run(43, 400);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  int unavailable = 0, unknown = 0, ok = 0;
  for (std::size_t i = 0; i < a.size(); i += 2) {
    unavailable += a[i] == Code::kUnavailable;
    unknown += a[i] == Code::kOutcomeUnknown;
    ok += a[i] == Code::kOk;
  }
  // Loose bounds around 20% / 20% / 60% of 400 commits.
  EXPECT_GT(unavailable, 40);
  EXPECT_LT(unavailable, 130);
  EXPECT_GT(unknown, 40);
  EXPECT_LT(unknown, 130);
  EXPECT_GT(ok, 180);
}

TEST(FaultStore, RandomModeWithZeroProbabilitiesInjectsNothing) {
  MemoryStore mem;
  FaultStore fs(&mem);
  SeededRng rng(7);
  fs.set_random_faults(rng, RandomFaults{});
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(fs.commit(put("k", "v")).ok());
    ASSERT_TRUE(fs.get("k").ok());
  }
  EXPECT_EQ(fs.counters().faults, 0u);
}

TEST(FaultStore, ExplicitRulesWinAndConsumeNoDraw) {
  // Same seed twice; the first run has an explicit rule on commit #1. Its
  // commits #2..#50 must see the draws the plain run's commits #1..#49 see.
  auto run = [](bool with_rule, int n) {
    MemoryStore mem;
    FaultStore fs(&mem);
    SeededRng rng(99);
    RandomFaults p;
    p.commit_unavailable = 0.5;
    fs.set_random_faults(rng, p);
    if (with_rule) fs.fail_commit(1, CommitFault::kUnknownNotApplied);
    std::vector<Code> codes;
    for (int i = 0; i < n; ++i) codes.push_back(fs.commit(put("k", "v")).status().code());
    return codes;
  };
  const std::vector<Code> ruled = run(true, 50);
  const std::vector<Code> plain = run(false, 49);
  EXPECT_EQ(ruled[0], Code::kOutcomeUnknown);
  EXPECT_EQ(std::vector<Code>(ruled.begin() + 1, ruled.end()), plain);
}

TEST(FaultStore, DisableRandomFaults) {
  MemoryStore mem;
  FaultStore fs(&mem);
  SeededRng rng(1);
  RandomFaults p;
  p.commit_unavailable = 1.0;
  p.read_unavailable = 1.0;
  fs.set_random_faults(rng, p);
  EXPECT_EQ(fs.commit(put("a", "1")).status().code(), Code::kUnavailable);
  EXPECT_EQ(fs.get("a").status().code(), Code::kUnavailable);
  fs.disable_random_faults();
  EXPECT_TRUE(fs.commit(put("a", "1")).ok());
  EXPECT_TRUE(fs.get("a").ok());
}

}  // namespace
}  // namespace cairn::store

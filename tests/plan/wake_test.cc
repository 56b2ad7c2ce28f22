// wake_test.cc — DependencyWaiters against full re-plans: a fact wakes
// exactly the intents whose missing dependency it makes ready.
#include "plan/wake.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "model/rng.h"

namespace cairn {
namespace {

constexpr std::int64_t kNow = 5'000'000;

TEST(DependencyWaiters, WakesByIdByKindAndByTtl) {
  DependencyWaiters w;
  ASSERT_TRUE(w.wait("by-id", "fact-1").ok());
  ASSERT_TRUE(w.wait("by-kind", "kind:price").ok());
  ASSERT_TRUE(w.wait("fresh-only", "kind:price@60s").ok());
  ASSERT_TRUE(w.wait("other", "kind:quote").ok());
  EXPECT_EQ(w.wait("bad", "kind:").code(), Code::kInvalid);
  EXPECT_EQ(w.size(), 4u);

  // A 90 s old price fact: ready for kind:price, not for kind:price@60s.
  EXPECT_EQ(w.on_fact("fact-9", "price", kNow - 90'000, kNow), std::vector<std::string>{"by-kind"});
  // A fresh one wakes the TTL waiter; the woken are forgotten.
  EXPECT_EQ(w.on_fact("fact-10", "price", kNow - 1'000, kNow),
            std::vector<std::string>{"fresh-only"});
  EXPECT_TRUE(w.on_fact("fact-11", "price", kNow, kNow).empty());
  EXPECT_EQ(w.on_fact("fact-1", "unrelated", kNow, kNow), std::vector<std::string>{"by-id"});
  // A new wait replaces the old one; forget drops it.
  ASSERT_TRUE(w.wait("other", "fact-2").ok());
  EXPECT_TRUE(w.on_fact("x", "quote", kNow, kNow).empty());
  w.forget("other");
  EXPECT_EQ(w.size(), 0u);
}

TEST(DependencyWaiters, AFactWakesExactlyTheIntentsAFullReplanUnblocks) {
  const char* const kinds[] = {"k1", "k2", "k3"};
  int woken_total = 0;
  for (int seed = 1; seed <= 300; ++seed) {
    SeededRng rng(static_cast<std::uint64_t>(seed));
    PlanInput in;
    in.now_ms = kNow;
    MapFacts facts;
    for (int i = 0; i < 3; ++i) {
      facts.add("f" + std::to_string(i), kinds[rng.uniform(3)], kNow - rng.range(0, 120'000));
    }
    const int n = static_cast<int>(rng.range(1, 40));
    for (int i = 0; i < n; ++i) {
      PlanIntent it;
      it.id = "i" + std::to_string(i);
      it.created_seq = rng.uniform(100);
      for (int k = static_cast<int>(rng.range(0, 2)); k > 0; --k) {
        switch (rng.uniform(3)) {
          case 0:
            it.requires_.push_back("f" + std::to_string(rng.uniform(6)));
            break;
          case 1:
            it.requires_.push_back(std::string("kind:") + kinds[rng.uniform(3)]);
            break;
          default:
            it.requires_.push_back(std::string("kind:") + kinds[rng.uniform(3)] + "@60s");
        }
      }
      in.intents.push_back(std::move(it));
    }
    auto before = compute_plan(in, facts);
    ASSERT_TRUE(before.ok());
    DependencyWaiters w;
    w.rebuild(*before);

    const std::string id = "f" + std::to_string(rng.uniform(6));
    const std::string kind = kinds[rng.uniform(3)];
    const std::int64_t at = kNow - rng.range(0, 120'000);
    std::vector<std::string> woken = w.on_fact(id, kind, at, kNow);

    facts.add(id, kind, at);
    auto after = compute_plan(in, facts);
    ASSERT_TRUE(after.ok());
    std::vector<std::string> want;
    for (const PlanDecision& d : before->decisions) {
      if (d.reason != PlanReason::kMissingDependency) continue;
      const PlanDecision* now = after->find(d.id);
      if (!(now->reason == PlanReason::kMissingDependency && now->arg == d.arg)) {
        want.push_back(d.id);
      }
    }
    std::sort(want.begin(), want.end());
    EXPECT_EQ(woken, want) << "seed " << seed;
    woken_total += static_cast<int>(woken.size());
  }
  EXPECT_GT(woken_total, 100);
}

}  // namespace
}  // namespace cairn

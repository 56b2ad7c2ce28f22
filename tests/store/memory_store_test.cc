// memory_store_test.cc — MemoryStore: the contract suite (plain and with a
// snapshot/restore "restart" after every step), plus what only the memory
// backend offers (size, snapshots) and a randomised check against a model.
#include "store/memory_store.h"

#include <map>
#include <memory>

#include <gtest/gtest.h>

#include "model/rng.h"
#include "model/sha256.h"
#include "store/contract_runner.h"

namespace cairn::store {
namespace {

std::unique_ptr<Store> restart_memory(std::unique_ptr<Store> s) {
  auto* old = static_cast<MemoryStore*>(s.get());
  const MemoryStore::Snapshot snap = old->snapshot();
  auto fresh = std::make_unique<MemoryStore>(old->limits());
  fresh->restore(snap);
  return fresh;
}

}  // namespace
}  // namespace cairn::store

CAIRN_STORE_CONTRACT_TESTS(Memory, {"memory",
                                    [] { return std::make_unique<cairn::store::MemoryStore>(); }});

// The same suite with a snapshot → fresh store → restore after every step.
CAIRN_STORE_CONTRACT_TESTS(MemoryRestartEveryStep,
                           {"memory+restart",
                            [] { return std::make_unique<cairn::store::MemoryStore>(); },
                            cairn::store::restart_memory});

namespace cairn::store {
namespace {

Batch puts(std::initializer_list<std::pair<const char*, const char*>> kv) {
  Batch b;
  for (const auto& [k, v] : kv) b.mutations.push_back({Mutation::Op::kPut, k, v});
  return b;
}

TEST(MemoryStore, SizeCountsLiveKeysAndBlobs) {
  MemoryStore store;
  EXPECT_EQ(store.size(), 0u);
  ASSERT_TRUE(store.commit(puts({{"a", "1"}, {"b", "2"}})).ok());
  EXPECT_EQ(store.size(), 2u);
  Batch del;
  del.mutations.push_back({Mutation::Op::kDelete, "a", ""});
  del.blobs.push_back({to_hex(sha256("x")), "x"});
  ASSERT_TRUE(store.commit(del).ok());
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.blob_count(), 1u);
}

TEST(MemoryStore, SnapshotRestoreRoundTrips) {
  MemoryStore store;
  ASSERT_TRUE(store.commit(puts({{"a", "1"}, {"b", "2"}})).ok());
  const MemoryStore::Snapshot snap = store.snapshot();
  EXPECT_EQ(snap.size(), 2u);

  Batch later = puts({{"c", "3"}, {"a", "11"}});
  later.blobs.push_back({to_hex(sha256("blob")), "blob"});
  ASSERT_TRUE(store.commit(later).ok());
  EXPECT_EQ(*store.last_version(), 2u);

  store.restore(snap);
  EXPECT_EQ(*store.last_version(), 1u);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.blob_count(), 0u);
  EXPECT_FALSE(store.get("c")->has_value());
  auto a = store.get("a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->value, "1");
  EXPECT_EQ((*a)->version, 1u);

  // The restored store works, and the version counter resumes from the
  // snapshot: the next commit is stamped above everything it holds.
  auto r = store.commit(puts({{"d", "4"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, 2u);
  auto range = store.range("", "", 10);
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->entries.size(), 3u);

  // The snapshot is unaffected by later commits and restores again.
  store.restore(snap);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_FALSE(store.get("d")->has_value());
}

TEST(MemoryStore, RestoreIntoAnotherStoreIsIndependent) {
  MemoryStore a;
  ASSERT_TRUE(a.commit(puts({{"k", "v"}})).ok());
  MemoryStore b;
  b.restore(a.snapshot());
  ASSERT_TRUE(b.commit(puts({{"k", "w"}})).ok());
  EXPECT_EQ((*a.get("k"))->value, "v");
  EXPECT_EQ((*b.get("k"))->value, "w");
}

TEST(MemoryStore, CustomLimitsApply) {
  StoreLimits limits;
  limits.key_bytes_max = 4;
  limits.range_limit_max = 2;
  MemoryStore store(limits);
  EXPECT_EQ(store.limits().key_bytes_max, 4u);
  EXPECT_EQ(store.commit(puts({{"abcde", "1"}})).status().code(), Code::kTooLarge);
  EXPECT_TRUE(store.commit(puts({{"abcd", "1"}})).ok());
  EXPECT_EQ(store.range("", "", 3).status().code(), Code::kInvalid);
  EXPECT_TRUE(store.range("", "", 2).ok());
}

// Random batches against a std::map model: gets, ranges and preconditions
// must agree after every commit (exercises the hash index next to the map).
TEST(MemoryStore, AgreesWithAModelUnderRandomBatches) {
  struct ModelValue {
    std::string value;
    Version version;
  };
  std::map<std::string, ModelValue> model;
  MemoryStore store;
  SeededRng rng(20240601);
  Version version = 0;
  auto key = [&] { return "k/" + std::to_string(rng.uniform(40)); };

  for (int round = 0; round < 2000; ++round) {
    Batch b;
    const std::uint64_t n_ops = 1 + rng.uniform(5);
    std::map<std::string, bool> touched;
    bool expect_conflict = false;
    if (rng.chance(0.3)) {
      const std::string k = key();
      auto it = model.find(k);
      const bool guess_right = rng.chance(0.7);
      const Version current = it == model.end() ? kAbsent : it->second.version;
      const Version v = guess_right ? current : current + 1;
      b.preconditions.push_back(Precondition::unchanged(k, v));
      expect_conflict = !guess_right;
    }
    for (std::uint64_t i = 0; i < n_ops; ++i) {
      const std::string k = key();
      if (!touched.emplace(k, true).second) continue;
      if (rng.chance(0.3)) {
        b.mutations.push_back({Mutation::Op::kDelete, k, ""});
      } else {
        b.mutations.push_back({Mutation::Op::kPut, k, rng.hex(1 + rng.uniform(8))});
      }
    }
    auto r = store.commit(b);
    if (expect_conflict) {
      ASSERT_EQ(r.status().code(), Code::kConflict) << round;
      continue;
    }
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_GT(r->version, version);
    version = r->version;
    for (const Mutation& m : b.mutations) {
      if (m.op == Mutation::Op::kDelete) {
        model.erase(m.key);
      } else {
        model[m.key] = ModelValue{m.value, version};
      }
    }

    ASSERT_EQ(store.size(), model.size());
    const std::string probe = key();
    auto got = store.get(probe);
    ASSERT_TRUE(got.ok());
    auto it = model.find(probe);
    ASSERT_EQ(got->has_value(), it != model.end());
    if (it != model.end()) {
      EXPECT_EQ((*got)->value, it->second.value);
      EXPECT_EQ((*got)->version, it->second.version);
    }
    if (round % 50 == 0) {
      // Page through everything in pages of 7 and compare with the model.
      std::vector<Entry> all;
      std::string after;
      for (;;) {
        auto page = store.range("k/", after, 7);
        ASSERT_TRUE(page.ok());
        for (Entry& e : page->entries) all.push_back(std::move(e));
        if (!page->more) break;
        after = all.back().key;
      }
      ASSERT_EQ(all.size(), model.size());
      std::size_t i = 0;
      for (const auto& [k, v] : model) {
        EXPECT_EQ(all[i].key, k);
        EXPECT_EQ(all[i].value, v.value);
        EXPECT_EQ(all[i].version, v.version);
        ++i;
      }
    }
  }
}

}  // namespace
}  // namespace cairn::store

// memory_store.h — the in-memory backend (pure).
//
// A first-class Store: the simulator, the tests and the benchmarks run on it,
// and an embedded node may use it as its hot state. Keys live in one ordered
// map (bytewise order, for ranges; heterogeneous lookup, so reads copy no
// key). A hash index beside it was measured and removed: the blackboard's
// batches are mostly inserts of new keys (events, facts, index entries), and
// on this class of machine a hash insert cost more than the map descent it
// saved on reads. Commit validates the batch, checks every precondition, then
// applies everything — or nothing.
//
// snapshot()/restore() copy the whole committed state (keys, versions, blobs,
// version counter): the simulator uses them to model a crash and restart
// (committed state survives, nothing else exists to lose).
//
// Not thread-safe: one owner at a time, like every pure component.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/store.h"

namespace cairn::store {

class MemoryStore final : public Store {
 public:
  // An opaque copy of a MemoryStore's committed state.
  class Snapshot {
   public:
    std::size_t size() const;

   private:
    friend class MemoryStore;
    struct State;
    explicit Snapshot(std::shared_ptr<const State> state) : state_(std::move(state)) {}
    std::shared_ptr<const State> state_;
  };

  explicit MemoryStore(StoreLimits limits = StoreLimits{});
  ~MemoryStore() override;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  Result<std::optional<Entry>> get(std::string_view key) override;
  Result<RangePage> range(std::string_view prefix, std::string_view after,
                          std::size_t limit) override;
  Result<CommitInfo> commit(const Batch& batch) override;
  Result<std::optional<std::string>> get_blob(std::string_view id) override;
  Result<Version> last_version() override { return version_; }
  const StoreLimits& limits() const override { return limits_; }

  // Number of live keys / stored blobs.
  std::size_t size() const { return keys_.size(); }
  std::size_t blob_count() const { return blobs_.size(); }

  // A copy of the committed state; restore() replaces this store's state with
  // it (the snapshot stays valid and may be restored again).
  Snapshot snapshot() const;
  void restore(const Snapshot& snap);

 private:
  struct Value {
    std::string bytes;
    Version version = kAbsent;
  };
  using KeyMap = std::map<std::string, Value, std::less<>>;
  // Views of KeyMap keys (map nodes never move), for O(1) point access.
  struct BlobHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using BlobMap = std::unordered_map<std::string, std::string, BlobHash, std::equal_to<>>;

  // Version of `key` now (kAbsent when absent).
  Version version_of(std::string_view key) const;

  StoreLimits limits_;
  KeyMap keys_;
  BlobMap blobs_;
  Version version_ = kAbsent;
};

}  // namespace cairn::store

// memory_store.cc — the in-memory backend (pure). See memory_store.h.
#include "store/memory_store.h"

#include <utility>
#include <vector>

namespace cairn::store {

struct MemoryStore::Snapshot::State {
  KeyMap keys;
  BlobMap blobs;
  Version version = kAbsent;
};

std::size_t MemoryStore::Snapshot::size() const {
  return state_ ? state_->keys.size() : 0;
}

MemoryStore::MemoryStore(StoreLimits limits) : limits_(limits) {}

MemoryStore::~MemoryStore() = default;

Version MemoryStore::version_of(std::string_view key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? kAbsent : it->second.version;
}

Result<std::optional<Entry>> MemoryStore::get(std::string_view key) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::optional<Entry>();
  const auto& [k, v] = *it;
  return std::optional<Entry>(Entry{k, v.bytes, v.version});
}

Result<RangePage> MemoryStore::range(std::string_view prefix, std::string_view after,
                                     std::size_t limit) {
  if (limit == 0 || limit > limits_.range_limit_max) {
    return invalid("range limit must be in 1.." + std::to_string(limits_.range_limit_max),
                   "bad_limit");
  }
  // Keys > after and >= prefix; an `after` below the prefix starts at it.
  auto it =
      (after.empty() || after < prefix) ? keys_.lower_bound(prefix) : keys_.upper_bound(after);
  RangePage page;
  for (; it != keys_.end() && it->first.starts_with(prefix); ++it) {
    if (page.entries.size() == limit) {
      page.more = true;
      break;
    }
    page.entries.push_back(Entry{it->first, it->second.bytes, it->second.version});
  }
  return page;
}

Result<CommitInfo> MemoryStore::commit(const Batch& batch) {
  CAIRN_RETURN_IF_ERROR(validate_batch(batch, limits_));

  std::vector<std::string> failed;
  for (const Precondition& p : batch.preconditions) {
    const Version now = version_of(p.key);
    const bool holds = p.kind == Precondition::Kind::kAbsent ? now == kAbsent : now == p.version;
    if (!holds) failed.push_back(p.key);
  }
  if (!failed.empty()) return precondition_failed(failed);

  // From here on nothing can fail: the batch applies whole.
  if (!batch.mutations.empty()) {
    const Version v = ++version_;
    for (const Mutation& m : batch.mutations) {
      if (m.op == Mutation::Op::kDelete) {
        keys_.erase(m.key);
        continue;
      }
      // One descent finds the slot or the insertion point.
      auto it = keys_.lower_bound(m.key);
      if (it != keys_.end() && it->first == m.key) {
        it->second.bytes = m.value;
        it->second.version = v;
      } else {
        keys_.emplace_hint(it, m.key, Value{m.value, v});
      }
    }
  }
  for (const BlobPut& b : batch.blobs) {
    if (blobs_.find(b.id) == blobs_.end()) blobs_.emplace(b.id, b.bytes);
  }
  return CommitInfo{version_};
}

Result<std::optional<std::string>> MemoryStore::get_blob(std::string_view id) {
  auto it = blobs_.find(id);
  if (it == blobs_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

MemoryStore::Snapshot MemoryStore::snapshot() const {
  auto state = std::make_shared<Snapshot::State>();
  state->keys = keys_;
  state->blobs = blobs_;
  state->version = version_;
  return Snapshot(std::move(state));
}

void MemoryStore::restore(const Snapshot& snap) {
  CAIRN_ASSERT(snap.state_ != nullptr);
  keys_ = snap.state_->keys;
  blobs_ = snap.state_->blobs;
  version_ = snap.state_->version;
}

}  // namespace cairn::store

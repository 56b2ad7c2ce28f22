// session.cc — the buffered unit of work over a Store (pure). See session.h
// for the drain contract.
#include "store/session.h"

#include <utility>

#include "model/sha256.h"

namespace cairn::store {

Session::Session(Session&& other) noexcept
    : store_(other.store_),
      slots_(std::move(other.slots_)),
      hydrate_order_(std::move(other.hydrate_order_)),
      order_(std::move(other.order_)),
      dirty_keys_(other.dirty_keys_),
      extra_(std::move(other.extra_)),
      blobs_(std::move(other.blobs_)),
      blob_ids_(std::move(other.blob_ids_)) {
  other.clear();
}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    clear();
    store_ = other.store_;
    slots_ = std::move(other.slots_);
    hydrate_order_ = std::move(other.hydrate_order_);
    order_ = std::move(other.order_);
    dirty_keys_ = other.dirty_keys_;
    extra_ = std::move(other.extra_);
    blobs_ = std::move(other.blobs_);
    blob_ids_ = std::move(other.blob_ids_);
    other.clear();
  }
  return *this;
}

Session::SlotMap::value_type& Session::entry(std::string_view key) {
  auto it = slots_.find(key);
  if (it == slots_.end()) it = slots_.try_emplace(std::string(key)).first;
  return *it;
}

void Session::mark_written(SlotMap::value_type& e) {
  if (e.second.written) return;
  e.second.written = true;
  order_.push_back(&e);
}

void Session::set_dirty(Slot& s, bool dirty) {
  if (s.dirty == dirty) return;
  s.dirty = dirty;
  if (dirty) {
    ++dirty_keys_;
  } else {
    CAIRN_ASSERT(dirty_keys_ > 0);
    --dirty_keys_;
  }
}

void Session::hydrate(std::string_view key, std::optional<std::string> value, Version version,
                      bool checked) {
  // A value read at "version 0" or an absent key with a version cannot come
  // from a store: the caller mixed up its read.
  CAIRN_ASSERT(value.has_value() || version == kAbsent);
  CAIRN_ASSERT(!(checked && value.has_value() && version == kAbsent));
  if (slots_.find(key) != slots_.end()) return;  // the first read wins
  auto& e = *slots_.try_emplace(std::string(key)).first;
  Slot& s = e.second;
  s.read_absent = !value.has_value();
  s.value = std::move(value);
  s.read_version = version;
  s.hydrated = true;
  s.checked = checked;
  if (checked) hydrate_order_.push_back(&e);
}

Status Session::hydrate_from_store(std::string_view key) {
  if (slots_.find(key) != slots_.end()) return Status();
  if (store_ == nullptr) {
    return internal_error("hydrate_from_store on a session without a store");
  }
  CAIRN_ASSIGN_OR_RETURN(std::optional<Entry> read, store_->get(key));
  if (read.has_value()) {
    CAIRN_ASSERT(read->version != kAbsent);
    hydrate(key, std::move(read->value), read->version, /*checked=*/true);
  } else {
    hydrate(key, std::nullopt, kAbsent, /*checked=*/true);
  }
  return Status();
}

Result<std::optional<std::string>> Session::get(std::string_view key) {
  auto it = slots_.find(key);
  if (it != slots_.end()) return it->second.value;
  if (store_ == nullptr) return std::optional<std::string>();
  CAIRN_RETURN_IF_ERROR(hydrate_from_store(key));
  it = slots_.find(key);
  CAIRN_ASSERT(it != slots_.end());
  return it->second.value;
}

void Session::put(std::string_view key, std::string value) {
  auto& e = entry(key);
  mark_written(e);
  e.second.value = std::move(value);
  set_dirty(e.second, true);
}

void Session::del(std::string_view key) {
  auto& e = entry(key);
  Slot& s = e.second;
  s.value.reset();
  if (s.read_absent) {
    // Known absent in the store: nothing to delete. A put issued earlier in
    // this session is cancelled; the key keeps its first position should it
    // be written again.
    set_dirty(s, false);
    return;
  }
  mark_written(e);
  set_dirty(s, true);
}

std::string Session::put_blob(std::string bytes) {
  std::string id = to_hex(sha256(bytes));
  if (blob_ids_.insert(id).second) blobs_.push_back(BlobPut{id, std::move(bytes)});
  return id;
}

void Session::require(Precondition p) {
  extra_.push_back(std::move(p));
}

Batch Session::drain() {
  Batch batch;
  batch.preconditions.reserve(hydrate_order_.size() + extra_.size());
  for (const auto* e : hydrate_order_) {
    CAIRN_ASSERT(e->second.checked && e->second.hydrated);
    batch.preconditions.push_back(Precondition::unchanged(e->first, e->second.read_version));
  }
  for (Precondition& p : extra_) batch.preconditions.push_back(std::move(p));

  batch.mutations.reserve(dirty_keys_);
  for (const auto* e : order_) {
    if (e->second.dirty && !e->second.value.has_value()) {
      batch.mutations.push_back(Mutation{Mutation::Op::kDelete, e->first, std::string()});
    }
  }
  for (auto* e : order_) {
    if (e->second.dirty && e->second.value.has_value()) {
      batch.mutations.push_back(
          Mutation{Mutation::Op::kPut, e->first, std::move(*e->second.value)});
    }
  }
  CAIRN_ASSERT(batch.mutations.size() == dirty_keys_);

  batch.blobs = std::move(blobs_);
  clear();
  return batch;
}

void Session::clear() {
  // order_ and hydrate_order_ point into slots_: drop them first.
  hydrate_order_.clear();
  order_.clear();
  slots_.clear();
  dirty_keys_ = 0;
  extra_.clear();
  blobs_.clear();
  blob_ids_.clear();
}

}  // namespace cairn::store

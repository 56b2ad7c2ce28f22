// session.h — a buffered unit of work over a Store (pure).
//
// The pattern: hydrate the keys a command needs (without marking them dirty),
// run the synchronous core against the buffer, then drain the dirty delta into
// one atomic Batch and commit it. The backend re-checks every precondition at
// commit time; a failed one comes back as `conflict` naming the keys, and the
// caller re-hydrates and retries or reports the conflict.
//
// Preconditions: every hydrated key that is `checked` contributes
// "still at the version I read" (or "still absent") to the batch. In
// single-writer mode (embedded SQLite, memory) the core hydrates unchecked
// from its hot state; in shared mode (several nodes on one database) it
// hydrates checked from the backend.
//
// Drain order (a contract the backends rely on): preconditions in the order
// keys were first hydrated; deletes in the order they were first issued; then
// puts in the order they were first issued; then blobs in order. A put that is
// deleted again in the same session (or the reverse) keeps only its last
// operation, at its first position. Deleting a key that the session knows is
// absent (hydrated absent, or created and deleted within the session) emits
// nothing. A key written without being hydrated (a blind write) has an
// unknown prior state: deleting it emits a delete.
//
// Reads: a key the session has not seen is read through from the store on
// `get` (and hydrated checked); a read failure is returned and buffers
// nothing. Without a store, unseen keys read as absent and stay unseen (the
// session does not pretend to know they are absent).
//
// Not thread-safe: one session belongs to one caller at a time.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "model/status.h"
#include "store/store.h"

namespace cairn::store {

class Session {
 public:
  // `store` backs lazy reads of keys that were not hydrated; it may be null
  // for a purely buffered session (then an unknown key reads as absent).
  explicit Session(Store* store = nullptr) : store_(store) {}

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  // Moving keeps the buffer (no re-hashing); the moved-from session is left
  // empty and reusable.
  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;

  // Records the current value of `key` as read (not dirty). `version` is the
  // version it was read at (kAbsent with nullopt value when absent). With
  // `checked`, the drained batch requires the key to be unchanged. Hydrating a
  // key that is already buffered is a no-op (the first read wins).
  void hydrate(std::string_view key, std::optional<std::string> value, Version version,
               bool checked);

  // Reads `key` from the backing store into the buffer (checked), unless it is
  // already buffered. Returns the store's error (nothing buffered) on failure,
  // and internal when the session has no store.
  Status hydrate_from_store(std::string_view key);

  // The current value of `key` as this session sees it (its own writes
  // included). Keys never hydrated are read through from the store (and
  // hydrated checked); with no store they read as absent.
  Result<std::optional<std::string>> get(std::string_view key);

  // Buffered writes (dirty).
  void put(std::string_view key, std::string value);
  void del(std::string_view key);
  // Adds a content-addressed blob (id = hex SHA-256 of bytes, computed here).
  // Returns the id. Adding the same bytes twice emits one BlobPut.
  std::string put_blob(std::string bytes);

  // Adds an explicit precondition (e.g. "this key must still be absent").
  // Drained after the hydrate-derived ones, in call order.
  void require(Precondition p);

  // True when draining would emit a mutation or a blob (preconditions alone
  // do not make a session dirty).
  bool dirty() const { return dirty_keys_ > 0 || !blobs_.empty(); }
  // Keys that draining would emit a put or delete for.
  std::size_t dirty_keys() const { return dirty_keys_; }

  // Moves the delta into a Batch (see the drain order above) and resets the
  // session to empty, ready for reuse.
  Batch drain();

  // Forgets everything (hydrated and dirty) without producing a batch.
  void clear();

 private:
  struct Slot {
    std::optional<std::string> value;  // current value as seen by the session
    Version read_version = kAbsent;    // version when hydrated
    bool hydrated = false;             // value came from a read
    bool read_absent = false;          // hydrated as absent
    bool checked = false;              // contributes a precondition
    bool dirty = false;                // drain emits a mutation for it
    bool written = false;              // listed in order_ (ever written)
  };
  // Transparent hashing: lookups by string_view allocate nothing.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using SlotMap = std::unordered_map<std::string, Slot, KeyHash, std::equal_to<>>;

  // The slot for `key`, created (neither hydrated nor written) when missing.
  // The returned key is stable: unordered_map nodes never move.
  SlotMap::value_type& entry(std::string_view key);
  // Lists the entry in order_ on its first write.
  void mark_written(SlotMap::value_type& e);
  void set_dirty(Slot& s, bool dirty);

  Store* store_;
  SlotMap slots_;
  // Pointers into slots_: stable while the slots exist (rehashing and moving
  // the map keep its nodes in place).
  std::vector<SlotMap::value_type*> hydrate_order_;  // checked keys, first-hydrated order
  std::vector<SlotMap::value_type*> order_;          // written keys, first-write order
  std::size_t dirty_keys_ = 0;                       // slots with dirty == true
  std::vector<Precondition> extra_;                  // explicit preconditions
  std::vector<BlobPut> blobs_;
  std::unordered_set<std::string, KeyHash, std::equal_to<>> blob_ids_;
};

}  // namespace cairn::store

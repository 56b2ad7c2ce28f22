// store.h — the storage contract every cairn backend implements (pure).
//
// An ordered key-value store with per-key versions, content-addressed blobs
// and one atomic operation, `commit(batch)`, whose preconditions are checked
// at commit time by the backend: the backend is the final arbiter of every
// compare-and-swap. The core defines the key layout (core/keys.h) and keeps
// its own secondary indexes as ordinary keys in the same batch.
//
// Versions: every commit that carries at least one mutation is stamped with
// the next value of one store-wide, strictly increasing counter; every key
// written by that commit takes that version. A deleted and re-created key
// therefore never shows an old version again (no ABA). Version 0 means
// "absent". The counter need not be dense (a backend may skip values, e.g. a
// database sequence after a rollback), only strictly increasing. A commit with
// no mutations (an empty batch, or only preconditions and/or blobs) checks
// its preconditions, stores its blobs, does not advance the counter and
// reports the current last_version(). Deleting an absent key is allowed (the
// key stays absent; the commit still counts as mutating).
//
// Keys and values are byte strings; keys order bytewise (memcmp), so fixed-
// width decimal numbers inside keys sort numerically.
//
// Error contract (all backends):
//   commit: conflict (reason "precondition_failed", details.keys = the keys
//           whose precondition failed, in batch order) — nothing applied;
//           unavailable — nothing applied, retry later;
//           outcome_unknown — may or may not have been applied (read back);
//           invalid / too_large — malformed batch (see validate_batch),
//           nothing applied. Validation happens before preconditions: a
//           malformed batch never reports conflict.
//   range:  invalid when limit is 0 or above range_limit_max.
//   get / range / get_blob / last_version: unavailable when the backend is
//           down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/status.h"

namespace cairn::store {

using Version = std::uint64_t;
inline constexpr Version kAbsent = 0;

// Named bounds every backend enforces on a batch.
struct StoreLimits {
  std::size_t key_bytes_max = 1024;
  std::size_t value_bytes_max = 16u << 20;
  std::size_t blob_bytes_max = 64u << 20;
  std::size_t batch_ops_max = 100'000;  // preconditions + mutations + blobs
  std::size_t range_limit_max = 10'000;
};

struct Entry {
  std::string key;
  std::string value;
  Version version = kAbsent;

  friend bool operator==(const Entry&, const Entry&) = default;
};

struct Precondition {
  enum class Kind : std::uint8_t {
    kAbsent,         // the key must not exist
    kVersionEquals,  // the key must exist with exactly this version
  };
  std::string key;
  Kind kind = Kind::kAbsent;
  Version version = kAbsent;

  static Precondition absent(std::string key) { return {std::move(key), Kind::kAbsent, kAbsent}; }
  static Precondition version_equals(std::string key, Version v) {
    return {std::move(key), Kind::kVersionEquals, v};
  }
  // The precondition that holds exactly when the key still has version `v`
  // (kAbsent → must be absent).
  static Precondition unchanged(std::string key, Version v) {
    return v == kAbsent ? absent(std::move(key)) : version_equals(std::move(key), v);
  }
};

struct Mutation {
  enum class Op : std::uint8_t { kPut, kDelete };
  Op op = Op::kPut;
  std::string key;
  std::string value;  // empty for kDelete
};

struct BlobPut {
  std::string id;  // lowercase hex SHA-256 of `bytes` (checked by the backend)
  std::string bytes;
};

// One atomic unit of change. Applied in order: preconditions are all checked
// first; then mutations in order (the Session emits deletes before puts);
// then blobs. A key may appear in at most one mutation.
struct Batch {
  std::vector<Precondition> preconditions;
  std::vector<Mutation> mutations;
  std::vector<BlobPut> blobs;

  bool empty() const { return preconditions.empty() && mutations.empty() && blobs.empty(); }
  std::size_t op_count() const { return preconditions.size() + mutations.size() + blobs.size(); }
};

struct CommitInfo {
  Version version = kAbsent;  // the version stamped on this commit's keys
};

struct RangePage {
  std::vector<Entry> entries;
  // True when more keys with the prefix follow; continue with
  // `after = entries.back().key`.
  bool more = false;
};

class Store {
 public:
  virtual ~Store() = default;

  // The entry for `key`, or nullopt when absent.
  virtual Result<std::optional<Entry>> get(std::string_view key) = 0;

  // Keys starting with `prefix` and strictly greater than `after` (empty:
  // from the start), in key order, at most `limit` (1..range_limit_max).
  virtual Result<RangePage> range(std::string_view prefix, std::string_view after,
                                  std::size_t limit) = 0;

  // Atomically checks every precondition and applies every mutation and blob.
  virtual Result<CommitInfo> commit(const Batch& batch) = 0;

  // The entries for `keys`, in the same order (nullopt where absent); at most
  // range_limit_max keys (invalid "bad_limit" beyond). Not a snapshot across
  // keys: each entry is some committed state at or after the call began.
  // The default asks get() for each key; a networked backend answers in one
  // round trip.
  virtual Result<std::vector<std::optional<Entry>>> get_many(std::span<const std::string> keys);

  // The bytes of a blob, or nullopt when absent.
  virtual Result<std::optional<std::string>> get_blob(std::string_view id) = 0;

  // The highest version stamped so far (kAbsent before the first mutating
  // commit).
  virtual Result<Version> last_version() = 0;

  virtual const StoreLimits& limits() const = 0;
};

// Validates a batch against `limits` and the contract's shape rules. Every
// backend calls this before touching its data. Returns the first error found,
// checking the batch size, then each precondition, each mutation, duplicate
// mutation keys, and each blob:
//   too_large "batch_too_large"  — op_count() > batch_ops_max
//   invalid   "empty_key"        — a precondition or mutation has an empty key
//   too_large "key_too_large"    — a key longer than key_bytes_max
//   invalid   "bad_precondition" — kVersionEquals with version kAbsent
//   invalid   "bad_mutation"     — a kDelete that carries a value
//   too_large "value_too_large"  — a value longer than value_bytes_max
//   invalid   "duplicate_key"    — two mutations on one key
//   too_large "blob_too_large"   — blob bytes longer than blob_bytes_max
//   invalid   "bad_blob_id"      — a blob id that is not the lowercase hex
//                                  SHA-256 of its bytes
// Several preconditions on one key, and the same blob twice, are allowed.
Status validate_batch(const Batch& batch, const StoreLimits& limits);

// The conflict Status every backend returns for failed preconditions: code
// conflict, reason "precondition_failed", details {"keys": [...]} with each
// failing key once, in first-failure order. REQUIRES: keys non-empty.
Status precondition_failed(const std::vector<std::string>& keys);

}  // namespace cairn::store

// store.cc — the shape rules every backend enforces on a batch, and the
// conflict Status for failed preconditions (pure).
#include "store/store.h"

#include <unordered_set>

#include "model/sha256.h"

namespace cairn::store {
namespace {

// Up to this many keys, a quadratic scan beats building a hash set.
constexpr std::size_t kLinearScanKeysMax = 16;

// True when `keys` holds the same key twice. `keys` is small or the caller
// accepts one hash-set allocation.
template <class Keys, class KeyOf>
bool has_duplicate(const Keys& keys, KeyOf key_of) {
  const std::size_t n = keys.size();
  if (n <= kLinearScanKeysMax) {
    for (std::size_t i = 1; i < n; ++i) {
      const std::string_view k = key_of(keys[i]);
      for (std::size_t j = 0; j < i; ++j) {
        if (key_of(keys[j]) == k) return true;
      }
    }
    return false;
  }
  std::unordered_set<std::string_view> seen;
  seen.reserve(n);
  for (const auto& item : keys) {
    if (!seen.insert(key_of(item)).second) return true;
  }
  return false;
}

Status check_key(std::string_view key, const StoreLimits& limits) {
  if (key.empty()) return invalid("store key must not be empty", "empty_key");
  if (key.size() > limits.key_bytes_max) {
    return too_large("store key of " + std::to_string(key.size()) +
                         " bytes exceeds key_bytes_max " + std::to_string(limits.key_bytes_max),
                     "key_too_large");
  }
  return Status();
}

}  // namespace

Result<std::vector<std::optional<Entry>>> Store::get_many(std::span<const std::string> keys) {
  if (keys.size() > limits().range_limit_max) {
    return invalid("get_many takes at most " + std::to_string(limits().range_limit_max) + " keys",
                   "bad_limit");
  }
  std::vector<std::optional<Entry>> out;
  out.reserve(keys.size());
  for (const std::string& k : keys) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<Entry> e, get(k));
    out.push_back(std::move(e));
  }
  return out;
}

Status validate_batch(const Batch& batch, const StoreLimits& limits) {
  if (batch.op_count() > limits.batch_ops_max) {
    return too_large("batch of " + std::to_string(batch.op_count()) +
                         " operations exceeds batch_ops_max " +
                         std::to_string(limits.batch_ops_max),
                     "batch_too_large");
  }
  for (const Precondition& p : batch.preconditions) {
    CAIRN_RETURN_IF_ERROR(check_key(p.key, limits));
    if (p.kind == Precondition::Kind::kVersionEquals && p.version == kAbsent) {
      return invalid("precondition version_equals needs a version (use absent for version 0)",
                     "bad_precondition");
    }
  }
  for (const Mutation& m : batch.mutations) {
    CAIRN_RETURN_IF_ERROR(check_key(m.key, limits));
    if (m.op == Mutation::Op::kDelete && !m.value.empty()) {
      return invalid("a delete mutation carries no value", "bad_mutation");
    }
    if (m.value.size() > limits.value_bytes_max) {
      return too_large("value of " + std::to_string(m.value.size()) +
                           " bytes exceeds value_bytes_max " +
                           std::to_string(limits.value_bytes_max),
                       "value_too_large");
    }
  }
  if (has_duplicate(batch.mutations, [](const Mutation& m) { return std::string_view(m.key); })) {
    return invalid("a batch may hold at most one mutation per key", "duplicate_key");
  }
  std::string expected_id;
  for (const BlobPut& b : batch.blobs) {
    if (b.bytes.size() > limits.blob_bytes_max) {
      return too_large("blob of " + std::to_string(b.bytes.size()) +
                           " bytes exceeds blob_bytes_max " + std::to_string(limits.blob_bytes_max),
                       "blob_too_large");
    }
    expected_id.clear();
    append_hex(expected_id, sha256(b.bytes));
    if (b.id != expected_id) {
      return invalid("blob id is not the lowercase hex SHA-256 of its bytes", "bad_blob_id");
    }
  }
  return Status();
}

Status precondition_failed(const std::vector<std::string>& keys) {
  CAIRN_ASSERT(!keys.empty());
  Json list = Json::array();
  std::unordered_set<std::string_view> seen;
  for (const std::string& k : keys) {
    if (seen.insert(k).second) list.push_back(Json(k));
  }
  std::string message = "precondition failed on ";
  message += std::to_string(list.size());
  message += list.size() == 1 ? " key" : " keys";
  Json details = Json::object();
  details.set("keys", std::move(list));
  return conflict(std::move(message), "precondition_failed", std::move(details));
}

}  // namespace cairn::store

// store_test.cc — validate_batch and precondition_failed, the two helpers
// every backend shares (store.h).
#include "store/store.h"

#include <gtest/gtest.h>

#include "model/sha256.h"

namespace cairn::store {
namespace {

StoreLimits small_limits() {
  StoreLimits l;
  l.key_bytes_max = 8;
  l.value_bytes_max = 16;
  l.blob_bytes_max = 32;
  l.batch_ops_max = 6;
  return l;
}

BlobPut blob(std::string bytes) {
  return BlobPut{to_hex(sha256(bytes)), std::move(bytes)};
}

void expect_error(const Status& st, Code code, std::string_view reason) {
  EXPECT_EQ(st.code(), code) << st.to_string();
  EXPECT_EQ(st.reason(), reason) << st.to_string();
}

TEST(ValidateBatch, AcceptsAWellFormedBatch) {
  Batch b;
  b.preconditions.push_back(Precondition::absent("k1"));
  b.preconditions.push_back(Precondition::version_equals("k1", 3));  // same key twice: fine
  b.mutations.push_back({Mutation::Op::kPut, "12345678", std::string(16, 'v')});
  b.mutations.push_back({Mutation::Op::kDelete, "k2", ""});
  b.blobs.push_back(blob(std::string(32, 'b')));
  b.blobs.push_back(blob(std::string(32, 'b')));  // same blob twice: fine
  EXPECT_TRUE(validate_batch(b, small_limits()).ok());
  EXPECT_TRUE(validate_batch(Batch{}, small_limits()).ok());
}

TEST(ValidateBatch, BatchOpsMax) {
  Batch b;
  for (int i = 0; i < 3; ++i) b.preconditions.push_back(Precondition::absent("p"));
  for (int i = 0; i < 3; ++i)
    b.mutations.push_back({Mutation::Op::kPut, "m" + std::to_string(i), ""});
  EXPECT_TRUE(validate_batch(b, small_limits()).ok());
  b.blobs.push_back(blob("x"));
  expect_error(validate_batch(b, small_limits()), Code::kTooLarge, "batch_too_large");
}

TEST(ValidateBatch, Keys) {
  Batch b;
  b.preconditions.push_back(Precondition::absent(""));
  expect_error(validate_batch(b, small_limits()), Code::kInvalid, "empty_key");
  b = Batch{};
  b.mutations.push_back({Mutation::Op::kDelete, "", ""});
  expect_error(validate_batch(b, small_limits()), Code::kInvalid, "empty_key");
  b = Batch{};
  b.preconditions.push_back(Precondition::absent("123456789"));
  expect_error(validate_batch(b, small_limits()), Code::kTooLarge, "key_too_large");
  b = Batch{};
  b.mutations.push_back({Mutation::Op::kPut, "123456789", "v"});
  expect_error(validate_batch(b, small_limits()), Code::kTooLarge, "key_too_large");
}

TEST(ValidateBatch, PreconditionsAndMutationsShape) {
  Batch b;
  b.preconditions.push_back(Precondition{"k", Precondition::Kind::kVersionEquals, kAbsent});
  expect_error(validate_batch(b, small_limits()), Code::kInvalid, "bad_precondition");
  EXPECT_EQ(Precondition::unchanged("k", kAbsent).kind, Precondition::Kind::kAbsent);
  EXPECT_EQ(Precondition::unchanged("k", 4).kind, Precondition::Kind::kVersionEquals);

  b = Batch{};
  b.mutations.push_back({Mutation::Op::kDelete, "k", "stray"});
  expect_error(validate_batch(b, small_limits()), Code::kInvalid, "bad_mutation");

  b = Batch{};
  b.mutations.push_back({Mutation::Op::kPut, "k", std::string(17, 'v')});
  expect_error(validate_batch(b, small_limits()), Code::kTooLarge, "value_too_large");
}

TEST(ValidateBatch, DuplicateMutationKeysSmallAndLargeBatches) {
  StoreLimits limits;
  for (int n : {2, 16, 17, 300}) {
    Batch b;
    for (int i = 0; i < n; ++i)
      b.mutations.push_back({Mutation::Op::kPut, "k" + std::to_string(i), ""});
    EXPECT_TRUE(validate_batch(b, limits).ok()) << n;
    b.mutations.push_back({Mutation::Op::kDelete, "k" + std::to_string(n / 2), ""});
    expect_error(validate_batch(b, limits), Code::kInvalid, "duplicate_key");
  }
}

TEST(ValidateBatch, Blobs) {
  Batch b;
  b.blobs.push_back(blob(std::string(33, 'b')));
  expect_error(validate_batch(b, small_limits()), Code::kTooLarge, "blob_too_large");

  b = Batch{};
  BlobPut upper = blob("xyz");
  for (char& c : upper.id) c = static_cast<char>(c >= 'a' && c <= 'f' ? c - 32 : c);
  b.blobs.push_back(upper);
  expect_error(validate_batch(b, small_limits()), Code::kInvalid, "bad_blob_id");

  b = Batch{};
  b.blobs.push_back(BlobPut{blob("xyz").id, "xyZ"});
  expect_error(validate_batch(b, small_limits()), Code::kInvalid, "bad_blob_id");

  b = Batch{};
  b.blobs.push_back(BlobPut{"", ""});
  expect_error(validate_batch(b, small_limits()), Code::kInvalid, "bad_blob_id");
}

TEST(PreconditionFailed, IsAConflictNamingEachKeyOnceInOrder) {
  const Status st = precondition_failed({"b", "a", "b", "c"});
  EXPECT_EQ(st.code(), Code::kConflict);
  EXPECT_EQ(st.reason(), "precondition_failed");
  const Json* keys = st.details().find("keys");
  ASSERT_NE(keys, nullptr);
  ASSERT_TRUE(keys->is_array());
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ(keys->as_array()[0].as_string(), "b");
  EXPECT_EQ(keys->as_array()[1].as_string(), "a");
  EXPECT_EQ(keys->as_array()[2].as_string(), "c");
  EXPECT_NE(st.message().find("3 keys"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace cairn::store

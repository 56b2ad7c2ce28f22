// session_test.cc — Session: hydrate, read-through, dirty tracking, the drain
// order contract, coalescing, and conflicts between concurrent sessions.
#include "store/session.h"

#include <gtest/gtest.h>

#include "model/sha256.h"
#include "store/fault_store.h"
#include "store/memory_store.h"

namespace cairn::store {
namespace {

// Compact renderings so expectations read like the contract.
std::string show(const Precondition& p) {
  return p.key +
         (p.kind == Precondition::Kind::kAbsent ? "=absent" : "@" + std::to_string(p.version));
}
std::string show(const Mutation& m) {
  return m.op == Mutation::Op::kDelete ? "del " + m.key : "put " + m.key + "=" + m.value;
}
template <class T>
std::vector<std::string> show_all(const std::vector<T>& xs) {
  std::vector<std::string> out;
  for (const T& x : xs) out.push_back(show(x));
  return out;
}
using Strings = std::vector<std::string>;

Version commit_puts(Store& store, std::initializer_list<std::pair<const char*, const char*>> kv) {
  Batch b;
  for (const auto& [k, v] : kv) b.mutations.push_back({Mutation::Op::kPut, k, v});
  auto r = store.commit(b);
  CAIRN_ASSERT(r.ok());
  return r->version;
}

TEST(Session, DrainOrderIsPreconditionsDeletesPutsBlobs) {
  Session s;
  s.hydrate("h1", std::string("x"), 7, /*checked=*/true);
  s.hydrate("u", std::string("y"), 3, /*checked=*/false);
  s.hydrate("h2", std::nullopt, kAbsent, /*checked=*/true);
  s.require(Precondition::absent("extra"));
  s.put("p1", "1");
  s.del("d1");
  s.put("p2", "2");
  s.del("d2");
  s.put("h1", "changed");
  const std::string id = s.put_blob("bytes");
  s.require(Precondition::version_equals("extra2", 9));

  EXPECT_TRUE(s.dirty());
  EXPECT_EQ(s.dirty_keys(), 5u);
  Batch b = s.drain();
  EXPECT_EQ(show_all(b.preconditions), (Strings{"h1@7", "h2=absent", "extra=absent", "extra2@9"}));
  EXPECT_EQ(show_all(b.mutations),
            (Strings{"del d1", "del d2", "put p1=1", "put p2=2", "put h1=changed"}));
  ASSERT_EQ(b.blobs.size(), 1u);
  EXPECT_EQ(b.blobs[0].id, id);
  EXPECT_EQ(b.blobs[0].bytes, "bytes");
}

TEST(Session, LastOperationWinsAtItsFirstPosition) {
  Session s;
  s.put("a", "1");  // a: put → del (delete at a's position)
  s.put("b", "1");  // b: put → del → put (put at b's position)
  s.del("c");       // c: del → put (put at c's position)
  s.put("d", "1");
  s.del("a");
  s.del("b");
  s.put("c", "3");
  s.put("b", "2");
  s.put("d", "4");  // d: overwritten, still one put
  Batch b = s.drain();
  EXPECT_EQ(show_all(b.mutations), (Strings{"del a", "put b=2", "put c=3", "put d=4"}));
  EXPECT_TRUE(b.preconditions.empty());
}

TEST(Session, DeletingAKnownAbsentKeyEmitsNothing) {
  Session s;
  s.hydrate("gone", std::nullopt, kAbsent, /*checked=*/true);
  s.del("gone");
  EXPECT_FALSE(s.dirty());
  EXPECT_EQ(s.dirty_keys(), 0u);

  // Created and deleted within the session: nothing either.
  s.hydrate("tmp", std::nullopt, kAbsent, /*checked=*/false);
  s.put("tmp", "x");
  EXPECT_TRUE(s.dirty());
  s.del("tmp");
  EXPECT_FALSE(s.dirty());

  Batch b = s.drain();
  EXPECT_TRUE(b.mutations.empty());
  EXPECT_EQ(show_all(b.preconditions), (Strings{"gone=absent"}));
}

TEST(Session, RecreatedKnownAbsentKeyKeepsItsFirstPosition) {
  Session s;
  s.hydrate("k", std::nullopt, kAbsent, /*checked=*/false);
  s.put("k", "1");
  s.put("other", "o");
  s.del("k");
  s.put("k", "2");
  EXPECT_EQ(show_all(s.drain().mutations), (Strings{"put k=2", "put other=o"}));
}

TEST(Session, BlindWritesHaveUnknownPriorState) {
  Session s;
  s.put("k", "1");
  s.del("k");  // k may exist in the store: the delete must reach it
  s.del("never_seen");
  Batch b = s.drain();
  EXPECT_EQ(show_all(b.mutations), (Strings{"del k", "del never_seen"}));
  EXPECT_TRUE(b.preconditions.empty());
}

TEST(Session, DeletingAPresentKeyEmitsADelete) {
  Session s;
  s.hydrate("k", std::string("v"), 4, /*checked=*/true);
  s.del("k");
  EXPECT_FALSE(s.get("k")->has_value());
  Batch b = s.drain();
  EXPECT_EQ(show_all(b.preconditions), (Strings{"k@4"}));
  EXPECT_EQ(show_all(b.mutations), (Strings{"del k"}));
}

TEST(Session, FirstHydrateWins) {
  Session s;
  s.hydrate("k", std::string("first"), 5, /*checked=*/true);
  s.hydrate("k", std::string("second"), 6, /*checked=*/true);
  s.put("w", "1");
  s.hydrate("w", std::string("stale"), 2, /*checked=*/true);  // already buffered
  EXPECT_EQ(**s.get("k"), "first");
  EXPECT_EQ(**s.get("w"), "1");
  Batch b = s.drain();
  EXPECT_EQ(show_all(b.preconditions), (Strings{"k@5"}));
}

TEST(Session, UncheckedHydrateAddsNoPrecondition) {
  Session s;
  s.hydrate("k", std::string("v"), 5, /*checked=*/false);
  s.put("k", "w");
  Batch b = s.drain();
  EXPECT_TRUE(b.preconditions.empty());
  EXPECT_EQ(show_all(b.mutations), (Strings{"put k=w"}));
}

TEST(Session, ReadsSeeOwnWrites) {
  Session s;
  EXPECT_FALSE(s.get("k")->has_value());
  s.put("k", "1");
  EXPECT_EQ(**s.get("k"), "1");
  s.del("k");
  EXPECT_FALSE(s.get("k")->has_value());
}

TEST(Session, ExplicitPreconditionsAloneDoNotMakeItDirty) {
  Session s;
  s.require(Precondition::absent("k"));
  EXPECT_FALSE(s.dirty());
  Batch b = s.drain();
  EXPECT_EQ(show_all(b.preconditions), (Strings{"k=absent"}));
}

TEST(Session, BlobsAreContentAddressedAndDeduplicated) {
  MemoryStore store;
  Session s(&store);
  const std::string id1 = s.put_blob("hello");
  const std::string id2 = s.put_blob("hello");
  const std::string id3 = s.put_blob("world");
  EXPECT_EQ(id1, to_hex(sha256("hello")));
  EXPECT_EQ(id1, id2);
  EXPECT_NE(id1, id3);
  EXPECT_TRUE(s.dirty());
  EXPECT_EQ(s.dirty_keys(), 0u);
  Batch b = s.drain();
  ASSERT_EQ(b.blobs.size(), 2u);
  EXPECT_EQ(b.blobs[0].id, id1);
  EXPECT_EQ(b.blobs[1].id, id3);
  ASSERT_TRUE(store.commit(b).ok());
  EXPECT_EQ(**store.get_blob(id1), "hello");

  // After a drain the dedup set is reset: the same bytes are emitted again
  // (the store treats the second put as a no-op).
  s.put_blob("hello");
  EXPECT_EQ(s.drain().blobs.size(), 1u);
}

TEST(Session, DrainResetsTheSession) {
  MemoryStore store;
  commit_puts(store, {{"k", "stored"}});
  Session s(&store);
  s.hydrate("k", std::string("hydrated"), 1, /*checked=*/true);
  s.put("x", "1");
  s.put_blob("b");
  s.require(Precondition::absent("y"));
  Batch first = s.drain();
  EXPECT_FALSE(first.empty());

  EXPECT_FALSE(s.dirty());
  EXPECT_EQ(s.dirty_keys(), 0u);
  Batch second = s.drain();
  EXPECT_TRUE(second.empty());
  // Forgotten: k is read through from the store again.
  EXPECT_EQ(**s.get("k"), "stored");
}

TEST(Session, ClearForgetsEverything) {
  Session s;
  s.hydrate("k", std::string("v"), 1, /*checked=*/true);
  s.put("x", "1");
  s.put_blob("b");
  s.require(Precondition::absent("y"));
  s.clear();
  EXPECT_FALSE(s.dirty());
  EXPECT_TRUE(s.drain().empty());
}

TEST(Session, LazyReadThroughHydratesChecked) {
  MemoryStore store;
  const Version v1 = commit_puts(store, {{"a", "1"}});
  FaultStore counted(&store);
  Session s(&counted);

  EXPECT_EQ(**s.get("a"), "1");
  EXPECT_FALSE(s.get("missing")->has_value());
  EXPECT_EQ(**s.get("a"), "1");  // buffered: no second read
  EXPECT_FALSE(s.get("missing")->has_value());
  EXPECT_EQ(counted.counters().gets, 2u);
  ASSERT_TRUE(s.hydrate_from_store("a").ok());  // already buffered
  EXPECT_EQ(counted.counters().gets, 2u);

  s.put("a", "2");
  Batch b = s.drain();
  EXPECT_EQ(show_all(b.preconditions), (Strings{"a@" + std::to_string(v1), "missing=absent"}));
  EXPECT_EQ(show_all(b.mutations), (Strings{"put a=2"}));
  ASSERT_TRUE(store.commit(b).ok());
}

TEST(Session, ReadThroughFailureBuffersNothing) {
  MemoryStore store;
  commit_puts(store, {{"a", "1"}});
  FaultStore faulty(&store);
  Session s(&faulty);
  faulty.set_reads_down(true);
  auto r = s.get("a");
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(s.hydrate_from_store("a").code(), Code::kUnavailable);
  faulty.set_reads_down(false);
  EXPECT_EQ(**s.get("a"), "1");
  EXPECT_EQ(s.drain().preconditions.size(), 1u);
}

TEST(Session, WithoutAStoreUnknownKeysReadAbsentButStayUnknown) {
  Session s;
  EXPECT_FALSE(s.get("k")->has_value());
  EXPECT_EQ(s.hydrate_from_store("k").code(), Code::kInternal);
  s.del("k");  // not known absent: the delete is emitted
  Batch b = s.drain();
  EXPECT_TRUE(b.preconditions.empty());
  EXPECT_EQ(show_all(b.mutations), (Strings{"del k"}));
}

TEST(Session, HydrateFromStoreThenCommitRoundTrips) {
  MemoryStore store;
  commit_puts(store, {{"a", "1"}, {"b", "2"}});
  Session s(&store);
  ASSERT_TRUE(s.hydrate_from_store("a").ok());
  ASSERT_TRUE(s.hydrate_from_store("c").ok());
  s.del("a");
  s.put("c", "3");
  s.del("c");  // known absent: cancels the put
  s.put("b", "22");
  auto r = store.commit(s.drain());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(store.get("a")->has_value());
  EXPECT_FALSE(store.get("c")->has_value());
  EXPECT_EQ((*store.get("b"))->value, "22");
}

TEST(Session, ConcurrentSessionsTheLoserGetsAConflictNamingTheKey) {
  MemoryStore store;
  commit_puts(store, {{"counter", "0"}});
  Session s1(&store);
  Session s2(&store);
  ASSERT_EQ(**s1.get("counter"), "0");
  ASSERT_EQ(**s2.get("counter"), "0");
  s1.put("counter", "1");
  s2.put("counter", "1");
  s2.put("side_effect", "x");
  ASSERT_TRUE(store.commit(s1.drain()).ok());

  auto lost = store.commit(s2.drain());
  ASSERT_EQ(lost.status().code(), Code::kConflict);
  EXPECT_EQ(lost.status().reason(), "precondition_failed");
  const Json* keys = lost.status().details().find("keys");
  ASSERT_NE(keys, nullptr);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ(keys->as_array()[0].as_string(), "counter");
  EXPECT_FALSE(store.get("side_effect")->has_value());  // nothing applied

  // Retry: re-hydrate and apply on top of the winner.
  ASSERT_EQ(**s2.get("counter"), "1");
  s2.put("counter", "2");
  ASSERT_TRUE(store.commit(s2.drain()).ok());
  EXPECT_EQ((*store.get("counter"))->value, "2");
}

TEST(Session, ConcurrentCreatesOfTheSameKeyConflict) {
  MemoryStore store;
  Session s1(&store);
  Session s2(&store);
  ASSERT_FALSE(s1.get("lock")->has_value());
  ASSERT_FALSE(s2.get("lock")->has_value());
  s1.put("lock", "s1");
  s2.put("lock", "s2");
  ASSERT_TRUE(store.commit(s1.drain()).ok());
  auto lost = store.commit(s2.drain());
  ASSERT_EQ(lost.status().code(), Code::kConflict);
  EXPECT_EQ(lost.status().details().find("keys")->as_array()[0].as_string(), "lock");
  EXPECT_EQ((*store.get("lock"))->value, "s1");
}

TEST(Session, MovedSessionKeepsItsBuffer) {
  Session a;
  a.hydrate("k", std::string("v"), 3, /*checked=*/true);
  a.put("x", "1");
  a.del("y");
  Session b(std::move(a));
  b.put("z", "2");
  Batch batch = b.drain();
  EXPECT_EQ(show_all(batch.preconditions), (Strings{"k@3"}));
  EXPECT_EQ(show_all(batch.mutations), (Strings{"del y", "put x=1", "put z=2"}));

  // The moved-from session is empty and reusable.
  EXPECT_FALSE(a.dirty());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(a.drain().empty());
  a.put("again", "1");

  Session c;
  c.put("old", "x");
  c = std::move(a);
  EXPECT_EQ(show_all(c.drain().mutations), (Strings{"put again=1"}));
}

TEST(Session, ManyKeysKeepOrder) {
  Session s;
  Strings want;
  for (int i = 0; i < 500; ++i) {
    const std::string k = "k" + std::to_string((i * 7919) % 1000);
    s.put(k, "v");
    want.push_back("put " + k + "=v");
  }
  EXPECT_EQ(show_all(s.drain().mutations), want);
}

}  // namespace
}  // namespace cairn::store

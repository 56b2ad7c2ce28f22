// pg_blackboard_test.cc — the core on the PostgreSQL backend: a Blackboard
// commits each drained batch to a PgStore; after dropping the connections
// and reopening, Blackboard::load() rebuilds exactly the same state
// (store/durable_backend.h).
#include <memory>

#include <gtest/gtest.h>

#include "backend/postgres/pg_cluster.h"
#include "store/durable_backend.h"

namespace cairn::backend::testing {
namespace {

TEST(PgBlackboard, RestartResumesExactly) {
  PgOptions o;
  o.schema = unique_schema();
  cairn::testing::blackboard_restart_resumes_exactly([&]() -> std::unique_ptr<store::Store> {
    auto r = PgStore::open(pg_url(), {}, o);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r).value() : nullptr;
  });
}

}  // namespace
}  // namespace cairn::backend::testing

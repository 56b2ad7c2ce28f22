// sqlite_blackboard_test.cc — the core on the SQLite backend: a Blackboard
// commits each drained batch to a SqliteStore; after closing and reopening
// the file, Blackboard::load() rebuilds exactly the same state
// (store/durable_backend.h).
#include <memory>

#include <gtest/gtest.h>

#include "backend/sqlite/temp_db.h"
#include "store/durable_backend.h"

namespace cairn::backend::testing {
namespace {

TEST(SqliteBlackboard, RestartResumesExactly) {
  TempDir dir;
  const std::string path = dir.file("cairn.db");
  cairn::testing::blackboard_restart_resumes_exactly([&]() -> std::unique_ptr<store::Store> {
    auto r = SqliteStore::open(path);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r).value() : nullptr;
  });
}

}  // namespace
}  // namespace cairn::backend::testing

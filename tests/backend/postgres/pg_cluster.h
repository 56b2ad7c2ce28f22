// pg_cluster.h — test helpers for the PostgreSQL backend: one throw-away
// cluster per test binary (scripts/pg-test-cluster, started by a gtest
// environment and removed afterwards, also when tests fail), a PgStore in a
// fresh schema of its own, and raw libpq sessions for the tests that race
// or break the store's connections.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "backend/postgres/pg_store.h"
#include "store/durable_backend.h"
#include "store/store.h"

namespace cairn::backend::testing {

// The URL of this binary's cluster (postgres://postgres@127.0.0.1:PORT/postgres).
const std::string& pg_url();
// Stops the cluster's server (its data stays) / starts it again on the same port.
void pg_cluster_down();
void pg_cluster_up();
// A schema name no other test of this run uses.
std::string unique_schema();
// A new database on the cluster (named <prefix>_<pid>_<n>); its URL.
std::string fresh_database(std::string_view prefix);

// A raw libpq session (the test's own, beside the store's pool).
class RawSession {
 public:
  RawSession();                                 // on pg_url()
  explicit RawSession(const std::string& url);  // e.g. a fresh_database()
  ~RawSession();
  RawSession(const RawSession&) = delete;
  RawSession& operator=(const RawSession&) = delete;
  // Runs `sql`; fails the test on error. Returns the first column of every row.
  std::vector<std::string> exec(const std::string& sql);
  PGconn* get() { return pg_; }

 private:
  PGconn* pg_ = nullptr;
};

// A PgStore in a fresh schema; reopen() drops every connection and opens the
// schema again (a restart). The schema is dropped at the end.
class TempPgStore final : public store::Store {
 public:
  explicit TempPgStore(store::StoreLimits limits = {}, PgOptions options = {});
  ~TempPgStore() override;

  void reopen();
  PgStore& db() { return *db_; }
  const std::string& schema() const { return options_.schema; }

  Result<std::optional<store::Entry>> get(std::string_view key) override { return db_->get(key); }
  Result<store::RangePage> range(std::string_view prefix, std::string_view after,
                                 std::size_t limit) override {
    return db_->range(prefix, after, limit);
  }
  Result<store::CommitInfo> commit(const store::Batch& batch) override {
    return db_->commit(batch);
  }
  Result<std::optional<std::string>> get_blob(std::string_view id) override {
    return db_->get_blob(id);
  }
  Result<store::Version> last_version() override { return db_->last_version(); }
  const store::StoreLimits& limits() const override { return db_->limits(); }

 private:
  store::StoreLimits limits_;
  PgOptions options_;
  std::unique_ptr<PgStore> db_;
};

using cairn::testing::dump;  // store/durable_backend.h

}  // namespace cairn::backend::testing

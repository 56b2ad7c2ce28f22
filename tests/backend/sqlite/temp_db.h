// temp_db.h — test helpers for the SQLite backend: a temporary directory
// that removes itself, a Store that owns its database file (for the contract
// suite's factory and its restart hook), and a full dump of a store.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "backend/sqlite/sqlite_store.h"
#include "model/assert.h"
#include "store/durable_backend.h"
#include "store/store.h"

namespace cairn::backend::testing {

// mkdtemp under $TMPDIR (or /tmp); removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = (base != nullptr && *base != '\0') ? base : "/tmp";
    templ += "/cairn-sqlite-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    const char* made = mkdtemp(buf.data());
    CAIRN_ASSERT_MSG(made != nullptr, "mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A SqliteStore on a fresh file in its own temporary directory; reopen()
// closes the connection and opens the same file again (a restart).
class TempSqliteStore final : public store::Store {
 public:
  explicit TempSqliteStore(store::StoreLimits limits = {}) : limits_(limits) { reopen(); }

  void reopen() {
    db_.reset();  // close first: the restart drops every cached statement
    auto r = SqliteStore::open(dir_.file("cairn.db"), limits_);
    CAIRN_ASSERT_MSG(r.ok(), r.status().to_string().c_str());
    db_ = std::move(r).value();
  }
  SqliteStore& db() { return *db_; }
  std::string path() const { return dir_.file("cairn.db"); }

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
  TempDir dir_;  // declared first: removed after the database is closed
  store::StoreLimits limits_;
  std::unique_ptr<SqliteStore> db_;
};

using cairn::testing::dump;  // store/durable_backend.h

}  // namespace cairn::backend::testing

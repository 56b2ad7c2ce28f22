// sqlite_contract_test.cc — the storage contract suite (tests/data/
// store_contract), unchanged, against SqliteStore: once on a fresh database
// file per scenario, and once closing and reopening the file after every step.
#include <memory>

#include "backend/sqlite/temp_db.h"
#include "store/contract_runner.h"

namespace cairn::backend::testing {
namespace {

std::unique_ptr<store::Store> make_sqlite() {
  return std::make_unique<TempSqliteStore>();
}

std::unique_ptr<store::Store> restart_sqlite(std::unique_ptr<store::Store> s) {
  static_cast<TempSqliteStore*>(s.get())->reopen();
  return s;
}

}  // namespace
}  // namespace cairn::backend::testing

CAIRN_STORE_CONTRACT_TESTS(Sqlite, {"sqlite", cairn::backend::testing::make_sqlite});

// The same suite, closing and reopening the database file after every step.
CAIRN_STORE_CONTRACT_TESTS(SqliteRestartEveryStep,
                           {"sqlite+restart", cairn::backend::testing::make_sqlite,
                            cairn::backend::testing::restart_sqlite});

// pg_contract_test.cc — the storage contract suite (tests/data/
// store_contract), unchanged, against PgStore: once on a fresh schema per
// scenario, and once dropping every connection and reopening after every step.
#include <memory>

#include "backend/postgres/pg_cluster.h"
#include "store/contract_runner.h"

namespace cairn::backend::testing {
namespace {

std::unique_ptr<store::Store> make_pg() {
  return std::make_unique<TempPgStore>();
}

std::unique_ptr<store::Store> restart_pg(std::unique_ptr<store::Store> s) {
  static_cast<TempPgStore*>(s.get())->reopen();
  return s;
}

}  // namespace
}  // namespace cairn::backend::testing

CAIRN_STORE_CONTRACT_TESTS(Postgres, {"postgres", cairn::backend::testing::make_pg});

CAIRN_STORE_CONTRACT_TESTS(PostgresRestartEveryStep,
                           {"postgres+restart", cairn::backend::testing::make_pg,
                            cairn::backend::testing::restart_pg});

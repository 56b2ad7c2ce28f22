// contract_runner.h — the storage contract suite, written once, run against
// every Store backend (memory, SQLite, PostgreSQL, ...).
//
// The scenarios are data: tests/data/store_contract/*.txt (the format is
// documented at the top of contract_runner.cc). A backend's test file
// instantiates the whole suite in one line:
//
//   CAIRN_STORE_CONTRACT_TESTS(Memory, {"memory", [] { return std::make_unique<MemoryStore>(); }});
//
// which registers one gtest per scenario, named <file>_<scenario>. The
// optional `restart` hook runs after every step (the "restart the storage
// after each step" matrix): it receives the store and returns one that holds
// the same committed state (e.g. close and reopen the database file).
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "model/status.h"
#include "store/store.h"

namespace cairn::store::contract {

struct ContractBackend {
  std::string name;
  // A fresh, empty store for each scenario.
  std::function<std::unique_ptr<Store>()> make_store;
  // Optional: simulates a restart after every step.
  std::function<std::unique_ptr<Store>(std::unique_ptr<Store>)> restart = nullptr;
};

// One scenario as written: its steps are parsed when it runs (some terms
// depend on the store's limits).
struct Scenario {
  std::string file;                                // file name, e.g. "range.txt"
  std::string name;                                // text after "==="
  int line = 0;                                    // line of the "===" header
  std::vector<std::pair<int, std::string>> steps;  // (line number, text)
};

// Splits one scenario file into scenarios.
Result<std::vector<Scenario>> parse_scenarios(std::string_view file, std::string_view text);

// Every *.txt file of `dir`, in file-name order. The default directory is
// CAIRN_TEST_DATA_DIR "/store_contract".
std::string default_contract_dir();
Result<std::vector<Scenario>> load_scenarios(const std::string& dir);

// Runs one scenario on a fresh store from `backend`. Returns an empty string
// when every step met its expectation, else a description of the first
// failing step ("range.txt:12: <step>: <what differed>").
std::string run_scenario(const Scenario& scenario, const ContractBackend& backend);

// Runs every scenario of the default directory inside the current gtest
// (one failure per failing scenario).
void run_contract_suite(const ContractBackend& backend);

// ---- parametrised gtest plumbing (use CAIRN_STORE_CONTRACT_TESTS) ----

struct ContractCase {
  std::shared_ptr<const ContractBackend> backend;
  std::shared_ptr<const Scenario> scenario;  // null when loading failed
  std::string load_error;
  std::string test_name;  // unique, [A-Za-z0-9_]
};
void PrintTo(const ContractCase& c, std::ostream* os);

// One case per scenario (or one failing case when the files do not load).
std::vector<ContractCase> contract_cases(ContractBackend backend);

struct ContractCaseName {
  std::string operator()(const ::testing::TestParamInfo<ContractCase>& info) const {
    return info.param.test_name;
  }
};

class StoreContractTest : public ::testing::TestWithParam<ContractCase> {};

}  // namespace cairn::store::contract

// Registers the whole contract suite for one backend: `Name` prefixes the
// test names; the rest is a ContractBackend initializer. Use at namespace
// scope. (gtest matches the suite by its unqualified name, hence the alias.)
#define CAIRN_STORE_CONTRACT_TESTS(Name, ...)                                            \
  using StoreContractTest = ::cairn::store::contract::StoreContractTest;                 \
  INSTANTIATE_TEST_SUITE_P(Name, StoreContractTest,                                      \
                           ::testing::ValuesIn(::cairn::store::contract::contract_cases( \
                               ::cairn::store::contract::ContractBackend __VA_ARGS__)),  \
                           ::cairn::store::contract::ContractCaseName())

// contract_runner_test.cc — the contract runner itself: the scenario files
// parse, the parser rejects malformed files, and the suite has teeth (stores
// that break the contract in typical ways fail it).
#include "store/contract_runner.h"

#include <set>

#include <gtest/gtest.h>

#include "model/sha256.h"
#include "store/memory_store.h"

namespace cairn::store::contract {
namespace {

TEST(ContractRunner, ScenarioFilesLoad) {
  auto all = load_scenarios(default_contract_dir());
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_GE(all->size(), 50u);
  std::set<std::string> files;
  for (const Scenario& s : *all) files.insert(s.file);
  EXPECT_EQ(files, (std::set<std::string>{"basics.txt", "blobs.txt", "limits.txt",
                                          "preconditions.txt", "range.txt"}));
}

TEST(ContractRunner, ParsesScenariosCommentsAndBlankLines) {
  auto r = parse_scenarios("f.txt",
                           "# header\n"
                           "\n"
                           "=== first one\n"
                           "  get a expect absent  \r\n"
                           "# inside\n"
                           "last_version expect 0\n"
                           "===second\n"
                           "get b expect absent");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, "first one");
  EXPECT_EQ((*r)[0].line, 3);
  ASSERT_EQ((*r)[0].steps.size(), 2u);
  EXPECT_EQ((*r)[0].steps[0], (std::pair<int, std::string>{4, "get a expect absent"}));
  EXPECT_EQ((*r)[0].steps[1].first, 6);
  EXPECT_EQ((*r)[1].name, "second");
}

TEST(ContractRunner, RejectsMalformedFiles) {
  EXPECT_FALSE(parse_scenarios("f", "get a expect absent\n").ok());
  EXPECT_FALSE(parse_scenarios("f", "=== a\n=== b\nget a expect absent\n").ok());
  EXPECT_FALSE(
      parse_scenarios("f", "=== a\nget a expect absent\n=== a\nget a expect absent\n").ok());
  EXPECT_FALSE(parse_scenarios("f", "=== a\n").ok());
  EXPECT_FALSE(parse_scenarios("f", "===\nget a expect absent\n").ok());
}

ContractBackend memory_backend() {
  return {"memory", [] { return std::unique_ptr<Store>(std::make_unique<MemoryStore>()); }, {}};
}

std::string run_text(const std::string& text, const ContractBackend& backend) {
  auto scenarios = parse_scenarios("inline.txt", text);
  CAIRN_ASSERT(scenarios.ok());
  CAIRN_ASSERT(scenarios->size() == 1);
  return run_scenario((*scenarios)[0], backend);
}

TEST(ContractRunner, ReportsTheFailingStepWithItsLine) {
  const std::string failure = run_text(
      "=== s\n"
      "commit put a=1 expect ok @v1\n"
      "get a expect 2@v1\n",
      memory_backend());
  EXPECT_NE(failure.find("inline.txt:3"), std::string::npos) << failure;
  EXPECT_NE(failure.find("expected \"2\""), std::string::npos) << failure;
}

TEST(ContractRunner, SyntaxErrorsFailTheScenario) {
  for (const char* step :
       {"frobnicate expect ok", "get a", "commit put a expect ok", "get a expect 1@unbound",
        "range a expect none", "commit put a=\"open expect ok", "commit put a=1 expect maybe",
        "get $bogus*x expect absent"}) {
    const std::string failure = run_text(std::string("=== s\n") + step + "\n", memory_backend());
    EXPECT_NE(failure.find("syntax"), std::string::npos) << step << " → " << failure;
  }
}

TEST(ContractRunner, RebindingANameChecksEquality) {
  EXPECT_EQ(run_text("=== s\ncommit put a=1 expect ok @v\ncommit expect ok @v\n", memory_backend()),
            "");
  EXPECT_NE(run_text("=== s\ncommit put a=1 expect ok @v\ncommit put b=1 expect ok @v\n",
                     memory_backend()),
            "");
}

// ---- the suite must catch broken stores ----

// Forwards to a MemoryStore, with one deliberate contract violation.
class BrokenStore final : public Store {
 public:
  enum class Bug {
    kIgnoresPreconditions,
    kNeverSetsMore,
    kAfterInclusive,
    kNoVersionBump,
    kNoBlobCheck,
    kPartialApplyOnConflict
  };
  explicit BrokenStore(Bug bug) : bug_(bug) {}

  Result<std::optional<Entry>> get(std::string_view key) override { return mem_.get(key); }
  Result<RangePage> range(std::string_view prefix, std::string_view after,
                          std::size_t limit) override {
    if (bug_ == Bug::kAfterInclusive && !after.empty()) {
      // Starts at `after` itself when it exists.
      auto page = mem_.range(prefix, "", mem_.limits().range_limit_max);
      if (!page.ok()) return page;
      RangePage out;
      for (Entry& e : page->entries) {
        if (e.key < after) continue;
        if (out.entries.size() == limit) {
          out.more = true;
          break;
        }
        out.entries.push_back(std::move(e));
      }
      return out;
    }
    auto page = mem_.range(prefix, after, limit);
    if (page.ok() && bug_ == Bug::kNeverSetsMore) page->more = false;
    return page;
  }
  Result<CommitInfo> commit(const Batch& batch) override {
    Batch b = batch;
    switch (bug_) {
      case Bug::kIgnoresPreconditions:
        b.preconditions.clear();
        break;
      case Bug::kNoBlobCheck:
        for (BlobPut& blob : b.blobs) blob.id = to_hex(sha256(blob.bytes));
        break;
      case Bug::kPartialApplyOnConflict: {
        auto r = mem_.commit(b);
        if (!r.ok()) {
          // Applies the first mutation anyway.
          Batch partial;
          if (!b.mutations.empty()) partial.mutations.push_back(b.mutations.front());
          mem_.commit(partial).status().ignore();
        }
        return r;
      }
      default:
        break;
    }
    auto r = mem_.commit(b);
    if (r.ok() && bug_ == Bug::kNoVersionBump) r->version = 1;
    return r;
  }
  Result<std::optional<std::string>> get_blob(std::string_view id) override {
    return mem_.get_blob(id);
  }
  Result<Version> last_version() override { return mem_.last_version(); }
  const StoreLimits& limits() const override { return mem_.limits(); }

 private:
  Bug bug_;
  MemoryStore mem_;
};

int failing_scenarios(BrokenStore::Bug bug) {
  ContractBackend broken{
      "broken", [bug] { return std::unique_ptr<Store>(std::make_unique<BrokenStore>(bug)); }, {}};
  auto all = load_scenarios(default_contract_dir());
  CAIRN_ASSERT(all.ok());
  int failures = 0;
  for (const Scenario& s : *all) {
    if (s.file == "limits.txt") continue;  // big values, and none of these bugs
    failures += run_scenario(s, broken).empty() ? 0 : 1;
  }
  return failures;
}

TEST(ContractRunner, TheSuiteCatchesBrokenStores) {
  using Bug = BrokenStore::Bug;
  EXPECT_GE(failing_scenarios(Bug::kIgnoresPreconditions), 10);
  EXPECT_GE(failing_scenarios(Bug::kNeverSetsMore), 2);
  EXPECT_GE(failing_scenarios(Bug::kAfterInclusive), 2);
  EXPECT_GE(failing_scenarios(Bug::kNoVersionBump), 5);
  EXPECT_GE(failing_scenarios(Bug::kNoBlobCheck), 3);
  EXPECT_GE(failing_scenarios(Bug::kPartialApplyOnConflict), 3);
}

TEST(ContractRunner, RunContractSuiteHelper) {
  run_contract_suite(memory_backend());
}

}  // namespace
}  // namespace cairn::store::contract

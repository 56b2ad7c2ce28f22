// storm_test.cc — several real cairnd processes on one throw-away PostgreSQL
// (tests/backend/postgres/pg_cluster.h), hundreds of agent threads over real
// sockets, and the log checker of storm.h:
//
//   Storm.ManyNodesManyAgentsEveryIntentConcludedOnce
//       3 nodes, 200 agents, 20,000 intents, no fault.
//   Storm.KillNineOneNodeMidStorm
//       a node is SIGKILLed once 30% are concluded; its agents move to the
//       other nodes, the leases they held expire (2 s) and are reclaimed.
//   Storm.RestartPostgresMidStorm
//       PostgreSQL is stopped for 3 s once 30% are concluded: the nodes answer
//       503 while it is down and carry on by themselves when it is back.
//
// Every run prints its seed. Knobs: CAIRN_STORM_SEED, CAIRN_STORM_NODES,
// CAIRN_STORM_AGENTS, CAIRN_STORM_INTENTS (they override every test's sizes);
// CAIRN_STORM_KEEP=1 keeps the nodes' data directories and logs.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "backend/postgres/pg_cluster.h"
#include "cluster/storm.h"

namespace cairn::testing {
namespace {

constexpr std::size_t kViolationsShownMax = 40;
constexpr std::size_t kErrorsShownMax = 20;

std::string temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = (base != nullptr && *base != '\0') ? base : "/tmp";
  templ += "/cairn-storm-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return "";
  return buf.data();
}

void run_and_check(StormOptions o) {
  o = storm_options_from_env(o);
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  const char* fault = o.fault == Fault::kNone       ? "none"
                      : o.fault == Fault::kKillNode ? "kill -9 a node"
                                                    : "restart PostgreSQL";
  std::fprintf(stderr,
               "[storm] seed %llu: %d nodes, %d agents, %d intents, lease %lld ms, fault: %s; "
               "logs in %s (replay: CAIRN_STORM_SEED=%llu)\n",
               static_cast<unsigned long long>(o.seed), o.nodes, o.agents, o.intents,
               static_cast<long long>(o.lease_ttl_ms), fault, dir.c_str(),
               static_cast<unsigned long long>(o.seed));
  Cluster cluster(CAIRND_PATH, backend::testing::fresh_database("storm"), dir, o.nodes);
  const std::string started = cluster.start();
  ASSERT_EQ(started, "") << "seed " << o.seed;

  StormOutcome out = run_storm(cluster, o);
  std::fprintf(
      stderr,
      "[storm] seed %llu: %s in %lld ms; %zu acknowledgements, %llu 503 replies, "
      "%llu lost_race 409s, %llu probe 503s, %llu node moves, %zu leases dropped at the kill\n",
      static_cast<unsigned long long>(o.seed),
      out.finished ? "every intent concluded" : "NOT FINISHED", static_cast<long long>(out.run_ms),
      out.acks.size(), static_cast<unsigned long long>(out.unavailable_503),
      static_cast<unsigned long long>(out.lost_race_409),
      static_cast<unsigned long long>(out.probe_503),
      static_cast<unsigned long long>(out.node_moves), out.abandoned_at_kill.size());
  for (const auto& [k, n] : out.replies) {
    std::fprintf(stderr, "[storm]   %-52s %8llu\n", k.c_str(), static_cast<unsigned long long>(n));
  }

  EXPECT_TRUE(out.finished) << "seed " << o.seed << ": not every intent was concluded within "
                            << o.run_ms_max << " ms; last state: " << out.final_state;
  std::string errs;
  for (std::size_t i = 0; i < out.errors.size() && i < kErrorsShownMax; ++i) {
    errs += "\n  " + out.errors[i];
  }
  EXPECT_TRUE(out.errors.empty()) << "seed " << o.seed << ": " << out.errors.size()
                                  << " unexpected replies or unanswered requests:" << errs;
  EXPECT_EQ(out.http_500, 0u) << "seed " << o.seed;

  const std::vector<std::string> v = check_storm(cluster, o, out);
  std::string shown;
  for (std::size_t i = 0; i < v.size() && i < kViolationsShownMax; ++i) shown += "\n  " + v[i];
  EXPECT_TRUE(v.empty()) << "seed " << o.seed << ": " << v.size() << " violations:" << shown
                         << "\n(node logs in " << dir << ")";

  if (o.fault == Fault::kKillNode) {
    EXPECT_GE(out.killed_node, 0) << "seed " << o.seed << ": the node was never killed";
    EXPECT_GT(out.node_moves, 0u) << "seed " << o.seed << ": no agent moved to another node";
    EXPECT_GT(out.abandoned_reclaimed, 0u)
        << "seed " << o.seed << ": of the " << out.abandoned_at_kill.size()
        << " leases the killed node's agents dropped, none expired and was claimed again";
    std::fprintf(stderr,
                 "[storm] %zu of %zu leases dropped at the kill expired and were reclaimed\n",
                 out.abandoned_reclaimed, out.abandoned_at_kill.size());
  }
  if (o.fault == Fault::kRestartPostgres) {
    EXPECT_GT(out.probe_503 + out.unavailable_503, 0u)
        << "seed " << o.seed << ": no 503 seen while PostgreSQL was down";
    EXPECT_GT(out.probe_503, 0u) << "seed " << o.seed;
  }

  const std::string stopped = cluster.stop();
  EXPECT_EQ(stopped, "") << "seed " << o.seed;
  const char* keep = std::getenv("CAIRN_STORM_KEEP");
  if (!::testing::Test::HasFailure() && (keep == nullptr || std::string(keep) != "1")) {
    std::filesystem::remove_all(dir);
  }
}

TEST(Storm, ManyNodesManyAgentsEveryIntentConcludedOnce) {
  StormOptions o;
  o.nodes = 3;
  o.agents = 200;
  o.intents = 20'000;
  o.lease_ttl_ms = 5'000;
  run_and_check(o);
}

TEST(Storm, KillNineOneNodeMidStorm) {
  StormOptions o;
  o.nodes = 3;
  o.agents = 120;
  o.intents = 4'000;
  o.lease_ttl_ms = 2'000;
  o.fault = Fault::kKillNode;
  run_and_check(o);
}

TEST(Storm, RestartPostgresMidStorm) {
  StormOptions o;
  o.nodes = 3;
  o.agents = 120;
  o.intents = 4'000;
  o.lease_ttl_ms = 5'000;
  o.fault = Fault::kRestartPostgres;
  run_and_check(o);
}

}  // namespace
}  // namespace cairn::testing

// pg_cluster.cc — see pg_cluster.h.
#include "backend/postgres/pg_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "model/assert.h"

namespace cairn::backend::testing {
namespace {

const char* const kScript = CAIRN_SOURCE_DIR "/scripts/pg-test-cluster";

// Runs the cluster script; returns its stdout (trimmed), aborts on failure.
std::string script(const std::string& cmd, const std::string& dir) {
  const std::string line = std::string(kScript) + " " + cmd + " '" + dir + "'";
  FILE* p = popen(line.c_str(), "r");
  CAIRN_ASSERT_MSG(p != nullptr, "popen failed");
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int rc = pclose(p);
  if (rc != 0) {
    ADD_FAILURE() << line << " failed (" << rc << ")";
    return std::string();
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

struct Cluster {
  std::string dir;
  std::string url;
};

Cluster& cluster() {
  static Cluster c;
  return c;
}

// Starts the cluster before the first test and removes it after the last.
// CAIRN_PG_CLUSTER_DIR names the directory (ctest sets it, and removes it in
// a cleanup fixture should this binary die before TearDown).
class ClusterEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override {
    Cluster& c = cluster();
    const char* dir = std::getenv("CAIRN_PG_CLUSTER_DIR");
    if (dir != nullptr && *dir != '\0') {
      c.dir = dir;
    } else {
      const char* base = std::getenv("TMPDIR");
      std::string templ = (base != nullptr && *base != '\0') ? base : "/tmp";
      templ += "/cairn-pg-XXXXXX";
      std::vector<char> buf(templ.begin(), templ.end());
      buf.push_back('\0');
      CAIRN_ASSERT_MSG(mkdtemp(buf.data()) != nullptr, "mkdtemp failed");
      c.dir = buf.data();
    }
    c.url = script("start", c.dir);
    CAIRN_ASSERT_MSG(!c.url.empty(), "the PostgreSQL test cluster did not start");
  }
  void TearDown() override {
    if (!cluster().dir.empty()) script("stop", cluster().dir);
  }
};

[[maybe_unused]] ::testing::Environment* const kEnv =
    ::testing::AddGlobalTestEnvironment(new ClusterEnvironment);

}  // namespace

const std::string& pg_url() {
  return cluster().url;
}

void pg_cluster_down() {
  script("down", cluster().dir);
}

void pg_cluster_up() {
  script("up", cluster().dir);
}

std::string unique_schema() {
  static std::atomic<int> n{0};
  return "t" + std::to_string(getpid()) + "_" + std::to_string(n.fetch_add(1));
}

std::string fresh_database(std::string_view prefix) {
  static std::atomic<int> n{0};
  const std::string name = std::string(prefix) + "_" + std::to_string(getpid()) + "_" +
                           std::to_string(n.fetch_add(1) + 1);
  RawSession s;
  s.exec("CREATE DATABASE " + name);
  const std::string& base = pg_url();
  return base.substr(0, base.rfind('/') + 1) + name;
}

RawSession::RawSession() : RawSession(pg_url()) {}

RawSession::RawSession(const std::string& url) {
  pg_ = PQconnectdb(url.c_str());
  CAIRN_ASSERT_MSG(PQstatus(pg_) == CONNECTION_OK, PQerrorMessage(pg_));
  PQsetNoticeProcessor(
      pg_, [](void*, const char*) {}, nullptr);
}

RawSession::~RawSession() {
  PQfinish(pg_);
}

std::vector<std::string> RawSession::exec(const std::string& sql) {
  std::vector<std::string> out;
  PGresult* r = PQexec(pg_, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
  } else {
    for (int i = 0; i < PQntuples(r); ++i) out.emplace_back(PQgetvalue(r, i, 0));
  }
  PQclear(r);
  return out;
}

TempPgStore::TempPgStore(store::StoreLimits limits, PgOptions options)
    : limits_(limits), options_(std::move(options)) {
  options_.schema = unique_schema();
  reopen();
}

TempPgStore::~TempPgStore() {
  db_.reset();
  RawSession s;
  s.exec("DROP SCHEMA IF EXISTS " + options_.schema + " CASCADE");
}

void TempPgStore::reopen() {
  db_.reset();  // close first: the restart drops every connection
  auto r = PgStore::open(pg_url(), limits_, options_);
  CAIRN_ASSERT_MSG(r.ok(), r.status().to_string().c_str());
  db_ = std::move(r).value();
}

}  // namespace cairn::backend::testing

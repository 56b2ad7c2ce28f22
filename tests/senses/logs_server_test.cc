// /v1/logs on real servers: the routes in-process, then the cairnd binary
// killed with SIGKILL — after an append, and between an archive export and
// its delete (CAIRN_FAILPOINT=archive_after_export).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "model/json_parse.h"
#include "model/sha256.h"
#include "server/log_records.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

using server::day_name;
using server::kDayMs;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

server::TokenConfig token(const std::string& name, const std::string& secret, server::Scope s) {
  return server::TokenConfig{name, to_hex(sha256(secret)), s};
}
Headers bearer(const std::string& secret) {
  return {{"Authorization", "Bearer " + secret}};
}

std::vector<Json> logs_of(const HttpResult& r) {
  std::vector<Json> out;
  const Json body = r.json();
  const Json* l = body.find("logs");
  if (l != nullptr && l->is_array()) out = l->as_array();
  return out;
}

TEST(LogsRoutes, AppendListFilterPageAndRefuse) {
  TestServer srv;
  srv.start();
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 4; ++i) {
    auto r = srv.post("/v1/logs", R"({"source":")" + std::string(i % 2 ? "b" : "a") +
                                      R"(","type":"sense.failed","ref":"run-)" + std::to_string(i) +
                                      R"(","payload":{"exit":3}})");
    ASSERT_EQ(r.status, 201) << r.body;
    ids.push_back(num(r.json(), "id"));
    EXPECT_GT(num(r.json(), "ts"), 0);
    if (i > 0) {
      EXPECT_GT(ids[i], ids[i - 1]);
    }
  }
  // The payload is optional, and so is the ref.
  ASSERT_EQ(srv.post("/v1/logs", R"({"source":"a","type":"t"})").status, 201);

  auto all = srv.get("/v1/logs");
  ASSERT_EQ(all.status, 200) << all.body;
  auto recs = logs_of(all);
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(num(recs[0], "id"), ids[0]);
  EXPECT_EQ(str(recs[1], "source"), "b");
  EXPECT_EQ(str(recs[1], "ref"), "run-1");
  EXPECT_EQ(to_json(*recs[1].find("payload")), R"({"exit":3})");
  EXPECT_TRUE(recs[4].find("payload")->is_null());
  EXPECT_TRUE(all.json().find("next")->is_null());
  for (std::size_t i = 1; i < recs.size(); ++i)
    EXPECT_GE(num(recs[i], "ts"), num(recs[i - 1], "ts"));

  auto b = logs_of(srv.get("/v1/logs?source=b"));
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(num(b[0], "id"), ids[1]);
  EXPECT_EQ(num(b[1], "id"), ids[3]);

  auto page = srv.get("/v1/logs?limit=2");
  ASSERT_EQ(logs_of(page).size(), 2u);
  const std::string next = str(page.json(), "next");
  EXPECT_EQ(next, std::to_string(ids[1]));
  auto rest = logs_of(srv.get("/v1/logs?after=" + next + "&limit=10"));
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_EQ(num(rest[0], "id"), ids[2]);

  // Refusals: typed, and nothing is written.
  const std::vector<std::tuple<std::string, int, std::string>> bad = {
      {R"({"type":"t"})", 400, "invalid_field"},
      {R"({"source":"a b","type":"t"})", 400, "invalid_field"},
      {R"({"source":"a","type":7})", 400, "invalid_field"},
      {R"({"source":"a","type":"t","extra":1})", 400, "unknown_field"},
      {R"({"source":"a","type":"t","ref":")" + std::string(257, 'r') + "\"}", 413, "too_large"},
      {R"({"source":"a","type":"t","payload":")" + std::string(70'000, 'p') + "\"}", 413,
       "too_large"},
      {R"({"source":")" + std::string(129, 's') + R"(","type":"t"})", 413, "too_large"},
      {R"([1])", 400, "invalid_field"},
      {R"({"source":)", 400, ""},
  };
  for (const auto& [body, status, code] : bad) {
    auto r = srv.post("/v1/logs", body);
    EXPECT_EQ(r.status, status) << body.substr(0, 80) << " → " << r.body;
    if (!code.empty()) {
      EXPECT_EQ(r.code(), code) << r.body;
    }
  }
  auto keyed = srv.post("/v1/logs", R"({"source":"a","type":"t"})", {{"Idempotency-Key", "k"}});
  EXPECT_EQ(keyed.status, 400);
  EXPECT_EQ(srv.get("/v1/logs?limit=0").status, 400);
  EXPECT_EQ(srv.get("/v1/logs?after=x").status, 400);
  EXPECT_EQ(srv.get("/v1/logs?sources=a").status, 400);
  EXPECT_EQ(http(srv.port, "DELETE", "/v1/logs").status, 405);
  EXPECT_EQ(http(srv.port, "GET", "/v1/logs/archive").status, 405);
  EXPECT_EQ(logs_of(srv.get("/v1/logs")).size(), 5u);

  // Nothing is old enough to archive.
  auto arch = srv.post("/v1/logs/archive", "");
  ASSERT_EQ(arch.status, 200) << arch.body;
  EXPECT_EQ(arch.json().find("days")->size(), 0u);
  EXPECT_EQ(num(arch.json(), "records"), 0);
  EXPECT_TRUE(arch.json().find("watermark")->is_null());
  EXPECT_EQ(srv.post("/v1/logs/archive", R"({"x":1})").status, 400);

  const std::string metrics = srv.get("/metrics").body;
  EXPECT_NE(metrics.find("cairn_log_records_appended_total 5\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("cairn_log_archived_days_total 0\n"), std::string::npos);
  srv.stop();
  srv.remove_data();
}

TEST(LogsRoutes, ScopesAgentAppendsReadListsAdminArchives) {
  TestServer srv;
  srv.config.tokens = {token("alice", "alice-secret", server::Scope::kAgent),
                       token("dash", "dash-secret", server::Scope::kRead),
                       token("ops", "ops-secret", server::Scope::kAdmin)};
  srv.start();
  const std::string body = R"({"source":"a","type":"t"})";
  EXPECT_EQ(srv.post("/v1/logs", body).status, 401);
  EXPECT_EQ(srv.post("/v1/logs", body, bearer("dash-secret")).status, 403);
  EXPECT_EQ(srv.post("/v1/logs", body, bearer("alice-secret")).status, 201);
  EXPECT_EQ(srv.get("/v1/logs").status, 401);
  EXPECT_EQ(logs_of(srv.get("/v1/logs", bearer("dash-secret"))).size(), 1u);
  EXPECT_EQ(srv.post("/v1/logs/archive", "", bearer("alice-secret")).status, 403);
  EXPECT_EQ(srv.post("/v1/logs/archive", "", bearer("ops-secret")).status, 200);
  srv.stop();
  srv.remove_data();
}

// ---- the cairnd binary ------------------------------------------------------------

struct Cairnd {
  pid_t pid = -1;
  std::uint16_t port = 0;
};

// Starts cairnd on `dir`; `failpoint` sets CAIRN_FAILPOINT in its
// environment. port is 0 when it exited before printing its URL.
Cairnd spawn(const std::string& dir, const char* failpoint = nullptr) {
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  Cairnd c;
  c.pid = ::fork();
  if (c.pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    if (failpoint != nullptr) {
      ::setenv("CAIRN_FAILPOINT", failpoint, 1);
    } else {
      ::unsetenv("CAIRN_FAILPOINT");
    }
    ::execl(CAIRND_PATH, "cairnd", "--data", dir.c_str(), "--listen", "127.0.0.1:0", "--log-level",
            "warn", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char ch;
  while (::read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
  ::close(out[0]);
  const std::string prefix = "cairnd listening on http://127.0.0.1:";
  if (line.rfind(prefix, 0) == 0) {
    c.port = static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
  }
  return c;
}

int wait_exit(pid_t pid) {
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return status;
}

TEST(LogsProcess, AnAcknowledgedAppendSurvivesKillNine) {
  const std::string dir = make_temp_dir();
  Cairnd c = spawn(dir);
  ASSERT_NE(c.port, 0);
  auto r = http(c.port, "POST", "/v1/logs", R"({"source":"s","type":"t","payload":[1,2]})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::int64_t id = num(r.json(), "id");
  ASSERT_EQ(::kill(c.pid, SIGKILL), 0);
  const int st = wait_exit(c.pid);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  c = spawn(dir);
  ASSERT_NE(c.port, 0);
  auto recs = logs_of(http(c.port, "GET", "/v1/logs"));
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(num(recs[0], "id"), id);
  EXPECT_EQ(to_json(*recs[0].find("payload")), "[1,2]");
  // Ids are never reused.
  auto again = http(c.port, "POST", "/v1/logs", R"({"source":"s","type":"t"})");
  EXPECT_GT(num(again.json(), "id"), id);
  ASSERT_EQ(::kill(c.pid, SIGTERM), 0);
  const int st2 = wait_exit(c.pid);
  EXPECT_TRUE(WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
  std::filesystem::remove_all(dir);
}

// Archival crash test: records on five old days (older than the default 30
// days of retention) are put in logs.db before cairnd starts; cairnd starts
// archiving at once and the failpoint kills it after the first day's file is
// in place, before that day's delete. Restarted without the failpoint, it
// finishes: every day's file exists once, every record is in exactly one
// file (the first file rewritten byte for byte), none is left in logs.db.
TEST(LogsProcess, ArchivalKilledBetweenExportAndDeleteResumesWithoutLossOrDuplicates) {
  const std::string dir = make_temp_dir();
  const std::string archive = dir + "/archive/logs";
  const std::int64_t today = server::day_of(now_ms());
  const std::vector<std::int64_t> days = {today - 45, today - 44, today - 42, today - 40,
                                          today - 35};
  std::map<std::int64_t, std::int64_t> day_of_id;  // every old record
  std::int64_t recent_id = 0;
  {
    auto logs = server::LogRecords::open(dir + "/logs.db");
    ASSERT_TRUE(logs.ok()) << logs.status().to_string();
    for (std::int64_t d : days) {
      for (int i = 0; i < 30; ++i) {
        auto a = (*logs)->append_at_for_test(
            d * kDayMs + i * 1'000'000, "sense:s" + std::to_string(i % 3), "run.failed",
            "r" + std::to_string(i), Json(JsonObject{{"i", Json(i)}}));
        ASSERT_TRUE(a.ok());
        day_of_id[a->id] = d;
      }
    }
    auto a = (*logs)->append("sense:s0", "recent", "", Json());
    ASSERT_TRUE(a.ok());
    recent_id = a->id;
  }

  Cairnd c = spawn(dir, "archive_after_export");
  // Archival runs at start: the process dies by SIGKILL (whether or not it
  // printed its URL first).
  const int st = wait_exit(c.pid);
  ASSERT_TRUE(WIFSIGNALED(st)) << "status " << st;
  EXPECT_EQ(WTERMSIG(st), SIGKILL);
  const std::string first = archive + "/" + day_name(days[0]) + ".jsonl";
  ASSERT_TRUE(std::filesystem::exists(first));
  const std::string first_bytes = read_all(first);
  EXPECT_FALSE(std::filesystem::exists(archive + "/" + day_name(days[1]) + ".jsonl"));
  {
    // Nothing was deleted yet: the first day is in the file and still in the database.
    auto logs = server::LogRecords::open(dir + "/logs.db");
    ASSERT_TRUE(logs.ok());
    auto page = (*logs)->list(0, "", 1'000);
    ASSERT_TRUE(page.ok());
    EXPECT_EQ(page->records.size(), day_of_id.size() + 1);
    auto w = (*logs)->watermark();
    ASSERT_TRUE(w.ok());
    EXPECT_FALSE(w->has_value());
  }

  c = spawn(dir);
  ASSERT_NE(c.port, 0);
  // Archival at start runs on the archiver thread; this request queues behind it.
  auto r = http(c.port, "POST", "/v1/logs/archive", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(str(r.json(), "watermark"), day_name(today - 31));
  auto left = logs_of(http(c.port, "GET", "/v1/logs"));
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(num(left[0], "id"), recent_id);
  const std::string metrics = http(c.port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("cairn_log_archived_days_total 5\n"), std::string::npos) << metrics;
  ASSERT_EQ(::kill(c.pid, SIGTERM), 0);
  wait_exit(c.pid);

  EXPECT_EQ(read_all(first), first_bytes);
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(archive)) {
    files.insert(e.path().filename().string());
  }
  std::set<std::string> want;
  for (std::int64_t d : days) want.insert(day_name(d) + ".jsonl");
  EXPECT_EQ(files, want);  // no .tmp left behind, no extra day
  std::map<std::int64_t, int> seen;
  for (std::int64_t d : days) {
    const std::string text = read_all(archive + "/" + day_name(d) + ".jsonl");
    std::size_t at = 0;
    std::int64_t prev = 0;
    while (at < text.size()) {
      const std::size_t nl = text.find('\n', at);
      ASSERT_NE(nl, std::string::npos);
      auto rec = parse_json(std::string_view(text).substr(at, nl - at));
      ASSERT_TRUE(rec.ok()) << text.substr(at, nl - at);
      const std::int64_t id = num(*rec, "id");
      ++seen[id];
      EXPECT_GT(id, prev);  // id order
      prev = id;
      EXPECT_EQ(server::day_of(num(*rec, "ts")), d);
      EXPECT_EQ(day_of_id[id], d);
      at = nl + 1;
    }
  }
  EXPECT_EQ(seen.size(), day_of_id.size());
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << "record " << id;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::testing

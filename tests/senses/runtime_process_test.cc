// runtime_process_test.cc — the observation runtime inside the real cairnd
// binary (senses:, workflows:, reflexes: in cairn.yaml; real child
// processes; SQLite in a temp directory; real sockets): a reflex chain from a
// sense's signal to a concluded workflow intent whose provenance verifies;
// overlapping triggers coalesce; workflow overflow (drop, queue); failures
// become log records, never signals; peers' databases are read-only;
// migrations apply once across restarts; SIGHUP reloads the runtime; and the
// same runtime beside cairnd (`cairn senses run`).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "crash/cairnd_process.h"
#include "senses/sqlite_read.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

// Runs a command, returns (exit status, stdout).
std::pair<int, std::string> run_cmd(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

class Observe : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override {
    if (proc_ && proc_->running()) {
      EXPECT_EQ(proc_->terminate(30'000), "");
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Writes cairn.yaml and a script file next to it; `{dir}` in the yaml is
  // replaced by the temp directory.
  void config(std::string yaml) {
    for (auto at = yaml.find("{dir}"); at != std::string::npos; at = yaml.find("{dir}")) {
      yaml.replace(at, 5, dir_);
    }
    write_file(dir_ + "/cairn.yaml", yaml);
  }
  void script(const std::string& name, const std::string& text) {
    write_file(dir_ + "/" + name, text);
  }
  void slow_sense(const std::string& seconds);
  void start(std::vector<std::string> extra_env = {}) {
    proc_ = std::make_unique<CairndProcess>(
        CAIRND_PATH, dir_ + "/data", dir_ + "/cairnd.log",
        std::vector<std::string>{"--config", dir_ + "/cairn.yaml", "--log-level", "info"},
        std::move(extra_env));
    const std::string err = proc_->start();
    ASSERT_EQ(err, "") << err << "\n" << read_all(dir_ + "/cairnd.log");
    port_ = proc_->port();
  }
  void restart() {
    ASSERT_EQ(proc_->terminate(30'000), "");
    start();
  }

  HttpResult post(const std::string& path, const std::string& body) {
    return http(port_, "POST", path, body, {{"Content-Type", "application/json"}});
  }
  HttpResult get(const std::string& path) { return http(port_, "GET", path); }
  std::string fact(const std::string& kind, const std::string& content,
                   const std::string& extra = "") {
    const HttpResult f = post("/v1/facts", R"({"kind":")" + kind + R"(","content":)" + content +
                                               R"(,"creator":"tester")" + extra + "}");
    EXPECT_TRUE(f.status == 201 || f.status == 200) << f.body;
    return str(f.json(), "id");
  }
  std::vector<Json> facts_of(const std::string& kind) {
    const Json j = get("/v1/facts?kind=" + kind + "&limit=1000").json();
    std::vector<Json> out;
    if (const Json* a = j.find("facts"); a != nullptr && a->is_array()) out = a->as_array();
    return out;
  }
  std::vector<Json> runs(const std::string& workflow) {
    const Json j = get("/v1/workflows/runs?workflow=" + workflow).json();
    std::vector<Json> out;
    if (const Json* a = j.find("runs"); a != nullptr && a->is_array()) out = a->as_array();
    std::reverse(out.begin(), out.end());  // oldest first
    return out;
  }
  // Run statuses oldest first, e.g. "started,dropped".
  std::string run_statuses(const std::string& workflow) {
    std::string s;
    for (const Json& r : runs(workflow)) s += (s.empty() ? "" : ",") + str(r, "status");
    return s;
  }
  Json sense(const std::string& name) {
    const Json j = get("/v1/senses").json();
    if (const Json* a = j.find("senses"); a != nullptr && a->is_array()) {
      for (const Json& s : a->as_array()) {
        if (str(s, "name") == name) return s;
      }
    }
    return Json();
  }
  std::vector<Json> logs(const std::string& source) {
    const Json j = get("/v1/logs?source=" + source + "&limit=1000").json();
    std::vector<Json> out;
    if (const Json* a = j.find("logs"); a != nullptr && a->is_array()) out = a->as_array();
    return out;
  }
  std::string sense_db(const std::string& name) { return dir_ + "/data/senses/" + name + ".db"; }

  // Claims intent `id` as agent `a` and concludes it with a result fact
  // derived from `from`; returns the result fact's id.
  std::string work(const std::string& id, const std::string& from) {
    const HttpResult c =
        post("/v1/intents/" + id + "/claim", R"({"agent":"cleaner","lease_ttl_ms":60000})");
    EXPECT_EQ(c.status, 200) << c.body;
    const std::int64_t epoch = num(c.json(), "epoch");
    const HttpResult d = post(
        "/v1/intents/" + id + "/conclude",
        R"({"agent":"cleaner","epoch":)" + std::to_string(epoch) +
            R"(,"result":{"kind":"cleanup.done","content":{"freed_mb":512},"derived_from":[")" +
            from + R"("]}})");
    EXPECT_EQ(d.status, 200) << d.body;
    return str(d.json(), "result");
  }

  std::string dir_;
  std::unique_ptr<CairndProcess> proc_;
  std::uint16_t port_ = 0;
};

constexpr const char* kDiskSense = R"PY(import json, sys
inp = json.load(sys.stdin)
state = inp["state"] or {"n": 0}
n = state["n"] + 1
print(json.dumps({"signal": {"used_pct": 95, "n": n}, "state": {"n": n}}))
)PY";

TEST_F(Observe, ReflexChainFromASignalToAConcludedWorkflowWhoseProvenanceVerifies) {
  script("disk.py", kDiskSense);
  config(R"(
senses:
  disk:
    command: ["python3", "{dir}/disk.py"]
    on: [disk.check]
workflows:
  cleanup:
    kind: disk.cleanup
    lane: maintenance
    spec: {path: /var/tmp}
    priority: 5
reflexes:
  - name: disk-full
    on: signal.disk
    match: [{path: "$.used_pct", op: gt, value: 90}]
    start: cleanup
)");
  start();
  const std::string check = fact("disk.check", "{\"host\":\"a\"}");
  ASSERT_TRUE(eventually([&] { return run_statuses("cleanup") == "started"; }))
      << run_statuses("cleanup") << read_all(dir_ + "/cairnd.log");

  // The signal: kind signal.disk, the sense's output, derived from the trigger.
  const std::vector<Json> signals = facts_of("signal.disk");
  ASSERT_EQ(signals.size(), 1u);
  const std::string sig1 = str(signals[0], "id");
  const Json content1 = *signals[0].find("content");
  EXPECT_EQ(to_json(content1), R"({"n":1,"used_pct":95})");
  EXPECT_EQ(to_json(*signals[0].find("derived_from")), "[\"" + check + "\"]");

  // The run's intent is the workflow's template, grounded in the signal.
  const Json run = runs("cleanup")[0];
  EXPECT_EQ(str(run, "trigger_fact"), sig1);
  EXPECT_EQ(str(run, "reflex"), "disk-full");
  const Json intent = get("/v1/intents/" + str(run, "intent")).json();
  EXPECT_EQ(str(intent, "kind"), "disk.cleanup");
  EXPECT_EQ(str(intent, "lane"), "maintenance");
  EXPECT_EQ(num(intent, "priority"), 5);
  EXPECT_EQ(to_json(*intent.find("spec")), R"({"path":"/var/tmp"})");
  EXPECT_EQ(to_json(*intent.find("from_facts")), "[\"" + sig1 + "\"]");

  // An agent does the work; the run completes.
  const std::string result = work(str(run, "intent"), sig1);
  ASSERT_TRUE(eventually([&] { return run_statuses("cleanup") == "completed"; }))
      << run_statuses("cleanup");

  // The provenance from the result back to the signal (and its trigger) verifies.
  const auto [rc, out] =
      run_cmd(std::string(CAIRN_CLI_PATH) + " --url http://127.0.0.1:" + std::to_string(port_) +
              " --json verify " + result);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(sig1), std::string::npos) << out;
  EXPECT_NE(out.find(check), std::string::npos) << out;

  // The next signal chains to the previous one and carries the state on.
  const std::string check2 = fact("disk.check", "{\"host\":\"b\"}");
  ASSERT_TRUE(eventually([&] { return facts_of("signal.disk").size() == 2; }));
  std::string sig2;
  for (const Json& f : facts_of("signal.disk")) {
    if (str(f, "id") != sig1) sig2 = str(f, "id");
  }
  const Json f2 = get("/v1/facts/" + sig2).json();
  EXPECT_EQ(to_json(*f2.find("content")), R"({"n":2,"used_pct":95})");
  EXPECT_EQ(to_json(*f2.find("derived_from")), "[\"" + sig1 + "\",\"" + check2 + "\"]");
  ASSERT_TRUE(eventually([&] { return run_statuses("cleanup") == "completed,started"; }))
      << run_statuses("cleanup");
  const Json s = sense("disk");
  EXPECT_EQ(str(s, "health"), "ok");
  EXPECT_EQ(str(s, "last_signal"), sig2);
}

// slow.py: records the trigger it serves (the fact's content.i) in its own
// database, then sleeps `seconds` and prints null.
void Observe::slow_sense(const std::string& seconds) {
  script("slow.py", R"PY(import json, sqlite3, os, sys, time
inp = json.load(sys.stdin)
db = sqlite3.connect(os.environ["CAIRN_SENSE_DB"])
db.execute("CREATE TABLE IF NOT EXISTS runs(fact TEXT)")
db.execute("INSERT INTO runs VALUES(?)", (inp["trigger"]["fact"]["content"]["i"],))
db.commit()
time.sleep()PY" + seconds +
                        R"PY()
print("null")
)PY");
}

TEST_F(Observe, TriggersDuringARunCoalesceIntoOneMoreRun) {
  // Each run records the trigger it served in the sense's own database.
  slow_sense("0.8");
  config(R"(
senses:
  slow:
    command: ["python3", "{dir}/slow.py"]
    on: [tick]
)");
  start();
  fact("tick", R"({"i":"first"})");
  ASSERT_TRUE(eventually(
      [&] { return sql_column(sense_db("slow"), "SELECT fact FROM runs").size() == 1; }));
  for (int i = 0; i < 5; ++i) fact("tick", "{\"i\":\"" + std::to_string(i) + "\"}");
  ASSERT_TRUE(eventually([&] {
    const Json s = sense("slow");
    return num(s, "runs") == 2 && s.find("running") != nullptr && !s.find("running")->as_bool();
  })) << to_json(sense("slow"));
  EXPECT_EQ(sql_column(sense_db("slow"), "SELECT fact FROM runs"),
            (std::vector<std::string>{"first", "4"}))
      << "the five triggers during the first run became one run serving the newest";
  EXPECT_EQ(num(sense("slow"), "coalesced"), 4);
  EXPECT_TRUE(facts_of("signal.slow").empty()) << "null output posts nothing";
}

TEST_F(Observe, ATriggerPendingAtShutdownRunsAfterTheRestart) {
  slow_sense("30");
  config(R"(
senses:
  slow:
    command: ["python3", "{dir}/slow.py"]
    on: [tick]
    grace_period: 1s
)");
  start();
  fact("tick", R"({"i":"first"})");
  ASSERT_TRUE(eventually(
      [&] { return sql_column(sense_db("slow"), "SELECT fact FROM runs").size() == 1; }));
  fact("tick", R"({"i":"second"})");
  // The second trigger waits for the running first one; stop cairnd now
  // (the run is ended like a timeout) and start it again.
  ASSERT_TRUE(eventually([&] {
    return !sql_column(dir_ + "/data/senses/runtime.db",
                       "SELECT pending_trigger FROM senses WHERE name = 'slow' AND "
                       "pending_trigger IS NOT NULL")
                .empty();
  })) << "the pending trigger is on disk";
  restart();
  ASSERT_TRUE(eventually([&] {
    return sql_column(sense_db("slow"), "SELECT fact FROM runs").size() == 2;
  })) << read_all(dir_ + "/cairnd.log");
  EXPECT_EQ(sql_column(sense_db("slow"), "SELECT fact FROM runs"),
            (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE(logs("sense.slow").empty()) << "a run ended by shutdown is not a failure";
}

// True when `pid` no longer runs (gone, or a zombie nobody reaped yet).
bool process_gone(const std::string& pid) {
  const std::string stat = read_all("/proc/" + pid + "/stat");
  if (stat.empty()) return true;
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

TEST_F(Observe, NothingASenseStartedOutlivesAKilledCairnd) {
  // The sense forks a grandchild, and both record their pids and sleep.
  config(R"(
senses:
  stuck:
    command: "sleep 60 & echo $! > grandchild.pid; echo $$ > leader.pid; sleep 60"
    on: [go]
    timeout: 1h
)");
  start();
  fact("go", "{}");
  ASSERT_TRUE(eventually([&] {
    return !read_all(dir_ + "/leader.pid").empty() && !read_all(dir_ + "/grandchild.pid").empty();
  }));
  auto pid_in = [&](const std::string& f) {
    std::string p = read_all(dir_ + "/" + f);
    while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.pop_back();
    return p;
  };
  const std::string leader = pid_in("leader.pid");
  const std::string grandchild = pid_in("grandchild.pid");
  ASSERT_FALSE(process_gone(leader));
  ASSERT_FALSE(process_gone(grandchild));
  ASSERT_EQ(proc_->kill9(), "");
  EXPECT_TRUE(eventually([&] { return process_gone(leader); }))
      << "the sense dies with the cairnd that ran it";
  // What it forked may still run now; the next start sweeps it.
  start();
  EXPECT_TRUE(eventually([&] { return process_gone(grandchild); }))
      << "the next start kills what a killed run left behind";
}

TEST_F(Observe, WorkflowOverflowDropRefusesRunsBeyondConcurrency) {
  config(R"(
workflows:
  deploy:
    kind: deploy
    concurrency: 1
    overflow: drop
reflexes:
  - on: deploy.request
    start: deploy
)");
  start();
  fact("deploy.request", R"({"v":1})");
  ASSERT_TRUE(eventually([&] { return run_statuses("deploy") == "started"; }));
  fact("deploy.request", R"({"v":2})");
  fact("deploy.request", R"({"v":3})");
  ASSERT_TRUE(eventually([&] { return run_statuses("deploy") == "started,dropped,dropped"; }))
      << run_statuses("deploy");
  EXPECT_NE(
      get("/metrics").body.find("cairn_workflow_runs{workflow=\"deploy\",status=\"dropped\"} 2"),
      std::string::npos)
      << get("/metrics").body;
  // Each drop is a log record (posted right after the run's status is saved).
  EXPECT_TRUE(eventually([&] { return logs("workflow.deploy").size() == 2; }))
      << logs("workflow.deploy").size();
  // Once the active run ends, a new request starts again.
  const Json first = runs("deploy")[0];
  const HttpResult c =
      post("/v1/intents/" + str(first, "intent") + "/cancel", R"({"creator":"senses"})");
  EXPECT_EQ(c.status, 200) << c.body;
  ASSERT_TRUE(eventually([&] { return str(runs("deploy")[0], "status") == "interrupted"; }))
      << run_statuses("deploy");
  fact("deploy.request", R"({"v":4})");
  ASSERT_TRUE(eventually([&] {
    return run_statuses("deploy") == "interrupted,dropped,dropped,started";
  })) << run_statuses("deploy");
}

TEST_F(Observe, WorkflowOverflowQueueHoldsRunsAndDropsTheOldestWhenFull) {
  config(R"(
workflows:
  build:
    kind: build
    concurrency: 1
    overflow: queue
    max_queue: 2
reflexes:
  - on: build.request
    start: build
)");
  start();
  fact("build.request", R"({"v":1})");
  ASSERT_TRUE(eventually([&] { return run_statuses("build") == "started"; }));
  for (int v = 2; v <= 4; ++v) {
    fact("build.request", "{\"v\":" + std::to_string(v) + "}");
    ASSERT_TRUE(eventually([&] { return runs("build").size() == static_cast<std::size_t>(v); }));
  }
  EXPECT_EQ(run_statuses("build"), "started,dropped,queued,queued")
      << "the queue holds 2: the oldest waiting run made room for the newest";
  // The active run completes: the oldest queued run starts.
  const std::vector<Json> r = runs("build");
  work(str(r[0], "intent"), str(r[0], "trigger_fact"));
  ASSERT_TRUE(eventually([&] {
    return run_statuses("build") == "completed,dropped,started,queued";
  })) << run_statuses("build");
  // The runs survive a restart, and the queue keeps moving after it.
  restart();
  EXPECT_EQ(run_statuses("build"), "completed,dropped,started,queued");
  const std::vector<Json> r2 = runs("build");
  work(str(r2[2], "intent"), str(r2[2], "trigger_fact"));
  ASSERT_TRUE(eventually([&] {
    return run_statuses("build") == "completed,dropped,completed,started";
  })) << run_statuses("build");
}

TEST_F(Observe, FailuresBecomeLogRecordsNeverSignalsAndTheSenseShowsFailing) {
  config(R"(
senses:
  exits:
    command: "echo partial; echo oops >&2; printf '\\377\\n' >&2; exit 3"
    on: [poke]
  garbage:
    command: "echo '{not json'"
    on: [poke]
  missing:
    command: ["/nonexistent/sense-binary"]
    on: [poke]
  nothing:
    command: "true"
    on: [poke]
  hangs:
    command: "trap '' TERM; sleep 30"
    on: [poke]
    timeout: 300ms
    grace_period: 200ms
  floods:
    command: "head -c 10485760 /dev/zero | tr '\\0' x"
    on: [poke]
)");
  start();
  fact("poke", "{}");
  const std::map<std::string, std::string> expected = {
      {"exits", "exit_status"},      {"garbage", "invalid_output"}, {"missing", "spawn_failed"},
      {"nothing", "invalid_output"}, {"hangs", "timeout"},          {"floods", "output_too_large"}};
  for (const auto& [name, reason] : expected) {
    ASSERT_TRUE(eventually([&] { return !logs("sense." + name).empty(); }))
        << name << read_all(dir_ + "/cairnd.log");
    const Json rec = logs("sense." + name)[0];
    EXPECT_EQ(str(rec, "type"), "sense.failed") << name;
    EXPECT_EQ(str(*rec.find("payload"), "reason"), reason) << to_json(rec);
    const Json s = sense(name);
    EXPECT_EQ(str(s, "health"), "failing") << to_json(s);
    EXPECT_EQ(num(s, "failures"), 1);
    EXPECT_NE(str(s, "last_error").find(reason), std::string::npos) << to_json(s);
    EXPECT_GT(num(s, "last_run_at"), 0);
    EXPECT_TRUE(facts_of("signal." + name).empty()) << name << ": a failure is never a signal";
  }
  EXPECT_TRUE(logs("sense.hangs")[0].find("payload")->find("killed_after_grace")->as_bool())
      << "it ignored SIGTERM: SIGKILL after the grace period";
  const std::string metrics = get("/metrics").body;
  EXPECT_NE(metrics.find("cairn_sense_failures{sense=\"exits\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("cairn_sense_running{sense=\"exits\"} 0"), std::string::npos) << metrics;
  // The status survives a restart (the sense runs only on triggers, so
  // nothing has run since).
  restart();
  EXPECT_EQ(str(sense("exits"), "health"), "failing");
  EXPECT_EQ(num(sense("exits"), "failures"), 1);
  EXPECT_NE(str(sense("exits"), "last_error").find("exit_status"), std::string::npos);
  const Json exits = logs("sense.exits")[0];
  EXPECT_EQ(num(*exits.find("payload"), "exit_code"), 3);
  EXPECT_EQ(str(*exits.find("payload"), "stderr"), "oops\n\xEF\xBF\xBD\n")
      << "stderr that is not UTF-8 is quoted with U+FFFD, not dropped";
  // The CLI shows the same.
  const auto [rc, out] =
      run_cmd(std::string(CAIRN_CLI_PATH) + " --url http://127.0.0.1:" + std::to_string(port_) +
              " senses status");
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("failing"), std::string::npos) << out;
  EXPECT_NE(out.find("exit_status"), std::string::npos) << out;
}

TEST_F(Observe, APeersDatabaseIsReadOnlyAndItsOwnIsNotAmongItsPeers) {
  std::filesystem::create_directories(dir_ + "/owner-migrations");
  write_file(dir_ + "/owner-migrations/001_init.sql",
             "CREATE TABLE usage(pct INTEGER); INSERT INTO usage VALUES (42);");
  script("reader.py", R"PY(import json, os, sqlite3, sys
json.load(sys.stdin)
peers = dict(p.split("=", 1) for p in os.environ["CAIRN_PEER_DBS"].split(";") if p)
out = {"peers": sorted(peers)}
db = sqlite3.connect(peers["owner"], uri=True)
out["read"] = db.execute("SELECT pct FROM usage").fetchone()[0]
try:
    db.execute("INSERT INTO usage VALUES (1)")
    db.commit()
    out["write"] = "succeeded"
except sqlite3.Error as e:
    out["write"] = str(e)
print(json.dumps(out))
)PY");
  config(R"(
senses:
  owner:
    command: "echo null"
    migrations: owner-migrations
    on: [go]
    group: disk
  reader:
    command: ["python3", "{dir}/reader.py"]
    on: [go2]
    group: disk
  other:
    command: "echo null"
    on: [go]
    group: elsewhere
)");
  start();
  fact("go", "{}");
  ASSERT_TRUE(eventually([&] { return str(sense("owner"), "health") == "ok"; }));
  fact("go2", "{}");
  ASSERT_TRUE(eventually([&] { return facts_of("signal.reader").size() == 1; }))
      << to_json(sense("reader"));
  const Json c = *facts_of("signal.reader")[0].find("content");
  EXPECT_EQ(to_json(*c.find("peers")), R"(["owner"])")
      << "peers are the other senses of its group, never itself";
  EXPECT_EQ(num(c, "read"), 42);
  EXPECT_NE(str(c, "write").find("readonly"), std::string::npos) << to_json(c);
  EXPECT_EQ(sql_column(sense_db("owner"), "SELECT count(*) FROM usage"),
            std::vector<std::string>{"1"});
}

TEST_F(Observe, MigrationsApplyOnceAcrossRestarts) {
  std::filesystem::create_directories(dir_ + "/m");
  write_file(dir_ + "/m/001.sql", "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  config(R"(
senses:
  counter:
    command: "echo null"
    migrations: m
    interval: 1h
)");
  // A run of this start finished well (health alone carries over a restart).
  const auto ran_ok = [&] {
    const Json s = sense("counter");
    return num(s, "runs") >= 1 && str(s, "health") == "ok" && s.find("running") != nullptr &&
           !s.find("running")->as_bool();
  };
  start();
  ASSERT_TRUE(eventually(ran_ok));
  restart();
  ASSERT_TRUE(eventually(ran_ok));
  write_file(dir_ + "/m/002.sql", "INSERT INTO t VALUES (2);");
  restart();
  ASSERT_TRUE(eventually(ran_ok));
  restart();
  ASSERT_TRUE(eventually(ran_ok));
  EXPECT_EQ(sql_column(sense_db("counter"), "SELECT x FROM t ORDER BY x"),
            (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(sql_column(sense_db("counter"), "SELECT name FROM _migrations ORDER BY name"),
            (std::vector<std::string>{"001.sql", "002.sql"}));
  EXPECT_EQ(logs("sense.counter").size(), 2u) << "one sense.migrated record per applied batch";
}

TEST_F(Observe, SighupReloadsTheRuntimeAndRefusesABadFile) {
  config(R"(
senses:
  one:
    command: "echo 1"
    on: [go]
)");
  start();
  ASSERT_FALSE(sense("one").is_null());
  // The same senses (moved down a line by a comment): the runtime is left
  // running, not restarted.
  config(R"(
# a comment
senses:
  one:
    command: "echo 1"
    on: [go]
)");
  ASSERT_EQ(::kill(proc_->pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] {
    return read_all(dir_ + "/cairnd.log").find("senses reload: unchanged") != std::string::npos;
  }));
  EXPECT_EQ(read_all(dir_ + "/cairnd.log").find("\"senses reloaded\""), std::string::npos);
  config(R"(
senses:
  one:
    command: "echo 1"
    on: [go]
  two:
    command: "echo 2"
    on: [go]
)");
  ASSERT_EQ(::kill(proc_->pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return !sense("two").is_null(); }));
  fact("go", "{}");
  ASSERT_TRUE(eventually([&] { return facts_of("signal.two").size() == 1; }));
  config("senses:\n  broken:\n    command: \"echo 1\"\n    interval: 5 seconds\n");
  ASSERT_EQ(::kill(proc_->pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] {
    return read_all(dir_ + "/cairnd.log").find("reload") != std::string::npos &&
           read_all(dir_ + "/cairnd.log").find("cairn.yaml:4") != std::string::npos;
  })) << read_all(dir_ + "/cairnd.log");
  EXPECT_TRUE(sense("broken").is_null());
  EXPECT_FALSE(sense("two").is_null()) << "the running configuration stays";
}

TEST_F(Observe, TheSameRuntimeRunsBesideARemoteCairnd) {
  script("disk.py", kDiskSense);
  // cairnd itself runs no senses; `cairn senses run` does, against its URL.
  config("log_level: info\n");
  start();
  write_file(dir_ + "/senses.yaml", R"(
senses:
  disk:
    command: ["python3", ")" + dir_ + R"(/disk.py"]
    on: [disk.check]
workflows:
  cleanup: {kind: disk.cleanup}
reflexes:
  - {on: signal.disk, start: cleanup}
)");
  EXPECT_EQ(get("/v1/senses").status, 404);
  EXPECT_EQ(get("/v1/senses").code(), "no_runtime");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string url = "http://127.0.0.1:" + std::to_string(port_);
    const std::string cfg = dir_ + "/senses.yaml";
    const std::string data = dir_ + "/runtime";
    ::execl(CAIRN_CLI_PATH, "cairn", "--url", url.c_str(), "senses", "run", "--config", cfg.c_str(),
            "--data", data.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::string check = fact("disk.check", "{}");
  // The first fact may land before the runtime's watch opens; keep poking
  // until a signal appears.
  ASSERT_TRUE(eventually(
      [&] {
        if (!facts_of("signal.disk").empty()) return true;
        fact("disk.check", "{\"again\":" + std::to_string(std::rand()) + "}");
        return false;
      },
      15'000, 300));
  ASSERT_TRUE(eventually([&] {
    const auto [rc, out] =
        run_cmd(std::string(CAIRN_CLI_PATH) + " --json workflows runs --data " + dir_ + "/runtime");
    return rc == 0 && out.find("\"status\":\"started\"") != std::string::npos;
  }));
  const auto [rc, out] =
      run_cmd(std::string(CAIRN_CLI_PATH) + " senses status --data " + dir_ + "/runtime");
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("disk"), std::string::npos) << out;
  EXPECT_NE(out.find("ok"), std::string::npos) << out;
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(Observe, TheExampleFromTheTourMeasuresTheDiskAndStartsACleanup) {
  // examples/senses as the README's tour uses it, from a copy.
  std::filesystem::copy(
      std::string(CAIRN_SOURCE_DIR) + "/examples/senses", dir_,
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  start();
  // The interval run at start measures "/" against the default threshold.
  ASSERT_TRUE(eventually([&] { return str(sense("disk"), "health") == "ok"; }))
      << to_json(sense("disk")) << read_all(dir_ + "/cairnd.log");
  const std::string check = fact("disk.check", R"({"path":"/","threshold_pct":0})");
  ASSERT_TRUE(eventually([&] { return run_statuses("cleanup") == "started"; }))
      << run_statuses("cleanup") << to_json(sense("disk"));
  const Json run = runs("cleanup")[0];
  const Json signal = get("/v1/facts/" + str(run, "trigger_fact")).json();
  EXPECT_EQ(str(signal, "kind"), "signal.disk");
  EXPECT_EQ(str(*signal.find("content"), "level"), "full");
  EXPECT_EQ(str(*signal.find("content"), "path"), "/");
  const Json from = *signal.find("derived_from");
  ASSERT_EQ(from.size(), 2u) << to_json(from) << ": the previous signal and the check";
  EXPECT_EQ(from.as_array()[1].as_string(), check);
  const std::string result = work(str(run, "intent"), str(run, "trigger_fact"));
  ASSERT_TRUE(eventually([&] { return run_statuses("cleanup") == "completed"; }));
  const auto [rc, out] =
      run_cmd(std::string(CAIRN_CLI_PATH) + " --url http://127.0.0.1:" + std::to_string(port_) +
              " verify " + result);
  EXPECT_EQ(rc, 0) << out;
  const auto samples = sql_column(sense_db("disk"), "SELECT count(*) FROM samples");
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_GE(std::stoi(samples[0]), 2) << "every measurement is kept in the sense's database";
}

}  // namespace
}  // namespace cairn::testing

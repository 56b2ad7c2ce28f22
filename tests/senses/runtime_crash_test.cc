// runtime_crash_test.cc — crash safety of the observation runtime: the
// process that runs it is killed with SIGKILL at random moments, restarted on
// the same data directory, and what it left behind is checked.
//
// The workload (real processes, real SQLite files, real sockets):
//   - a sense `counter` on `interval: 50ms` (/bin/sh) that reads its state
//     {"n": N} and prints {"signal": {"n": N+1}, "state": {"n": N+1}}, so its
//     signals must be n = 1, 2, 3, ... with no gap and no repeat;
//   - a reflex `work` on signal.counter starting workflow `w` (concurrency
//     1000: every run starts at once) and a reflex `dropper` starting workflow
//     `wd` (concurrency 1, overflow: drop);
//   - an agent thread that claims and concludes the intents of both.
// Three ways to be killed (SIGKILL, then a restart on the same data directory):
//   - InsideCairnd: cairnd runs the runtime (senses: in its cairn.yaml) and is
//     killed (a new port each start);
//   - BesideCairnd: `cairn senses run --url ...` runs it and is killed while
//     cairnd stays up;
//   - CairndKilledUnderARuntimeBesideIt: `cairn senses run` stays up and cairnd
//     is killed under it (cairnd comes back on the same port); at the end the
//     runtime reloads its file on SIGHUP.
// After the cycles, the runtime restarts once more with `counter` on `on:` only
// (no interval: nothing new is signalled), the system settles, and the test
// checks:
//   A. the signal facts of `counter` are n = 1..M, each exactly once; signal 1
//      derives from nothing, signal n > 1 from exactly signal n-1 (a linear
//      chain: no fork, no gap); the sense's saved state is {"n": M}, nothing is
//      left pending, and its last_signal is signal M.
//      Why a crash cannot break this: a run that produced a signal commits
//      {state n+1, pending signal} in ONE transaction of runtime.db before it
//      posts the signal. A kill before that commit loses the run entirely (the
//      state is still n, the next run produces n+1 again); a kill between the
//      commit and the post leaves the pending signal, which the restarted
//      runtime posts before anything else of that sense (no gap); a kill between
//      the post and "pending cleared" makes the runtime post the same body again
//      — kind, content, derived_from and creator are the fact's id (content
//      addressing), so cairnd answers 200 with the existing fact (no duplicate).
//      The last kill is made to land while a signal is pending when it can, and
//      the settling phase never runs the sense, so the pending signal must be
//      posted on its own.
//   B. every signal has exactly one run of `w` (trigger_fact unique, covering
//      every signal) and it is completed: its intent exists, is concluded, is
//      of the workflow's kind and grounded in exactly its signal; no two runs
//      (of either workflow) share an intent; every intent of the workflows'
//      kinds belongs to a run; nothing is left queued.
//   C. every signal has exactly one run of `wd`, completed (as in B) or dropped
//      (no intent exists for it); each run.dropped log record names a dropped
//      run, none twice; a drop without its log record is possible only when a
//      kill fell between committing the drop and appending the record (log
//      appends are never retried), so there are at most as many of those as
//      kills.
//
// Environment knobs:
//   CAIRN_RUNTIME_CRASH_CYCLES          kill cycles per test (default 12)
//   CAIRN_RUNTIME_CRASH_SEED            the seed (default random; always printed)
//   CAIRN_RUNTIME_CRASH_CYCLES_PER_DIR  cycles on one data directory before the
//                                       checks and a fresh one (default 20; keeps
//                                       the runs of one directory under 1000, the
//                                       largest page of the runs listing)
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crash/cairnd_process.h"
#include "senses/runtime.h"
#include "senses/sqlite_read.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

// ---- bounds of the workload ---------------------------------------------------------

constexpr int kRunMsMin = 100;            // a cycle lets the host run at least this long ...
constexpr int kRunMsMax = 1'500;          // ... and at most this long before the SIGKILL
constexpr int kPendingHuntKillsMax = 30;  // extra short cycles looking for a pending signal
constexpr int kPendingHuntRunMsMax = 400;
constexpr int kSettleMsMax = 60'000;  // the final phase settles within this
constexpr std::size_t kRunsListedMax = 1'000;
constexpr std::size_t kViolationsShownMax = 30;
constexpr const char* kWorkKind = "crash.work";
constexpr const char* kDropKind = "crash.drop";
constexpr const char* kAgent = "crash-agent";

using Violations = std::vector<std::string>;

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// The sense: state {"n": N} (null the first time) in, {"n": N+1} out as both
// the signal and the new state. The runtime's stdin is compact JSON, so
// `"state":{"n":N}` appears exactly like this (a "last_signal" value has no
// "state" key).
constexpr const char* kCounterSh = R"SH(#!/bin/sh
n=$(sed -n 's/.*"state":{"n":\([0-9]*\)}.*/\1/p')
n=$(( ${n:-0} + 1 ))
printf '{"signal":{"n":%d},"state":{"n":%d}}\n' "$n" "$n"
)SH";

std::string observe_yaml(const std::string& dir, bool interval) {
  return std::string("senses:\n  counter:\n    command: [\"/bin/sh\", \"") + dir +
         "/counter.sh\"]\n" + (interval ? "    interval: 50ms\n" : "    on: [counter.poke]\n") +
         "workflows:\n"
         "  w: {kind: " +
         kWorkKind +
         ", concurrency: 1000, overflow: queue, max_queue: 100000}\n"
         "  wd: {kind: " +
         kDropKind +
         ", concurrency: 1, overflow: drop}\n"
         "reflexes:\n"
         "  - {name: work, on: signal.counter, start: w}\n"
         "  - {name: dropper, on: signal.counter, start: wd}\n";
}

std::int64_t count_of(const std::string& path, const std::string& sql) {
  const auto row = sql_row(path, sql);
  return row.empty() || !row[0] ? 0 : std::stoll(*row[0]);
}

std::vector<Json> array_of(const Json& j, std::string_view key) {
  const Json* a = j.find(key);
  return a != nullptr && a->is_array() ? a->as_array() : std::vector<Json>{};
}

// What the kills hit (read from runtime.db while nothing runs).
struct KillStats {
  int kills = 0;
  int pending_signal = 0;  // a signal saved but not acknowledged
  int runs_new = 0;        // a run row inserted, its status not yet decided
  int runs_starting = 0;   // a run started whose intent was not yet created
};

// ---- the agent ----------------------------------------------------------------------

// Claims and concludes the workflows' intents until stopped; survives cairnd
// going away and coming back on another port. An intent it claimed whose
// conclude was lost in a kill is found again among the claimed intents it holds.
class Agent {
 public:
  explicit Agent(std::atomic<std::uint16_t>& port) : port_(port) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Agent() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t concluded() const { return concluded_; }

 private:
  void loop() {
    int round = 0;
    while (!stop_) {
      const std::uint16_t port = port_;
      if (port == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      if (++round % 5 == 0) {
        conclude_held(port);
        work_open_drops(port);
      }
      const HttpResult r =
          http(port, "POST", "/v1/claims",
               R"({"agent":")" + std::string(kAgent) + R"(","kinds":[")" + kWorkKind +
                   R"("],"max":32,"wait_ms":200,"lease_ttl_ms":600000})",
               {{"Content-Type", "application/json"}});
      if (r.status != 200) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      for (const Json& c : array_of(r.json(), "claims")) {
        const Json* in = c.find("intent");
        if (in == nullptr) continue;
        conclude(port, str(*in, "id"), num(c, "epoch"));
      }
    }
  }
  // Claimed intents this agent holds (a claim or a conclude lost in a kill).
  void conclude_held(std::uint16_t port) {
    for (const char* kind : {kWorkKind, kDropKind}) {
      const HttpResult r =
          http(port, "GET", std::string("/v1/intents?state=claimed&limit=1000&kind=") + kind);
      if (r.status != 200) return;
      for (const Json& in : array_of(r.json(), "intents")) {
        if (str(in, "holder") == kAgent) conclude(port, str(in, "id"), num(in, "epoch"));
      }
    }
  }
  // `wd`'s intents are worked only every few rounds, so its runs stay active
  // for a while and signals meanwhile are dropped.
  void work_open_drops(std::uint16_t port) {
    const HttpResult r =
        http(port, "GET", std::string("/v1/intents?state=open&limit=1000&kind=") + kDropKind);
    if (r.status != 200) return;
    for (const Json& in : array_of(r.json(), "intents")) {
      const std::string id = str(in, "id");
      const HttpResult c =
          http(port, "POST", "/v1/intents/" + id + "/claim",
               R"({"agent":")" + std::string(kAgent) + R"(","lease_ttl_ms":600000})",
               {{"Content-Type", "application/json"}});
      if (c.status == 200) conclude(port, id, num(c.json(), "epoch"));
    }
  }
  void conclude(std::uint16_t port, const std::string& id, std::int64_t epoch) {
    const HttpResult d =
        http(port, "POST", "/v1/intents/" + id + "/conclude",
             R"({"agent":")" + std::string(kAgent) + R"(","epoch":)" + std::to_string(epoch) +
                 R"(,"result":{"kind":"crash.done","content":{"intent":)" + json_str(id) + "}}}",
             {{"Content-Type", "application/json"}});
    if (d.status == 200) ++concluded_;
  }

  std::atomic<std::uint16_t>& port_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> concluded_{0};
  std::thread thread_;
};

// ---- the hosts ----------------------------------------------------------------------

// Which process runs the runtime, and which one is killed.
enum class Host {
  kCairnd,          // cairnd runs it and is killed
  kCli,             // `cairn senses run` runs it and is killed; cairnd stays up
  kCairndUnderCli,  // `cairn senses run` runs it and stays up; cairnd is killed
};

class RuntimeCrash : public ::testing::TestWithParam<Host> {
 protected:
  void TearDown() override {
    if (agent_) agent_->stop();
    kill_cli();
    if (cairnd_ && cairnd_->running()) cairnd_->kill9();
    if (!dir_.empty() && !::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }

  bool inside() const { return GetParam() == Host::kCairnd; }
  bool kills_cairnd() const { return GetParam() != Host::kCli; }
  const char* host_name() const {
    switch (GetParam()) {
      case Host::kCairnd:
        return "cairnd (runtime inside)";
      case Host::kCli:
        return "cairn senses run";
      case Host::kCairndUnderCli:
        return "cairnd (runtime beside)";
    }
    return "";
  }
  // Where the runtime keeps runtime.db.
  std::string runtime_data() const { return inside() ? dir_ + "/data" : dir_ + "/runtime"; }
  std::string runtime_db() const { return runtime_data() + "/senses/runtime.db"; }

  void fresh_dir() {
    dir_ = make_temp_dir();
    write_file(dir_ + "/counter.sh", kCounterSh);
    write_observe(true);
  }
  // The runtime's configuration: inside cairnd its cairn.yaml, beside it the
  // file `cairn senses run` reads (cairnd's own cairn.yaml is then empty).
  void write_observe(bool interval) {
    if (inside()) {
      write_file(dir_ + "/cairn.yaml", observe_yaml(dir_, interval));
    } else {
      write_file(dir_ + "/cairn.yaml", "log_level: warn\n");
      write_file(dir_ + "/senses.yaml", observe_yaml(dir_, interval));
    }
  }

  void start_cairnd() {
    std::vector<std::string> args{"--config", dir_ + "/cairn.yaml"};
    // The runtime beside cairnd knows one URL: cairnd comes back on its port.
    if (fixed_port_ != 0) {
      args.insert(args.end(), {"--listen", "127.0.0.1:" + std::to_string(fixed_port_)});
    }
    cairnd_ = std::make_unique<CairndProcess>(CAIRND_PATH, dir_ + "/data", dir_ + "/cairnd.log",
                                              std::move(args));
    const std::string err = cairnd_->start();
    ASSERT_EQ(err, "") << err;
    port_ = cairnd_->port();
  }
  void start_cli() {
    const std::string url = "http://127.0.0.1:" + std::to_string(port_.load());
    const std::string cfg = dir_ + "/senses.yaml";
    const std::string data = runtime_data();
    const std::string log = dir_ + "/cli.log";
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execl(CAIRN_CLI_PATH, "cairn", "--url", url.c_str(), "senses", "run", "--config",
              cfg.c_str(), "--data", data.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    cli_pid_ = pid;
  }
  void kill_cli() {
    if (cli_pid_ <= 0) return;
    ::kill(cli_pid_, SIGKILL);
    int st = 0;
    while (::waitpid(cli_pid_, &st, 0) < 0 && errno == EINTR) {
    }
    cli_pid_ = -1;
  }
  // The process that is killed.
  void start_host() {
    if (kills_cairnd()) {
      start_cairnd();
    } else {
      start_cli();
    }
  }
  // SIGKILL to it; then what the runtime left behind.
  void kill_host() {
    if (kills_cairnd()) {
      port_ = 0;
      const std::string how = cairnd_->kill9();
      ASSERT_EQ(how, "") << how;
    } else {
      kill_cli();
    }
    ++stats_.kills;
    if (count_of(runtime_db(),
                 "SELECT count(*) FROM senses WHERE name = 'counter' AND pending_signal IS NOT "
                 "NULL") > 0) {
      ++stats_.pending_signal;
      last_kill_left_pending_ = true;
    } else {
      last_kill_left_pending_ = false;
    }
    if (count_of(runtime_db(), "SELECT count(*) FROM runs WHERE status = 'new'") > 0) {
      ++stats_.runs_new;
    }
    if (count_of(runtime_db(), "SELECT count(*) FROM runs WHERE status = 'starting'") > 0) {
      ++stats_.runs_starting;
    }
  }

  // ---- reading what the runtime and cairnd hold ----

  HttpResult get(const std::string& path) { return http(port_, "GET", path); }
  std::vector<Json> signals() {
    std::vector<Json> out;
    std::string after;
    for (;;) {
      const HttpResult r = get("/v1/facts?kind=signal.counter&limit=1000" +
                               (after.empty() ? "" : "&after=" + after));
      EXPECT_EQ(r.status, 200) << r.body;
      for (const Json& f : array_of(r.json(), "facts")) out.push_back(f);
      const Json* next = r.json().find("next");
      if (r.status != 200 || next == nullptr || next->is_null()) break;
      after = next->int_if() ? std::to_string(*next->int_if()) : next->as_string();
    }
    return out;
  }
  std::vector<Json> intents_of(const std::string& kind) {
    std::vector<Json> out;
    std::string after;
    for (;;) {
      const HttpResult r =
          get("/v1/intents?limit=1000&kind=" + kind + (after.empty() ? "" : "&after=" + after));
      EXPECT_EQ(r.status, 200) << r.body;
      for (const Json& f : array_of(r.json(), "intents")) out.push_back(f);
      const Json* next = r.json().find("next");
      if (r.status != 200 || next == nullptr || next->is_null()) break;
      after = next->as_string();
    }
    return out;
  }
  // The runs of a workflow, oldest first: cairnd's GET /v1/workflows/runs when
  // it hosts the runtime, else `cairn workflows runs --data`'s reader.
  std::vector<Json> runs(const std::string& workflow) {
    Json doc;
    if (inside()) {
      doc = get("/v1/workflows/runs?workflow=" + workflow +
                "&limit=" + std::to_string(kRunsListedMax))
                .json();
    } else {
      auto r = senses::Runtime::read_runs(runtime_data(), workflow, kRunsListedMax);
      if (r.ok()) doc = std::move(r).value();
    }
    std::vector<Json> out = array_of(doc, "runs");
    std::reverse(out.begin(), out.end());
    return out;
  }
  Json counter_status() {
    Json doc;
    if (inside()) {
      doc = get("/v1/senses").json();
    } else {
      auto r = senses::Runtime::read_status(runtime_data());
      if (r.ok()) doc = std::move(r).value();
    }
    for (const Json& s : array_of(doc, "senses")) {
      if (str(s, "name") == "counter") return s;
    }
    return Json();
  }
  // The sense's saved state's n (-1: none) and whether a signal is pending.
  std::pair<std::int64_t, bool> saved_state() {
    const auto row =
        sql_row(runtime_db(), "SELECT state, pending_signal FROM senses WHERE name = 'counter'");
    if (row.size() != 2 || !row[0]) return {-1, false};
    auto st = parse_json(*row[0]);
    const std::int64_t n = st.ok() ? num(*st, "n") : -1;
    return {n, row[1].has_value()};
  }

  // Settled: the saved state's signals are all posted, every signal has its
  // two runs, and no run is waiting for anything but an agent.
  bool settled() {
    const auto [n, pending] = saved_state();
    if (n < 0 || pending) return false;
    if (static_cast<std::int64_t>(signals().size()) != n) return false;
    const std::vector<Json> w = runs("w");
    const std::vector<Json> wd = runs("wd");
    if (static_cast<std::int64_t>(w.size()) != n || static_cast<std::int64_t>(wd.size()) != n) {
      return false;
    }
    for (const Json& r : w) {
      if (str(r, "status") != "completed") return false;
    }
    for (const Json& r : wd) {
      if (str(r, "status") != "completed" && str(r, "status") != "dropped") return false;
    }
    return true;
  }

  // ---- the checks ----

  void check(Violations& v) {
    const std::vector<Json> sigs = signals();
    const std::int64_t m = static_cast<std::int64_t>(sigs.size());
    // A. a linear chain n = 1..M.
    std::map<std::int64_t, std::vector<const Json*>> by_n;
    for (const Json& f : sigs) {
      const Json* c = f.find("content");
      by_n[c != nullptr ? num(*c, "n") : -1].push_back(&f);
    }
    std::map<std::string, std::int64_t> n_of;  // signal id → n
    for (std::int64_t n = 1; n <= m; ++n) {
      auto it = by_n.find(n);
      if (it == by_n.end()) {
        v.push_back("signal n=" + std::to_string(n) + " is missing (a gap)");
        continue;
      }
      if (it->second.size() != 1) {
        v.push_back("signal n=" + std::to_string(n) + " was posted " +
                    std::to_string(it->second.size()) + " times (a repeat)");
      }
      n_of[str(*it->second[0], "id")] = n;
    }
    for (const auto& [n, fs] : by_n) {
      if (n < 1 || n > m) v.push_back("a signal with n=" + std::to_string(n) + " outside 1..M");
    }
    for (std::int64_t n = 1; n <= m; ++n) {
      auto it = by_n.find(n);
      if (it == by_n.end()) continue;
      const Json* from = it->second[0]->find("derived_from");
      std::vector<Json> want;
      if (n > 1 && by_n.contains(n - 1)) want.push_back(Json(str(*by_n[n - 1][0], "id")));
      const std::string got = from != nullptr ? to_json(*from) : "null";
      if (got != to_json(Json(want))) {
        v.push_back("signal n=" + std::to_string(n) + " derives from " + got + ", expected " +
                    to_json(Json(want)) + " (the previous signal only)");
      }
    }
    const auto [state_n, pending] = saved_state();
    if (state_n != m) {
      v.push_back("the saved state is n=" + std::to_string(state_n) + " but " + std::to_string(m) +
                  " signals were posted");
    }
    if (pending) v.push_back("a signal is still pending in runtime.db");
    if (m > 0 && by_n.contains(m) &&
        str(counter_status(), "last_signal") != str(*by_n[m][0], "id")) {
      v.push_back("the status's last_signal is not signal n=M: " + to_json(counter_status()));
    }
    // B and C. runs.
    std::map<std::string, std::string> run_of_intent;  // intent → workflow/run id
    for (const char* wf : {"w", "wd"}) {
      const bool drop = std::string(wf) == "wd";
      const std::vector<Json> rs = runs(wf);
      if (rs.size() >= kRunsListedMax) {
        v.push_back(std::string(wf) + ": " + std::to_string(rs.size()) +
                    " runs fill the listing; lower CAIRN_RUNTIME_CRASH_CYCLES_PER_DIR");
      }
      std::map<std::string, int> per_signal;
      std::set<std::string> dropped_ids;
      for (const Json& r : rs) {
        const std::string id = std::to_string(num(r, "id"));
        const std::string what = std::string(wf) + " run " + id;
        const std::string trig = str(r, "trigger_fact");
        const std::string status = str(r, "status");
        if (!n_of.contains(trig)) v.push_back(what + " has trigger " + trig + ", not a signal");
        ++per_signal[trig];
        const std::string intent = str(r, "intent");
        if (status == "dropped") {
          dropped_ids.insert(id);
          if (!drop) v.push_back(what + " was dropped, though its workflow queues");
          const HttpResult in = get("/v1/intents/" + intent);
          if (in.status != 404)
            v.push_back(what + " was dropped but its intent exists: " + in.body);
          continue;
        }
        if (status != "completed") {
          v.push_back(what + " is " + status + " after settling: " + to_json(r));
          continue;
        }
        if (auto [it, fresh] = run_of_intent.emplace(intent, what); !fresh) {
          v.push_back(what + " shares its intent " + intent + " with " + it->second);
        }
        const Json in = get("/v1/intents/" + intent).json();
        if (str(in, "state") != "concluded") {
          v.push_back(what + " completed but its intent is " + to_json(in));
        }
        if (str(in, "kind") != (drop ? kDropKind : kWorkKind)) {
          v.push_back(what + "'s intent has kind " + str(in, "kind"));
        }
        const Json* from = in.find("from_facts");
        if (from == nullptr || to_json(*from) != to_json(Json(JsonArray{Json(trig)}))) {
          v.push_back(what + "'s intent is not grounded in exactly its signal: " + to_json(in));
        }
      }
      for (const auto& [id, n] : n_of) {
        const int runs_of = per_signal.contains(id) ? per_signal[id] : 0;
        if (runs_of != 1) {
          v.push_back("signal n=" + std::to_string(n) + " has " + std::to_string(runs_of) +
                      " runs of " + wf);
        }
      }
      // Every intent of the workflow's kind belongs to one of its runs.
      for (const Json& in : intents_of(drop ? kDropKind : kWorkKind)) {
        if (!run_of_intent.contains(str(in, "id"))) {
          v.push_back("intent " + str(in, "id") + " of kind " + str(in, "kind") +
                      " belongs to no completed run");
        }
      }
      if (drop) {
        // run.dropped records: each names a dropped run, none twice.
        std::map<std::string, int> logged;
        const Json logs = get("/v1/logs?source=workflow.wd&limit=1000").json();
        for (const Json& rec : array_of(logs, "logs")) {
          if (str(rec, "type") != "run.dropped") continue;
          const std::string ref = str(rec, "ref");
          if (++logged[ref] == 2) v.push_back("run " + ref + " has two run.dropped records");
          if (!dropped_ids.contains(ref)) {
            v.push_back("a run.dropped record names run " + ref + ", which is not dropped");
          }
        }
        int unlogged = 0;
        for (const std::string& id : dropped_ids) unlogged += logged.contains(id) ? 0 : 1;
        if (unlogged > stats_.kills) {
          v.push_back(std::to_string(unlogged) +
                      " dropped runs have no log record, more than the " +
                      std::to_string(stats_.kills) + " kills could have lost");
        }
        dropped_total_ += static_cast<int>(dropped_ids.size());
        unlogged_total_ += unlogged;
      }
    }
    signals_total_ += m;
  }

  void run_block(std::mt19937_64& rng, int cycles) {
    fresh_dir();
    stats_ = KillStats{};
    std::uniform_int_distribution<int> run_ms(kRunMsMin, kRunMsMax);
    fixed_port_ = 0;
    if (GetParam() == Host::kCli) {
      ASSERT_NO_FATAL_FAILURE(start_cairnd());  // cairnd stays up; the CLI is killed
    } else if (GetParam() == Host::kCairndUnderCli) {
      // The CLI stays up; cairnd is killed (the loop restarts it first).
      ASSERT_NO_FATAL_FAILURE(start_cairnd());
      fixed_port_ = port_;
      ASSERT_NO_FATAL_FAILURE(start_cli());
      std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(rng)));
      ASSERT_NO_FATAL_FAILURE(kill_host());
    }
    for (int cycle = 0; cycle < cycles; ++cycle) {
      SCOPED_TRACE("cycle " + std::to_string(cycle));
      ASSERT_NO_FATAL_FAILURE(start_host());
      std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(rng)));
      ASSERT_NO_FATAL_FAILURE(kill_host());
    }
    // The last kill should leave a pending signal, so the settling phase
    // shows it is posted without another run: a few more short cycles until
    // one does (each kill has a fair chance of landing in that window).
    std::uniform_int_distribution<int> hunt_ms(kRunMsMin, kPendingHuntRunMsMax);
    // (With cairnd killed under a live runtime, a kill rarely finds a signal
    // pending: the runtime keeps running; the settling reload is what counts.)
    const int hunts = GetParam() == Host::kCairndUnderCli ? 0 : kPendingHuntKillsMax;
    for (int i = 0; i < hunts && !last_kill_left_pending_; ++i) {
      ASSERT_NO_FATAL_FAILURE(start_host());
      std::this_thread::sleep_for(std::chrono::milliseconds(hunt_ms(rng)));
      ASSERT_NO_FATAL_FAILURE(kill_host());
    }
    pending_at_settle_ += last_kill_left_pending_ ? 1 : 0;
    // Settle: the sense no longer runs by itself.
    write_observe(false);
    ASSERT_NO_FATAL_FAILURE(start_host());
    // The CLI that stayed up reads the new file on SIGHUP (its runtime is
    // stopped, a new one starts on the same data directory).
    if (GetParam() == Host::kCairndUnderCli) {
      ASSERT_EQ(::kill(cli_pid_, SIGHUP), 0);
    }
    const bool ok = eventually([&] { return settled(); }, kSettleMsMax, 100);
    Violations v;
    check(v);
    if (!ok) v.insert(v.begin(), "the runtime did not settle within the time allowed");
    std::string shown;
    for (std::size_t i = 0; i < v.size() && i < kViolationsShownMax; ++i) shown += v[i] + "\n";
    EXPECT_TRUE(v.empty()) << v.size() << " violations (data kept in " << dir_ << "):\n" << shown;
    std::printf(
        "[runtime crash] %s: %d kills; left behind: a pending signal %d times, a run being "
        "recorded %d times, a run without its intent %d times; settled with a pending signal: "
        "%s\n",
        host_name(), stats_.kills, stats_.pending_signal, stats_.runs_new, stats_.runs_starting,
        last_kill_left_pending_ ? "yes" : "no");
    if (!inside()) {
      kill_cli();
    }
    if (cairnd_ && cairnd_->running()) {
      EXPECT_EQ(cairnd_->terminate(30'000), "");
    }
    port_ = 0;
    if (v.empty()) std::filesystem::remove_all(dir_);
    dir_.clear();
  }

  std::string dir_;
  std::unique_ptr<CairndProcess> cairnd_;
  pid_t cli_pid_ = -1;
  std::uint16_t fixed_port_ = 0;  // cairnd's port when the runtime beside it stays up
  std::atomic<std::uint16_t> port_{0};
  std::unique_ptr<Agent> agent_;
  KillStats stats_;
  bool last_kill_left_pending_ = false;
  int pending_at_settle_ = 0;
  std::int64_t signals_total_ = 0;
  int dropped_total_ = 0;
  int unlogged_total_ = 0;
};

TEST_P(RuntimeCrash, SignalsStayALinearChainAndEverySignalGetsOneRunAcrossKills) {
  const std::uint64_t cycles = env_u64("CAIRN_RUNTIME_CRASH_CYCLES", 12);
  const std::uint64_t per_dir =
      std::max<std::uint64_t>(1, env_u64("CAIRN_RUNTIME_CRASH_CYCLES_PER_DIR", 20));
  const std::uint64_t seed = env_u64("CAIRN_RUNTIME_CRASH_SEED", std::random_device{}());
  std::printf("[runtime crash] seed %llu (replay: CAIRN_RUNTIME_CRASH_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed " + std::to_string(seed) + " (CAIRN_RUNTIME_CRASH_SEED)");
  std::mt19937_64 rng(seed);
  agent_ = std::make_unique<Agent>(port_);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t done = 0; done < cycles; done += per_dir) {
    ASSERT_NO_FATAL_FAILURE(run_block(rng, static_cast<int>(std::min(per_dir, cycles - done))));
    if (::testing::Test::HasFailure()) break;
  }
  agent_->stop();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::printf(
      "[runtime crash] %llu cycles in %lld ms: %lld signals checked, %d runs dropped (%d without a "
      "log record), %llu intents concluded by the agent\n",
      static_cast<unsigned long long>(cycles), static_cast<long long>(ms),
      static_cast<long long>(signals_total_), dropped_total_, unlogged_total_,
      static_cast<unsigned long long>(agent_->concluded()));
}

INSTANTIATE_TEST_SUITE_P(Hosts, RuntimeCrash,
                         ::testing::Values(Host::kCairnd, Host::kCli, Host::kCairndUnderCli),
                         [](const auto& info) {
                           switch (info.param) {
                             case Host::kCairnd:
                               return std::string("InsideCairnd");
                             case Host::kCli:
                               return std::string("BesideCairnd");
                             case Host::kCairndUnderCli:
                               return std::string("CairndKilledUnderARuntimeBesideIt");
                           }
                           return std::string();
                         });

}  // namespace
}  // namespace cairn::testing

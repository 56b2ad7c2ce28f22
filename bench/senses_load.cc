// senses_load.cc — cairn-senses-bench: the observation runtime (docs/senses.md)
// inside the real cairnd binary, measured end to end over HTTP. Driven by
// `make bench-senses`; the numbers are in docs/benchmarks.md.
//
//   cairn-senses-bench --cairnd PATH [--tmp /var/tmp] [--reps 40] [--burst 2000]
//                      [--bursts 2] [--posters 16] [--rounds 5] [--round-seconds 2]
//                      [--clients 16] [--appends 200] [--log-records 100000]
//                      [--log-days 10] [--log-runs 2]
//                      [--only process,latency,burst,cost,logs]
//
// Sections, each against a cairnd exec'd on 127.0.0.1:0 with a fresh data
// directory (SQLite) and a cairn.yaml written for it:
//   process   run_process (src/senses/process.h) in this process: /bin/true,
//             `sh -c 'echo 1'` and the python3 sense below — spawn + run + reap.
//   latency   one cairnd with three senses, two workflows and two reflexes;
//             repetitions interleaved: a trigger fact is POSTed and this
//             program reads GET /v1/watch (SSE, opened before) until
//               sense  — the signal fact (fact.recorded, kind signal.<sense>),
//                        for a string command `echo 1` (/bin/sh) and a python3
//                        program that reads its stdin and prints JSON;
//               reflex — the workflow run's intent (intent.created);
//               chain  — trigger → sense → signal → reflex → intent.created;
//             and, for every trigger, its own fact.recorded (the floor).
//   burst     a fresh cairnd per burst: N facts POSTed by `posters`
//             connections at once, each firing one reflex into a workflow
//             (ceil(N/1000) workflows of concurrency 1000, overflow: drop,
//             split by predicates on the fact's content): runs started per
//             second, then every fact checked to have exactly one run
//             (GET /v1/workflows/runs) and one intent (GET /v1/state).
//   cost      three cairnds side by side — without the runtime, without it
//             but followed by a bare watcher (this program on GET /v1/watch),
//             and with an idle runtime (it follows the event stream; nothing
//             it watches is posted) — `clients` connections POSTing facts for
//             `round-seconds`, the three in turn, round by round: facts/s,
//             latency and cairnd's CPU per fact; ratios per round, median.
//   logs      a fresh cairnd per run: sequential POST /v1/logs (each fsynced),
//             then `log-records` rows over `log-days` days 40+ days old
//             inserted into <data>/logs.db with SQLite (WAL: beside the
//             running cairnd), GET /v1/logs page times, and POST
//             /v1/logs/archive timed and checked (every day, every record).
//
// Prints one `RESULT <name> key=value ...` line per measure and a summary
// table (median and p95 in ms).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "model/json_parse.h"
#include "senses/process.h"
#include "server/http_client.h"

namespace {

using Clock = std::chrono::steady_clock;
using cairn::Json;
using cairn::testing::HttpConn;
using cairn::testing::HttpResult;
using cairn::testing::SseEvent;
using cairn::testing::SseStream;

// The cairnd processes running now and their directories: die() stops and
// removes them, so a failed check leaves nothing behind.
std::map<pid_t, std::string> g_children;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "cairn-senses-bench: %s\n", why.c_str());
  for (const auto& [pid, dir] : g_children) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::_Exit(1);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// ---- arguments ---------------------------------------------------------------

class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0) die("unexpected argument " + k);
      if (i + 1 >= argc) die(k + " needs a value");
      flags_[k.substr(2)] = argv[++i];
    }
  }
  std::string str(const std::string& k, const std::string& def = "") const {
    auto it = flags_.find(k);
    return it == flags_.end() ? def : it->second;
  }
  long num(const std::string& k, long def) const {
    auto it = flags_.find(k);
    return it == flags_.end() ? def : std::stol(it->second);
  }
  double real(const std::string& k, double def) const {
    auto it = flags_.find(k);
    return it == flags_.end() ? def : std::stod(it->second);
  }

 private:
  std::map<std::string, std::string> flags_;
};

// ---- statistics --------------------------------------------------------------

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Linear interpolation between closest ranks.
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}
double median(const std::vector<double>& v) {
  return quantile(v, 0.5);
}

// A named series of samples (ms), printed as a RESULT line and a table row.
struct Series {
  std::string name, what;
  std::vector<double> ms;
};
std::vector<Series> g_rows;  // the summary table, in order

void report(const std::string& name, const std::string& what, const std::vector<double>& ms) {
  std::printf("RESULT %s n=%zu median_ms=%.3f p95_ms=%.3f min_ms=%.3f max_ms=%.3f\n", name.c_str(),
              ms.size(), median(ms), quantile(ms, 0.95),
              ms.empty() ? 0 : *std::min_element(ms.begin(), ms.end()),
              ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()));
  std::fflush(stdout);
  g_rows.push_back(Series{name, what, ms});
}

// Other results: one line of key=value.
std::vector<std::string> g_notes;
void note(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  g_notes.push_back(line);
}

// ---- cairnd as a child process -----------------------------------------------

std::string make_temp_dir(const std::string& root, const std::string& name) {
  std::string t = root + "/" + name + "-XXXXXX";
  if (::mkdtemp(t.data()) == nullptr) die("mkdtemp in " + root + " failed");
  return t;
}

class Cairnd {
 public:
  // Writes `yaml` to <dir>/cairn.yaml, execs cairnd with <dir>/data; returns
  // once it printed its URL.
  Cairnd(const std::string& binary, const std::string& dir, const std::string& yaml)
      : dir_(dir), data_(dir + "/data") {
    std::filesystem::create_directories(data_);
    const std::string config = dir + "/cairn.yaml";
    {
      std::ofstream f(config);
      f << yaml;
    }
    int out[2];
    if (::pipe(out) != 0) die("pipe failed");
    const std::string log = dir + "/cairnd.log";
    pid_ = ::fork();
    if (pid_ < 0) die("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (err >= 0) ::dup2(err, 2);
      ::close(out[0]);
      const char* argv[] = {"cairnd",      "--data", data_.c_str(), "--listen",     "127.0.0.1:0",
                            "--log-level", "warn",   "--config",    config.c_str(), nullptr};
      ::execv(binary.c_str(), const_cast<char* const*>(argv));
      ::_exit(127);
    }
    ::close(out[1]);
    g_children[pid_] = dir_;
    std::string line;
    char ch;
    pollfd p{out[0], POLLIN, 0};
    while (line.empty() || line.back() != '\n') {
      if (::poll(&p, 1, 60'000) <= 0) die("cairnd printed no URL within 60 s");
      if (::read(out[0], &ch, 1) != 1) {
        std::ifstream f(log);
        std::string text((std::istreambuf_iterator<char>(f)), {});
        die("cairnd exited before printing its URL: " + text);
      }
      line += ch;
    }
    ::close(out[0]);
    const std::string marker = "http://127.0.0.1:";
    const auto at = line.find(marker);
    if (at == std::string::npos) die("unexpected first line from cairnd: " + line);
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(at + marker.size())));
  }
  ~Cairnd() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Cairnd(const Cairnd&) = delete;
  Cairnd& operator=(const Cairnd&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& data() const { return data_; }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    g_children.erase(pid_);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "cairn-senses-bench: warning: cairnd did not exit cleanly\n");
    }
  }

  // CPU seconds (user + system, all threads) of cairnd so far.
  double cpu_s() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/stat");
    std::string stat;
    std::getline(f, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::vector<std::string> fields;
    std::size_t pos = close + 2;
    while (pos < stat.size() && fields.size() < 13) {
      const auto sp = stat.find(' ', pos);
      fields.push_back(stat.substr(pos, sp - pos));
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
    if (fields.size() < 13) return 0;
    return (std::stod(fields[11]) + std::stod(fields[12])) /
           static_cast<double>(::sysconf(_SC_CLK_TCK));
  }

 private:
  std::string dir_, data_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

constexpr const char* kCommonYaml = "log_level: warn\nlimits:\n  caller_rate_per_s: 0\n";

// The python3 sense: reads its input, prints a signal derived from it.
constexpr const char* kPython =
    "import json, sys; d = json.load(sys.stdin); t = d['trigger']; "
    "print(json.dumps({'seen': t['fact']['content'] if 'fact' in t else None}))";

std::string post_fact(HttpConn& c, const std::string& kind, const std::string& content) {
  HttpResult r =
      c.request("POST", "/v1/facts",
                R"({"kind":")" + kind + R"(","content":)" + content + R"(,"creator":"bench"})");
  if (r.status != 201) die("POST /v1/facts: " + std::to_string(r.status) + " " + r.body);
  return cairn::testing::str_of(r.json(), "id");
}

// ---- process ------------------------------------------------------------------

void section_process(int reps) {
  std::printf("\n== process: run_process (spawn, stdin, stdout, wait, group kill, reap), %d reps\n",
              reps);
  const std::string input =
      R"({"state":null,"last_signal":null,"trigger":{"type":"fact","fact":{"id":"x","kind":"k","content":{"n":1}}}})";
  struct Kind {
    std::string name, what;
    std::vector<std::string> argv;
    std::vector<double> ms;
  };
  std::vector<Kind> kinds = {
      {"process_true", "run_process /bin/true", {"/bin/true"}, {}},
      {"process_sh_echo", "run_process sh -c 'echo 1'", {"/bin/sh", "-c", "echo 1"}, {}},
      {"process_python", "run_process python3 (JSON in, JSON out)", {"python3", "-c", kPython}, {}},
  };
  for (int i = 0; i < reps + 2; ++i) {
    for (Kind& k : kinds) {
      cairn::senses::ProcessSpec spec;
      spec.argv = k.argv;
      spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin"};
      spec.stdin_data = input;
      const auto t0 = Clock::now();
      cairn::senses::ProcessResult r = cairn::senses::run_process(spec);
      const double ms = ms_between(t0, Clock::now());
      if (r.end != cairn::senses::End::kExited || r.exit_code != 0) {
        die(k.name + " failed: " + std::string(cairn::senses::end_name(r.end)) + " " + r.error +
            r.err);
      }
      if (i >= 2) k.ms.push_back(ms);  // two warm-up runs
    }
  }
  for (Kind& k : kinds) report(k.name, k.what, k.ms);
}

// ---- latency ------------------------------------------------------------------

// Reads the stream until `want(event)` holds; returns the time it arrived.
// Every fact.recorded seen is offered to `on_fact(kind, time)` on the way.
Clock::time_point wait_event(SseStream& s, const std::function<bool(const Json&)>& want,
                             const std::function<void(const Json&, Clock::time_point)>& seen,
                             const std::string& what) {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  SseEvent ev;
  while (Clock::now() < deadline) {
    if (!s.next(ev, 20'000)) break;
    const auto t = Clock::now();
    auto j = cairn::parse_json(ev.data);
    if (!j.ok()) continue;
    if (ev.event == "overflow") die("the bench's watch stream overflowed");
    seen(*j, t);
    if (want(*j)) return t;
  }
  die("no " + what + " within 20 s");
}

std::string ev_type(const Json& e) {
  return cairn::testing::str_of(e, "type");
}
std::string ev_subject(const Json& e) {
  return cairn::testing::str_of(e, "subject");
}
std::string ev_fact_kind(const Json& e) {
  const Json* d = e.find("data");
  return d != nullptr ? cairn::testing::str_of(*d, "kind") : std::string();
}

void section_latency(const std::string& binary, const std::string& tmp, int reps) {
  const std::string yaml =
      std::string(kCommonYaml) +
      "senses:\n"
      "  sh:\n"
      "    command: \"echo 1\"\n"
      "    on: [bench.sh]\n"
      "  py:\n"
      "    command: [\"python3\", \"-c\", \"" +
      kPython +
      "\"]\n"
      "    on: [bench.py]\n"
      "  chain:\n"
      "    command: \"echo 1\"\n"
      "    on: [bench.chain]\n"
      "workflows:\n"
      "  direct: {kind: bench.direct.work, concurrency: 1000, overflow: drop}\n"
      "  chained: {kind: bench.chain.work, concurrency: 1000, overflow: drop}\n"
      "reflexes:\n"
      "  - {name: direct, on: bench.direct, start: direct}\n"
      "  - {name: chained, on: signal.chain, start: chained}\n";
  Cairnd d(binary, make_temp_dir(tmp, "cairn-senses-bench"), yaml);
  std::printf("\n== latency: one cairnd, %d repetitions of each, interleaved (load average %s)\n",
              reps, loadavg().c_str());
  SseStream stream(d.port(), "/v1/watch");
  if (stream.status() != 200) die("GET /v1/watch: " + std::to_string(stream.status()));
  HttpConn conn(d.port());
  std::vector<double> sh, py, reflex, chain, chain_signal, chain_reflex, fact_event, post_reply;
  const int warmup = 3;
  for (int i = 0; i < reps + warmup; ++i) {
    const bool keep = i >= warmup;
    // A different order each repetition, so no measure always follows another.
    std::vector<int> order = {0, 1, 2, 3};
    std::rotate(order.begin(), order.begin() + (i % 4), order.end());
    for (int which : order) {
      static const char* kKinds[] = {"bench.sh", "bench.py", "bench.direct", "bench.chain"};
      const std::string kind = kKinds[which];
      const std::string content = R"({"n":)" + std::to_string(i) + "}";
      const auto t0 = Clock::now();
      const std::string id = post_fact(conn, kind, content);
      const auto t1 = Clock::now();
      Clock::time_point own{}, signal{};
      auto seen = [&](const Json& e, Clock::time_point t) {
        if (ev_type(e) == "fact.recorded" && ev_subject(e) == id) own = t;
        if (which == 3 && ev_type(e) == "fact.recorded" && ev_fact_kind(e) == "signal.chain")
          signal = t;
      };
      std::function<bool(const Json&)> want;
      switch (which) {
        case 0:
          want = [](const Json& e) {
            return ev_type(e) == "fact.recorded" && ev_fact_kind(e) == "signal.sh";
          };
          break;
        case 1:
          want = [](const Json& e) {
            return ev_type(e) == "fact.recorded" && ev_fact_kind(e) == "signal.py";
          };
          break;
        case 2:
          want = [](const Json& e) {
            return ev_type(e) == "intent.created" && ev_subject(e).rfind("wf.direct.", 0) == 0;
          };
          break;
        default:
          want = [](const Json& e) {
            return ev_type(e) == "intent.created" && ev_subject(e).rfind("wf.chained.", 0) == 0;
          };
      }
      const auto t2 = wait_event(stream, want, seen, "result for " + kind);
      if (!keep) continue;
      const double ms = ms_between(t0, t2);
      (which == 0 ? sh : which == 1 ? py : which == 2 ? reflex : chain).push_back(ms);
      post_reply.push_back(ms_between(t0, t1));
      if (own != Clock::time_point{}) fact_event.push_back(ms_between(t0, own));
      if (which == 3) {
        if (signal == Clock::time_point{}) die("the chain's intent came before its signal");
        chain_signal.push_back(ms_between(t0, signal));
        chain_reflex.push_back(ms_between(signal, t2));
      }
    }
  }
  // The runtime's own account: every run succeeded.
  HttpResult st = conn.request("GET", "/v1/senses");
  const Json sj = st.json();
  if (const Json* arr = sj.find("senses"); arr != nullptr && arr->is_array()) {
    for (const Json& s : arr->as_array()) {
      if (cairn::testing::str_of(s, "health") != "ok") {
        die("sense " + cairn::testing::str_of(s, "name") + " is not ok: " + to_json(s));
      }
    }
  }
  report("fact_post_reply", "POST /v1/facts → 201 (the trigger's commit)", post_reply);
  report("fact_event", "POST /v1/facts → its own fact.recorded on the stream", fact_event);
  report("sense_sh", "sense `echo 1` (sh): trigger POST → signal fact on the stream", sh);
  report("sense_python", "sense python3: trigger POST → signal fact on the stream", py);
  report("reflex", "reflex: fact POST → workflow run's intent.created", reflex);
  report("chain", "chain: trigger POST → signal → reflex → intent.created", chain);
  report("chain_to_signal", "  of which trigger POST → signal.chain fact", chain_signal);
  report("chain_signal_to_intent", "  of which signal.chain fact → intent.created", chain_reflex);
}

// ---- burst --------------------------------------------------------------------

void section_burst(const std::string& binary, const std::string& tmp, int n, int bursts,
                   int posters) {
  const int per_workflow = 1000;  // WorkflowConfig concurrency's maximum
  const int workflows = (n + per_workflow - 1) / per_workflow;
  std::string yaml = std::string(kCommonYaml) + "workflows:\n";
  for (int w = 0; w < workflows; ++w) {
    yaml += "  w" + std::to_string(w) +
            ": {kind: bench.burst.work, concurrency: " + std::to_string(per_workflow) +
            ", overflow: drop}\n";
  }
  yaml += "reflexes:\n";
  for (int w = 0; w < workflows; ++w) {
    yaml += "  - {name: r" + std::to_string(w) + ", on: bench.burst, start: w" + std::to_string(w) +
            ", match: [{path: \"$.n\", op: ge, value: " + std::to_string(w * per_workflow) +
            "}, {path: \"$.n\", op: lt, value: " + std::to_string((w + 1) * per_workflow) + "}]}\n";
  }
  std::printf(
      "\n== burst: %d facts by %d connections, each firing one reflex (%d workflows of "
      "concurrency %d, overflow: drop), %d bursts on fresh cairnds\n",
      n, posters, workflows, per_workflow, bursts);
  std::vector<double> rates, post_s, lag_ms, total_s;
  for (int b = 0; b < bursts; ++b) {
    Cairnd d(binary, make_temp_dir(tmp, "cairn-senses-bench"), yaml);
    std::printf("  burst %d (load average %s)\n", b + 1, loadavg().c_str());
    SseStream stream(d.port(), "/v1/watch");
    if (stream.status() != 200) die("GET /v1/watch: " + std::to_string(stream.status()));
    std::atomic<int> created{0};
    Clock::time_point last_created{};
    std::thread watcher([&] {
      SseEvent ev;
      while (created < n) {
        if (!stream.next(ev, 60'000)) return;
        if (ev.event == "overflow") die("the bench's watch stream overflowed");
        if (ev.event == "intent.created") {
          last_created = Clock::now();
          ++created;
        }
      }
    });
    std::vector<std::vector<std::string>> ids(static_cast<std::size_t>(posters));
    std::atomic<int> next{0};
    const auto t0 = Clock::now();
    std::vector<std::thread> th;
    for (int p = 0; p < posters; ++p) {
      th.emplace_back([&, p] {
        HttpConn c(d.port());
        for (int i = next++; i < n; i = next++) {
          ids[static_cast<std::size_t>(p)].push_back(
              post_fact(c, "bench.burst", R"({"n":)" + std::to_string(i) + "}"));
        }
      });
    }
    for (auto& t : th) t.join();
    const auto t1 = Clock::now();
    watcher.join();
    if (created < n) {
      die("only " + std::to_string(created.load()) + " of " + std::to_string(n) +
          " runs' intents were created within 60 s of the last one");
    }
    const double secs = ms_between(t0, last_created) / 1000;
    rates.push_back(n / secs);
    post_s.push_back(ms_between(t0, t1) / 1000);
    lag_ms.push_back(ms_between(t1, last_created));
    total_s.push_back(secs);
    // Every fact has exactly one run, started, and one intent.
    std::set<std::string> posted;
    for (auto& v : ids) posted.insert(v.begin(), v.end());
    if (posted.size() != static_cast<std::size_t>(n)) die("posted fact ids are not distinct");
    std::set<std::string> ran;
    std::size_t runs = 0, started = 0;
    HttpConn c(d.port());
    for (int w = 0; w < workflows; ++w) {
      HttpResult r =
          c.request("GET", "/v1/workflows/runs?workflow=w" + std::to_string(w) + "&limit=1000");
      if (r.status != 200) die("GET /v1/workflows/runs: " + r.body);
      const Json j = r.json();
      for (const Json& run : j.find("runs")->as_array()) {
        ++runs;
        if (cairn::testing::str_of(run, "status") == "started") ++started;
        ran.insert(cairn::testing::str_of(run, "trigger_fact"));
      }
    }
    HttpResult s = c.request("GET", "/v1/state");
    const std::int64_t open = cairn::testing::int_of(*s.json().find("intents"), "open");
    const bool exact =
        runs == static_cast<std::size_t>(n) && started == runs && ran == posted && open == n;
    std::printf(
        "    %d facts posted in %.2f s; the last intent created %.0f ms after the last POST "
        "answered; %.0f runs started/s\n"
        "    check: %zu runs, %zu started, %zu distinct trigger facts = the %zu posted: %s; "
        "%lld open intents\n",
        n, post_s.back(), lag_ms.back(), rates.back(), runs, started, ran.size(), posted.size(),
        ran == posted ? "yes" : "NO", static_cast<long long>(open));
    if (!exact) die("a fact did not get exactly one run (lost or duplicated)");
  }
  char line[400];
  std::snprintf(
      line, sizeof line,
      "RESULT burst n=%d bursts=%d runs_per_s_median=%.0f runs_per_s=%s post_s_median=%.2f "
      "lag_after_last_post_ms_median=%.0f exactly_one_run_each=yes",
      n, bursts, median(rates),
      [&] {
        std::string s;
        for (double r : rates) s += (s.empty() ? "" : ",") + std::to_string(lround(r));
        return s;
      }()
          .c_str(),
      median(post_s), median(lag_ms));
  note(line);
}

// ---- cost ---------------------------------------------------------------------

struct Round {
  double facts_per_s = 0, p50_ms = 0, p95_ms = 0, cpu_us_per_fact = 0;
};

Round load_round(const Cairnd& d, int clients, double seconds, int round_no) {
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(clients));
  std::vector<std::thread> th;
  const double warm = 0.3;
  const auto t0 = Clock::now();
  const auto begin =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warm));
  const auto end =
      begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int c = 0; c < clients; ++c) {
    th.emplace_back([&, c] {
      HttpConn conn(d.port());
      for (long i = 0; !stop; ++i) {
        const auto a = Clock::now();
        post_fact(conn, "load",
                  R"({"r":)" + std::to_string(round_no) + R"(,"c":)" + std::to_string(c) +
                      R"(,"i":)" + std::to_string(i) + "}");
        const auto b = Clock::now();
        if (a >= begin && b < end) lat[static_cast<std::size_t>(c)].push_back(ms_between(a, b));
      }
    });
  }
  std::this_thread::sleep_until(begin);
  const double cpu0 = d.cpu_s();
  std::this_thread::sleep_until(end);
  const double cpu1 = d.cpu_s();
  stop = true;
  for (auto& t : th) t.join();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  Round r;
  r.facts_per_s = static_cast<double>(all.size()) / seconds;
  r.p50_ms = median(all);
  r.p95_ms = quantile(all, 0.95);
  r.cpu_us_per_fact = all.empty() ? 0 : (cpu1 - cpu0) * 1e6 / static_cast<double>(all.size());
  return r;
}

void section_cost(const std::string& binary, const std::string& tmp, int rounds, double seconds,
                  int clients) {
  const std::string idle = std::string(kCommonYaml) +
                           "senses:\n"
                           "  idle: {command: \"echo 1\", on: [bench.never]}\n"
                           "workflows:\n"
                           "  idle: {kind: bench.idle.work}\n"
                           "reflexes:\n"
                           "  - {on: bench.never.either, start: idle}\n";
  Cairnd plain(binary, make_temp_dir(tmp, "cairn-senses-bench"), kCommonYaml);
  Cairnd with(binary, make_temp_dir(tmp, "cairn-senses-bench"), idle);
  if (HttpConn(with.port()).request("GET", "/v1/senses").status != 200) {
    die("the runtime is not running in the second cairnd");
  }
  if (HttpConn(plain.port()).request("GET", "/v1/senses").status != 404) {
    die("the first cairnd runs a runtime");
  }
  // The control: a third cairnd without the runtime, followed by a bare
  // watcher (this program reading GET /v1/watch and dropping the events).
  Cairnd watched(binary, make_temp_dir(tmp, "cairn-senses-bench"), kCommonYaml);
  std::atomic<bool> watching{true};
  std::thread bare([&] {
    SseStream s(watched.port(), "/v1/watch");
    SseEvent ev;
    while (watching) {
      if (!s.next(ev, 200) && s.status() != 200) return;
    }
  });
  std::printf(
      "\n== cost: %d clients POSTing facts, %.1f s per round, %d rounds; in turn: without the "
      "runtime, without it but with a bare watcher, with an idle runtime (load average %s)\n",
      clients, seconds, rounds, loadavg().c_str());
  std::vector<Round> a, b, w;
  std::vector<double> ratio, ratio_w;
  for (int r = 0; r < rounds; ++r) {
    // A different order each round.
    Round x, y, z;
    const std::vector<int> orders[] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}};
    for (int which : orders[r % 3]) {
      if (which == 0) x = load_round(plain, clients, seconds, r);
      if (which == 1) y = load_round(with, clients, seconds, r);
      if (which == 2) z = load_round(watched, clients, seconds, r);
    }
    a.push_back(x);
    b.push_back(y);
    w.push_back(z);
    ratio.push_back(y.facts_per_s / x.facts_per_s);
    ratio_w.push_back(y.facts_per_s / z.facts_per_s);
    std::printf(
        "  round %d: without %.0f facts/s (p50 %.2f ms, %.0f µs CPU/fact); bare watcher %.0f "
        "(p50 %.2f ms, %.0f µs); idle runtime %.0f (p50 %.2f ms, %.0f µs): runtime/without "
        "%.3f×, runtime/watcher %.3f× (load average %s)\n",
        r + 1, x.facts_per_s, x.p50_ms, x.cpu_us_per_fact, z.facts_per_s, z.p50_ms,
        z.cpu_us_per_fact, y.facts_per_s, y.p50_ms, y.cpu_us_per_fact, ratio.back(), ratio_w.back(),
        loadavg().c_str());
    std::fflush(stdout);
  }
  watching = false;
  bare.join();
  auto med = [](const std::vector<Round>& v, double Round::*f) {
    std::vector<double> x;
    for (const Round& r : v) x.push_back(r.*f);
    return median(x);
  };
  char line[900];
  std::snprintf(
      line, sizeof line,
      "RESULT cost rounds=%d without_facts_per_s=%.0f watcher_facts_per_s=%.0f "
      "with_idle_runtime_facts_per_s=%.0f ratio_median=%.3f ratio_min=%.3f ratio_max=%.3f "
      "ratio_to_watcher_median=%.3f without_p50_ms=%.2f watcher_p50_ms=%.2f with_p50_ms=%.2f "
      "without_cpu_us_per_fact=%.0f watcher_cpu_us_per_fact=%.0f with_cpu_us_per_fact=%.0f",
      rounds, med(a, &Round::facts_per_s), med(w, &Round::facts_per_s), med(b, &Round::facts_per_s),
      median(ratio), *std::min_element(ratio.begin(), ratio.end()),
      *std::max_element(ratio.begin(), ratio.end()), median(ratio_w), med(a, &Round::p50_ms),
      med(w, &Round::p50_ms), med(b, &Round::p50_ms), med(a, &Round::cpu_us_per_fact),
      med(w, &Round::cpu_us_per_fact), med(b, &Round::cpu_us_per_fact));
  note(line);
}

// ---- logs ---------------------------------------------------------------------

void sql(sqlite3* db, const std::string& s) {
  char* err = nullptr;
  if (sqlite3_exec(db, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    die("sqlite: " + m + " in " + s.substr(0, 80));
  }
}

void section_logs(const std::string& binary, const std::string& tmp, int appends, int records,
                  int days, int runs) {
  std::printf(
      "\n== logs: %d sequential appends; %d records over %d days (40+ days old) inserted with "
      "SQLite, then GET /v1/logs pages and POST /v1/logs/archive; %d runs on fresh cairnds\n",
      appends, records, days, runs);
  const std::string yaml =
      std::string(kCommonYaml) + "logs:\n  retention_days: 30\n  archive_interval: 1d\n";
  std::vector<double> append_ms, rate, page100, page1000, archive_s;
  for (int run = 0; run < runs; ++run) {
    Cairnd d(binary, make_temp_dir(tmp, "cairn-senses-bench"), yaml);
    HttpConn c(d.port());
    const auto a0 = Clock::now();
    for (int i = 0; i < appends; ++i) {
      const auto t0 = Clock::now();
      HttpResult r =
          c.request("POST", "/v1/logs",
                    R"({"source":"bench","type":"bench.append","ref":")" + std::to_string(i) +
                        R"(","payload":{"i":)" + std::to_string(i) + "}}");
      if (r.status != 201) die("POST /v1/logs: " + std::to_string(r.status) + " " + r.body);
      append_ms.push_back(ms_between(t0, Clock::now()));
    }
    rate.push_back(appends / (ms_between(a0, Clock::now()) / 1000));
    // Old records, straight into logs.db (WAL: cairnd keeps it open).
    {
      sqlite3* db = nullptr;
      if (sqlite3_open((d.data() + "/logs.db").c_str(), &db) != SQLITE_OK) die("open logs.db");
      sqlite3_busy_timeout(db, 10'000);
      sql(db, "BEGIN IMMEDIATE");
      sqlite3_stmt* ins = nullptr;
      sqlite3_prepare_v2(
          db, "INSERT INTO logs(ts, source, type, ref, payload) VALUES(?1, ?2, ?3, ?4, ?5)", -1,
          &ins, nullptr);
      const std::int64_t day_ms = 86'400'000;
      const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
      const std::int64_t first_day = now_ms / day_ms - 40 - days;
      const int per_day = records / days;
      for (int day = 0; day < days; ++day) {
        for (int k = 0; k < per_day; ++k) {
          const std::int64_t ts = (first_day + day) * day_ms + k * (day_ms / per_day);
          const std::string ref = "run-" + std::to_string(k);
          const std::string payload =
              R"({"reason":"exit_status","exit_code":3,"k":)" + std::to_string(k) + "}";
          sqlite3_bind_int64(ins, 1, ts);
          sqlite3_bind_text(ins, 2, "sense.disk", -1, SQLITE_STATIC);
          sqlite3_bind_text(ins, 3, "sense.failed", -1, SQLITE_STATIC);
          sqlite3_bind_text(ins, 4, ref.c_str(), -1, SQLITE_TRANSIENT);
          sqlite3_bind_text(ins, 5, payload.c_str(), -1, SQLITE_TRANSIENT);
          if (sqlite3_step(ins) != SQLITE_DONE) die("insert into logs.db failed");
          sqlite3_reset(ins);
        }
      }
      sqlite3_finalize(ins);
      sql(db, "COMMIT");
      sqlite3_close(db);
    }
    // Pages: the first, and pages from spread-out positions.
    HttpResult first = c.request("GET", "/v1/logs?limit=1");
    const std::int64_t lo = cairn::testing::int_of(first.json().find("logs")->as_array()[0], "id");
    for (int k = 0; k < 20; ++k) {
      const std::int64_t after = lo + (static_cast<std::int64_t>(records - 1000) * k) / 19;
      for (int limit : {100, 1000}) {
        const auto t0 = Clock::now();
        HttpResult r = c.request(
            "GET", "/v1/logs?after=" + std::to_string(after) + "&limit=" + std::to_string(limit));
        const double ms = ms_between(t0, Clock::now());
        if (r.status != 200) die("GET /v1/logs: " + r.body);
        if (r.json().find("logs")->size() != static_cast<std::size_t>(limit)) {
          die("GET /v1/logs returned a short page");
        }
        (limit == 100 ? page100 : page1000).push_back(ms);
      }
    }
    const auto t0 = Clock::now();
    HttpResult ar = c.request("POST", "/v1/logs/archive", "{}");
    const double secs = ms_between(t0, Clock::now()) / 1000;
    if (ar.status != 200) die("POST /v1/logs/archive: " + ar.body);
    const Json aj = ar.json();
    const std::int64_t archived = cairn::testing::int_of(aj, "records");
    const std::size_t nd = aj.find("days")->size();
    // The files hold every record once.
    std::size_t lines = 0;
    for (const auto& e : std::filesystem::directory_iterator(d.data() + "/archive/logs")) {
      std::ifstream f(e.path());
      std::string l;
      while (std::getline(f, l)) ++lines;
    }
    const std::int64_t want = static_cast<std::int64_t>(records / days) * days;
    if (archived != want || nd != static_cast<std::size_t>(days) ||
        lines != static_cast<std::size_t>(want)) {
      die("archival: " + ar.body + ", " + std::to_string(lines) + " lines in the files");
    }
    HttpResult left = c.request("GET", "/v1/logs?limit=1000");
    if (left.json().find("logs")->size() != static_cast<std::size_t>(std::min(appends, 1000))) {
      die("after archival GET /v1/logs should list only today's appends");
    }
    archive_s.push_back(secs);
    std::printf(
        "  run %d: %.0f appends/s; archival of %lld records over %zu days in %.2f s "
        "(load average %s)\n",
        run + 1, rate.back(), static_cast<long long>(archived), nd, secs, loadavg().c_str());
  }
  report("log_append", "POST /v1/logs (sequential, fsynced) → 201", append_ms);
  report("log_page_100", "GET /v1/logs?after=&limit=100 (100k records in logs.db)", page100);
  report("log_page_1000", "GET /v1/logs?after=&limit=1000", page1000);
  char line[400];
  const double s = median(archive_s);
  std::snprintf(
      line, sizeof line,
      "RESULT logs appends_per_s_median=%.0f archive_s_median=%.3f archive_ms_per_day=%.0f "
      "archive_us_per_record=%.1f archive_runs=%d records=%d days=%d",
      median(rate), s, s * 1000 / days, s * 1e6 / records, runs, records, days);
  note(line);
}

}  // namespace

int main(int argc, char** argv) {
  Args a(argc, argv);
  const std::string binary = a.str("cairnd");
  if (binary.empty()) die("--cairnd PATH is required");
  const std::string tmp = a.str("tmp", "/var/tmp");
  ::signal(SIGPIPE, SIG_IGN);
  const auto t0 = Clock::now();
  std::printf("cairn-senses-bench: %ld cores, load average %s\n", ::sysconf(_SC_NPROCESSORS_ONLN),
              loadavg().c_str());
  const std::string only = "," + a.str("only", "process,latency,burst,cost,logs") + ",";
  auto on = [&](const char* s) {
    return only.find("," + std::string(s) + ",") != std::string::npos;
  };
  if (on("process")) section_process(static_cast<int>(a.num("reps", 40)));
  if (on("latency")) section_latency(binary, tmp, static_cast<int>(a.num("reps", 40)));
  if (on("burst")) {
    section_burst(binary, tmp, static_cast<int>(a.num("burst", 2000)),
                  static_cast<int>(a.num("bursts", 2)), static_cast<int>(a.num("posters", 16)));
  }
  if (on("cost")) {
    section_cost(binary, tmp, static_cast<int>(a.num("rounds", 5)), a.real("round-seconds", 2),
                 static_cast<int>(a.num("clients", 16)));
  }
  if (on("logs"))
    section_logs(binary, tmp, static_cast<int>(a.num("appends", 200)),
                 static_cast<int>(a.num("log-records", 100'000)),
                 static_cast<int>(a.num("log-days", 10)), static_cast<int>(a.num("log-runs", 2)));

  std::printf("\n== summary (%.0f s, load average now %s)\n", ms_between(t0, Clock::now()) / 1000,
              loadavg().c_str());
  std::printf("%-24s %6s %10s %10s  %s\n", "measure", "n", "median ms", "p95 ms", "what");
  for (const Series& s : g_rows) {
    std::printf("%-24s %6zu %10.2f %10.2f  %s\n", s.name.c_str(), s.ms.size(), median(s.ms),
                quantile(s.ms, 0.95), s.what.c_str());
  }
  for (const std::string& n : g_notes) std::printf("  %s\n", n.c_str());
  return 0;
}

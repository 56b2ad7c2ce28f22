// http_load.cc — cairn-http-bench: end-to-end load against the real cairnd
// binary and, for comparison, a PostgreSQL FOR UPDATE SKIP LOCKED queue.
// Driven by bench/run-http-bench (`make bench-http`); see docs/benchmarks.md.
//
//   cairn-http-bench cairn   --cairnd PATH [--agents 64] [--intents N] [--seconds T]
//                            [--warmup S] [--runs R] [--tmp DIR] [--name NAME]
//                            [--pg-url postgres://.../db [--pgdata DIR]]
//                            [--nodes K] [--shared] [--turn-wait-ms MS]
//                            [--lanes L [--lane-budgets C]]
//       Per run: fresh data directories, cairnd exec'd on 127.0.0.1:0 (the
//       per-caller rate limit off) — on durable SQLite, or with --pg-url on a
//       database of its own created for the run (`--store`), dropped after it.
//       --nodes K execs K cairnd processes (with --shared each also gets
//       `--node nI`, so they share the run's database); the agents and the
//       preload connections are spread round-robin over them. N intents are
//       created over HTTP by 64 connections, then `agents` threads — each with
//       its own keep-alive connection — loop claim (POST /v1/claims, max 1) →
//       conclude. Cycles completed inside the T-second window after the
//       warm-up are counted. --lanes L spreads the intents over lanes
//       l00..l<L-1>; --lane-budgets C configures those lanes in cairnd.yaml
//       (max_concurrency and max_cost_units C each: lane budgets on).
//
//   cairn-http-bench pg      --conninfo STR [--agents 64] [--jobs N] [--seconds T]
//                            [--warmup S] [--runs R] [--claim-only]
//       The same workload on a jobs table: claim = UPDATE ... WHERE id =
//       (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING; conclude = one
//       statement that inserts the result row and marks the job done (one
//       transaction). One libpq connection per agent. --fresh-db (with a
//       postgres:// URL as --conninfo): a database of its own per run.
//
//   cairn-http-bench build-data --dir DIR [--intents 1000000] [--claimed 10000]
//                               [--concluded 10000]
//       Builds a cairnd data directory in-process (engine + SqliteStore, the
//       code cairnd runs, 1,024 creates per group commit): N intents, some
//       claimed with 24 h leases (still open at restart), some concluded.
//
//   cairn-http-bench restart --cairnd PATH --dir DIR [--runs 3]
//       Times exec of cairnd → URL printed → first 200 from GET /v1/state.
//
//   cairn-http-bench engine [--batch 32] [--intents 20000] [--seconds 5]
//       No HTTP: the engine over SqliteStore in one thread, `batch` claims
//       then `batch` concludes per round (two group commits), with the wall
//       and CPU time of the store's commit split out.
//
// The cairn and pg modes also report the CPU time the server (the cairnd
// processes; the postmaster and its backends, given --pgdata — for cairnd on
// PostgreSQL both, also split) and this client spent per cycle inside the
// window.
//
// Every mode prints human-readable lines and one `RESULT <name> key=value ...`
// line per configuration (medians over the runs) for the driver script.
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/sqlite/sqlite_store.h"
#include "engine/engine.h"
#include "model/json_parse.h"
#include "server/http_client.h"

namespace {

using Clock = std::chrono::steady_clock;
using cairn::Json;
using cairn::testing::HttpConn;
using cairn::testing::HttpResult;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "cairn-http-bench: %s\n", why.c_str());
  std::exit(1);
}

double secs_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- arguments -------------------------------------------------------------------

class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0) die("unexpected argument " + k);
      k.erase(0, 2);
      if (k == "claim-only" || k == "shared" || k == "fresh-db") {
        flags_[k] = "1";
      } else {
        if (i + 1 >= argc) die("--" + k + " needs a value");
        flags_[k] = argv[++i];
      }
    }
  }
  std::string str(const std::string& k, const std::string& def = "") const {
    auto it = flags_.find(k);
    return it == flags_.end() ? def : it->second;
  }
  std::string need(const std::string& k) const {
    auto it = flags_.find(k);
    if (it == flags_.end()) die("--" + k + " is required");
    return it->second;
  }
  long num(const std::string& k, long def) const {
    auto it = flags_.find(k);
    return it == flags_.end() ? def : std::stol(it->second);
  }
  double real(const std::string& k, double def) const {
    auto it = flags_.find(k);
    return it == flags_.end() ? def : std::stod(it->second);
  }
  bool flag(const std::string& k) const { return flags_.count(k) != 0; }

 private:
  std::map<std::string, std::string> flags_;
};

// ---- statistics ----------------------------------------------------------------

double percentile(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One run's outcome.
struct RunStats {
  double cycles_per_s = 0;
  double claim_p50_ms = 0, claim_p99_ms = 0;
  double conclude_p50_ms = 0, conclude_p99_ms = 0;
  double cycle_p50_ms = 0, cycle_p99_ms = 0;
  std::map<std::string, double> extra;  // backend-specific (commit sizes, ...)
};

// Samples recorded by one agent thread inside the measurement window.
struct AgentSamples {
  std::vector<float> claim_us, conclude_us, cycle_us;
  std::uint64_t cycles = 0;
  std::uint64_t empty_claims = 0;
  std::uint64_t retries = 0;  // requests of the counted cycles sent again after lost_race
  std::map<std::string, std::uint64_t> errors;
  void reserve(std::size_t n) {
    claim_us.reserve(n);
    conclude_us.reserve(n);
    cycle_us.reserve(n);
  }
  // A claim sent at c0, answered at c1, its conclude answered at c2.
  void record_cycle(Clock::time_point c0, Clock::time_point c1, Clock::time_point c2);
};

// The measurement window, shared by the agents and the main thread.
struct Window {
  std::atomic<bool> stop{false};
  Clock::time_point begin, end;  // set before the agents start
  bool inside(Clock::time_point t) const { return t >= begin && t < end; }
};

RunStats summarize(std::vector<AgentSamples>& agents, double window_s) {
  AgentSamples all;
  for (AgentSamples& a : agents) {
    all.cycles += a.cycles;
    all.empty_claims += a.empty_claims;
    all.retries += a.retries;
    all.claim_us.insert(all.claim_us.end(), a.claim_us.begin(), a.claim_us.end());
    all.conclude_us.insert(all.conclude_us.end(), a.conclude_us.begin(), a.conclude_us.end());
    all.cycle_us.insert(all.cycle_us.end(), a.cycle_us.begin(), a.cycle_us.end());
    for (const auto& [k, v] : a.errors) all.errors[k] += v;
  }
  RunStats s;
  s.cycles_per_s = static_cast<double>(all.cycles) / window_s;
  s.claim_p50_ms = percentile(all.claim_us, 0.50) / 1000;
  s.claim_p99_ms = percentile(all.claim_us, 0.99) / 1000;
  s.conclude_p50_ms = percentile(all.conclude_us, 0.50) / 1000;
  s.conclude_p99_ms = percentile(all.conclude_us, 0.99) / 1000;
  s.cycle_p50_ms = percentile(all.cycle_us, 0.50) / 1000;
  s.cycle_p99_ms = percentile(all.cycle_us, 0.99) / 1000;
  if (all.empty_claims > 0) {
    std::printf("  warning: %llu claims found no work (backlog too small for the window)\n",
                static_cast<unsigned long long>(all.empty_claims));
  }
  std::uint64_t errors = 0;
  for (const auto& [k, v] : all.errors) {
    std::printf("  errors: %s × %llu\n", k.c_str(), static_cast<unsigned long long>(v));
    errors += v;
  }
  s.extra["errors"] = static_cast<double>(errors);
  if (all.retries > 0)
    s.extra["lost_race_retries_per_s"] = static_cast<double>(all.retries) / window_s;
  return s;
}

void print_run(int run, const RunStats& s) {
  std::printf(
      "  run %d: %.0f cycles/s  claim p50 %.2f ms p99 %.2f ms  conclude p50 %.2f ms p99 %.2f ms",
      run, s.cycles_per_s, s.claim_p50_ms, s.claim_p99_ms, s.conclude_p50_ms, s.conclude_p99_ms);
  for (const auto& [k, v] : s.extra) std::printf("  %s %.4g", k.c_str(), v);
  std::printf("\n");
  std::fflush(stdout);
}

void print_result(const std::string& name, const std::vector<RunStats>& runs) {
  auto med = [&](auto field) {
    std::vector<double> v;
    for (const RunStats& r : runs) v.push_back(field(r));
    return median(v);
  };
  std::printf("RESULT %s runs=%zu cycles_per_s=%.0f claim_p50_ms=%.3f claim_p99_ms=%.3f",
              name.c_str(), runs.size(), med([](const RunStats& r) { return r.cycles_per_s; }),
              med([](const RunStats& r) { return r.claim_p50_ms; }),
              med([](const RunStats& r) { return r.claim_p99_ms; }));
  std::printf(" conclude_p50_ms=%.3f conclude_p99_ms=%.3f cycle_p50_ms=%.3f cycle_p99_ms=%.3f",
              med([](const RunStats& r) { return r.conclude_p50_ms; }),
              med([](const RunStats& r) { return r.conclude_p99_ms; }),
              med([](const RunStats& r) { return r.cycle_p50_ms; }),
              med([](const RunStats& r) { return r.cycle_p99_ms; }));
  std::map<std::string, int> keys;  // every run's extra keys (absent in a run = 0)
  for (const RunStats& r : runs) {
    for (const auto& kv : r.extra) keys[kv.first] = 1;
  }
  for (const auto& kv : keys) {
    const std::string& k = kv.first;
    std::printf(" %s=%.4g", k.c_str(), med([&](const RunStats& r) {
                  auto it = r.extra.find(k);
                  return it == r.extra.end() ? 0.0 : it->second;
                }));
  }
  std::printf(" all_cycles_per_s=");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::printf("%s%.0f", i ? "," : "", runs[i].cycles_per_s);
  }
  std::printf("\n");
  std::fflush(stdout);
}

// Runs `agents` threads through `body(index, samples)` and a measurement
// window of `seconds` after `warmup`; `on_window(begin_or_end)` runs on the
// main thread at both edges (metric scrapes).
template <class Body, class Edge>
RunStats run_agents(int agents, double warmup, double seconds, Body body, Edge on_window) {
  Window w;
  const Clock::time_point t0 = Clock::now();
  w.begin = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  w.end =
      w.begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<AgentSamples> samples(static_cast<std::size_t>(agents));
  std::vector<std::thread> threads;
  for (int i = 0; i < agents; ++i) {
    threads.emplace_back([&, i] {
      AgentSamples& s = samples[static_cast<std::size_t>(i)];
      s.reserve(static_cast<std::size_t>(seconds * 4000));
      body(i, s, w);
    });
  }
  std::this_thread::sleep_until(w.begin);
  on_window(true);
  std::this_thread::sleep_until(w.end);
  on_window(false);
  w.stop = true;
  for (std::thread& t : threads) t.join();
  return summarize(samples, seconds);
}

float us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<float, std::micro>(b - a).count();
}

void AgentSamples::record_cycle(Clock::time_point c0, Clock::time_point c1, Clock::time_point c2) {
  ++cycles;
  claim_us.push_back(us_between(c0, c1));
  conclude_us.push_back(us_between(c1, c2));
  cycle_us.push_back(us_between(c0, c2));
}

// ---- cairnd as a child process ---------------------------------------------------------

class Cairnd {
 public:
  // Execs cairnd; returns once it printed its URL (or dies).
  // `extra` is appended to cairnd's arguments (--store, --node).
  Cairnd(const std::string& binary, const std::string& data_dir, const std::string& config,
         const std::vector<std::string>& extra = {}) {
    int out[2];
    if (::pipe(out) != 0) die("pipe failed");
    std::filesystem::create_directories(data_dir);
    const std::string log = data_dir + "/cairnd.log";
    started_ = Clock::now();
    pid_ = ::fork();
    if (pid_ < 0) die("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (err >= 0) ::dup2(err, 2);
      ::close(out[0]);
      std::vector<const char*> argv = {
          "cairnd", "--data", data_dir.c_str(), "--listen", "127.0.0.1:0", "--log-level", "warn"};
      if (!config.empty()) {
        argv.push_back("--config");
        argv.push_back(config.c_str());
      }
      for (const std::string& e : extra) argv.push_back(e.c_str());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), const_cast<char* const*>(argv.data()));
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char ch;
    pollfd p{out[0], POLLIN, 0};
    while (line.empty() || line.back() != '\n') {
      if (::poll(&p, 1, 600'000) <= 0) die("cairnd printed no URL within 600 s");
      if (::read(out[0], &ch, 1) != 1)
        die("cairnd exited before printing its URL (see " + log + ")");
      line += ch;
    }
    url_printed_ = Clock::now();
    ::close(out[0]);
    const std::string marker = "http://127.0.0.1:";
    const auto at = line.find(marker);
    if (at == std::string::npos) die("unexpected first line from cairnd: " + line);
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(at + marker.size())));
  }
  ~Cairnd() { stop(); }
  Cairnd(const Cairnd&) = delete;
  Cairnd& operator=(const Cairnd&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  Clock::time_point started() const { return started_; }
  Clock::time_point url_printed() const { return url_printed_; }

  // SIGTERM and wait; returns the exit status (dies on a non-zero exit).
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("cairnd did not exit cleanly");
  }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  Clock::time_point started_, url_printed_;
};

// CPU seconds (user + system) of process `pid` and its direct children
// (PostgreSQL: the postmaster and its backends), from /proc.
double tree_cpu_s(pid_t root) {
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double total = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "stat");
    std::string stat;
    std::getline(f, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    // Fields after the command: state ppid ... utime (14th field) stime (15th).
    std::vector<std::string> fields;
    std::size_t pos = close + 2;
    while (pos < stat.size() && fields.size() < 13) {
      const auto sp = stat.find(' ', pos);
      fields.push_back(stat.substr(pos, sp - pos));
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
    if (fields.size() < 13) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    const pid_t ppid = static_cast<pid_t>(std::stol(fields[1]));
    if (pid != root && ppid != root) continue;
    total += (std::stod(fields[11]) + std::stod(fields[12])) / tick;
  }
  return total;
}

double self_cpu_s() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

std::string make_temp_dir(const std::string& root, const std::string& name) {
  std::string t = root + "/" + name + "-XXXXXX";
  if (::mkdtemp(t.data()) == nullptr) die("mkdtemp in " + root + " failed");
  return t;
}

// ---- PostgreSQL ----------------------------------------------------------------------

struct PgConn {
  PGconn* c = nullptr;
  explicit PgConn(const std::string& conninfo) {
    c = PQconnectdb(conninfo.c_str());
    if (PQstatus(c) != CONNECTION_OK) die(std::string("postgres: ") + PQerrorMessage(c));
  }
  ~PgConn() { PQfinish(c); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;
  void exec(const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      const std::string err = PQerrorMessage(c);
      PQclear(r);
      die("postgres: " + sql.substr(0, 60) + ": " + err);
    }
    PQclear(r);
  }
  std::string scalar(const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    std::string v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0)
                                                                             : std::string();
    PQclear(r);
    return v;
  }
  void prepare(const char* name, const char* sql, int params) {
    PGresult* r = PQprepare(c, name, sql, params, nullptr);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) die(std::string("prepare: ") + PQerrorMessage(c));
    PQclear(r);
  }
};

// The postmaster's pid (first line of DATA/postmaster.pid), for the
// server's CPU time; 0 when `pgdata` is empty or unreadable.
pid_t postmaster_pid(const std::string& pgdata) {
  if (pgdata.empty()) return 0;
  std::ifstream f(pgdata + "/postmaster.pid");
  long v = 0;
  return f >> v ? static_cast<pid_t>(v) : 0;
}

// `url` (postgres://user@host:port/db?query) with its database replaced.
std::string with_database(const std::string& url, const std::string& db) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) die("--pg-url must be a postgres:// URL: " + url);
  const auto query = url.find('?', scheme + 3);
  const auto path = url.find('/', scheme + 3);
  const std::string base =
      url.substr(0, std::min(path, query == std::string::npos ? url.size() : query));
  return base + "/" + db + (query == std::string::npos ? "" : url.substr(query));
}

// A fresh database per run, dropped afterwards (also when cairnd still holds
// connections: WITH (FORCE)).
class FreshDatabase {
 public:
  FreshDatabase(const std::string& admin_url, const std::string& name)
      : admin_(admin_url), name_(name) {
    PgConn c(admin_);
    c.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    c.exec("CREATE DATABASE " + name_);
  }
  ~FreshDatabase() {
    PgConn c(admin_);
    c.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  FreshDatabase(const FreshDatabase&) = delete;
  FreshDatabase& operator=(const FreshDatabase&) = delete;
  std::string url() const { return with_database(admin_, name_); }
  // VACUUM ANALYZE and CHECKPOINT after the preload, so that every
  // configuration starts its window from the same clean state.
  void settle() const {
    PgConn c(url());
    c.exec("VACUUM ANALYZE");
    c.exec("CHECKPOINT");
  }

 private:
  std::string admin_, name_;
};

// Sums of the Prometheus series we report on.
std::map<std::string, double> scrape(std::uint16_t port) {
  HttpResult r = cairn::testing::http(port, "GET", "/metrics");
  std::map<std::string, double> m;
  if (r.status != 200) return m;
  std::size_t pos = 0;
  while (pos < r.body.size()) {
    std::size_t nl = r.body.find('\n', pos);
    if (nl == std::string::npos) nl = r.body.size();
    const std::string line = r.body.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    m[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return m;
}

std::string json_str(const Json& j, std::string_view k) {
  const Json* v = j.find(k);
  return v != nullptr && v->is_string() ? v->as_string() : std::string();
}

void count_error(AgentSamples& s, const char* what, const HttpResult& r) {
  ++s.errors[std::string(what) + " " + std::to_string(r.status) + " " + r.code()];
}

// Shared mode: a node that lost the commit race to other nodes more than
// lost_races_max times in a row answers 409 lost_race — nothing was applied,
// the request may be sent again as it is (docs/api.md). The agents and the
// preload do so, up to this many times in a row.
constexpr int kLostRaceRetriesMax = 1000;

bool lost_race(const HttpResult& r) {
  return r.status == 409 && r.code() == "lost_race";
}

// Sends a request, again while it answers lost_race; `retries` counts the
// repeats.
HttpResult request_retrying(HttpConn& conn, const std::string& method, const std::string& path,
                            const std::string& body, std::uint64_t& retries) {
  HttpResult r = conn.request(method, path, body);
  for (int i = 0; i < kLostRaceRetriesMax && lost_race(r); ++i) {
    ++retries;
    r = conn.request(method, path, body);
  }
  return r;
}

std::string lane_name(long i) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "l%02ld", i);
  return buf;
}

// Creates `n` intents over HTTP from `conns` parallel connections, spread
// round-robin over the nodes' ports.
// lanes > 0: intent i goes to lane l<i mod lanes> (two digits: l00, l01, ...).
double preload_http(const std::vector<std::uint16_t>& ports, const std::string& fact, long n,
                    int conns, int lanes) {
  std::atomic<long> next{0};
  std::atomic<long> failed{0};
  std::atomic<std::uint64_t> repeated{0};
  const Clock::time_point t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < conns; ++c) {
    threads.emplace_back([&, c] {
      HttpConn conn(ports[static_cast<std::size_t>(c) % ports.size()]);
      std::uint64_t retries = 0;
      for (long i; (i = next.fetch_add(1)) < n;) {
        std::string body = R"({"kind":"work","from_facts":[")" + fact + R"("],"spec":{"n":)" +
                           std::to_string(i) + R"(},"creator":"producer")";
        if (lanes > 0) body += R"(,"lane":")" + lane_name(i % lanes) + R"(")";
        body += "}";
        HttpResult r = request_retrying(conn, "POST", "/v1/intents", body, retries);
        if (r.status != 201) {
          if (failed.fetch_add(1) < 5) {
            std::fprintf(stderr, "preload: %d %s\n", r.status, r.body.c_str());
          }
        }
      }
      repeated += retries;
    });
  }
  for (std::thread& t : threads) t.join();
  if (failed > 0) die("preload failed for " + std::to_string(failed.load()) + " intents");
  if (repeated > 0) {
    std::printf("  preload: %llu creates sent again after 409 lost_race\n",
                static_cast<unsigned long long>(repeated.load()));
  }
  return static_cast<double>(n) / secs_since(t0);
}

// Metric families whose deltas over the window are reported as they are
// (per second), when a node exposes them: conflicts, retries, catch-ups.
bool interesting_counter(const std::string& series) {
  if (series.rfind("cairn_", 0) != 0 || series.find("_bucket") != std::string::npos) return false;
  for (const char* w : {"conflict", "retr", "catch", "hydrat", "notif", "stale"}) {
    if (series.find(w) != std::string::npos) return true;
  }
  return false;
}

// Turns a series name with labels into a RESULT key (letters, digits, _).
std::string result_key(const std::string& series) {
  std::string k;
  for (char ch : series) {
    if (std::isalnum(static_cast<unsigned char>(ch)) != 0) {
      k += ch;
    } else if (!k.empty() && k.back() != '_') {
      k += '_';
    }
  }
  while (!k.empty() && k.back() == '_') k.pop_back();
  return k;
}

// cairnd under load. With --pg-url every run gets a fresh PostgreSQL
// database (the store of all nodes); otherwise each node keeps SQLite in its
// own data directory. --nodes N starts N cairnd processes (with --shared,
// each gets --node nK; they then share one database) and spreads the agents
// and the preload connections round-robin over them.
int cmd_cairn(const Args& a) {
  const std::string binary = a.need("cairnd");
  const int agents = static_cast<int>(a.num("agents", 64));
  const long intents = a.num("intents", 40'000);
  const double seconds = a.real("seconds", 8);
  const double warmup = a.real("warmup", 1.5);
  const int runs = static_cast<int>(a.num("runs", 3));
  const std::string tmp = a.str("tmp", "/var/tmp");
  const long wait_ms = a.num("wait-ms", 1000);
  const int nodes = static_cast<int>(a.num("nodes", 1));
  const bool shared = a.flag("shared");
  // Shared mode: writer_turn_wait_ms for the nodes (-1: cairnd's default).
  const long turn_wait_ms = a.num("turn-wait-ms", -1);
  // The admission planner: --lanes N spreads the intents over lanes
  // l00..l<N-1>; --lane-budgets C also configures each of them
  // (`lanes: {l00: {max_concurrency: C, max_cost_units: C}, ...}`), which
  // turns lane budgets on. Without it budgets are off.
  const int lanes = static_cast<int>(a.num("lanes", 0));
  const long lane_budget = a.num("lane-budgets", 0);
  if (lane_budget > 0 && lanes < 1) die("--lane-budgets needs --lanes");
  const std::string pg_url = a.str("pg-url");
  const pid_t postmaster = postmaster_pid(a.str("pgdata"));
  if (nodes < 1) die("--nodes must be at least 1");
  if (shared && pg_url.empty()) die("--shared needs --pg-url");
  const std::string store = pg_url.empty() ? "SQLite (WAL, synchronous=FULL)"
                            : shared       ? "PostgreSQL, shared mode"
                                           : "PostgreSQL, single owner";
  const std::string name =
      a.str("name", pg_url.empty() && nodes == 1 ? "cairn_claim_conclude_" + std::to_string(agents)
                                                 : "cairn_" + std::to_string(nodes) + "_nodes");
  std::printf(
      "cairnd (%s): %d node(s), %d agents, %ld intents preloaded per run, %.1f s window after "
      "%.1f s warm-up, %d runs\n",
      store.c_str(), nodes, agents, intents, seconds, warmup, runs);
  if (lanes > 0) {
    const std::string c = std::to_string(lane_budget);
    const std::string budgets = lane_budget > 0 ? "lane budgets on, each {max_concurrency: " + c +
                                                      ", max_cost_units: " + c + "}"
                                                : "lane budgets off (no lanes: configured)";
    std::printf("  intents spread over %d lanes; %s\n", lanes, budgets.c_str());
  }
  std::vector<RunStats> all;
  for (int run = 1; run <= runs; ++run) {
    const std::string dir = make_temp_dir(tmp, "cairn-http-bench");
    const std::string config = dir + "/cairnd.yaml";
    {
      std::ofstream f(config);
      f << "log_level: warn\nlimits:\n  caller_rate_per_s: 0\n";
      if (turn_wait_ms >= 0) f << "writer_turn_wait_ms: " << turn_wait_ms << "\n";
      if (lane_budget > 0) {
        f << "lanes:\n";
        for (int l = 0; l < lanes; ++l) {
          f << "  " << lane_name(l) << ": {max_concurrency: " << lane_budget
            << ", max_cost_units: " << lane_budget << "}\n";
        }
      }
    }
    std::optional<FreshDatabase> db;
    if (!pg_url.empty()) {
      db.emplace(pg_url, "bench_" + result_key(name) + "_" + std::to_string(::getpid()) + "_" +
                             std::to_string(run));
    }
    std::vector<std::unique_ptr<Cairnd>> d;
    std::vector<std::uint16_t> ports;
    for (int k = 0; k < nodes; ++k) {
      std::vector<std::string> extra;
      if (db) extra = {"--store", db->url()};
      if (shared) {
        extra.push_back("--node");
        extra.push_back("n" + std::to_string(k + 1));
      }
      d.push_back(
          std::make_unique<Cairnd>(binary, dir + "/data-" + std::to_string(k + 1), config, extra));
      ports.push_back(d.back()->port());
    }
    // The seed fact through every node: its id is its content hash, the same
    // everywhere, and each node then knows it before intents refer to it.
    std::string fact;
    for (std::uint16_t port : ports) {
      HttpResult fr = cairn::testing::http(
          port, "POST", "/v1/facts", R"({"kind":"seed","content":"bench","creator":"producer"})");
      if (fr.status != 201 && fr.status != 200) {
        die("seed fact: " + std::to_string(fr.status) + " " + fr.body);
      }
      const std::string id = json_str(fr.json(), "id");
      if (!fact.empty() && id != fact) die("seed fact ids differ between nodes");
      fact = id;
    }
    const double create_rate = preload_http(ports, fact, intents, 64, lanes);
    if (lane_budget > 0) {
      // The budgets must be in force, or "budgets on" would measure budgets off.
      const std::map<std::string, double> m = scrape(ports[0]);
      const auto it = m.find(R"(cairn_lane_max_concurrency{lane="l00"})");
      if (it == m.end() || it->second != static_cast<double>(lane_budget)) {
        for (auto& node : d) node->stop();
        std::filesystem::remove_all(dir);
        die("cairnd did not apply the lanes: configuration (no cairn_lane_max_concurrency of " +
            std::to_string(lane_budget) + " for lane l00 in /metrics)");
      }
    }
    if (db) db->settle();
    std::map<std::string, double> m0, m1;
    double cairnd_cpu0 = 0, cairnd_cpu1 = 0, pg_cpu0 = 0, pg_cpu1 = 0;
    double client_cpu0 = 0, client_cpu1 = 0;
    RunStats s = run_agents(
        agents, warmup, seconds,
        [&](int i, AgentSamples& out, const Window& w) {
          HttpConn conn(ports[static_cast<std::size_t>(i) % ports.size()]);
          const std::string agent = "agent-" + std::to_string(i);
          const std::string claim_body =
              R"({"agent":")" + agent + R"(","max":1,"wait_ms":)" + std::to_string(wait_ms) + "}";
          std::uint64_t n = 0;
          while (!w.stop.load(std::memory_order_relaxed)) {
            const Clock::time_point c0 = Clock::now();
            std::uint64_t retries = 0;
            HttpResult r = request_retrying(conn, "POST", "/v1/claims", claim_body, retries);
            const Clock::time_point c1 = Clock::now();
            if (r.status != 200) {
              count_error(out, "claim", r);
              if (r.status == 0) return;
              continue;
            }
            const Json j = r.json();
            const Json* claims = j.find("claims");
            if (claims == nullptr || claims->size() == 0) {
              ++out.empty_claims;
              continue;
            }
            const Json& c = claims->as_array().front();
            const std::string id = json_str(*c.find("intent"), "id");
            const std::int64_t epoch = *c.find("epoch")->int_if();
            const std::string body =
                R"({"agent":")" + agent + R"(","epoch":)" + std::to_string(epoch) +
                R"(,"result":{"kind":"result","content":{"n":)" + std::to_string(++n) + "}}}";
            HttpResult cr =
                request_retrying(conn, "POST", "/v1/intents/" + id + "/conclude", body, retries);
            const Clock::time_point c2 = Clock::now();
            if (cr.status != 200) {
              count_error(out, "conclude", cr);
              if (cr.status == 0) return;
              continue;
            }
            if (w.inside(c2)) {
              out.record_cycle(c0, c1, c2);
              out.retries += retries;
            }
          }
        },
        [&](bool begin) {
          std::map<std::string, double>& m = begin ? m0 : m1;
          m.clear();
          double cpu = 0;
          for (std::size_t k = 0; k < d.size(); ++k) {
            for (const auto& [series, v] : scrape(ports[k])) m[series] += v;
            cpu += tree_cpu_s(d[k]->pid());
          }
          (begin ? cairnd_cpu0 : cairnd_cpu1) = cpu;
          (begin ? pg_cpu0 : pg_cpu1) = db && postmaster > 0 ? tree_cpu_s(postmaster) : 0;
          (begin ? client_cpu0 : client_cpu1) = self_cpu_s();
        });
    const double cycles = s.cycles_per_s * seconds;
    if (cycles > 0) {
      const double cairnd_us = 1e6 * (cairnd_cpu1 - cairnd_cpu0) / cycles;
      const double pg_us = 1e6 * (pg_cpu1 - pg_cpu0) / cycles;
      s.extra["server_cpu_us_per_cycle"] = cairnd_us + pg_us;
      if (db && postmaster > 0) {
        s.extra["cairnd_cpu_us_per_cycle"] = cairnd_us;
        s.extra["pg_cpu_us_per_cycle"] = pg_us;
      }
      s.extra["client_cpu_us_per_cycle"] = 1e6 * (client_cpu1 - client_cpu0) / cycles;
    }
    const double commits = m1["cairn_commit_batch_ops_count"] - m0["cairn_commit_batch_ops_count"];
    if (commits > 0) {
      const double ops = m1["cairn_commit_batch_ops_sum"] - m0["cairn_commit_batch_ops_sum"];
      const double commit_s =
          m1["cairn_commit_duration_seconds_sum"] - m0["cairn_commit_duration_seconds_sum"];
      s.extra["commits_per_s"] = commits / seconds;
      s.extra["store_ops_per_commit"] = ops / commits;
      s.extra["requests_per_commit"] = 2 * s.cycles_per_s * seconds / commits;
      s.extra["commit_ms_mean"] = 1000 * commit_s / commits;
      // Summed over the nodes: 1.0 = one engine thread committing all the time.
      s.extra["commit_busy_fraction"] = commit_s / seconds;
    }
    s.extra["commit_failures_per_s"] =
        (m1["cairn_commit_failures_total"] - m0["cairn_commit_failures_total"]) / seconds;
    for (const auto& [series, v] : m1) {
      if (!interesting_counter(series)) continue;
      s.extra[result_key(series) + "_per_s"] = (v - m0[series]) / seconds;
    }
    // Replies other than 2xx, by route and status, as the nodes counted them.
    for (const auto& [series, v] : m1) {
      if (series.rfind("cairn_http_requests_total{", 0) != 0) continue;
      if (series.find("status=\"2") != std::string::npos) continue;
      const double delta = v - m0[series];
      if (delta > 0) s.extra[result_key(series) + "_per_s"] = delta / seconds;
    }
    s.extra["create_per_s"] = create_rate;
    for (auto& node : d) node->stop();
    d.clear();
    db.reset();
    print_run(run, s);
    all.push_back(s);
    std::filesystem::remove_all(dir);
  }
  print_result(name, all);
  return 0;
}

// ---- the PostgreSQL queue --------------------------------------------------------------

constexpr const char* kPgSchema = R"SQL(
CREATE TABLE IF NOT EXISTS jobs (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  spec jsonb NOT NULL DEFAULT '{}',
  state text NOT NULL DEFAULT 'ready',
  holder text,
  epoch integer NOT NULL DEFAULT 0,
  lease_expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (id) WHERE state = 'ready';
CREATE TABLE IF NOT EXISTS results (
  id bigserial PRIMARY KEY,
  job_id bigint NOT NULL REFERENCES jobs(id),
  agent text NOT NULL,
  kind text NOT NULL,
  content jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
)SQL";

// The classic queue claim: the oldest ready job, skipping rows other
// transactions hold locked.
constexpr const char* kPgClaim =
    "UPDATE jobs SET state = 'claimed', holder = $1, epoch = epoch + 1,"
    " lease_expires_at = now() + interval '30 seconds'"
    " WHERE id = (SELECT id FROM jobs WHERE state = 'ready' ORDER BY id"
    " FOR UPDATE SKIP LOCKED LIMIT 1)"
    " RETURNING id, epoch";
// Conclude in one transaction (one statement): mark the job done if the
// caller still holds it at this epoch (fencing, as cairn does), and insert
// the result row.
constexpr const char* kPgConclude =
    "WITH done AS (UPDATE jobs SET state = 'done', lease_expires_at = NULL"
    " WHERE id = $1 AND holder = $2 AND epoch = $3 AND state = 'claimed' RETURNING id)"
    " INSERT INTO results (job_id, agent, kind, content)"
    " SELECT id, $2, 'result', $4::jsonb FROM done RETURNING id";

int cmd_pg(const Args& a) {
  const std::string conninfo = a.need("conninfo");
  const int agents = static_cast<int>(a.num("agents", 64));
  const long jobs = a.num("jobs", 200'000);
  const double seconds = a.real("seconds", 8);
  const double warmup = a.real("warmup", 1.5);
  const int runs = static_cast<int>(a.num("runs", 3));
  const bool claim_only = a.flag("claim-only");
  // The postmaster's pid (first line of DATA/postmaster.pid), for the
  // server's CPU time; optional.
  const pid_t postmaster = postmaster_pid(a.str("pgdata"));
  // --fresh-db: each run in a database of its own (conninfo must be a URL),
  // created and dropped around the run, as the cairnd runs on PostgreSQL do.
  const bool fresh_db = a.flag("fresh-db");
  {
    PgConn setup(conninfo);
    std::printf(
        "postgres %s: fsync=%s synchronous_commit=%s full_page_writes=%s "
        "shared_buffers=%s wal_level=%s\n",
        setup.scalar("SHOW server_version").c_str(), setup.scalar("SHOW fsync").c_str(),
        setup.scalar("SHOW synchronous_commit").c_str(),
        setup.scalar("SHOW full_page_writes").c_str(), setup.scalar("SHOW shared_buffers").c_str(),
        setup.scalar("SHOW wal_level").c_str());
  }
  std::printf(
      "postgres queue: %d connections, %s, %ld jobs per run, %.1f s window after %.1f s "
      "warm-up, %d runs\n",
      agents, claim_only ? "claim only" : "claim → conclude", jobs, seconds, warmup, runs);
  std::vector<RunStats> all;
  for (int run = 1; run <= runs; ++run) {
    std::optional<FreshDatabase> db;
    if (fresh_db) {
      db.emplace(conninfo, std::string(claim_only ? "bench_queue_claim_" : "bench_queue_") +
                               std::to_string(::getpid()) + "_" + std::to_string(run));
    }
    const std::string run_conninfo = db ? db->url() : conninfo;
    {
      PgConn setup(run_conninfo);
      setup.exec(kPgSchema);
      setup.exec("TRUNCATE results, jobs RESTART IDENTITY");
      setup.exec(
          "INSERT INTO jobs (kind, spec) SELECT 'work', jsonb_build_object('n', g)"
          " FROM generate_series(1, " +
          std::to_string(jobs) + ") g");
      setup.exec("VACUUM ANALYZE jobs");
      setup.exec("CHECKPOINT");
    }
    double server_cpu0 = 0, server_cpu1 = 0, client_cpu0 = 0, client_cpu1 = 0;
    RunStats s = run_agents(
        agents, warmup, seconds,
        [&](int i, AgentSamples& out, const Window& w) {
          PgConn conn(run_conninfo);
          conn.prepare("claim", kPgClaim, 1);
          conn.prepare("conclude", kPgConclude, 4);
          const std::string agent = "agent-" + std::to_string(i);
          std::uint64_t n = 0;
          while (!w.stop.load(std::memory_order_relaxed)) {
            const Clock::time_point c0 = Clock::now();
            const char* cp[1] = {agent.c_str()};
            PGresult* r = PQexecPrepared(conn.c, "claim", 1, cp, nullptr, nullptr, 0);
            const Clock::time_point c1 = Clock::now();
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
              ++out.errors[std::string("claim ") + PQresStatus(PQresultStatus(r))];
              PQclear(r);
              continue;
            }
            if (PQntuples(r) == 0) {
              PQclear(r);
              ++out.empty_claims;
              continue;
            }
            const std::string id = PQgetvalue(r, 0, 0);
            const std::string epoch = PQgetvalue(r, 0, 1);
            PQclear(r);
            if (claim_only) {
              if (w.inside(c1)) {
                ++out.cycles;
                out.claim_us.push_back(us_between(c0, c1));
              }
              continue;
            }
            const std::string content = R"({"n":)" + std::to_string(++n) + "}";
            const char* p[4] = {id.c_str(), agent.c_str(), epoch.c_str(), content.c_str()};
            PGresult* cr = PQexecPrepared(conn.c, "conclude", 4, p, nullptr, nullptr, 0);
            const Clock::time_point c2 = Clock::now();
            if (PQresultStatus(cr) != PGRES_TUPLES_OK || PQntuples(cr) != 1) {
              ++out.errors[std::string("conclude ") + PQresStatus(PQresultStatus(cr))];
              PQclear(cr);
              continue;
            }
            PQclear(cr);
            if (w.inside(c2)) out.record_cycle(c0, c1, c2);
          }
        },
        [&](bool begin) {
          (begin ? server_cpu0 : server_cpu1) = postmaster > 0 ? tree_cpu_s(postmaster) : 0;
          (begin ? client_cpu0 : client_cpu1) = self_cpu_s();
        });
    const double cycles = s.cycles_per_s * seconds;
    if (cycles > 0) {
      if (postmaster > 0) {
        s.extra["server_cpu_us_per_cycle"] = 1e6 * (server_cpu1 - server_cpu0) / cycles;
      }
      s.extra["client_cpu_us_per_cycle"] = 1e6 * (client_cpu1 - client_cpu0) / cycles;
    }
    print_run(run, s);
    all.push_back(s);
  }
  print_result(
      std::string(claim_only ? "pg_claim_only_" : "pg_claim_conclude_") + std::to_string(agents),
      all);
  return 0;
}

// ---- restart with many intents --------------------------------------------------------

double thread_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The engine over a SqliteStore, driven synchronously (as cairnd's engine
// thread does, without the HTTP layer).
struct InProcess {
  std::unique_ptr<cairn::backend::SqliteStore> store;
  std::unique_ptr<cairn::engine::Engine> engine;
  std::vector<cairn::engine::ReplyEffect> replies;
  cairn::engine::RequestId next = 1;

  explicit InProcess(const std::string& db) {
    auto s = cairn::backend::SqliteStore::open(db);
    if (!s.ok()) die("open " + db + ": " + s.status().to_string());
    store = std::move(s).value();
    cairn::engine::EngineConfig config;
    config.ingress_max = 1u << 20;
    engine = std::make_unique<cairn::engine::Engine>(config, 42, wall_ms());
    if (cairn::Status st = engine->load(*store); !st.ok()) die("load: " + st.to_string());
  }
  void submit(std::string caller, cairn::engine::Command c) {
    if (!engine->submit(cairn::engine::Request{next++, std::move(caller), {}, std::move(c)}).ok()) {
      die("submit refused");
    }
  }
  // Polls until quiet; every reply must be ok.
  void run() {
    for (;;) {
      cairn::engine::PollResult r = engine->poll(wall_ms());
      if (r.effects.empty()) return;
      for (cairn::engine::Effect& e : r.effects) {
        if (auto* c = std::get_if<cairn::engine::CommitEffect>(&e)) {
          engine->complete_commit(c->commit_id, store->commit(c->batch));
        } else if (auto* rep = std::get_if<cairn::engine::ReplyEffect>(&e)) {
          if (!rep->status.ok()) die("request failed: " + rep->status.to_string());
          replies.push_back(std::move(*rep));
        }
      }
    }
  }
};

int cmd_build_data(const Args& a) {
  using namespace cairn::engine;
  const std::string dir = a.need("dir");
  const long intents = a.num("intents", 1'000'000);
  const long claimed = a.num("claimed", 10'000);
  const long concluded = a.num("concluded", 10'000);
  std::filesystem::create_directories(dir);
  const Clock::time_point t0 = Clock::now();
  InProcess p(dir + "/cairn.db");
  cairn::FactBody seed;
  seed.kind = "seed";
  seed.content = Json("restart bench");
  seed.creator = "producer";
  p.submit("producer", PostFact{seed});
  p.run();
  const std::string fact = json_str(p.replies.back().body, "id");
  p.replies.clear();
  constexpr long kPerCycle = 1'024;  // EngineConfig::commands_per_cycle_max
  for (long i = 0; i < intents; i += kPerCycle) {
    for (long k = i; k < std::min(intents, i + kPerCycle); ++k) {
      cairn::IntentDraft d;
      d.kind = "work";
      d.from_facts = {fact};
      d.spec = Json(cairn::JsonObject{{"n", Json(static_cast<std::int64_t>(k))}});
      d.creator = "producer";
      p.submit("producer", CreateIntent{std::move(d)});
    }
    p.run();
    p.replies.clear();
    if ((i / kPerCycle) % 100 == 99) {
      std::printf("  %ld intents (%.0f/s)\n", i + kPerCycle,
                  static_cast<double>(i + kPerCycle) / secs_since(t0));
      std::fflush(stdout);
    }
  }
  const double create_s = secs_since(t0);
  // Claims: 24 h leases, so they are still open when cairnd restarts. One
  // agent per 64 claims (the per-agent lease limit).
  for (long i = 0; i < claimed + concluded; i += 256) {
    for (long k = i; k < std::min(claimed + concluded, i + 256); ++k) {
      ClaimNext c;
      c.ttl_ms = 24LL * 3600 * 1000;
      p.submit("holder-" + std::to_string(k / 64), std::move(c));
    }
    p.run();
  }
  std::vector<ReplyEffect> claims = std::move(p.replies);
  p.replies.clear();
  for (long i = 0; i < concluded; ++i) {
    const Json& c = claims[static_cast<std::size_t>(i)].body.find("claims")->as_array().at(0);
    cairn::FactBody result;
    result.kind = "result";
    result.content = Json(cairn::JsonObject{{"n", Json(static_cast<std::int64_t>(i))}});
    p.submit("holder-" + std::to_string(i / 64),
             Conclude{json_str(*c.find("intent"), "id"),
                      static_cast<std::uint64_t>(*c.find("epoch")->int_if()), result});
    if (i % 256 == 255) p.run();
  }
  p.run();
  const auto& bb = p.engine->blackboard();
  std::printf(
      "built %s in %.1f s (%ld creates at %.0f/s): %llu open, %llu claimed, %llu "
      "concluded, %llu facts\n",
      dir.c_str(), secs_since(t0), intents, static_cast<double>(intents) / create_s,
      static_cast<unsigned long long>(bb.count(cairn::IntentState::kOpen)),
      static_cast<unsigned long long>(bb.count(cairn::IntentState::kClaimed)),
      static_cast<unsigned long long>(bb.count(cairn::IntentState::kConcluded)),
      static_cast<unsigned long long>(bb.fact_count()));
  return 0;
}

// The engine over SqliteStore without HTTP: `batch` agents claim, then
// conclude, per round (two group commits per round), for `seconds`. Splits
// the time between the engine (dispatch, replies) and the store's commit.
int cmd_engine(const Args& a) {
  using namespace cairn::engine;
  const long batch = a.num("batch", 32);
  const long backlog = a.num("intents", 20'000);
  const double seconds = a.real("seconds", 5);
  const std::string dir = make_temp_dir(a.str("tmp", "/var/tmp"), "cairn-engine-bench");
  {
    InProcess p(dir + "/cairn.db");
    cairn::FactBody seed;
    seed.kind = "seed";
    seed.content = Json("engine bench");
    p.submit("producer", PostFact{seed});
    p.run();
    const std::string fact = json_str(p.replies.back().body, "id");
    p.replies.clear();
    auto create = [&](long n) {
      for (long k = 0; k < n; ++k) {
        cairn::IntentDraft d;
        d.kind = "work";
        d.from_facts = {fact};
        d.spec = Json(cairn::JsonObject{{"n", Json(static_cast<std::int64_t>(k))}});
        p.submit("producer", CreateIntent{std::move(d)});
        if (k % 1024 == 1023) p.run();
      }
      p.run();
      p.replies.clear();
    };
    create(backlog);
    double commit_s = 0;
    double commit_cpu_s = 0;
    double total_s = 0;
    long commits = 0;
    long ops = 0;
    long cycles = 0;
    std::int64_t salt = 0;
    // Polls until quiet, timing commits separately.
    auto run = [&] {
      for (;;) {
        PollResult r = p.engine->poll(wall_ms());
        if (r.effects.empty()) return;
        for (Effect& e : r.effects) {
          if (auto* c = std::get_if<CommitEffect>(&e)) {
            const Clock::time_point t0 = Clock::now();
            const double cpu0 = thread_cpu_s();
            auto res = p.store->commit(c->batch);
            commit_s += secs_since(t0);
            commit_cpu_s += thread_cpu_s() - cpu0;
            ++commits;
            ops += static_cast<long>(c->batch.op_count());
            p.engine->complete_commit(c->commit_id, std::move(res));
          } else if (auto* rep = std::get_if<ReplyEffect>(&e)) {
            if (!rep->status.ok()) die("request failed: " + rep->status.to_string());
            p.replies.push_back(std::move(*rep));
          }
        }
      }
    };
    const Clock::time_point start = Clock::now();
    const double cpu_start = thread_cpu_s();
    double cpu_untimed = 0;
    while (secs_since(start) < seconds) {
      const Clock::time_point t0 = Clock::now();
      for (long i = 0; i < batch; ++i) p.submit("agent-" + std::to_string(i), ClaimNext{});
      run();
      std::vector<ReplyEffect> claims = std::move(p.replies);
      p.replies.clear();
      for (std::size_t i = 0; i < claims.size(); ++i) {
        const Json& c = claims[i].body.find("claims")->as_array().at(0);
        cairn::FactBody result;
        result.kind = "result";
        result.content = Json(cairn::JsonObject{{"n", Json(++salt)}});
        p.submit("agent-" + std::to_string(i),
                 Conclude{json_str(*c.find("intent"), "id"),
                          static_cast<std::uint64_t>(*c.find("epoch")->int_if()), result});
      }
      run();
      p.replies.clear();
      total_s += secs_since(t0);
      cycles += batch;
      if (p.engine->blackboard().count(cairn::IntentState::kOpen) < static_cast<unsigned>(batch)) {
        const double c0 = thread_cpu_s();
        create(backlog / 2);  // not timed
        cpu_untimed += thread_cpu_s() - c0;
      }
    }
    std::printf(
        "engine+sqlite batch %ld: %.0f cycles/s; per round of %ld claims + %ld concludes: "
        "%.2f ms, of which commit %.2f ms (%.0f%%), %.0f store ops per commit\n",
        batch, static_cast<double>(cycles) / total_s, batch, batch,
        1000 * total_s / static_cast<double>(cycles / batch),
        1000 * commit_s / static_cast<double>(cycles / batch), 100 * commit_s / total_s,
        static_cast<double>(ops) / static_cast<double>(commits));
    const double rounds = static_cast<double>(cycles / batch);
    std::printf("  CPU per round: %.2f ms in all, %.2f ms in commit; commit wall %.2f ms\n",
                1000 * (thread_cpu_s() - cpu_start - cpu_untimed) / rounds,
                1000 * commit_cpu_s / rounds, 1000 * commit_s / rounds);
    std::printf("RESULT engine_sqlite_batch_%ld cycles_per_s=%.0f commit_fraction=%.3f\n", batch,
                static_cast<double>(cycles) / total_s, commit_s / total_s);
  }
  std::filesystem::remove_all(dir);
  return 0;
}

long file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : 0;
}

int cmd_restart(const Args& a) {
  const std::string binary = a.need("cairnd");
  const std::string dir = a.need("dir");
  const int runs = static_cast<int>(a.num("runs", 3));
  std::vector<double> to_url, to_state;
  std::string counts;
  for (int run = 1; run <= runs; ++run) {
    Cairnd d(binary, dir, "");
    const double url_s = std::chrono::duration<double>(d.url_printed() - d.started()).count();
    HttpResult r;
    for (;;) {
      r = cairn::testing::http(d.port(), "GET", "/v1/state");
      if (r.status == 200) break;
      if (secs_since(d.started()) > 600) die("GET /v1/state never answered 200");
    }
    const double state_s = secs_since(d.started());
    counts = r.body;
    d.stop();
    std::printf("  run %d: URL printed after %.2f s, first GET /v1/state 200 after %.2f s\n", run,
                url_s, state_s);
    std::fflush(stdout);
    to_url.push_back(url_s);
    to_state.push_back(state_s);
  }
  std::printf("  state: %s\n", counts.c_str());
  const long db = file_size(dir + "/cairn.db");
  const long wal = file_size(dir + "/cairn.db-wal");
  std::printf("RESULT restart runs=%d url_s=%.3f state_s=%.3f db_bytes=%ld wal_bytes=%ld\n", runs,
              median(to_url), median(to_state), db, wal);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    std::fprintf(stderr, "usage: cairn-http-bench cairn|pg|build-data|restart [--flags]\n");
    return 2;
  }
  const std::string mode = argv[1];
  const Args args(argc, argv, 2);
  if (mode == "cairn") return cmd_cairn(args);
  if (mode == "pg") return cmd_pg(args);
  if (mode == "build-data") return cmd_build_data(args);
  if (mode == "restart") return cmd_restart(args);
  if (mode == "engine") return cmd_engine(args);
  die("unknown mode " + mode);
}

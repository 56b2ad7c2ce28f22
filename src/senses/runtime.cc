// runtime.cc — see runtime.h.
#include "senses/runtime.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <utility>

#include "model/json_parse.h"
#include "model/names.h"
#include "model/predicate.h"
#include "model/sha256.h"
#include "senses/process.h"
#include "senses/sense_db.h"

namespace cairn::senses {

namespace {

class SystemClock final : public Clock {
 public:
  std::int64_t monotonic_ns() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  std::int64_t wall_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS senses(
  name TEXT PRIMARY KEY, state TEXT, last_signal_id TEXT, last_signal TEXT, pending_signal TEXT,
  pending_trigger TEXT,
  health TEXT NOT NULL, running INTEGER NOT NULL, runs INTEGER NOT NULL,
  failures INTEGER NOT NULL, coalesced INTEGER NOT NULL, last_run_at INTEGER NOT NULL,
  last_ok_at INTEGER NOT NULL, next_run_at INTEGER NOT NULL, last_error TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY AUTOINCREMENT, workflow TEXT NOT NULL, reflex TEXT NOT NULL,
  trigger_fact TEXT NOT NULL, intent TEXT NOT NULL, status TEXT NOT NULL,
  detail TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  UNIQUE(workflow, reflex, trigger_fact));
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(workflow, status, id);
CREATE INDEX IF NOT EXISTS runs_by_intent ON runs(intent);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
)sql";

// A run that only posts the signal a failure or a crash left pending.
Trigger flush_trigger() {
  Trigger t;
  t.type = "flush";
  return t;
}

// Who signals and starts runs when cairnd has no auth (with auth, the
// token's name).
constexpr std::string_view kCreator = "senses";

// Finished runs kept in runtime.db (the oldest beyond it are deleted).
constexpr std::int64_t kFinishedRunsKept = 10'000;
constexpr std::int64_t kPruneEveryRuns = 100;

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return s_ != nullptr; }
  Stmt& text(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  Stmt& num(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // SQLITE_ROW / SQLITE_DONE / an error.
  int step() { return s_ ? sqlite3_step(s_) : SQLITE_ERROR; }
  std::string col_text(int i) const {
    const auto* p = sqlite3_column_text(s_, i);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(s_, i)))
             : std::string();
  }
  bool col_null(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }
  std::int64_t col_num(int i) const { return sqlite3_column_int64(s_, i); }

 private:
  sqlite3_stmt* s_ = nullptr;
};

Status db_error(sqlite3* db, std::string_view what) {
  return unavailable(std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "no database"),
                     "runtime_db");
}

Status exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    return unavailable(std::string("runtime.db: ") + m, "runtime_db");
  }
  return Status();
}

Json parse_or_null(const std::string& text) {
  if (text.empty()) return Json();
  auto j = parse_json(text);
  return j.ok() ? std::move(j).value() : Json();
}

std::string runtime_db_path(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "senses" / "runtime.db").string();
}

Result<sqlite3*> open_db(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  const int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    Status s = db_error(db, "opening " + path);
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5'000);
  return db;
}

// The statuses a run's intent ends in (docs/senses.md#workflows).
// The status a run ends in when its intent reaches terminal `state`; empty
// for a state that is not terminal. (The intent's event is "intent.<state>".)
std::string_view run_status_for_state(std::string_view state) {
  if (state == "concluded") return "completed";
  if (state == "dead") return "failed";
  if (state == "cancelled" || state == "stale" || state == "coalesced") return "interrupted";
  return {};  // not terminal
}

bool transient(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kOutcomeUnknown;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

Json sense_row_json(Stmt& q) {
  // name, health, running, runs, failures, coalesced, last_run_at, last_ok_at,
  // next_run_at, last_error, last_signal_id
  return Json(JsonObject{{"name", Json(q.col_text(0))},
                         {"health", Json(q.col_text(1))},
                         {"running", Json(q.col_num(2) != 0)},
                         {"runs", Json(q.col_num(3))},
                         {"failures", Json(q.col_num(4))},
                         {"coalesced", Json(q.col_num(5))},
                         {"last_run_at", Json(q.col_num(6))},
                         {"last_ok_at", Json(q.col_num(7))},
                         {"next_run_at", Json(q.col_num(8))},
                         {"last_error", Json(q.col_text(9))},
                         {"last_signal", q.col_null(10) ? Json() : Json(q.col_text(10))}});
}

Json status_from(sqlite3* db) {
  JsonArray out;
  Stmt q(db,
         "SELECT name, health, running, runs, failures, coalesced, last_run_at, last_ok_at, "
         "next_run_at, last_error, last_signal_id FROM senses ORDER BY name");
  while (q.step() == SQLITE_ROW) out.push_back(sense_row_json(q));
  return Json(JsonObject{{"senses", Json(std::move(out))}});
}

// "new" (being recorded) and "starting" (its intent being created) are
// the runtime's own steps: to a reader the run is still queued.
std::string public_status(std::string status) {
  return status == "new" || status == "starting" ? "queued" : status;
}

Json runs_from(sqlite3* db, std::string_view workflow, std::size_t limit) {
  JsonArray out;
  Stmt q(db,
         "SELECT id, workflow, reflex, trigger_fact, intent, status, detail, created_at, "
         "updated_at FROM runs WHERE (?1 = '' OR workflow = ?1) ORDER BY id DESC LIMIT ?2");
  q.text(1, workflow).num(2, static_cast<std::int64_t>(limit));
  while (q.step() == SQLITE_ROW) {
    out.push_back(Json(JsonObject{{"id", Json(q.col_num(0))},
                                  {"workflow", Json(q.col_text(1))},
                                  {"reflex", Json(q.col_text(2))},
                                  {"trigger_fact", Json(q.col_text(3))},
                                  {"intent", Json(q.col_text(4))},
                                  {"status", Json(public_status(q.col_text(5)))},
                                  {"detail", Json(q.col_text(6))},
                                  {"created_at", Json(q.col_num(7))},
                                  {"updated_at", Json(q.col_num(8))}}));
  }
  return Json(JsonObject{{"runs", Json(std::move(out))}});
}

}  // namespace

struct Runtime::Sense {
  Sense(SenseConfig c, SchedulePolicy p, std::int64_t now) : cfg(std::move(c)), sched(p, now) {}
  SenseConfig cfg;
  SenseSchedule sched;
  std::string db_path;
  std::string peers;      // CAIRN_PEER_DBS
  bool prepared = false;  // migrations applied (touched by its run thread only)
  Json state;             // null until a run sets it
  std::string last_signal_id;
  Json last_signal;
  std::optional<Json> pending;  // a signal fact body not yet acknowledged by cairnd
  std::int64_t last_run_at = 0;
  std::int64_t last_ok_at = 0;
  std::string last_error;
  std::atomic<bool> cancel{false};
  std::thread thread;
  bool done = false;  // its run thread has ended and may be joined
};

Runtime::Runtime(ObserveConfig config, RuntimeOptions options)
    : config_(std::move(config)), options_(std::move(options)) {
  if (options_.clock == nullptr) {
    own_clock_ = std::make_unique<SystemClock>();
    clock_ = own_clock_.get();
  } else {
    clock_ = options_.clock;
  }
}

Runtime::~Runtime() {
  stop();
}

std::int64_t Runtime::mono_ms() const {
  return clock_->monotonic_ms();
}
std::int64_t Runtime::wall_ms() const {
  return clock_->wall_ms();
}

Result<std::unique_ptr<client::Client>> Runtime::make_client() const {
  return client::Client::create(options_.api);
}

Status Runtime::start() {
  std::unique_lock lk(mu_);
  if (started_) return Status();
  Status st = start_locked();
  if (!st.ok()) {
    // Nothing half-started stays behind: no open database, no senses.
    sqlite3_close(db_);
    db_ = nullptr;
    senses_.clear();
    sense_by_name_.clear();
    workflow_by_name_.clear();
    return st;
  }
  started_ = true;
  stopping_ = false;
  stop_flag_ = false;
  lk.unlock();
  watcher_ = std::thread([this] { watcher_loop(); });
  scheduler_ = std::thread([this] { scheduler_loop(); });
  return Status();
}

Status Runtime::start_locked() {
  const std::filesystem::path dir = std::filesystem::path(options_.data_dir) / "senses";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return unavailable("cannot create " + dir.string() + ": " + ec.message(), "runtime_db");
  CAIRN_ASSIGN_OR_RETURN(db_, open_db(runtime_db_path(options_.data_dir), false));
  CAIRN_RETURN_IF_ERROR(exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  CAIRN_RETURN_IF_ERROR(exec(db_, kSchema));

  for (const WorkflowConfig& w : config_.workflows) workflow_by_name_[w.name] = &w;
  const std::int64_t now = mono_ms();
  for (const SenseConfig& sc : config_.senses) {
    SchedulePolicy p;
    p.interval_ms = sc.interval_ms;
    p.throttle_ms = sc.throttle_ms;
    p.backoff_initial_ms = options_.limits.backoff_initial_ms;
    p.backoff_max_ms = options_.limits.backoff_max_ms;
    auto s = std::make_unique<Sense>(sc, p, now);
    s->db_path = (dir / (sc.name + ".db")).string();
    // What a run left behind when this runtime's predecessor was killed.
    if (const std::size_t n = kill_leftovers("CAIRN_SENSE_DB=" + s->db_path);
        n > 0 && options_.local_log) {
      options_.local_log("warn", "sense " + sc.name + ": killed " + std::to_string(n) +
                                     " processes a killed runtime left running");
    }
    Stmt q(db_,
           "SELECT state, last_signal_id, last_signal, pending_signal, pending_trigger, "
           "last_run_at, last_ok_at, last_error, failures FROM senses WHERE name = ?");
    q.text(1, sc.name);
    if (q.step() == SQLITE_ROW) {
      s->state = parse_or_null(q.col_text(0));
      s->last_signal_id = q.col_text(1);
      s->last_signal = parse_or_null(q.col_text(2));
      if (!q.col_null(3)) {
        s->pending = parse_or_null(q.col_text(3));
        if (s->pending->is_null()) s->pending.reset();
      }
      // The status carries over a restart (runs and coalesced count afresh).
      s->last_run_at = q.col_num(5);
      s->last_ok_at = q.col_num(6);
      s->last_error = q.col_text(7);
      s->sched.restore_failures(q.col_num(8));
      // A trigger that had not run yet when the runtime stopped still runs.
      if (!q.col_null(4)) {
        if (auto t = Trigger::from_json(parse_or_null(q.col_text(4)))) s->sched.trigger(*t);
      }
    }
    // A signal a crash left unposted is posted by a run that does only that.
    if (s->pending && !s->sched.pending()) s->sched.trigger(flush_trigger());
    sense_by_name_[sc.name] = s.get();
    senses_.push_back(std::move(s));
  }
  for (auto& s : senses_) {
    std::vector<std::pair<std::string, std::string>> group;
    for (auto& o : senses_) {
      if (o->cfg.group == s->cfg.group) group.emplace_back(o->cfg.name, o->db_path);
    }
    s->peers = peer_dbs_value(s->cfg.name, group);
    save_sense(*s);
  }
  // Senses no longer configured leave the status list.
  {
    std::string keep = "DELETE FROM senses WHERE name NOT IN (";
    for (std::size_t i = 0; i < senses_.size(); ++i) keep += i ? ",?" : "?";
    keep += ")";
    Stmt del(db_, keep.c_str());
    for (std::size_t i = 0; i < senses_.size(); ++i) {
      del.text(static_cast<int>(i + 1), senses_[i]->cfg.name);
    }
    del.step();
  }
  // The watch cursor. The first start begins at "now": the seq the caller
  // gives (cairnd's own, read from its store), else cairnd's last_seq.
  {
    Stmt q(db_, "SELECT value FROM meta WHERE key = 'cursor'");
    if (q.step() != SQLITE_ROW) {
      std::optional<std::uint64_t> first = options_.initial_cursor;
      if (!first) {
        CAIRN_ASSIGN_OR_RETURN(auto c, make_client());
        auto st = c->state();
        if (!st.ok()) {
          return unavailable("cannot reach cairnd at " + options_.api.url +
                                 " to learn where its event log ends: " + st.status().message(),
                             "unreachable");
        }
        const Json* last = st->find("last_seq");
        if (last == nullptr || !last->int_if()) {
          return unavailable("cairnd's GET /v1/state has no last_seq", "bad_response");
        }
        first = static_cast<std::uint64_t>(*last->int_if());
      }
      Stmt ins(db_, "INSERT INTO meta(key, value) VALUES('cursor', ?1)");
      ins.text(1, std::to_string(*first));
      if (ins.step() != SQLITE_DONE) return db_error(db_, "saving the watch cursor");
    }
  }
  return Status();
}

void Runtime::stop() {
  std::lock_guard stop_lk(stop_mu_);  // a second caller waits for the first
  {
    std::lock_guard lk(mu_);
    if (!started_) return;
    stopping_ = true;
    stop_flag_ = true;
    for (auto& s : senses_) s->cancel = true;
  }
  cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  if (watcher_.joinable()) watcher_.join();
  for (auto& s : senses_) {
    if (s->thread.joinable()) s->thread.join();
  }
  std::lock_guard lk(mu_);
  for (auto& s : senses_) {
    s->done = false;
    save_sense(*s);
  }
  sqlite3_close(db_);
  db_ = nullptr;
  started_ = false;
}

// ---- senses ----

void Runtime::save_sense(const Sense& s) {
  const std::int64_t now = mono_ms();
  const auto next = s.sched.next_run_at();
  const std::int64_t next_wall = next ? wall_ms() + std::max<std::int64_t>(0, *next - now) : 0;
  std::string health = "never_run";
  if (s.sched.failures() > 0) {
    health = "failing";
  } else if (s.last_ok_at != 0) {
    health = "ok";
  }
  Stmt q(db_,
         "INSERT INTO senses(name, state, last_signal_id, last_signal, pending_signal, health, "
         "running, runs, failures, coalesced, last_run_at, last_ok_at, next_run_at, last_error, "
         "pending_trigger) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15) "
         "ON CONFLICT(name) DO UPDATE SET state=?2, last_signal_id=?3, last_signal=?4, "
         "pending_signal=?5, health=?6, running=?7, runs=?8, failures=?9, coalesced=?10, "
         "last_run_at=?11, last_ok_at=?12, next_run_at=?13, last_error=?14, pending_trigger=?15");
  q.text(1, s.cfg.name);
  if (s.state.is_null()) {
    q.null(2);
  } else {
    q.text(2, to_json(s.state));
  }
  if (s.last_signal_id.empty()) {
    q.null(3).null(4);
  } else {
    q.text(3, s.last_signal_id).text(4, to_json(s.last_signal));
  }
  if (s.pending) {
    q.text(5, to_json(*s.pending));
  } else {
    q.null(5);
  }
  q.text(6, health)
      .num(7, s.sched.running() ? 1 : 0)
      .num(8, s.sched.runs())
      .num(9, s.sched.failures())
      .num(10, s.sched.coalesced())
      .num(11, s.last_run_at)
      .num(12, s.last_ok_at)
      .num(13, next_wall)
      .text(14, s.last_error);
  if (const auto& t = s.sched.pending_trigger(); t && t->type != "flush") {
    q.text(15, to_json(t->to_json()));
  } else {
    q.null(15);
  }
  if (q.step() != SQLITE_DONE && options_.local_log) {
    options_.local_log("error",
                       "runtime.db: cannot save sense " + s.cfg.name + ": " + sqlite3_errmsg(db_));
  }
}

void Runtime::scheduler_loop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    for (auto& s : senses_) {
      if (s->done) {
        s->thread.join();
        s->done = false;
      }
    }
    const std::int64_t now = mono_ms();
    std::optional<std::int64_t> wake;
    for (auto& s : senses_) {
      const auto at = s->sched.next_run_at();
      if (!at) continue;
      if (*at > now) {
        wake = wake ? std::min(*wake, *at) : *at;
        continue;
      }
      if (running_ >= options_.limits.runs_at_once_max || s->thread.joinable()) continue;
      Trigger t = s->sched.start(now);
      ++running_;
      s->last_run_at = wall_ms();
      save_sense(*s);
      Sense* sp = s.get();
      s->thread =
          std::thread([this, sp, t = std::move(t)]() mutable { run_sense(*sp, std::move(t)); });
    }
    if (wake) {
      cv_.wait_for(lk, std::chrono::milliseconds(*wake - now));
    } else {
      cv_.wait(lk);
    }
  }
}

void Runtime::run_sense(Sense& s, Trigger trigger) {
  Status result;
  auto cr = make_client();
  std::unique_ptr<client::Client> c;
  const std::string source = "sense." + s.cfg.name;
  Json detail = JsonObject{{"trigger", Json(trigger.type)}};
  if (!cr.ok()) {
    result = cr.status();
  } else {
    c = std::move(cr).value();
  }
  if (result.ok() && !s.prepared) {
    auto r = prepare_sense_db(s.db_path, s.cfg.migrations_dir, wall_ms());
    if (!r.ok()) {
      result = invalid("migrations: " + r.status().message(), "migration_failed");
    } else {
      s.prepared = true;
      if (!r->applied.empty()) {
        JsonArray names;
        for (const auto& n : r->applied) names.push_back(Json(n));
        log(*c, source, "sense.migrated", s.cfg.name, JsonObject{{"applied", Json(names)}});
      }
    }
  }
  if (result.ok()) result = post_pending(s, *c);
  if (result.ok() && trigger.type != "flush") {
    Json input = JsonObject{
        {"state", s.state},
        {"last_signal", s.last_signal_id.empty() ? Json()
                                                 : Json(JsonObject{{"id", Json(s.last_signal_id)},
                                                                   {"value", s.last_signal}})},
        {"trigger", trigger.to_json()}};
    ProcessSpec spec;
    if (!s.cfg.argv.empty()) {
      spec.argv = s.cfg.argv;
    } else {
      spec.argv = {"/bin/sh", "-c", s.cfg.shell};
    }
    spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "CAIRN_SENSE=" + s.cfg.name,
                "CAIRN_SENSE_DB=" + s.db_path, "CAIRN_PEER_DBS=" + s.peers};
    spec.cwd = s.cfg.workdir;
    spec.stdin_data = to_json(input);
    spec.timeout_ms = s.cfg.timeout_ms;
    spec.grace_ms = s.cfg.grace_ms;
    spec.limits.stdout_bytes_max = options_.limits.output_bytes_max;
    spec.limits.stderr_bytes_max = options_.limits.stderr_bytes_max;
    ProcessResult pr = run_process(spec, &s.cancel);
    detail.set("duration_ms", Json(pr.duration_ms));
    if (!pr.err.empty()) {
      detail.set("stderr", Json(utf8_prefix(pr.err, options_.limits.stderr_log_bytes_max)));
    }
    switch (pr.end) {
      case End::kExited:
        if (pr.exit_code != 0) {
          detail.set("exit_code", Json(pr.exit_code));
          result = invalid("exited with status " + std::to_string(pr.exit_code), "exit_status");
        } else {
          result = finish_output(s, *c, pr.out, trigger);
        }
        break;
      case End::kSignaled:
        detail.set("signal", Json(pr.signal));
        result = invalid("killed by signal " + std::to_string(pr.signal), "signaled");
        break;
      case End::kTimedOut:
        detail.set("killed_after_grace", Json(pr.killed_after_grace));
        result = invalid("timed out after " + std::to_string(s.cfg.timeout_ms) + " ms" +
                             (pr.killed_after_grace ? "; SIGKILL after the grace period" : ""),
                         "timeout");
        break;
      case End::kOutputTooLarge:
        result = invalid(
            "printed more than " + std::to_string(options_.limits.output_bytes_max) + " bytes",
            "output_too_large");
        break;
      case End::kSpawnFailed:
        result = invalid("could not start: " + pr.error, "spawn_failed");
        break;
      case End::kCancelled:
        result = unavailable("stopped: the runtime is shutting down", "cancelled");
        break;
    }
  }
  {
    std::lock_guard lk(mu_);
    s.sched.finish(mono_ms(), result.ok());
    if (result.ok()) {
      s.last_ok_at = wall_ms();
      s.last_error.clear();
    } else {
      s.last_error = std::string(result.reason()) + ": " + result.message();
    }
    // A signal cairnd did not acknowledge is posted again after the backoff,
    // by a run that does only that, even if nothing else would run the sense.
    if (s.pending && !s.sched.pending()) s.sched.trigger(flush_trigger());
    // A run ended by stop() runs again at the next start, for the same trigger.
    const bool stopped = result.reason() == "cancelled";
    if (stopped && trigger.type != "interval" && !s.sched.pending()) s.sched.trigger(trigger);
    --running_;
    save_sense(s);
  }
  if (!result.ok() && result.reason() != "cancelled" && c) {
    detail.set("reason", Json(result.reason()));
    detail.set("message", Json(result.message()));
    log(*c, source, "sense.failed", s.cfg.name, std::move(detail));
  } else if (!result.ok() && options_.local_log) {
    options_.local_log("error", "sense " + s.cfg.name + ": " + result.message());
  }
  {
    std::lock_guard lk(mu_);
    s.done = true;
  }
  cv_.notify_all();
}

Status Runtime::finish_output(Sense& s, client::Client& c, const std::string& out,
                              const Trigger& trigger) {
  const std::string text = trim(out);
  if (text.empty()) {
    return invalid("printed nothing (print null for \"no signal\")", "invalid_output");
  }
  JsonLimits jl;
  jl.text_bytes_max = options_.limits.output_bytes_max;
  auto parsed = parse_json(text, jl);
  if (!parsed.ok()) {
    return invalid("output is not one JSON value: " + parsed.status().message(), "invalid_output");
  }
  Json v = std::move(parsed).value();
  if (v.is_null()) return Status();  // nothing happens
  std::optional<Json> signal;
  std::optional<Json> state;
  const JsonObject* o = v.object_if();
  bool envelope = o != nullptr && !o->empty();
  if (envelope) {
    for (const auto& [k, _] : *o) envelope = envelope && (k == "signal" || k == "state");
  }
  if (envelope) {
    if (const Json* sg = v.find("signal"); sg != nullptr && !sg->is_null()) signal = *sg;
    if (const Json* st = v.find("state")) state = *st;
  } else {
    signal = std::move(v);
  }
  if (state && to_json(*state).size() > options_.limits.state_bytes_max) {
    return invalid(
        "state is larger than " + std::to_string(options_.limits.state_bytes_max) + " bytes",
        "state_too_large");
  }
  {
    std::lock_guard lk(mu_);
    if (state) s.state = *state;
    if (signal) {
      JsonArray from;
      if (!s.last_signal_id.empty()) from.push_back(Json(s.last_signal_id));
      if (!trigger.fact.empty() && trigger.fact != s.last_signal_id) {
        from.push_back(Json(trigger.fact));
      }
      s.pending = Json(JsonObject{{"kind", Json("signal." + s.cfg.name)},
                                  {"content", *signal},
                                  {"derived_from", Json(std::move(from))}});
      if (options_.api.token.empty()) s.pending->set("creator", Json(kCreator));
    }
    // State (and the signal to post) are on disk before anything uses them.
    save_sense(s);
  }
  return post_pending(s, c);
}

Status Runtime::post_pending(Sense& s, client::Client& c) {
  Json body;
  {
    std::lock_guard lk(mu_);
    if (!s.pending) return Status();
    body = *s.pending;
  }
  auto r = c.post_fact(body, client::Client::new_idempotency_key());
  std::lock_guard lk(mu_);
  if (!r.ok()) {
    if (transient(r.status())) {
      return unavailable(
          "posting the signal failed (kept, posted before the next run): " + r.status().message(),
          "post_failed");
    }
    s.pending.reset();
    save_sense(s);
    return invalid("cairnd refused the signal: " + r.status().message(), "signal_refused");
  }
  const Json* id = r->find("id");
  if (id == nullptr || !id->is_string()) {
    return unavailable("cairnd's reply to the signal has no id", "post_failed");
  }
  s.last_signal_id = id->as_string();
  s.last_signal = *body.find("content");
  s.pending.reset();
  save_sense(s);
  return Status();
}

// ---- logs ----

void Runtime::log(client::Client& c, std::string_view source, std::string_view type,
                  std::string_view ref, Json payload) {
  // Appends are not deduplicated, so the client sends one at most once.
  auto r = c.append_log(source, type, ref, payload);
  if (!r.ok() && options_.local_log) {
    options_.local_log("warn", "log record not posted (" + r.status().message() +
                                   "): " + std::string(source) + " " + std::string(type) + " " +
                                   std::string(ref) + " " + to_json(payload));
  }
}

// ---- the watch: triggers, reflexes, workflow runs ----

void Runtime::watcher_loop() {
  std::unique_ptr<client::Client> c;
  std::int64_t wait_ms = 100;
  auto pause = [&] {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::milliseconds(wait_ms), [&] { return stopping_; });
    wait_ms = std::min<std::int64_t>(wait_ms * 2, options_.limits.reconnect_max_ms);
  };
  while (!stop_flag_ && !c) {
    auto cr = make_client();
    if (cr.ok()) {
      c = std::move(cr).value();
    } else {
      pause();
    }
  }
  // The cursor: the last event handled.
  std::optional<std::uint64_t> cursor;
  {
    std::lock_guard lk(mu_);
    Stmt q(db_, "SELECT value FROM meta WHERE key = 'cursor'");
    if (q.step() == SQLITE_ROW) cursor = std::stoull(q.col_text(0));
  }
  if (stop_flag_ || !cursor) return;  // start() saved one
  auto save_cursor = [&](std::uint64_t seq) {
    std::lock_guard lk(mu_);
    Stmt q(db_,
           "INSERT INTO meta(key, value) VALUES('cursor', ?1) "
           "ON CONFLICT(key) DO UPDATE SET value = ?1");
    q.text(1, std::to_string(seq));
    q.step();
  };
  save_cursor(*cursor);
  reconcile_runs(*c);
  std::uint64_t saved = *cursor;
  std::int64_t saved_at = mono_ms();
  while (!stop_flag_) {
    auto stream = c->watch(*cursor);
    if (!stream.ok()) {
      pause();
      continue;
    }
    wait_ms = 100;
    client::SseEvent ev;
    while (!stop_flag_) {
      auto n = (*stream)->next(ev, static_cast<int>(options_.limits.watch_idle_ms));
      if (!n.ok()) {
        if (n.status().reason() == "timeout") {
          retry_starting(*c);
          if (saved != *cursor && mono_ms() - saved_at >= 1'000) {
            save_cursor(*cursor);
            saved = *cursor;
            saved_at = mono_ms();
          }
          continue;
        }
        break;  // reconnect
      }
      if (!*n) break;  // the server ended the stream
      auto j = parse_json(ev.data);
      if (!j.ok()) continue;
      if (ev.event == "overflow") {
        if (const Json* r = j->find("resume_after"); r != nullptr && r->int_if()) {
          cursor = static_cast<std::uint64_t>(*r->int_if());
        }
        break;
      }
      const Json* seq = j->find("seq");
      if (seq == nullptr || !seq->int_if()) continue;
      if (!handle_event(*c, *j)) break;  // cairnd busy or away: reconnect from the cursor
      cursor = static_cast<std::uint64_t>(*seq->int_if());
      if (mono_ms() - saved_at >= 1'000) {
        save_cursor(*cursor);
        saved = *cursor;
        saved_at = mono_ms();
      }
    }
    if (!stop_flag_) pause();
  }
  save_cursor(*cursor);
}

bool Runtime::handle_event(client::Client& c, const Json& event) {
  const Json* type = event.find("type");
  const Json* subject = event.find("subject");
  if (type == nullptr || !type->is_string() || subject == nullptr || !subject->is_string()) {
    return true;
  }
  const std::string& t = type->as_string();
  if (t == "fact.recorded") {
    const Json* data = event.find("data");
    const Json* kind = data != nullptr ? data->find("kind") : nullptr;
    if (kind != nullptr && kind->is_string()) {
      Status st = on_fact(c, subject->as_string(), kind->as_string());
      if (!st.ok() && transient(st)) return false;  // seen again after a reconnect
    }
    return true;
  }
  const std::string_view state =
      t.starts_with("intent.") ? std::string_view(t).substr(7) : std::string_view();
  if (!run_status_for_state(state).empty()) {
    bool ours = false;
    {
      std::lock_guard lk(mu_);
      ours = run_by_intent_.contains(subject->as_string());
    }
    if (ours) end_run(c, subject->as_string(), state);
  }
  return true;
}

Status Runtime::on_fact(client::Client& c, const std::string& id, const std::string& kind) {
  std::vector<Sense*> triggered;
  std::vector<const ReflexConfig*> reflexes;
  for (auto& s : senses_) {
    if (std::find(s->cfg.on.begin(), s->cfg.on.end(), kind) != s->cfg.on.end()) {
      triggered.push_back(s.get());
    }
  }
  for (const ReflexConfig& r : config_.reflexes) {
    if (r.on == kind) reflexes.push_back(&r);
  }
  if (triggered.empty() && reflexes.empty()) return Status();
  // The content is read only when something uses it: a sense's trigger, a
  // reflex's match:, a reflex that runs a sense. A reflex that only starts a
  // workflow run needs the fact's id alone (one HTTP round trip less).
  bool needs_content = !triggered.empty();
  for (const ReflexConfig* r : reflexes) {
    needs_content = needs_content || !r->match.empty() || !r->run_sense.empty();
  }
  Json content;
  if (needs_content) {
    auto fact = c.get_fact(id);
    if (!fact.ok()) {
      if (transient(fact.status())) return fact.status();
      log(c, "runtime", "fact.unreadable", id,
          JsonObject{{"kind", Json(kind)}, {"message", Json(fact.status().message())}});
      return Status();
    }
    if (const Json* content_p = fact->find("content")) content = *content_p;
  }
  Trigger t;
  t.type = "fact";
  t.fact = id;
  t.kind = kind;
  t.content = content;
  {
    std::lock_guard lk(mu_);
    for (Sense* s : triggered) {
      // Saved when it becomes pending; a newer trigger replacing it in
      // memory is not worth an fsync each (after a crash the older one runs).
      const bool first = !s->sched.pending() || s->sched.pending_trigger()->type == "flush";
      s->sched.trigger(t);
      if (first) save_sense(*s);
    }
  }
  if (!triggered.empty()) cv_.notify_all();
  for (const ReflexConfig* r : reflexes) {
    if (!evaluate_all(r->match, content)) continue;
    const std::int64_t now = mono_ms();
    bool throttled = false;
    {
      std::lock_guard lk(mu_);
      auto it = reflex_fired_at_.find(r->name);
      if (r->throttle_ms > 0 && it != reflex_fired_at_.end() && now - it->second < r->throttle_ms) {
        throttled = true;
      } else {
        reflex_fired_at_[r->name] = now;
      }
    }
    if (throttled) {
      log(c, "reflex." + r->name, "reflex.throttled", id,
          JsonObject{{"throttle_ms", Json(r->throttle_ms)}});
      continue;
    }
    if (!r->run_sense.empty()) {
      Trigger rt = t;
      rt.type = "reflex";
      rt.reflex = r->name;
      {
        std::lock_guard lk(mu_);
        auto it = sense_by_name_.find(r->run_sense);
        if (it != sense_by_name_.end()) {
          Sense& target = *it->second;
          const bool first =
              !target.sched.pending() || target.sched.pending_trigger()->type == "flush";
          target.sched.trigger(std::move(rt));
          if (first) save_sense(target);
        }
      }
      cv_.notify_all();
    } else {
      start_run(c, *r, id);
    }
  }
  return Status();
}

void Runtime::start_run(client::Client& c, const ReflexConfig& r, const std::string& fact) {
  const WorkflowConfig* w = nullptr;
  {
    auto it = workflow_by_name_.find(r.start_workflow);
    if (it == workflow_by_name_.end()) return;
    w = it->second;
  }
  const std::string intent =
      "wf." + w->name + "." + to_hex(sha256(w->name + "\n" + r.name + "\n" + fact)).substr(0, 24);
  const std::string source = "workflow." + w->name;
  std::int64_t run_id = 0;
  std::string status;
  std::vector<std::int64_t> dropped;
  {
    std::lock_guard lk(mu_);
    const std::int64_t now = wall_ms();
    // One transaction: the run's row, its status and the queued runs it
    // pushes out are committed together (one fsync). A crash after the row
    // alone would leave it "new" for good — the event seen again finds the
    // row and stops.
    if (!exec(db_, "BEGIN IMMEDIATE").ok()) {
      if (options_.local_log) {
        options_.local_log(
            "error", "runtime.db: cannot record a run of " + w->name + ": " + sqlite3_errmsg(db_));
      }
      return;
    }
    Stmt ins(db_,
             "INSERT INTO runs(workflow, reflex, trigger_fact, intent, status, detail, created_at, "
             "updated_at) VALUES(?1,?2,?3,?4,'new','',?5,?5) ON CONFLICT DO NOTHING");
    ins.text(1, w->name).text(2, r.name).text(3, fact).text(4, intent).num(5, now);
    if (ins.step() != SQLITE_DONE || sqlite3_changes(db_) == 0) {  // seen before
      (void)exec(db_, "ROLLBACK");
      return;
    }
    run_id = sqlite3_last_insert_rowid(db_);
    const std::int64_t active = active_runs(w->name);
    std::string detail;
    if (active < w->concurrency) {
      status = "starting";
    } else if (w->overflow == Overflow::kDrop) {
      status = "dropped";
      detail = "concurrency " + std::to_string(w->concurrency) + " reached (overflow: drop)";
    } else {
      status = "queued";
      std::int64_t queued = 0;
      {
        Stmt q(db_, "SELECT count(*) FROM runs WHERE workflow = ?1 AND status = 'queued'");
        q.text(1, w->name);
        if (q.step() == SQLITE_ROW) queued = q.col_num(0);
      }
      while (queued >= w->max_queue) {
        Stmt oldest(db_,
                    "SELECT id FROM runs WHERE workflow = ?1 AND status = 'queued' ORDER BY id "
                    "LIMIT 1");
        oldest.text(1, w->name);
        if (oldest.step() != SQLITE_ROW) break;
        const std::int64_t old_id = oldest.col_num(0);
        Stmt up(db_,
                "UPDATE runs SET status = 'dropped', detail = ?2, updated_at = ?3 WHERE id = ?1");
        up.num(1, old_id)
            .text(2, "the queue was full (max_queue " + std::to_string(w->max_queue) +
                         "); a newer run took its place")
            .num(3, now);
        up.step();
        dropped.push_back(old_id);
        --queued;
      }
    }
    Stmt up(db_, "UPDATE runs SET status = ?2, detail = ?3 WHERE id = ?1");
    up.num(1, run_id).text(2, status).text(3, detail);
    up.step();
    // Finished runs beyond the newest kFinishedRunsKept go, checked every
    // kPruneEveryRuns runs (the query scans the table).
    if (run_id % kPruneEveryRuns == 0) {
      Stmt prune(db_,
                 "DELETE FROM runs WHERE id <= (SELECT id FROM runs WHERE status IN ('completed', "
                 "'failed', 'crashed', 'interrupted', 'dropped') ORDER BY id DESC LIMIT 1 OFFSET "
                 "?1) AND status IN ('completed', 'failed', 'crashed', 'interrupted', 'dropped')");
      prune.num(1, kFinishedRunsKept);
      prune.step();
    }
    if (Status st = exec(db_, "COMMIT"); !st.ok()) {
      (void)exec(db_, "ROLLBACK");
      if (options_.local_log) {
        options_.local_log("error",
                           "runtime.db: cannot record a run of " + w->name + ": " + st.message());
      }
      return;
    }
  }
  for (std::int64_t d : dropped) {
    log(c, source, "run.dropped", std::to_string(d),
        JsonObject{{"reason", Json("queue_full")}, {"max_queue", Json(w->max_queue)}});
  }
  if (status == "dropped") {
    log(c, source, "run.dropped", std::to_string(run_id),
        JsonObject{{"reason", Json("concurrency")},
                   {"concurrency", Json(w->concurrency)},
                   {"trigger_fact", Json(fact)},
                   {"reflex", Json(r.name)}});
  } else if (status == "starting") {
    create_run_intent(c, run_id);
  }
}

void Runtime::create_run_intent(client::Client& c, std::int64_t run_id) {
  std::string workflow;
  std::string fact;
  std::string intent;
  {
    std::lock_guard lk(mu_);
    Stmt q(db_, "SELECT workflow, trigger_fact, intent FROM runs WHERE id = ?1");
    q.num(1, run_id);
    if (q.step() != SQLITE_ROW) return;
    workflow = q.col_text(0);
    fact = q.col_text(1);
    intent = q.col_text(2);
  }
  auto wit = workflow_by_name_.find(workflow);
  if (wit == workflow_by_name_.end()) return;
  const WorkflowConfig& w = *wit->second;
  Json body =
      JsonObject{{"id", Json(intent)},           {"kind", Json(w.kind)},
                 {"lane", Json(w.lane)},         {"spec", w.spec},
                 {"priority", Json(w.priority)}, {"from_facts", Json(JsonArray{Json(fact)})}};
  if (options_.api.token.empty()) body.set("creator", Json(kCreator));
  auto r = c.create_intent(body, client::Client::new_idempotency_key());
  std::string status;
  std::string detail;
  std::string ended_state;  // the intent existed already and had ended
  if (r.ok()) {
    status = "started";
    const Json* st = r->find("state");
    if (st != nullptr && st->is_string() && !run_status_for_state(st->as_string()).empty()) {
      ended_state = st->as_string();
    }
  } else if (transient(r.status())) {
    return;  // stays "starting"; retried by reconcile_runs
  } else {
    status = "crashed";
    detail = "cairnd refused the run's intent: " + r.status().message();
  }
  {
    std::lock_guard lk(mu_);
    Stmt up(db_, "UPDATE runs SET status = ?2, detail = ?3, updated_at = ?4 WHERE id = ?1");
    up.num(1, run_id).text(2, status).text(3, detail).num(4, wall_ms());
    up.step();
    if (status == "started") run_by_intent_[intent] = run_id;
  }
  if (status == "crashed") {
    log(c, "workflow." + workflow, "run.crashed", std::to_string(run_id),
        JsonObject{{"message", Json(detail)}, {"reason", Json(r.status().reason())}});
    promote_queued(c, workflow);
  } else if (!ended_state.empty()) {
    end_run(c, intent, ended_state);
  }
}

void Runtime::end_run(client::Client& c, const std::string& intent, std::string_view state) {
  std::string workflow;
  std::int64_t run_id = 0;
  const std::string status(run_status_for_state(state));
  const std::string event_type = "intent." + std::string(state);
  {
    std::lock_guard lk(mu_);
    auto it = run_by_intent_.find(intent);
    if (it == run_by_intent_.end()) return;
    run_id = it->second;
    run_by_intent_.erase(it);
    Stmt q(db_, "SELECT workflow FROM runs WHERE id = ?1");
    q.num(1, run_id);
    if (q.step() == SQLITE_ROW) workflow = q.col_text(0);
    Stmt up(db_,
            "UPDATE runs SET status = ?2, detail = ?3, updated_at = ?4 WHERE id = ?1 AND status = "
            "'started'");
    up.num(1, run_id).text(2, status).text(3, event_type).num(4, wall_ms());
    up.step();
  }
  if (status != "completed") {
    log(c, "workflow." + workflow, "run." + status, std::to_string(run_id),
        JsonObject{{"intent", Json(intent)}, {"event", Json(event_type)}});
  }
  promote_queued(c, workflow);
}

std::int64_t Runtime::active_runs(std::string_view workflow) const {
  Stmt q(db_,
         "SELECT count(*) FROM runs WHERE workflow = ?1 AND status IN ('starting', 'started')");
  q.text(1, workflow);
  return q.step() == SQLITE_ROW ? q.col_num(0) : 0;
}

void Runtime::promote_queued(client::Client& c, const std::string& workflow) {
  auto wit = workflow_by_name_.find(workflow);
  if (wit == workflow_by_name_.end()) return;
  const WorkflowConfig& w = *wit->second;
  for (int guard = 0; guard < 1'000 && !stop_flag_; ++guard) {
    std::int64_t next = 0;
    {
      std::lock_guard lk(mu_);
      if (active_runs(workflow) >= w.concurrency) return;
      Stmt q(db_,
             "SELECT id FROM runs WHERE workflow = ?1 AND status = 'queued' ORDER BY id LIMIT 1");
      q.text(1, workflow);
      if (q.step() != SQLITE_ROW) return;
      next = q.col_num(0);
      Stmt up(db_, "UPDATE runs SET status = 'starting', updated_at = ?2 WHERE id = ?1");
      up.num(1, next).num(2, wall_ms());
      up.step();
    }
    create_run_intent(c, next);
  }
}

void Runtime::retry_starting(client::Client& c) {
  std::vector<std::int64_t> starting;
  {
    std::lock_guard lk(mu_);
    Stmt q(db_, "SELECT id FROM runs WHERE status = 'starting' ORDER BY id LIMIT 100");
    while (q.step() == SQLITE_ROW) starting.push_back(q.col_num(0));
  }
  for (std::int64_t id : starting) {
    if (stop_flag_) return;
    create_run_intent(c, id);
  }
}

void Runtime::reconcile_runs(client::Client& c) {
  std::vector<std::pair<std::int64_t, std::string>> started;
  std::vector<std::int64_t> starting;
  {
    std::lock_guard lk(mu_);
    // A run whose status was never decided (a crash inside start_run before
    // it recorded row and status in one transaction) waits in the queue: it
    // starts as soon as its workflow's concurrency allows.
    Stmt undecided(db_, "UPDATE runs SET status = 'queued' WHERE status = 'new'");
    undecided.step();
    Stmt q(db_, "SELECT id, intent, status FROM runs WHERE status IN ('starting', 'started')");
    while (q.step() == SQLITE_ROW) {
      if (q.col_text(2) == "started") {
        started.emplace_back(q.col_num(0), q.col_text(1));
        run_by_intent_[q.col_text(1)] = q.col_num(0);
      } else {
        starting.push_back(q.col_num(0));
      }
    }
  }
  for (std::int64_t id : starting) create_run_intent(c, id);
  for (const auto& [id, intent] : started) {
    auto r = c.get_intent(intent);
    if (!r.ok()) continue;
    const Json* st = r->find("state");
    if (st == nullptr || !st->is_string()) continue;
    if (run_status_for_state(st->as_string()).empty()) continue;
    end_run(c, intent, st->as_string());
  }
  for (const WorkflowConfig& w : config_.workflows) promote_queued(c, w.name);
}

// ---- status ----

Json Runtime::status_json() const {
  std::lock_guard lk(mu_);
  if (db_ == nullptr) return Json(JsonObject{{"senses", Json::array()}});
  return status_from(db_);
}

Json Runtime::runs_json(std::string_view workflow, std::size_t limit) const {
  std::lock_guard lk(mu_);
  if (db_ == nullptr) return Json(JsonObject{{"runs", Json::array()}});
  return runs_from(db_, workflow, std::min(limit, options_.limits.runs_listed_max));
}

std::string Runtime::metrics_text() const {
  std::lock_guard lk(mu_);
  if (db_ == nullptr) return {};
  std::string running;
  std::string failures;
  std::string runs;
  Stmt q(db_, "SELECT name, running, failures, runs FROM senses ORDER BY name");
  while (q.step() == SQLITE_ROW) {
    const std::string label = "{sense=\"" + q.col_text(0) + "\"} ";
    running += "cairn_sense_running" + label + std::to_string(q.col_num(1)) + "\n";
    failures += "cairn_sense_failures" + label + std::to_string(q.col_num(2)) + "\n";
    runs += "cairn_sense_runs_total" + label + std::to_string(q.col_num(3)) + "\n";
  }
  std::map<std::pair<std::string, std::string>, std::int64_t> counts;
  Stmt w(db_, "SELECT workflow, status, count(*) FROM runs GROUP BY workflow, status");
  while (w.step() == SQLITE_ROW) {
    counts[{w.col_text(0), public_status(w.col_text(1))}] += w.col_num(2);
  }
  std::string wf;
  for (const auto& [key, n] : counts) {
    wf += "cairn_workflow_runs{workflow=\"" + key.first + "\",status=\"" + key.second + "\"} " +
          std::to_string(n) + "\n";
  }
  return "# HELP cairn_sense_running 1 while a run of the sense is going.\n"
         "# TYPE cairn_sense_running gauge\n" +
         running +
         "# HELP cairn_sense_failures Failed runs of the sense in a row (0: healthy).\n"
         "# TYPE cairn_sense_failures gauge\n" +
         failures +
         "# HELP cairn_sense_runs_total Runs of the sense since the runtime started.\n"
         "# TYPE cairn_sense_runs_total counter\n" +
         runs +
         "# HELP cairn_workflow_runs Workflow runs kept in runtime.db, by status.\n"
         "# TYPE cairn_workflow_runs gauge\n" +
         wf;
}

Result<Json> Runtime::read_status(const std::string& data_dir) {
  CAIRN_ASSIGN_OR_RETURN(sqlite3 * db, open_db(runtime_db_path(data_dir), true));
  Json j = status_from(db);
  sqlite3_close(db);
  return j;
}

Result<Json> Runtime::read_runs(const std::string& data_dir, std::string_view workflow,
                                std::size_t limit) {
  CAIRN_ASSIGN_OR_RETURN(sqlite3 * db, open_db(runtime_db_path(data_dir), true));
  Json j = runs_from(db, workflow, std::min<std::size_t>(limit, RuntimeLimits{}.runs_listed_max));
  sqlite3_close(db);
  return j;
}

}  // namespace cairn::senses

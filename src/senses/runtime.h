// runtime.h — the observation runtime (shell): runs senses, turns their
// output into signal facts, fires reflexes and keeps workflow runs
// (docs/senses.md).
//
// It is a client of cairnd's HTTP API (src/client), so the same code runs
// inside cairnd (pointed at its own listener) and beside a remote cairnd
// (`cairn senses run --url ...`). What it must not forget lives in
// <data>/senses/runtime.db (SQLite, WAL, synchronous=FULL):
//   senses(name, state, last_signal_id, last_signal, pending_signal, status…)
//       a sense's state and its newest signal. A run that produces a signal
//       first commits {state, pending_signal} in one transaction, then posts
//       the fact, then commits {last_signal, pending_signal = null}; a
//       pending signal left by a crash (or not acknowledged) is posted by a
//       "flush" run that only posts — at start, and after a failed post's
//       backoff — not waiting for the sense's next run, which may be far off
//       for a sense run only by triggers; a run posts it first in any case
//       (facts are content-addressed, so posting it twice records it once).
//   runs(id, workflow, reflex, trigger_fact, intent, status, …)
//       workflow runs, unique per (workflow, reflex, trigger fact), so an
//       event seen twice starts one run; the intent id is derived from that
//       triple, so a crash between "run recorded" and "intent created"
//       creates the same intent on retry.
//   meta(key, value)  the watch cursor (the last event seq handled).
//
// Threads: a scheduler (starts due runs, at most runs_at_once_max), one
// thread per running sense process, and a watcher that follows GET
// /v1/watch from the cursor: facts of an `on:` kind trigger senses and
// fire reflexes; terminal events of a run's intent end the run and start
// the next queued one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/client.h"
#include "model/clock.h"
#include "model/json.h"
#include "model/status.h"
#include "senses/config.h"
#include "senses/schedule.h"

struct sqlite3;

namespace cairn::senses {

struct RuntimeLimits {
  std::size_t runs_at_once_max = 4;             // sense processes at once, all senses
  std::size_t output_bytes_max = 1u << 20;      // a run's stdout
  std::size_t stderr_bytes_max = 16u << 10;     // a run's stderr kept for the log record
  std::size_t stderr_log_bytes_max = 2u << 10;  // of which a failure's log record quotes
  std::size_t state_bytes_max = 256u << 10;     // a sense's state, compact JSON
  std::int64_t backoff_initial_ms = 1'000;      // after the first failure in a row
  std::int64_t backoff_max_ms = 300'000;
  std::int64_t watch_idle_ms = 1'000;     // the watcher checks for stop this often
  std::int64_t reconnect_max_ms = 5'000;  // the longest wait before re-opening the watch
  std::size_t runs_listed_max = 1'000;    // runs_json's largest page
};

struct RuntimeOptions {
  std::string data_dir;       // <data>/senses/ holds runtime.db and the senses' databases
  client::ClientOptions api;  // where cairnd is, and the token to use
  RuntimeLimits limits;
  const Clock* clock = nullptr;  // nullptr: the system clock
  // Where the watch starts on the very first start (no cursor in runtime.db
  // yet): cairnd's last event seq when cairnd itself runs the runtime; unset:
  // asked from cairnd (GET /v1/state) before start() returns.
  std::optional<std::uint64_t> initial_cursor;
  // The process's own log, for what cannot be posted as a log record
  // (cairnd unreachable); may be empty.
  std::function<void(std::string_view level, std::string_view message)> local_log;
};

class Runtime {
 public:
  Runtime(ObserveConfig config, RuntimeOptions options);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Opens runtime.db and starts the threads, which first post signals a
  // crash left pending and reconcile the workflow runs with their intents.
  Status start();
  // Stops the threads; running senses are ended like a timeout (SIGTERM,
  // grace, SIGKILL). Idempotent; any thread.
  void stop();

  // {"senses": [{name, health, running, runs, failures, coalesced, last_run_at,
  //  last_ok_at, next_run_at, last_error, last_signal}]}, health one of
  // never_run | ok | failing.
  Json status_json() const;
  // {"runs": [...]} newest first; `workflow` empty: all.
  Json runs_json(std::string_view workflow, std::size_t limit) const;

  // Prometheus text for cairnd's GET /metrics: per sense cairn_sense_running,
  // cairn_sense_failures (in a row), cairn_sense_runs_total, and
  // cairn_workflow_runs{workflow,status} (runs kept in runtime.db). Labels
  // are configured names, so the series are bounded by the config limits.
  std::string metrics_text() const;

  // The same two documents from a runtime.db on disk (read-only), for
  // `cairn senses status --data DIR` beside a runtime in another process.
  static Result<Json> read_status(const std::string& data_dir);
  static Result<Json> read_runs(const std::string& data_dir, std::string_view workflow,
                                std::size_t limit);

 private:
  struct Sense;
  struct Workflow;

  // start() under mu_: the database, the senses, the cursor.
  Status start_locked();
  void scheduler_loop();
  void watcher_loop();
  void run_sense(Sense& s, Trigger trigger);
  // What a run produced: ok, or an error with a class (timeout, exit_status…).
  Status finish_output(Sense& s, client::Client& c, const std::string& out, const Trigger& trigger);
  Status post_pending(Sense& s, client::Client& c);
  // False: the event could not be handled now (cairnd unavailable); the
  // watcher reconnects from the cursor, which has not moved past it.
  bool handle_event(client::Client& c, const Json& event);
  Status on_fact(client::Client& c, const std::string& id, const std::string& kind);
  void start_run(client::Client& c, const ReflexConfig& r, const std::string& fact);
  void create_run_intent(client::Client& c, std::int64_t run_id);
  // The run of `intent` ends: its intent reached terminal `state`.
  void end_run(client::Client& c, const std::string& intent, std::string_view state);
  void promote_queued(client::Client& c, const std::string& workflow);
  // Runs of `workflow` that count against its concurrency (under mu_).
  std::int64_t active_runs(std::string_view workflow) const;
  void reconcile_runs(client::Client& c);
  // Runs whose intent creation failed transiently ("starting"): tried again
  // on the watcher's idle ticks (at most 100 per tick).
  void retry_starting(client::Client& c);
  void log(client::Client& c, std::string_view source, std::string_view type, std::string_view ref,
           Json payload);
  void save_sense(const Sense& s);
  std::int64_t mono_ms() const;
  std::int64_t wall_ms() const;
  Result<std::unique_ptr<client::Client>> make_client() const;

  ObserveConfig config_;
  RuntimeOptions options_;
  std::unique_ptr<Clock> own_clock_;
  const Clock* clock_ = nullptr;

  std::mutex stop_mu_;     // held through stop()
  mutable std::mutex mu_;  // everything below, and db_
  std::condition_variable cv_;
  sqlite3* db_ = nullptr;
  std::vector<std::unique_ptr<Sense>> senses_;
  std::map<std::string, Sense*, std::less<>> sense_by_name_;
  std::map<std::string, const WorkflowConfig*, std::less<>> workflow_by_name_;
  std::map<std::string, std::int64_t, std::less<>> reflex_fired_at_;  // name → mono ms
  std::map<std::string, std::int64_t, std::less<>> run_by_intent_;    // active runs
  std::size_t running_ = 0;
  bool stopping_ = false;
  bool started_ = false;
  std::thread scheduler_;
  std::thread watcher_;
  std::atomic<bool> stop_flag_{false};
};

}  // namespace cairn::senses

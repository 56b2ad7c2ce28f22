// engine_host.h — the engine thread: owns the engine::Engine and the
// SqliteStore write connection, and runs the drain contract (shell).
//
// Any thread may submit(); requests wait in a bounded queue (mutex + condvar)
// until the engine thread moves them into the engine. The thread loop:
//   1. take the queued requests and engine.submit() each (a refusal —
//      overloaded — is answered at once through on_reply);
//   2. poll(now) until it returns no effects, performing each effect:
//        CommitEffect  → store.commit(batch) synchronously, complete_commit
//                        (one SQLite transaction per cycle: group commit)
//        ReplyEffect   → on_reply (the server posts it to its io thread)
//        PublishEffect → on_publish (fan-out to watchers on the io thread)
//        ResyncEffect  → engine.resync(store), retried until it succeeds
//   3. sleep until the engine's next deadline or the next submit.
// The callbacks run on the engine thread and must not block.
//
// Shared mode (EngineConfig::node set, a PostgreSQL store): a PgListener
// thread LISTENs for other nodes' commits; a notification (or a reconnect,
// after which some may have been missed) wakes the loop, which calls
// engine.catch_up(store) before the next poll — so long-polls and watch
// streams see work from any node without polling. CatchUpEffect is performed
// the same way. Time is the database's: the loop's clock is the local
// monotonic clock plus an offset to PostgreSQL's clock_timestamp(),
// measured with a round trip at start and every clock_sync_interval_ms
// (the midpoint of the round trip is taken as the server's reading), so
// nodes with skewed wall clocks agree on when a lease ends. A round that has
// requests or due timers first takes the cluster's writer turn (bounded
// wait; see Shared::turn_wait_ms).
//
// The store down: a store call that finds the database unreachable
// (unavailable/storage_unreachable) or a commit whose outcome is unknown
// puts the host in the "store down" state. While in it, the host does not
// wait for the database: queued mutations (and, while a commit's outcome is
// unknown, every request) are answered 503 at once, commits that timers ask
// for fail without a database call, and there is no writer turn, catch-up
// or clock sync. The only database call is one probe per retry interval
// (kStoreRetryFirstMs doubling to kStoreRetryMaxMs): the clock round trip
// in shared mode, else a read of the store's version, then the pending
// resync. When it succeeds the host leaves the state (shared mode: and
// catches up). Requests arriving during a probe wait for it: at once when
// the connection is refused, at most the store's connect timeout when the
// database host does not answer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/postgres/pg_store.h"
#include "engine/engine.h"
#include "server/metrics.h"
#include "store/store.h"

namespace cairn::server {

class EngineHost {
 public:
  using ReplyFn = std::function<void(engine::RequestId, Status, Json)>;
  using PublishFn = std::function<void(std::vector<Event>)>;

  // Shared mode: how to reach the other nodes' commits and the database's clock.
  struct Shared {
    std::string listen_url;  // a libpq URL for the LISTEN connection
    std::string channel;     // the commits' NOTIFY channel
    std::function<Result<std::int64_t>()> server_time_ms;
    std::int64_t clock_sync_interval_ms = 1'000;
    // The writer turn (PgStore::begin_writer_turn): a round with requests or
    // due timers waits up to turn_wait_ms for it, then catches up, decides
    // and commits inside it, so nodes take turns instead of losing races to
    // each other. 0: never take it (every commit is optimistic).
    std::function<bool(int wait_ms)> begin_turn;
    std::function<void()> end_turn;
    std::int64_t turn_wait_ms = 0;
  };

  EngineHost(engine::EngineConfig config, std::unique_ptr<store::Store> store,
             std::size_t queue_max, Metrics& metrics, std::optional<Shared> shared = {});
  ~EngineHost();
  EngineHost(const EngineHost&) = delete;
  EngineHost& operator=(const EngineHost&) = delete;

  // Loads the blackboard from the store and starts the thread.
  Status start(ReplyFn on_reply, PublishFn on_publish);
  // Thread-safe. unavailable/overloaded when the queue is full, or
  // unavailable/shutting_down after stop() began; the request is not taken.
  Status submit(engine::Request r);
  // Thread-safe: the client of request `id` went away. A parked long-poll
  // stops waiting (Engine::abandon); otherwise the request runs its course.
  void abandon(engine::RequestId id);
  // Thread-safe: the engine thread applies `g` (Engine::set_governance)
  // before the next cycle it runs; requests dispatched from then on see it.
  void set_governance(std::shared_ptr<const engine::Governance> g);
  // Finishes the queued work (commits included), then joins the thread and
  // closes the database. Idempotent.
  void stop();

 private:
  void run();
  void perform(std::vector<engine::Effect>& effects);
  // Wall ms: the local clock, or in shared mode the database's (see above).
  std::int64_t now_ms() const;
  static std::int64_t wall_ms();
  static std::int64_t steady_ms();
  // Shared mode: measures the offset to the database's clock.
  Status sync_clock();
  void catch_up();
  // The store down state (see above). note_store_error() enters it when `s`
  // says the database cannot be reached; refuse_while_down() answers the
  // requests it must not wait with (from `batch`, the rest stay, and from
  // the engine's ingress); probe_store() is the one call per retry interval.
  void note_store_error(const Status& s);
  void refuse_while_down(std::deque<engine::Request>& batch);
  void probe_store();
  Status down_status() const;

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<engine::Engine> engine_;
  engine::EngineConfig config_;
  std::size_t queue_max_;
  Metrics& metrics_;
  ReplyFn on_reply_;
  PublishFn on_publish_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<engine::Request> queue_;
  std::vector<engine::RequestId> abandoned_;  // bounded by the requests in flight
  // A contract waiting to be applied on the engine thread.
  std::optional<std::shared_ptr<const engine::Governance>> governance_;
  bool stopping_ = false;
  std::thread thread_;
  std::int64_t last_now_ = 0;

  std::optional<Shared> shared_;
  std::unique_ptr<backend::PgListener> listener_;
  std::int64_t clock_offset_ms_ = 0;  // database ms − local steady ms
  std::int64_t clock_synced_at_ = 0;  // steady ms of the last measurement
  // Guarded by mu_: the newest commit version notified, the newest one
  // caught up with (or our own), and whether notifications may be lost.
  std::uint64_t notified_version_ = 0;
  std::uint64_t caught_up_version_ = 0;
  bool notify_gap_ = false;

  // Engine thread only: the store down state.
  bool store_down_ = false;
  Status store_error_;              // what put it there
  std::int64_t store_down_at_ = 0;  // steady ms
  std::int64_t next_probe_at_ = 0;  // steady ms
  std::int64_t probe_wait_ms_ = 0;
};

}  // namespace cairn::server

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
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "server/metrics.h"
#include "store/store.h"

namespace cairn::server {

class EngineHost {
 public:
  using ReplyFn = std::function<void(engine::RequestId, Status, Json)>;
  using PublishFn = std::function<void(std::vector<Event>)>;

  EngineHost(engine::EngineConfig config, std::unique_ptr<store::Store> store,
             std::size_t queue_max, Metrics& metrics);
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
  // Finishes the queued work (commits included), then joins the thread and
  // closes the database. Idempotent.
  void stop();

 private:
  void run();
  void perform(std::vector<engine::Effect>& effects);
  static std::int64_t wall_ms();

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
  bool stopping_ = false;
  std::thread thread_;
  std::int64_t last_now_ = 0;
};

}  // namespace cairn::server

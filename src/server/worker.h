// worker.h — a thread that runs jobs in order, off the io thread (shell).
// cairnd uses one for log appends (each an fsynced SQLite commit) and one for
// log archival (file exports), so neither blocks the io thread's
// connections. A worker may also run a periodic task every `interval_ms`
// (and once when it starts), between jobs.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace cairn::server {

class Worker {
 public:
  using Job = std::function<void()>;

  // `queue_depth_max`: jobs waiting at once; post() refuses more.
  // `periodic` (may be empty) runs at start and then every interval_ms (> 0).
  Worker(std::size_t queue_depth_max, Job periodic = {}, std::int64_t interval_ms = 0);
  ~Worker();  // stop()
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  // Queues `job`; false when the queue is full or the worker has stopped.
  bool post(Job job);
  // Runs the jobs already queued, then joins. Idempotent.
  void stop();

 private:
  void loop();

  const std::size_t queue_depth_max_;
  Job periodic_;
  std::int64_t interval_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cairn::server

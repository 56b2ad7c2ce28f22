// worker.cc — see worker.h.
#include "server/worker.h"

#include <chrono>

namespace cairn::server {

Worker::Worker(std::size_t queue_depth_max, Job periodic, std::int64_t interval_ms)
    : queue_depth_max_(queue_depth_max),
      periodic_(std::move(periodic)),
      interval_ms_(interval_ms) {}

Worker::~Worker() {
  stop();
}

void Worker::start() {
  thread_ = std::thread([this] { loop(); });
}

bool Worker::post(Job job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || jobs_.size() >= queue_depth_max_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void Worker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Worker::loop() {
  using Clock = std::chrono::steady_clock;
  const bool periodic = periodic_ && interval_ms_ > 0;
  Clock::time_point next = Clock::now();
  std::unique_lock lock(mu_);
  while (true) {
    if (!jobs_.empty()) {
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
      continue;
    }
    if (stopping_) return;
    if (periodic && Clock::now() >= next) {
      lock.unlock();
      periodic_();
      lock.lock();
      next = Clock::now() + std::chrono::milliseconds(interval_ms_);
      continue;
    }
    if (periodic) {
      cv_.wait_until(lock, next);
    } else {
      cv_.wait(lock);
    }
  }
}

}  // namespace cairn::server

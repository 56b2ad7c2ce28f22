// event_queue.h — the simulator's deterministic agenda of future events (pure).
//
// Items are ordered by (time, insertion number): two items due at the same
// simulated millisecond come out in the order they were pushed, so a run
// never depends on container or platform details. Backed by an ordered map
// (no hash iteration anywhere in the simulator: libstdc++ and libc++ hash
// differently, and the same seed must replay identically on wasm32).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>

#include "model/assert.h"

namespace cairn::sim {

template <class T>
class EventQueue {
 public:
  // Queues `item` at simulated wall time `at_ms`.
  void push(std::int64_t at_ms, T item) { items_.emplace(Key{at_ms, next_++}, std::move(item)); }

  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }

  // REQUIRES: !empty().
  std::int64_t next_time() const {
    CAIRN_ASSERT(!items_.empty());
    return items_.begin()->first.first;
  }

  // Removes and returns the earliest item. REQUIRES: !empty().
  std::pair<std::int64_t, T> pop() {
    CAIRN_ASSERT(!items_.empty());
    auto node = items_.extract(items_.begin());
    return {node.key().first, std::move(node.mapped())};
  }

  // Drops every item for which `drop(item)` is true (e.g. a crashed
  // process's pending completions). Returns how many were dropped.
  template <class Pred>
  std::size_t remove_if(Pred drop) {
    std::size_t n = 0;
    for (auto it = items_.begin(); it != items_.end();) {
      if (drop(it->second)) {
        it = items_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }

 private:
  using Key = std::pair<std::int64_t, std::uint64_t>;
  std::map<Key, T> items_;
  std::uint64_t next_ = 0;
};

}  // namespace cairn::sim

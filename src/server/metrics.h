// metrics.h — Prometheus counters and histograms for cairnd (shell;
// thread-safe: the io thread records requests, the engine thread commits).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/blackboard.h"
#include "model/intent.h"

namespace cairn::server {

// Cumulative histogram with fixed upper bounds.
template <std::size_t N>
struct Histogram {
  std::array<double, N> bounds;
  std::array<std::uint64_t, N> counts{};  // observations <= bounds[i] (not cumulative here)
  std::uint64_t count = 0;
  double sum = 0;
  void observe(double v) {
    ++count;
    sum += v;
    for (std::size_t i = 0; i < N; ++i) {
      if (v <= bounds[i]) {
        ++counts[i];
        return;
      }
    }
  }
};

class Metrics {
 public:
  Metrics();
  void record_request(std::string_view route, int status, double seconds);
  void record_commit(std::size_t ops, double seconds, bool ok);
  // Shared mode: a round asked for the writer turn; `taken` false: the wait ran out.
  void record_writer_turn(bool taken);
  void set_intent_counts(const std::array<std::uint64_t, kIntentStateCount>& counts,
                         std::uint64_t facts, std::uint64_t last_seq);
  void set_engine_depths(std::size_t ingress, std::size_t parked);
  // Admission: usage per budget key (Blackboard::lane_usage, key order),
  // open intents without a budget, deferred intents waiting on a dependency.
  // At most `lane_series_max` keys get series (configured keys first), so a
  // client inventing lanes cannot grow the exposition without bound; the
  // rest are counted in cairn_lane_series_dropped.
  void set_admission(const std::vector<Blackboard::LaneUse>& lanes, std::size_t lane_series_max,
                     std::size_t no_budget_open, std::size_t dependency_waits);
  // A contract reload (SIGHUP) that replaced the contract (`ok`) or was refused.
  void record_contract_reload(bool ok);
  // The contract in force: its rule count, or -1 when there is none.
  void set_contract_rules(std::int64_t rules);

  std::atomic<std::int64_t> connections{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::int64_t> watchers{0};
  std::atomic<std::uint64_t> watch_overflows{0};
  std::atomic<std::size_t> queue_depth{0};  // server → engine queue
  // Log records (server/log_records.h).
  std::atomic<std::uint64_t> log_records_appended{0};
  std::atomic<std::uint64_t> log_archived_days{0};

  // The exposition text.
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  Histogram<15> request_seconds_;
  Histogram<12> commit_ops_;
  Histogram<12> commit_seconds_;
  std::uint64_t commit_failures_ = 0;
  std::uint64_t writer_turns_ = 0;
  std::uint64_t writer_turns_missed_ = 0;
  std::array<std::uint64_t, kIntentStateCount> intents_{};
  std::uint64_t facts_ = 0;
  std::uint64_t last_seq_ = 0;
  std::size_t ingress_ = 0;
  std::size_t parked_ = 0;
  std::uint64_t contract_reloads_ok_ = 0;
  std::uint64_t contract_reloads_error_ = 0;
  std::int64_t contract_rules_ = -1;
  std::vector<Blackboard::LaneUse> lanes_;
  std::size_t lanes_dropped_ = 0;
  std::size_t no_budget_open_ = 0;
  std::size_t dependency_waits_ = 0;
};

}  // namespace cairn::server

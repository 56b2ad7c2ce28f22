// metrics.cc — Prometheus text exposition (format 0.0.4).
#include "server/metrics.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace cairn::server {

Metrics::Metrics()
    : request_seconds_{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                        10, 30}},
      commit_ops_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384}},
      commit_seconds_{
          {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1}} {}

void Metrics::record_request(std::string_view route, int status, double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(route), status}];
  request_seconds_.observe(seconds);
}

void Metrics::record_commit(std::size_t ops, double seconds, bool ok) {
  std::lock_guard lock(mu_);
  commit_ops_.observe(static_cast<double>(ops));
  commit_seconds_.observe(seconds);
  if (!ok) ++commit_failures_;
}

void Metrics::record_writer_turn(bool taken) {
  std::lock_guard lock(mu_);
  ++(taken ? writer_turns_ : writer_turns_missed_);
}

void Metrics::set_intent_counts(const std::array<std::uint64_t, kIntentStateCount>& counts,
                                std::uint64_t facts, std::uint64_t last_seq) {
  std::lock_guard lock(mu_);
  intents_ = counts;
  facts_ = facts;
  last_seq_ = last_seq;
}

void Metrics::set_engine_depths(std::size_t ingress, std::size_t parked) {
  std::lock_guard lock(mu_);
  ingress_ = ingress;
  parked_ = parked;
}

void Metrics::set_admission(const std::vector<Blackboard::LaneUse>& lanes,
                            std::size_t lane_series_max, std::size_t no_budget_open,
                            std::size_t dependency_waits) {
  // Configured keys first, then the others, each group in key order; cut at
  // lane_series_max; shown in key order.
  std::vector<const Blackboard::LaneUse*> pick;
  pick.reserve(std::min(lanes.size(), lane_series_max));
  for (int pass = 0; pass < 2; ++pass) {
    for (const Blackboard::LaneUse& u : lanes) {
      if (pick.size() >= lane_series_max) break;
      if (u.configured == (pass == 0)) pick.push_back(&u);
    }
  }
  std::sort(pick.begin(), pick.end(), [](const auto* a, const auto* b) { return a->key < b->key; });
  std::vector<Blackboard::LaneUse> kept;
  kept.reserve(pick.size());
  for (const Blackboard::LaneUse* u : pick) kept.push_back(*u);
  std::lock_guard lock(mu_);
  lanes_ = std::move(kept);
  lanes_dropped_ = lanes.size() - lanes_.size();
  no_budget_open_ = no_budget_open;
  dependency_waits_ = dependency_waits;
}

namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// "# HELP name help" and "# TYPE name type" (Prometheus text format).
void header(std::string& out, const char* name, const char* help, const char* type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

template <std::size_t N>
void histogram(std::string& out, const char* name, const char* help, const Histogram<N>& h) {
  header(out, name, help, "histogram");
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < N; ++i) {
    cum += h.counts[i];
    out += name;
    out += "_bucket{le=\"" + num(h.bounds[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  out += name;
  out += "_bucket{le=\"+Inf\"} " + std::to_string(h.count) + "\n";
  out += name;
  out += "_sum " + num(h.sum) + "\n";
  out += name;
  out += "_count " + std::to_string(h.count) + "\n";
}

// A metric with one unlabelled sample.
void single(std::string& out, const char* name, const char* help, const char* type,
            const std::string& value) {
  header(out, name, help, type);
  out += name;
  out += ' ' + value + "\n";
}

}  // namespace

void Metrics::record_contract_reload(bool ok) {
  std::lock_guard lock(mu_);
  ++(ok ? contract_reloads_ok_ : contract_reloads_error_);
}

void Metrics::set_contract_rules(std::int64_t rules) {
  std::lock_guard lock(mu_);
  contract_rules_ = rules;
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  header(out, "cairn_http_requests_total", "HTTP requests by route and status.", "counter");
  for (const auto& [k, v] : requests_) {
    out += "cairn_http_requests_total{route=\"" + k.first + "\",status=\"" +
           std::to_string(k.second) + "\"} " + std::to_string(v) + "\n";
  }
  histogram(out, "cairn_http_request_duration_seconds", "HTTP request latency.", request_seconds_);
  histogram(out, "cairn_commit_batch_ops", "Store operations per group commit.", commit_ops_);
  histogram(out, "cairn_commit_duration_seconds", "Group commit latency.", commit_seconds_);
  single(out, "cairn_commit_failures_total", "Group commits that failed.", "counter",
         std::to_string(commit_failures_));
  single(out, "cairn_writer_turns_total",
         "Shared mode: rounds run inside the cluster's writer turn.", "counter",
         std::to_string(writer_turns_));
  single(out, "cairn_writer_turns_missed_total",
         "Shared mode: rounds that went on without the writer turn (the wait ran out).", "counter",
         std::to_string(writer_turns_missed_));
  header(out, "cairn_intents", "Intents by state.", "gauge");
  for (int i = 0; i < kIntentStateCount; ++i) {
    out += "cairn_intents{state=\"" + std::string(state_name(static_cast<IntentState>(i))) +
           "\"} " + std::to_string(intents_[i]) + "\n";
  }
  // Admission (docs/planner.md#in-cairnd).
  header(out, "cairn_lane_running", "Claimed intents charged to each budget key.", "gauge");
  for (const Blackboard::LaneUse& u : lanes_) {
    out += "cairn_lane_running{lane=\"" + u.key + "\"} " + std::to_string(u.running) + "\n";
  }
  header(out, "cairn_lane_open", "Open intents charged to each budget key.", "gauge");
  for (const Blackboard::LaneUse& u : lanes_) {
    out += "cairn_lane_open{lane=\"" + u.key + "\"} " + std::to_string(u.open) + "\n";
  }
  header(out, "cairn_lane_max_concurrency",
         "Each budget key's max_concurrency (0: no budget; +Inf: budgets off).", "gauge");
  for (const Blackboard::LaneUse& u : lanes_) {
    const std::int64_t m = u.configured ? u.budget.max_concurrency : 0;
    out +=
        "cairn_lane_max_concurrency{lane=\"" + u.key + "\"} " +
        (m == std::numeric_limits<std::int64_t>::max() ? std::string("+Inf") : std::to_string(m)) +
        "\n";
  }
  single(out, "cairn_lane_series_dropped",
         "Budget keys in use beyond the lanes_max series shown above.", "gauge",
         std::to_string(lanes_dropped_));
  single(out, "cairn_intents_no_budget",
         "Open intents in a lane without a budget (a configuration error: they wait no_budget).",
         "gauge", std::to_string(no_budget_open_));
  single(out, "cairn_dependency_waits",
         "Deferred intents waiting for a dependency (a fact id or kind:K).", "gauge",
         std::to_string(dependency_waits_));
  single(out, "cairn_facts", "Facts recorded.", "gauge", std::to_string(facts_));
  single(out, "cairn_event_seq", "Last event sequence number.", "gauge", std::to_string(last_seq_));
  single(out, "cairn_ingress_depth", "Requests queued for the engine thread.", "gauge",
         std::to_string(queue_depth.load() + ingress_));
  single(out, "cairn_parked_long_polls", "Long-poll claims waiting for work.", "gauge",
         std::to_string(parked_));
  single(out, "cairn_connections", "Open HTTP connections.", "gauge",
         std::to_string(connections.load()));
  single(out, "cairn_watchers", "Open watch streams.", "gauge", std::to_string(watchers.load()));
  single(out, "cairn_connections_refused_total", "Connections refused at connections_max.",
         "counter", std::to_string(connections_refused.load()));
  single(out, "cairn_watch_overflows_total", "Watch streams cut off for falling behind.", "counter",
         std::to_string(watch_overflows.load()));
  single(out, "cairn_log_records_appended_total", "Log records appended (POST /v1/logs).",
         "counter", std::to_string(log_records_appended.load()));
  single(out, "cairn_log_archived_days_total",
         "Days of log records exported to archive/logs/ and deleted.", "counter",
         std::to_string(log_archived_days.load()));
  header(out, "cairn_contract_reloads_total",
         "Contract reloads on SIGHUP: ok (replaced) or error (refused; the old one stays).",
         "counter");
  out +=
      "cairn_contract_reloads_total{result=\"ok\"} " + std::to_string(contract_reloads_ok_) + "\n";
  out += "cairn_contract_reloads_total{result=\"error\"} " +
         std::to_string(contract_reloads_error_) + "\n";
  single(out, "cairn_contract_rules", "Rules of the contract in force (-1: no contract).", "gauge",
         std::to_string(contract_rules_));
  return out;
}

}  // namespace cairn::server

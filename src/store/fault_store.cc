// fault_store.cc — deterministic fault injection around a Store (pure). See
// fault_store.h.
#include "store/fault_store.h"

#include <utility>

namespace cairn::store {

FaultStore::FaultStore(Store* inner) : inner_(inner) {
  CAIRN_ASSERT(inner_ != nullptr);
}

FaultStore::FaultStore(std::unique_ptr<Store> owned)
    : owned_(std::move(owned)), inner_(owned_.get()) {
  CAIRN_ASSERT(inner_ != nullptr);
}

Status FaultStore::down_status() const {
  return unavailable("store is down (injected crash)");
}

void FaultStore::fail_commit(std::uint64_t n, CommitFault fault) {
  CAIRN_ASSERT(n > counters_.commits);
  commit_rules_[n] = fault;
}

void FaultStore::fail_read(std::uint64_t n) {
  CAIRN_ASSERT(n > counters_.reads);
  read_rules_.insert(n);
}

void FaultStore::set_random_faults(Rng& rng, RandomFaults probabilities) {
  const RandomFaults& p = probabilities;
  for (double x : {p.commit_unavailable, p.commit_unknown_applied, p.commit_unknown_not_applied,
                   p.read_unavailable}) {
    CAIRN_ASSERT(x >= 0 && x <= 1);
  }
  CAIRN_ASSERT(p.commit_unavailable + p.commit_unknown_applied + p.commit_unknown_not_applied <=
               1.0);
  rng_ = &rng;
  random_ = probabilities;
}

void FaultStore::crash() {
  down_ = true;
  ++counters_.crashes;
}

void FaultStore::clear_faults() {
  commit_rules_.clear();
  read_rules_.clear();
  reads_down_ = false;
  down_ = false;
  rng_ = nullptr;
}

bool FaultStore::read_fault() {
  ++counters_.reads;
  bool fault = false;
  if (down_) {
    fault = true;
  } else if (read_rules_.erase(counters_.reads) > 0) {
    fault = true;
  } else if (reads_down_) {
    fault = true;
  } else if (rng_ != nullptr) {
    fault = rng_->unit() < random_.read_unavailable;
  }
  if (fault) ++counters_.faults;
  return fault;
}

Result<std::optional<Entry>> FaultStore::get(std::string_view key) {
  ++counters_.gets;
  if (read_fault()) return down_ ? down_status() : unavailable("injected read fault");
  return inner_->get(key);
}

Result<RangePage> FaultStore::range(std::string_view prefix, std::string_view after,
                                    std::size_t limit) {
  ++counters_.ranges;
  if (read_fault()) return down_ ? down_status() : unavailable("injected read fault");
  return inner_->range(prefix, after, limit);
}

Result<std::optional<std::string>> FaultStore::get_blob(std::string_view id) {
  ++counters_.blob_gets;
  if (read_fault()) return down_ ? down_status() : unavailable("injected read fault");
  return inner_->get_blob(id);
}

Result<Version> FaultStore::last_version() {
  ++counters_.last_versions;
  if (read_fault()) return down_ ? down_status() : unavailable("injected read fault");
  return inner_->last_version();
}

Result<CommitInfo> FaultStore::commit(const Batch& batch) {
  const std::uint64_t n = ++counters_.commits;
  if (down_) {
    ++counters_.faults;
    return down_status();
  }

  std::optional<CommitFault> fault;
  if (auto rule = commit_rules_.find(n); rule != commit_rules_.end()) {
    fault = rule->second;
    commit_rules_.erase(rule);
  } else if (rng_ != nullptr) {
    const double u = rng_->unit();
    double edge = random_.commit_unavailable;
    if (u < edge) {
      fault = CommitFault::kUnavailable;
    } else if (u < (edge += random_.commit_unknown_applied)) {
      fault = CommitFault::kUnknownApplied;
    } else if (u < (edge += random_.commit_unknown_not_applied)) {
      fault = CommitFault::kUnknownNotApplied;
    }
  }

  if (!fault.has_value()) {
    Result<CommitInfo> r = inner_->commit(batch);
    if (r.ok()) ++counters_.commits_applied;
    return r;
  }

  ++counters_.faults;
  switch (*fault) {
    case CommitFault::kUnavailable:
      return unavailable("injected commit fault: refused, nothing applied");
    case CommitFault::kUnknownNotApplied:
      return outcome_unknown("injected commit fault: acknowledgement lost (not applied)");
    case CommitFault::kCrashBefore:
      crash();
      return down_status();
    case CommitFault::kUnknownApplied:
    case CommitFault::kCrashAfter: {
      Result<CommitInfo> r = inner_->commit(batch);
      if (r.ok()) ++counters_.commits_applied;
      if (*fault == CommitFault::kCrashAfter) crash();
      return outcome_unknown("injected commit fault: acknowledgement lost");
    }
  }
  CAIRN_UNREACHABLE();
}

}  // namespace cairn::store

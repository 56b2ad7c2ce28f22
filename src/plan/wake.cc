// wake.cc — DependencyWaiters (see wake.h).
#include "plan/wake.h"

#include <algorithm>

namespace cairn {

Status DependencyWaiters::wait(std::string_view intent_id, std::string_view key,
                               const PlanLimits& limits) {
  CAIRN_ASSIGN_OR_RETURN(DependencyKey k, parse_dependency_key(key, limits));
  forget(intent_id);
  Wait w;
  w.by_kind = k.type == DependencyKey::Type::kKind;
  w.name = std::move(k.name);
  w.ttl = k.ttl_ms > 0 ? k.ttl_ms : kAnyAge;
  if (w.by_kind) {
    by_kind_[w.name].emplace(w.ttl, std::string(intent_id));
  } else {
    by_fact_[w.name].emplace(intent_id);
  }
  key_of_.emplace(std::string(intent_id), std::move(w));
  return Status();
}

void DependencyWaiters::forget(std::string_view intent_id) {
  auto f = key_of_.find(intent_id);
  if (f == key_of_.end()) return;
  const Wait& w = f->second;
  if (w.by_kind) {
    auto k = by_kind_.find(w.name);
    CAIRN_ASSERT(k != by_kind_.end());
    k->second.erase({w.ttl, f->first});
    if (k->second.empty()) by_kind_.erase(k);
  } else {
    auto i = by_fact_.find(w.name);
    CAIRN_ASSERT(i != by_fact_.end());
    i->second.erase(f->first);
    if (i->second.empty()) by_fact_.erase(i);
  }
  key_of_.erase(f);
}

void DependencyWaiters::rebuild(const Plan& plan) {
  key_of_.clear();
  by_fact_.clear();
  by_kind_.clear();
  for (const PlanDecision& d : plan.decisions) {
    if (d.reason != PlanReason::kMissingDependency) continue;
    Status st = wait(d.id, d.arg);
    CAIRN_ASSERT(st.ok());  // the planner only reports keys it parsed
  }
}

std::vector<std::string> DependencyWaiters::on_fact(std::string_view id, std::string_view kind,
                                                    std::int64_t recorded_at, std::int64_t now_ms) {
  std::vector<std::string> woken;
  if (auto i = by_fact_.find(id); i != by_fact_.end()) {
    woken.insert(woken.end(), i->second.begin(), i->second.end());
  }
  if (auto k = by_kind_.find(kind); k != by_kind_.end()) {
    // Ready when now - recorded_at < ttl, i.e. ttl > age.
    const std::int64_t age = std::max<std::int64_t>(0, now_ms - recorded_at);
    for (auto it = k->second.upper_bound({age, std::string()}); it != k->second.end(); ++it) {
      if (it->first > age) woken.push_back(it->second);
    }
  }
  std::sort(woken.begin(), woken.end());
  woken.erase(std::unique(woken.begin(), woken.end()), woken.end());
  for (const std::string& w : woken) forget(w);
  return woken;
}

}  // namespace cairn

// wake.h — which waiting intents a fact wakes, without a full re-plan (pure).
//
// DependencyWaiters indexes the intents whose current reason is
// missing_dependency(key) by that key: a fact id, or a kind (with the
// readiness TTLs of the `kind:K@…` keys that wait on it). on_fact() returns
// exactly the intents whose key the new fact makes ready and forgets them;
// the caller re-evaluates only those (they may now wait on their next
// dependency, or for capacity). Cost: O(log n) per registered wait, O(k log n)
// for a fact that wakes k intents; nothing for facts nobody waits on.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "plan/plan.h"

namespace cairn {

class DependencyWaiters {
 public:
  // Registers `intent_id` as waiting on `key`, replacing any earlier wait of
  // the same intent. Errors: invalid (reason invalid_dependency_key).
  Status wait(std::string_view intent_id, std::string_view key, const PlanLimits& limits = {});
  // Drops the intent's wait (concluded, cancelled, re-planned); no-op when none.
  void forget(std::string_view intent_id);
  // Replaces the index with the missing_dependency decisions of `plan`.
  void rebuild(const Plan& plan);
  // A fact of `kind` with `id`, recorded at `recorded_at`, as of `now_ms`:
  // the intents it makes ready, in id order, removed from the index.
  std::vector<std::string> on_fact(std::string_view id, std::string_view kind,
                                   std::int64_t recorded_at, std::int64_t now_ms);

  std::size_t size() const { return key_of_.size(); }

 private:
  static constexpr std::int64_t kAnyAge = std::numeric_limits<std::int64_t>::max();
  struct Wait {
    bool by_kind = false;
    std::string name;  // fact id or kind
    std::int64_t ttl;  // by_kind: kAnyAge when the key has no TTL
  };
  std::map<std::string, Wait, std::less<>> key_of_;  // intent → what it waits on
  std::map<std::string, std::set<std::string>, std::less<>> by_fact_;  // fact id → intents
  // kind → (ttl, intent), so the intents a fact of age a wakes are those with ttl > a.
  std::map<std::string, std::set<std::pair<std::int64_t, std::string>>, std::less<>> by_kind_;
};

}  // namespace cairn

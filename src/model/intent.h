// intent.h — Intents: units of work one agent at a time may hold (pure).
//
// An intent has an immutable definition (what to do, grounded in ≥1 fact) and
// a mutable status (who holds it, under which fencing epoch, until when). The
// two are stored under separate keys so a claim or heartbeat rewrites only the
// small status record. The transitions live in core/lifecycle.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.h"
#include "model/limits.h"
#include "model/status.h"

namespace cairn {

enum class IntentState : std::uint8_t {
  kOpen,       // claimable (subject to hints and backoff)
  kDeferred,   // waiting for a reason to clear (planner)
  kClaimed,    // held under a lease by one agent
  kConcluded,  // terminal: a result fact is recorded
  kDead,       // terminal: attempts exhausted or a non-retryable failure
  kCancelled,  // terminal: cancelled by its creator
  kStale,      // terminal: open or deferred for longer than stale_after_ms
  kCoalesced,  // terminal: replaced by a better intent with the same (lane, identity)
};
inline constexpr int kIntentStateCount = 8;

std::string_view state_name(IntentState s);
std::optional<IntentState> parse_state(std::string_view name);
inline bool is_terminal(IntentState s) {
  return s == IntentState::kConcluded || s == IntentState::kDead || s == IntentState::kCancelled ||
         s == IntentState::kStale || s == IntentState::kCoalesced;
}

inline constexpr std::string_view kDefaultLane = "default";

// What a client asks for. Empty / zero members take defaults on creation.
struct IntentDraft {
  std::string id;  // optional client-chosen id (a name); generated when empty
  std::string kind;
  Json spec = Json::object();
  std::vector<std::string> from_facts;
  std::string lane = std::string(kDefaultLane);
  std::string provider;         // optional: charged to budget "lane/provider" when configured
  std::int64_t cost_units = 0;  // 0 → 1; what the intent uses of its budget's max_cost_units
  std::int64_t priority = 0;
  std::string identity;                // optional coalescing key
  std::vector<std::string> requires_;  // optional dependency keys (plan/plan.h DependencyKey)
  std::int64_t stale_after_ms = 0;     // 0 = never stale
  std::int64_t lease_ttl_ms = 0;       // 0 → ModelLimits::lease_ttl_ms_default
  std::int64_t max_attempts = 0;       // 0 → ModelLimits::max_attempts_default
  std::string creator;
};

// Validates shape and bounds (not references) and fills defaults.
Status normalize_intent_draft(IntentDraft& d, const ModelLimits& limits);

// Parses a client's intent object; `creator` defaults to `default_creator`.
Result<IntentDraft> intent_draft_from_json(const Json& obj, std::string_view default_creator);

struct IntentDef {
  std::string id;
  std::string kind;
  Json spec;
  std::vector<std::string> from_facts;
  std::string lane;
  std::string provider;
  std::int64_t cost_units = 1;
  std::int64_t priority = 0;
  std::string identity;
  std::vector<std::string> requires_;
  std::int64_t stale_after_ms = 0;
  std::int64_t lease_ttl_ms = 0;
  std::int64_t max_attempts = 0;
  std::string creator;
  std::int64_t created_at = 0;    // wall ms
  std::uint64_t created_seq = 0;  // event seq of intent.created
};

struct IntentStatus {
  IntentState state = IntentState::kOpen;
  std::uint64_t epoch = 0;            // fencing token; +1 on every claim
  std::string holder;                 // agent holding the lease (claimed only)
  std::int64_t lease_expires_at = 0;  // wall ms (claimed only)
  std::int64_t attempts = 0;          // claims so far (counted at claim time)
  std::int64_t not_before = 0;        // wall ms; claimable from then (after a failure)
  std::string result;                 // fact id (concluded only)
  std::string last_error;             // detail of the last failure
  std::string coalesced_into;         // the intent that took its place (coalesced only)
  std::int64_t updated_at = 0;        // wall ms of the last transition

  friend bool operator==(const IntentStatus&, const IntentStatus&) = default;
};

struct Intent {
  IntentDef def;
  IntentStatus st;
};

// API form: definition and status members in one object.
Json intent_to_json(const Intent& in);

// Storage records.
std::string encode_intent_def(const IntentDef& d);
Result<IntentDef> decode_intent_def(std::string_view bytes);
std::string encode_intent_status(const IntentStatus& s);
Result<IntentStatus> decode_intent_status(std::string_view bytes);

}  // namespace cairn

// event.h — the blackboard's append-only event log entries (pure).
//
// Every transition appends one event with the next number of one gap-free
// sequence. Watch streams, archival cursors and replication read this log.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "model/json.h"
#include "model/status.h"

namespace cairn {

// Event types (the `type` member).
namespace ev {
inline constexpr std::string_view kFactRecorded = "fact.recorded";
inline constexpr std::string_view kIntentCreated = "intent.created";
inline constexpr std::string_view kIntentClaimed = "intent.claimed";
inline constexpr std::string_view kIntentRenewed = "intent.renewed";
inline constexpr std::string_view kIntentConcluded = "intent.concluded";
inline constexpr std::string_view kIntentFailed = "intent.failed";  // back to open, backoff
inline constexpr std::string_view kIntentDead = "intent.dead";
inline constexpr std::string_view kIntentReleased = "intent.released";
inline constexpr std::string_view kIntentExpired = "intent.expired";  // lease ran out
inline constexpr std::string_view kIntentCancelled = "intent.cancelled";
// Admission (docs/planner.md): a dependency is not ready (open → deferred),
// every dependency is ready again (deferred → open), the intent outlived
// stale_after_ms, or a better intent with the same (lane, identity) took its place.
inline constexpr std::string_view kIntentDeferred = "intent.deferred";
inline constexpr std::string_view kIntentReady = "intent.ready";
inline constexpr std::string_view kIntentStale = "intent.stale";
inline constexpr std::string_view kIntentCoalesced = "intent.coalesced";
inline constexpr std::string_view kHintCreated = "hint.created";
inline constexpr std::string_view kHintRevoked = "hint.revoked";
inline constexpr std::string_view kHintExpired = "hint.expired";
}  // namespace ev

struct Event {
  std::uint64_t seq = 0;
  std::string type;
  std::string subject;  // the fact, intent or hint id
  Json data;            // type-specific details (an object)
  std::int64_t at = 0;  // wall ms

  friend bool operator==(const Event& a, const Event& b) {
    return a.seq == b.seq && a.type == b.type && a.subject == b.subject && a.data == b.data &&
           a.at == b.at;
  }
};

// {"seq","type","subject","data","at"} — also the storage record.
Json event_to_json(const Event& e);
std::string encode_event(const Event& e);
// The RFC 8785 canonical JSON of event_to_json(e), written directly (members
// in key order: at, data, seq, subject, type) — what the evidence chain hashes.
std::string event_jcs(const Event& e);
Result<Event> decode_event(std::string_view bytes);

}  // namespace cairn

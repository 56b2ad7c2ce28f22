// keys.h — the blackboard's storage key layout (pure).
//
// Records (values are compact JSON, see model/*.h):
//   f/<fact id>                         fact record
//   i/<intent id>                       intent definition (immutable)
//   s/<intent id>                       intent status (mutable)
//   h/<hint id>                         hint record
//   e/<seq:20>                          event
//   m/event_seq                         last assigned event sequence number
//   v/<seq:20>                          evidence link of event <seq> (core/evidence.h)
//   m/commit/<node>                     shared mode: names the node's last batch
//                                       (engine; resync after outcome_unknown)
//   k/<n:20>                            an idempotency record (engine): the
//                                       caller, key and final reply of a keyed
//                                       request, written in the batch that
//                                       answered it; n orders them (eviction)
//   k:<node>/<n:20>                     the same for node <node> in shared mode
//                                       (each node numbers and reads its own)
// Secondary indexes (empty values unless noted), kept in the same batch:
//   x/fs/<seq:20>                       → fact id   facts in record order
//   x/fk/<kind>|<seq:20>                → fact id   facts by kind and time
//   x/fc/<fact id>|<intent id>                      result fact → intents it concludes
//   x/is/<state>|<intent id>                        intents by state
//   x/io/<lane>|<prio:20>|<age:20>|<id>             open intents by lane, priority
//                                                   desc, newest first
//   x/le/<lease end ms:20>|<intent id>              leases by expiry
//
// Numbers are zero-padded to 20 digits so bytewise order is numeric order.
// '|' separates variable-length parts; no kind or name may contain it
// (model/names.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "model/intent.h"

namespace cairn::keys {

inline constexpr std::string_view kFact = "f/";
inline constexpr std::string_view kIntentDef = "i/";
inline constexpr std::string_view kIntentStatus = "s/";
inline constexpr std::string_view kHint = "h/";
inline constexpr std::string_view kEvent = "e/";
inline constexpr std::string_view kEventSeq = "m/event_seq";
inline constexpr std::string_view kEvidence = "v/";
inline constexpr std::string_view kCommitMarker = "m/commit/";
inline constexpr std::string_view kIdempotency = "k/";
inline constexpr std::string_view kNodeIdempotency = "k:";
inline constexpr std::string_view kFactsBySeq = "x/fs/";
inline constexpr std::string_view kFactsByKind = "x/fk/";
inline constexpr std::string_view kFactConcludes = "x/fc/";
inline constexpr std::string_view kIntentsByState = "x/is/";
inline constexpr std::string_view kOpenIntents = "x/io/";
inline constexpr std::string_view kLeases = "x/le/";

// Appends `v` zero-padded to 20 digits.
void append_u64(std::string& out, std::uint64_t v);

std::string fact(std::string_view id);
std::string intent_def(std::string_view id);
std::string intent_status(std::string_view id);
std::string hint(std::string_view id);
std::string event(std::uint64_t seq);
std::string evidence(std::uint64_t seq);
// "k/" for a single-writer engine (node empty), "k:<node>/" in shared mode.
std::string idempotency_prefix(std::string_view node);
std::string idempotency_record(std::uint64_t n, std::string_view node = {});
std::string fact_by_seq(std::uint64_t seq);
std::string fact_by_kind(std::string_view kind, std::uint64_t seq);
std::string fact_by_kind_prefix(std::string_view kind);
std::string fact_concludes(std::string_view fact_id, std::string_view intent_id);
std::string intent_by_state(IntentState s, std::string_view id);
std::string intent_by_state_prefix(IntentState s);
std::string open_intent(std::string_view lane, std::int64_t priority, std::uint64_t created_seq,
                        std::string_view id);
std::string open_intent_lane_prefix(std::string_view lane);
std::string lease(std::int64_t expires_at_ms, std::string_view id);

// The part of an index key after its last '|' (the id).
std::string_view last_part(std::string_view key);

}  // namespace cairn::keys

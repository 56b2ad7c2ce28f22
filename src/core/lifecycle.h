// lifecycle.h — the intent state machine, in one place (pure).
//
// kTransitions below is the whole lifecycle, readable as a table. The
// functions after it decide one transition for one intent from its current
// status, the request and `now` — nothing else. They either return the new
// status (and which row of the table applied) or an error value; they never
// touch storage, hints or other intents (the Blackboard does that, and asserts
// that every change it applies is a row of this table).
//
// Lease liveness: a lease is live while state == claimed and
// now < lease_expires_at. Once `now` reaches the lease end the holder is
// fenced off even before the expiry timer has run.
//
// Fencing: every claim increments `epoch`. heartbeat, conclude, fail and
// release must present the current epoch; anything else is `conflict`
// (reason stale_epoch). Expiry leaves the epoch unchanged until the next claim.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "model/event.h"
#include "model/intent.h"
#include "model/rng.h"
#include "model/status.h"

namespace cairn::lifecycle {

enum class Op : std::uint8_t {
  kClaim,
  kHeartbeat,
  kConclude,
  kFail,
  kRelease,
  kExpire,
  kCancel,
  kDefer,     // admission: a dependency is not ready
  kReady,     // admission: every dependency is ready again
  kStale,     // admission: open or deferred past stale_after_ms
  kCoalesce,  // admission: a better intent with the same (lane, identity) replaces it
};
std::string_view op_name(Op op);

struct Transition {
  Op op;
  IntentState from;
  IntentState to;
  std::string_view event;  // the event type this transition appends
  std::string_view rule;   // who may do it, and when
};

// clang-format off
inline constexpr Transition kTransitions[] = {
  // op               from                    to                       event                  rule
  {Op::kClaim,     IntentState::kOpen,     IntentState::kClaimed,   ev::kIntentClaimed,    "now >= not_before and no live hint denies, defers, caps or gates it; epoch+1, attempts+1, lease = now+ttl"},
  {Op::kHeartbeat, IntentState::kClaimed,  IntentState::kClaimed,   ev::kIntentRenewed,    "holder, current epoch, live lease; lease = now+ttl"},
  {Op::kConclude,  IntentState::kClaimed,  IntentState::kConcluded, ev::kIntentConcluded,  "holder, current epoch, live lease; records the result fact"},
  {Op::kFail,      IntentState::kClaimed,  IntentState::kOpen,      ev::kIntentFailed,     "holder, current epoch, live lease, retryable, attempts < max_attempts; not_before = now+backoff"},
  {Op::kFail,      IntentState::kClaimed,  IntentState::kDead,      ev::kIntentDead,       "holder, current epoch, live lease, not retryable or attempts >= max_attempts"},
  {Op::kRelease,   IntentState::kClaimed,  IntentState::kOpen,      ev::kIntentReleased,   "holder (others: forbidden), current epoch"},
  {Op::kExpire,    IntentState::kClaimed,  IntentState::kOpen,      ev::kIntentExpired,    "timer: now >= lease_expires_at; epoch unchanged"},
  {Op::kCancel,    IntentState::kOpen,     IntentState::kCancelled, ev::kIntentCancelled,  "creator (others: forbidden)"},
  {Op::kCancel,    IntentState::kDeferred, IntentState::kCancelled, ev::kIntentCancelled,  "creator (others: forbidden)"},
  {Op::kCancel,    IntentState::kClaimed,  IntentState::kCancelled, ev::kIntentCancelled,  "creator (others: forbidden); the holder is fenced off"},
  {Op::kDefer,     IntentState::kOpen,     IntentState::kDeferred,  ev::kIntentDeferred,   "admission: one of its dependency keys is not ready (at creation, or a kind:K@ttl key ran out)"},
  {Op::kReady,     IntentState::kDeferred, IntentState::kOpen,      ev::kIntentReady,      "admission: the fact it waited on arrived and every key is ready"},
  {Op::kStale,     IntentState::kOpen,     IntentState::kStale,     ev::kIntentStale,      "timer: now >= created_at + stale_after_ms (> 0)"},
  {Op::kStale,     IntentState::kDeferred, IntentState::kStale,     ev::kIntentStale,      "timer: now >= created_at + stale_after_ms (> 0)"},
  {Op::kCoalesce,  IntentState::kOpen,     IntentState::kCoalesced, ev::kIntentCoalesced,  "admission: a newer or higher-priority open intent with the same (lane, identity) was created; links to it"},
  {Op::kCoalesce,  IntentState::kDeferred, IntentState::kCoalesced, ev::kIntentCoalesced,  "admission: as above"},
};
// clang-format on

// The row for (op, from, to), or nullptr when the table has none.
const Transition* find_transition(Op op, IntentState from, IntentState to);

// Backoff after a failure: delay = min(cap, base · 2^(attempts-1)), then
// "equal jitter": half of it fixed, the other half uniform from the Rng.
struct BackoffPolicy {
  std::int64_t base_ms = 1'000;
  std::int64_t cap_ms = 300'000;
};
std::int64_t backoff_delay_ms(const BackoffPolicy& p, std::int64_t attempts, Rng& rng);

bool lease_live(const IntentStatus& s, std::int64_t now_ms);

// Each decision returns the new status, or an error that leaves it unchanged.
// `no_op` is set when the request is a permitted repeat that changes nothing
// (e.g. releasing an intent that is already open, cancelling a cancelled one).
struct Decision {
  IntentStatus next;
  const Transition* row = nullptr;  // nullptr exactly when no_op
  bool no_op = false;
};

// Claim for `agent` with lease `ttl_ms` (hint checks are the caller's).
Result<Decision> claim(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                       std::int64_t ttl_ms, std::int64_t now_ms);
Result<Decision> heartbeat(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                           std::uint64_t epoch, std::int64_t ttl_ms, std::int64_t now_ms);
// `result_id` is the id of the result fact the caller computed.
Result<Decision> conclude(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                          std::uint64_t epoch, std::string_view result_id, std::int64_t now_ms);
// `error` must already be truncated to ModelLimits::error_bytes_max.
Result<Decision> fail(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                      std::uint64_t epoch, std::string_view error, bool retryable,
                      std::int64_t backoff_ms, std::int64_t now_ms);
Result<Decision> release(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                         std::uint64_t epoch, std::int64_t now_ms);
// REQUIRES: the lease has ended (now >= lease_expires_at, state claimed).
Decision expire(const IntentDef& d, const IntentStatus& s, std::int64_t now_ms);
Result<Decision> cancel(const IntentDef& d, const IntentStatus& s, std::string_view requester,
                        std::int64_t now_ms);
// Admission transitions (the Blackboard decides when; these only check the
// state). REQUIRES: open (defer), deferred (ready), open or deferred (stale,
// coalesce).
Decision defer(const IntentStatus& s, std::int64_t now_ms);
Decision ready(const IntentStatus& s, std::int64_t now_ms);
Decision stale(const IntentStatus& s, std::int64_t now_ms);
Decision coalesce(const IntentStatus& s, std::string_view into, std::int64_t now_ms);

}  // namespace cairn::lifecycle

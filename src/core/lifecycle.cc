// lifecycle.cc — one decision per transition of the intent state machine.
#include "core/lifecycle.h"

#include <algorithm>
#include <string>

namespace cairn::lifecycle {

std::string_view op_name(Op op) {
  switch (op) {
    case Op::kClaim:
      return "claim";
    case Op::kHeartbeat:
      return "heartbeat";
    case Op::kConclude:
      return "conclude";
    case Op::kFail:
      return "fail";
    case Op::kRelease:
      return "release";
    case Op::kExpire:
      return "expire";
    case Op::kCancel:
      return "cancel";
    case Op::kDefer:
      return "defer";
    case Op::kReady:
      return "ready";
    case Op::kStale:
      return "stale";
    case Op::kCoalesce:
      return "coalesce";
  }
  CAIRN_UNREACHABLE();
}

const Transition* find_transition(Op op, IntentState from, IntentState to) {
  for (const Transition& t : kTransitions) {
    if (t.op == op && t.from == from && t.to == to) return &t;
  }
  return nullptr;
}

std::int64_t backoff_delay_ms(const BackoffPolicy& p, std::int64_t attempts, Rng& rng) {
  CAIRN_ASSERT(p.base_ms > 0 && p.cap_ms >= p.base_ms);
  std::int64_t delay = p.base_ms;
  for (std::int64_t i = 1; i < attempts && delay < p.cap_ms; ++i) delay *= 2;
  delay = std::min(delay, p.cap_ms);
  const std::int64_t half = delay / 2;
  return half + rng.range(0, delay - half);
}

bool lease_live(const IntentStatus& s, std::int64_t now_ms) {
  return s.state == IntentState::kClaimed && now_ms < s.lease_expires_at;
}

namespace {

Decision apply(Op op, const IntentStatus& from, IntentStatus next) {
  const Transition* row = find_transition(op, from.state, next.state);
  CAIRN_ASSERT_MSG(row != nullptr, "transition missing from kTransitions");
  return Decision{std::move(next), row, false};
}

Decision no_op(const IntentStatus& s) {
  return Decision{s, nullptr, true};
}

Json holder_details(const IntentStatus& s) {
  return Json(JsonObject{{"holder", Json(s.holder)},
                         {"lease_expires_at", Json(s.lease_expires_at)},
                         {"epoch", Json(s.epoch)}});
}

Status state_conflict(const IntentStatus& s, std::string_view op) {
  return conflict(
      "cannot " + std::string(op) + " an intent that is " + std::string(state_name(s.state)),
      "invalid_state", Json(JsonObject{{"state", Json(state_name(s.state))}}));
}

// The checks shared by heartbeat, conclude and fail: the caller must hold the
// live lease under the current epoch.
Status check_holder(const IntentStatus& s, std::string_view agent, std::uint64_t epoch,
                    std::string_view op, std::int64_t now_ms) {
  if (s.state != IntentState::kClaimed) {
    if (is_terminal(s.state)) return state_conflict(s, op);
    // Open again (expired or released): the old holder is fenced off.
    return conflict(
        "the lease has ended; the intent is " + std::string(state_name(s.state)), "stale_epoch",
        Json(JsonObject{{"epoch", Json(s.epoch)}, {"state", Json(state_name(s.state))}}));
  }
  if (epoch != s.epoch) {
    return conflict("epoch " + std::to_string(epoch) + " is stale; the current epoch is " +
                        std::to_string(s.epoch),
                    "stale_epoch", holder_details(s));
  }
  if (agent != s.holder) {
    return conflict("the intent is held by " + s.holder, "not_holder", holder_details(s));
  }
  if (now_ms >= s.lease_expires_at) {
    return conflict("the lease expired at " + std::to_string(s.lease_expires_at), "stale_epoch",
                    holder_details(s));
  }
  return Status();
}

}  // namespace

Result<Decision> claim(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                       std::int64_t ttl_ms, std::int64_t now_ms) {
  (void)d;
  CAIRN_ASSERT(ttl_ms > 0);
  switch (s.state) {
    case IntentState::kOpen:
      break;
    case IntentState::kClaimed:
      // An ended lease is expired by the caller (Blackboard) before claiming.
      return conflict("the intent is claimed by " + s.holder, "already_claimed", holder_details(s));
    case IntentState::kDeferred:
      return conflict("the intent is deferred", "deferred",
                      Json(JsonObject{{"state", Json("deferred")}}));
    case IntentState::kConcluded:
    case IntentState::kDead:
    case IntentState::kCancelled:
    case IntentState::kStale:
    case IntentState::kCoalesced:
      return state_conflict(s, "claim");
  }
  if (now_ms < s.not_before) {
    return conflict("the intent is backing off until " + std::to_string(s.not_before), "backoff",
                    Json(JsonObject{{"not_before", Json(s.not_before)}}));
  }
  IntentStatus n = s;
  n.state = IntentState::kClaimed;
  n.epoch = s.epoch + 1;
  n.holder = std::string(agent);
  n.lease_expires_at = now_ms + ttl_ms;
  n.attempts = s.attempts + 1;
  n.not_before = 0;
  n.updated_at = now_ms;
  return apply(Op::kClaim, s, std::move(n));
}

Result<Decision> heartbeat(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                           std::uint64_t epoch, std::int64_t ttl_ms, std::int64_t now_ms) {
  (void)d;
  CAIRN_ASSERT(ttl_ms > 0);
  CAIRN_RETURN_IF_ERROR(check_holder(s, agent, epoch, "heartbeat", now_ms));
  IntentStatus n = s;
  n.lease_expires_at = std::max(s.lease_expires_at, now_ms + ttl_ms);
  n.updated_at = now_ms;
  return apply(Op::kHeartbeat, s, std::move(n));
}

Result<Decision> conclude(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                          std::uint64_t epoch, std::string_view result_id, std::int64_t now_ms) {
  (void)d;
  if (s.state == IntentState::kConcluded) {
    // A retry of the conclude that won is answered with the same result.
    if (epoch == s.epoch && agent == s.holder && result_id == s.result) return no_op(s);
    return conflict("the intent is already concluded with result " + s.result,
                    epoch == s.epoch ? "already_concluded" : "stale_epoch",
                    Json(JsonObject{{"result", Json(s.result)}, {"epoch", Json(s.epoch)}}));
  }
  CAIRN_RETURN_IF_ERROR(check_holder(s, agent, epoch, "conclude", now_ms));
  IntentStatus n = s;
  n.state = IntentState::kConcluded;
  n.lease_expires_at = 0;
  n.result = std::string(result_id);
  n.updated_at = now_ms;
  // `holder` stays: it names the agent whose result was recorded.
  return apply(Op::kConclude, s, std::move(n));
}

Result<Decision> fail(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                      std::uint64_t epoch, std::string_view error, bool retryable,
                      std::int64_t backoff_ms, std::int64_t now_ms) {
  CAIRN_RETURN_IF_ERROR(check_holder(s, agent, epoch, "fail", now_ms));
  CAIRN_ASSERT(backoff_ms >= 0);
  IntentStatus n = s;
  n.holder.clear();
  n.lease_expires_at = 0;
  n.last_error = std::string(error);
  n.updated_at = now_ms;
  if (!retryable || s.attempts >= d.max_attempts) {
    n.state = IntentState::kDead;
    n.not_before = 0;
  } else {
    n.state = IntentState::kOpen;
    n.not_before = now_ms + backoff_ms;
  }
  return apply(Op::kFail, s, std::move(n));
}

Result<Decision> release(const IntentDef& d, const IntentStatus& s, std::string_view agent,
                         std::uint64_t epoch, std::int64_t now_ms) {
  (void)d;
  switch (s.state) {
    case IntentState::kOpen:
    case IntentState::kDeferred:
      return no_op(s);  // nothing held: releasing is a no-op
    case IntentState::kConcluded:
    case IntentState::kDead:
    case IntentState::kCancelled:
    case IntentState::kStale:
    case IntentState::kCoalesced:
      return state_conflict(s, "release");
    case IntentState::kClaimed:
      break;
  }
  if (agent != s.holder) {
    return forbidden("only the holder may release the intent; it is held by " + s.holder,
                     "not_holder", holder_details(s));
  }
  if (epoch != s.epoch) {
    return conflict("epoch " + std::to_string(epoch) + " is stale", "stale_epoch",
                    holder_details(s));
  }
  IntentStatus n = s;
  n.state = IntentState::kOpen;
  n.holder.clear();
  n.lease_expires_at = 0;
  n.updated_at = now_ms;
  return apply(Op::kRelease, s, std::move(n));
}

Decision expire(const IntentDef& d, const IntentStatus& s, std::int64_t now_ms) {
  (void)d;
  CAIRN_ASSERT(s.state == IntentState::kClaimed && now_ms >= s.lease_expires_at);
  IntentStatus n = s;
  n.state = IntentState::kOpen;
  n.holder.clear();
  n.lease_expires_at = 0;
  n.updated_at = now_ms;
  return apply(Op::kExpire, s, std::move(n));
}

Result<Decision> cancel(const IntentDef& d, const IntentStatus& s, std::string_view requester,
                        std::int64_t now_ms) {
  if (requester != d.creator) {
    return forbidden("only the creator (" + d.creator + ") may cancel the intent", "not_creator");
  }
  if (s.state == IntentState::kCancelled) return no_op(s);
  if (is_terminal(s.state)) return state_conflict(s, "cancel");
  IntentStatus n = s;
  n.state = IntentState::kCancelled;
  n.holder.clear();
  n.lease_expires_at = 0;
  n.not_before = 0;
  n.updated_at = now_ms;
  return apply(Op::kCancel, s, std::move(n));
}

Decision defer(const IntentStatus& s, std::int64_t now_ms) {
  CAIRN_ASSERT(s.state == IntentState::kOpen);
  IntentStatus n = s;
  n.state = IntentState::kDeferred;
  n.updated_at = now_ms;
  return apply(Op::kDefer, s, std::move(n));
}

Decision ready(const IntentStatus& s, std::int64_t now_ms) {
  CAIRN_ASSERT(s.state == IntentState::kDeferred);
  IntentStatus n = s;
  n.state = IntentState::kOpen;
  n.updated_at = now_ms;
  return apply(Op::kReady, s, std::move(n));
}

Decision stale(const IntentStatus& s, std::int64_t now_ms) {
  CAIRN_ASSERT(s.state == IntentState::kOpen || s.state == IntentState::kDeferred);
  IntentStatus n = s;
  n.state = IntentState::kStale;
  n.not_before = 0;
  n.updated_at = now_ms;
  return apply(Op::kStale, s, std::move(n));
}

Decision coalesce(const IntentStatus& s, std::string_view into, std::int64_t now_ms) {
  CAIRN_ASSERT(s.state == IntentState::kOpen || s.state == IntentState::kDeferred);
  IntentStatus n = s;
  n.state = IntentState::kCoalesced;
  n.not_before = 0;
  n.coalesced_into = std::string(into);
  n.updated_at = now_ms;
  return apply(Op::kCoalesce, s, std::move(n));
}

}  // namespace cairn::lifecycle

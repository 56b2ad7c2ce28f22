// schedule.cc — see schedule.h.
#include "senses/schedule.h"

#include <algorithm>
#include <limits>

namespace cairn::senses {

Json Trigger::to_json() const {
  JsonObject o{{"type", Json(type)}};
  if (!fact.empty()) {
    o.emplace_back(
        "fact", Json(JsonObject{{"id", Json(fact)}, {"kind", Json(kind)}, {"content", content}}));
  }
  if (!reflex.empty()) o.emplace_back("reflex", Json(reflex));
  return Json(std::move(o));
}

std::optional<Trigger> Trigger::from_json(const Json& j) {
  const Json* type = j.find("type");
  if (type == nullptr || !type->is_string()) return std::nullopt;
  Trigger t;
  t.type = type->as_string();
  if (const Json* f = j.find("fact"); f != nullptr && f->is_object()) {
    const Json* id = f->find("id");
    const Json* kind = f->find("kind");
    if (id == nullptr || !id->is_string() || kind == nullptr || !kind->is_string()) {
      return std::nullopt;
    }
    t.fact = id->as_string();
    t.kind = kind->as_string();
    if (const Json* c = f->find("content")) t.content = *c;
  }
  if (const Json* r = j.find("reflex"); r != nullptr && r->is_string()) t.reflex = r->as_string();
  return t;
}

SenseSchedule::SenseSchedule(SchedulePolicy policy, std::int64_t now_ms)
    : policy_(policy), interval_due_(now_ms) {}

void SenseSchedule::trigger(Trigger t) {
  if (pending_) ++coalesced_;
  pending_ = std::move(t);
}

std::optional<std::int64_t> SenseSchedule::next_run_at() const {
  if (running_) return std::nullopt;
  std::optional<std::int64_t> due;
  if (pending_) due = std::numeric_limits<std::int64_t>::min();
  if (policy_.interval_ms > 0) due = due ? std::min(*due, interval_due_) : interval_due_;
  if (!due) return std::nullopt;
  std::int64_t at = *due;
  if (policy_.throttle_ms > 0 && last_start_) at = std::max(at, *last_start_ + policy_.throttle_ms);
  at = std::max(at, backoff_until_);
  return at;
}

Trigger SenseSchedule::start(std::int64_t now_ms) {
  running_ = true;
  ++runs_;
  last_start_ = now_ms;
  if (policy_.interval_ms > 0 && interval_due_ <= now_ms) {
    interval_due_ = now_ms + policy_.interval_ms;
  }
  if (pending_) {
    Trigger t = std::move(*pending_);
    pending_.reset();
    return t;
  }
  Trigger t;
  t.type = "interval";
  return t;
}

void SenseSchedule::finish(std::int64_t now_ms, bool ok) {
  running_ = false;
  if (ok) {
    failures_ = 0;
    backoff_until_ = 0;
    return;
  }
  ++failures_;
  std::int64_t wait = policy_.backoff_initial_ms;
  for (std::int64_t i = 1; i < failures_ && wait < policy_.backoff_max_ms; ++i) wait *= 2;
  backoff_until_ = now_ms + std::min(wait, policy_.backoff_max_ms);
}

}  // namespace cairn::senses

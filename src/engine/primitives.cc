// primitives.cc — the engine's framework primitives (pure).
//
// Every container whose order is observable (to_json, eviction) is ordered;
// unordered maps are only looked up. Numbers written to JSON stay within
// ±2^53 so that snapshots round-trip exactly.
#include "engine/primitives.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/json_fields.h"
#include "model/names.h"

namespace cairn::engine {

namespace {

// Times saturate here, so they stay exact in JSON.
constexpr std::int64_t kTimeMax = 9'007'199'254'740'991;  // 2^53 − 1

Json u64(std::uint64_t v) {
  return Json(v);
}
Json i64(std::int64_t v) {
  return Json(v);
}

Status snapshot_error(std::string_view what, std::string_view problem) {
  return invalid(std::string(what) + " " + std::string(problem), "invalid_snapshot",
                 Json(JsonObject{{"field", Json(what)}}));
}

// The array member `key` of `j` (an object), or an error.
Status read_array(const Json& j, std::string_view key, const JsonArray*& out) {
  CAIRN_RETURN_IF_ERROR(expect_object(j, "snapshot"));
  const Json* v = j.find(key);
  if (v == nullptr || v->array_if() == nullptr) return snapshot_error(key, "must be an array");
  out = v->array_if();
  return Status();
}

Status read_u32(const Json& obj, std::string_view key, std::uint32_t& out) {
  std::uint64_t v = 0;
  CAIRN_RETURN_IF_ERROR(read_uint(obj, key, v));
  if (v > std::numeric_limits<std::uint32_t>::max()) return field_error(key, "is out of range");
  out = static_cast<std::uint32_t>(v);
  return Status();
}

Status read_finite_nonneg(const Json& obj, std::string_view key, double& out) {
  const Json* v = obj.find(key);
  std::optional<double> d = v != nullptr ? v->number_if() : std::nullopt;
  if (!d || !(*d >= 0)) return field_error(key, "must be a non-negative number");
  out = *d;
  return Status();
}

std::optional<Code> code_from_name(std::string_view name) {
  for (int i = static_cast<int>(Code::kOk); i <= static_cast<int>(Code::kInternal); ++i) {
    Code c = static_cast<Code>(i);
    if (code_name(c) == name) return c;
  }
  return std::nullopt;
}

}  // namespace

// ---- Status <-> JSON -------------------------------------------------------------

Json status_to_json(const Status& s) {
  Json j = Json::object();
  j.set("code", Json(code_name(s.code())));
  if (s.ok()) return j;
  j.set("message", Json(s.message()));
  if (s.reason() != code_name(s.code())) j.set("reason", Json(s.reason()));
  if (!s.details().is_null()) j.set("details", s.details());
  return j;
}

Status status_from_json(const Json& j, Status& out) {
  CAIRN_RETURN_IF_ERROR(expect_object(j, "status"));
  CAIRN_RETURN_IF_ERROR(reject_unknown_fields(j, {"code", "message", "reason", "details"}));
  std::string name, message, reason;
  Json details;
  CAIRN_RETURN_IF_ERROR(read_string(j, "code", name));
  CAIRN_RETURN_IF_ERROR(read_string(j, "message", message, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_string(j, "reason", reason, Presence::kOptional));
  CAIRN_RETURN_IF_ERROR(read_value(j, "details", details, Presence::kOptional));
  std::optional<Code> code = code_from_name(name);
  if (!code) return field_error("code", "is not a known status code");
  if (*code == Code::kOk) {
    out = Status();
    return Status();
  }
  out = Status(*code, std::move(message), std::move(reason), std::move(details));
  return Status();
}

// ---- AgentGate -------------------------------------------------------------------

Status AgentGate::admit(std::string_view agent, std::size_t held) const {
  if (held < max_) return Status();
  return conflict(
      "agent " + std::string(agent) + " holds " + std::to_string(held) + " leases (limit " +
          std::to_string(max_) + ")",
      "too_many_leases",
      Json(JsonObject{{"agent", Json(agent)}, {"held", u64(held)}, {"limit", u64(max_)}}));
}

// ---- AgentBackoff ----------------------------------------------------------------

AgentBackoff::AgentBackoff(std::int64_t base_ms, std::int64_t cap_ms, std::size_t agents_max)
    : base_ms_(std::max<std::int64_t>(base_ms, 0)),
      cap_ms_(std::max<std::int64_t>(cap_ms, 0)),
      agents_max_(agents_max) {}

void AgentBackoff::record_failure(std::string_view agent, std::int64_t now_ms) {
  auto it = entries_.find(agent);
  if (it == entries_.end()) {
    it = entries_.emplace(std::string(agent), Entry{}).first;
  } else {
    by_touch_.erase(it->second.touched);
  }
  Entry& e = it->second;
  if (e.failures < std::numeric_limits<std::uint32_t>::max()) ++e.failures;
  // delay = min(cap, base·2^(failures−1)), without overflow: doubling stops
  // at the cap, so the loop runs at most ~63 times.
  std::int64_t delay = std::min(base_ms_, cap_ms_);
  for (std::uint32_t i = 1; i < e.failures && delay > 0 && delay < cap_ms_; ++i) {
    delay = delay > cap_ms_ / 2 ? cap_ms_ : delay * 2;
  }
  e.retry_at = now_ms > kTimeMax - delay ? kTimeMax : now_ms + delay;
  e.touched = ++clock_;
  by_touch_.emplace(e.touched, it->first);
  while (entries_.size() > agents_max_) {
    auto oldest = by_touch_.begin();
    entries_.erase(oldest->second);
    by_touch_.erase(oldest);
  }
  CAIRN_ASSERT(by_touch_.size() == entries_.size());
}

void AgentBackoff::record_success(std::string_view agent) {
  auto it = entries_.find(agent);
  if (it == entries_.end()) return;
  by_touch_.erase(it->second.touched);
  entries_.erase(it);
}

bool AgentBackoff::should_retry(std::string_view agent, std::int64_t now_ms) const {
  auto it = entries_.find(agent);
  return it == entries_.end() || now_ms >= it->second.retry_at;
}

std::int64_t AgentBackoff::retry_at(std::string_view agent) const {
  auto it = entries_.find(agent);
  return it == entries_.end() ? 0 : it->second.retry_at;
}

std::uint32_t AgentBackoff::failures(std::string_view agent) const {
  auto it = entries_.find(agent);
  return it == entries_.end() ? 0 : it->second.failures;
}

Json AgentBackoff::to_json() const {
  JsonArray agents;
  agents.reserve(entries_.size());
  for (const auto& [name, e] : entries_) {
    agents.push_back(Json(JsonObject{{"agent", Json(name)},
                                     {"failures", u64(e.failures)},
                                     {"retry_at", i64(e.retry_at)},
                                     {"touched", u64(e.touched)}}));
  }
  return Json(JsonObject{{"clock", u64(clock_)}, {"agents", Json(std::move(agents))}});
}

Status AgentBackoff::from_json(const Json& j) {
  const JsonArray* agents = nullptr;
  CAIRN_RETURN_IF_ERROR(read_array(j, "agents", agents));
  CAIRN_RETURN_IF_ERROR(reject_unknown_fields(j, {"clock", "agents"}));
  std::uint64_t clock = 0;
  CAIRN_RETURN_IF_ERROR(read_uint(j, "clock", clock));
  std::map<std::string, Entry, std::less<>> entries;
  std::map<std::uint64_t, std::string> by_touch;
  for (const Json& a : *agents) {
    CAIRN_RETURN_IF_ERROR(expect_object(a, "agents[]"));
    CAIRN_RETURN_IF_ERROR(reject_unknown_fields(a, {"agent", "failures", "retry_at", "touched"}));
    std::string name;
    Entry e;
    CAIRN_RETURN_IF_ERROR(read_string(a, "agent", name));
    CAIRN_RETURN_IF_ERROR(read_u32(a, "failures", e.failures));
    CAIRN_RETURN_IF_ERROR(read_int(a, "retry_at", e.retry_at));
    CAIRN_RETURN_IF_ERROR(read_uint(a, "touched", e.touched));
    if (e.failures == 0) return snapshot_error("failures", "must be positive");
    if (!by_touch.emplace(e.touched, name).second) {
      return snapshot_error("touched", "repeats a value");
    }
    if (!entries.emplace(name, e).second) return snapshot_error("agent", "repeats a name");
    clock = std::max(clock, e.touched);
  }
  while (entries.size() > agents_max_) {
    auto oldest = by_touch.begin();
    entries.erase(oldest->second);
    by_touch.erase(oldest);
  }
  clock_ = clock;
  entries_ = std::move(entries);
  by_touch_ = std::move(by_touch);
  return Status();
}

// ---- AgentGovernor ---------------------------------------------------------------

void AgentGovernor::block(std::string_view agent) {
  blocked_.emplace(std::string(agent), true);
}

void AgentGovernor::unblock(std::string_view agent) {
  auto it = blocked_.find(agent);
  if (it != blocked_.end()) blocked_.erase(it);
}

void AgentGovernor::allow(std::string_view agent) {
  allowed_.emplace(std::string(agent), true);
}

void AgentGovernor::disallow(std::string_view agent) {
  auto it = allowed_.find(agent);
  if (it != allowed_.end()) allowed_.erase(it);
}

void AgentGovernor::set_expiries(const std::string& agent, std::uint32_t n) {
  auto it = expiries_.find(agent);
  if (it != expiries_.end()) {
    by_count_.erase({it->second, agent});
    it->second = n;
  } else {
    if (agents_max_ == 0) return;
    if (expiries_.size() >= agents_max_) {
      auto fewest = by_count_.begin();
      expiries_.erase(fewest->second);
      last_expiry_at_.erase(fewest->second);
      by_count_.erase(fewest);
    }
    expiries_.emplace(agent, n);
  }
  by_count_.emplace(n, agent);
  CAIRN_ASSERT(by_count_.size() == expiries_.size());
}

void AgentGovernor::record_expiry(std::string_view agent, std::int64_t now_ms) {
  std::uint32_t n = expiries(agent);
  if (n < std::numeric_limits<std::uint32_t>::max()) ++n;
  set_expiries(std::string(agent), n);
  if (expiries_.find(agent) != expiries_.end()) last_expiry_at_[std::string(agent)] = now_ms;
}

void AgentGovernor::record_success(std::string_view agent) {
  auto it = expiries_.find(agent);
  if (it == expiries_.end()) return;
  by_count_.erase({it->second, it->first});
  last_expiry_at_.erase(it->first);
  expiries_.erase(it);
}

std::uint32_t AgentGovernor::expiries(std::string_view agent) const {
  auto it = expiries_.find(agent);
  return it == expiries_.end() ? 0 : it->second;
}

bool AgentGovernor::is_down(std::string_view agent) const {
  return down_after_ != 0 && expiries(agent) >= down_after_;
}

Status AgentGovernor::admit(std::string_view agent, std::int64_t now_ms) const {
  Json who(JsonObject{{"agent", Json(agent)}});
  if (blocked_.find(agent) != blocked_.end()) {
    return forbidden("agent " + std::string(agent) + " is blocked", "agent_blocked", who);
  }
  if (!allowed_.empty() && allowed_.find(agent) == allowed_.end()) {
    return forbidden("agent " + std::string(agent) + " is not on the allow list",
                     "agent_not_allowed", who);
  }
  if (is_down(agent)) {
    auto last = last_expiry_at_.find(agent);
    const std::int64_t retry_at =
        (last == last_expiry_at_.end() ? 0 : last->second) + probe_after_ms_;
    if (now_ms >= retry_at) return Status();  // a probe: one success brings it up
    std::uint32_t n = expiries(agent);
    return unavailable("agent " + std::string(agent) + " is down after " + std::to_string(n) +
                           " consecutive expired leases",
                       "agent_down",
                       Json(JsonObject{{"agent", Json(agent)},
                                       {"expiries", u64(n)},
                                       {"down_after", u64(down_after_)},
                                       {"retry_at", Json(retry_at)}}));
  }
  return Status();
}

Json AgentGovernor::to_json() const {
  JsonArray blocked, allowed, expiries;
  for (const auto& [name, unused] : blocked_) blocked.push_back(Json(name));
  for (const auto& [name, unused] : allowed_) allowed.push_back(Json(name));
  for (const auto& [name, n] : expiries_) {
    auto last = last_expiry_at_.find(name);
    expiries.push_back(Json(JsonObject{
        {"agent", Json(name)},
        {"count", u64(n)},
        {"last_at", Json(last == last_expiry_at_.end() ? std::int64_t{0} : last->second)}}));
  }
  return Json(JsonObject{{"blocked", Json(std::move(blocked))},
                         {"allowed", Json(std::move(allowed))},
                         {"expiries", Json(std::move(expiries))}});
}

Status AgentGovernor::from_json(const Json& j) {
  CAIRN_RETURN_IF_ERROR(expect_object(j, "governor"));
  CAIRN_RETURN_IF_ERROR(reject_unknown_fields(j, {"blocked", "allowed", "expiries"}));
  std::vector<std::string> blocked_list, allowed_list;
  CAIRN_RETURN_IF_ERROR(read_string_array(j, "blocked", blocked_list));
  CAIRN_RETURN_IF_ERROR(read_string_array(j, "allowed", allowed_list));
  const JsonArray* expiries = nullptr;
  CAIRN_RETURN_IF_ERROR(read_array(j, "expiries", expiries));
  AgentGovernor g(down_after_, agents_max_, probe_after_ms_);
  for (std::string& name : blocked_list) g.blocked_.emplace(std::move(name), true);
  for (std::string& name : allowed_list) g.allowed_.emplace(std::move(name), true);
  for (const Json& e : *expiries) {
    CAIRN_RETURN_IF_ERROR(expect_object(e, "expiries[]"));
    CAIRN_RETURN_IF_ERROR(reject_unknown_fields(e, {"agent", "count", "last_at"}));
    std::string name;
    std::uint32_t n = 0;
    std::int64_t last_at = 0;
    CAIRN_RETURN_IF_ERROR(read_string(e, "agent", name));
    CAIRN_RETURN_IF_ERROR(read_u32(e, "count", n));
    CAIRN_RETURN_IF_ERROR(read_int(e, "last_at", last_at, Presence::kOptional));
    if (n == 0) return snapshot_error("count", "must be positive");
    if (g.expiries_.count(name) != 0) return snapshot_error("agent", "repeats a name");
    g.set_expiries(name, n);
    g.last_expiry_at_[name] = last_at;
  }
  *this = std::move(g);
  return Status();
}

// ---- DedupWindow -------------------------------------------------------------------

std::string DedupWindow::key_of(std::string_view agent, std::string_view key) {
  std::string k;
  k.reserve(agent.size() + 1 + key.size());
  k += agent;
  k += '\x1f';
  k += key;
  return k;
}

void DedupWindow::evict_over_capacity() {
  while (order_.size() > capacity_) {
    auto it = entries_.find(order_.front());
    CAIRN_ASSERT(it != entries_.end() && it->second.state == State::kDone);
    if (it->second.record != 0) evicted_.push_back(it->second.record);
    entries_.erase(it);
    order_.pop_front();
  }
}

DedupWindow::State DedupWindow::state(std::string_view agent, std::string_view key) const {
  auto it = entries_.find(key_of(agent, key));
  return it == entries_.end() ? State::kUnknown : it->second.state;
}

const StoredReply& DedupWindow::reply(std::string_view agent, std::string_view key) const {
  auto it = entries_.find(key_of(agent, key));
  CAIRN_ASSERT_MSG(it != entries_.end() && it->second.state == State::kDone,
                   "DedupWindow::reply of a key that is not done");
  return it->second.reply;
}

void DedupWindow::begin(std::string_view agent, std::string_view key) {
  entries_.try_emplace(key_of(agent, key));
}

void DedupWindow::finish(std::string_view agent, std::string_view key, StoredReply reply,
                         std::uint64_t record) {
  std::string k = key_of(agent, key);
  auto [it, fresh] = entries_.try_emplace(k);
  if (!fresh && it->second.state == State::kDone) {
    // Finished twice (a reload over a live window): the newer reply wins,
    // and the older record is no longer needed.
    if (it->second.record != 0 && it->second.record != record) {
      evicted_.push_back(it->second.record);
    }
    order_.erase(std::find(order_.begin(), order_.end(), k));
  }
  it->second.state = State::kDone;
  it->second.reply = std::move(reply);
  it->second.record = record;
  order_.push_back(std::move(k));
  evict_over_capacity();
}

void DedupWindow::forget(std::string_view agent, std::string_view key) {
  auto it = entries_.find(key_of(agent, key));
  if (it == entries_.end() || it->second.state != State::kPending) return;
  entries_.erase(it);
}

void DedupWindow::clear() {
  entries_.clear();
  order_.clear();
  evicted_.clear();
}

std::vector<std::uint64_t> DedupWindow::take_evicted() {
  std::vector<std::uint64_t> out;
  out.swap(evicted_);
  return out;
}

// ---- LatencyTracker ------------------------------------------------------------------

void LatencyTracker::record(std::string_view kind, std::string_view lane, double sample_ms) {
  if (!std::isfinite(sample_ms)) return;
  double s = std::max(sample_ms, 0.0);
  std::string key;
  key.reserve(kind.size() + 1 + lane.size());
  key += kind;
  key += '|';
  key += lane;
  auto it = estimates_.find(key);
  if (it == estimates_.end()) {
    if (keys_max_ == 0) return;
    if (estimates_.size() >= keys_max_) {
      auto fewest = by_samples_.begin();
      estimates_.erase(fewest->second);
      by_samples_.erase(fewest);
    }
    Estimate e;
    e.srtt_ms = s;
    e.rttvar_ms = s / 2;
    e.samples = 1;
    estimates_.emplace(key, e);
    by_samples_.emplace(1u, std::move(key));
  } else {
    // RFC 6298 §2.3: RTTVAR first (it uses the old SRTT), then SRTT.
    constexpr double kAlpha = 1.0 / 8;
    constexpr double kBeta = 1.0 / 4;
    Estimate& e = it->second;
    e.rttvar_ms = (1 - kBeta) * e.rttvar_ms + kBeta * std::fabs(e.srtt_ms - s);
    e.srtt_ms = (1 - kAlpha) * e.srtt_ms + kAlpha * s;
    if (e.samples < std::numeric_limits<std::uint32_t>::max()) {
      by_samples_.erase({e.samples, it->first});
      ++e.samples;
      by_samples_.emplace(e.samples, it->first);
    }
  }
  CAIRN_ASSERT(by_samples_.size() == estimates_.size());
}

std::optional<LatencyTracker::Estimate> LatencyTracker::get(std::string_view kind,
                                                            std::string_view lane) const {
  std::string key;
  key.reserve(kind.size() + 1 + lane.size());
  key += kind;
  key += '|';
  key += lane;
  auto it = estimates_.find(key);
  if (it == estimates_.end()) return std::nullopt;
  return it->second;
}

Json LatencyTracker::to_json() const {
  JsonArray items;
  items.reserve(estimates_.size());
  for (const auto& [key, e] : estimates_) {
    items.push_back(Json(JsonObject{{"key", Json(key)},
                                    {"srtt_ms", Json(e.srtt_ms)},
                                    {"rttvar_ms", Json(e.rttvar_ms)},
                                    {"samples", u64(e.samples)}}));
  }
  return Json(JsonObject{{"estimates", Json(std::move(items))}});
}

Status LatencyTracker::from_json(const Json& j) {
  const JsonArray* items = nullptr;
  CAIRN_RETURN_IF_ERROR(read_array(j, "estimates", items));
  CAIRN_RETURN_IF_ERROR(reject_unknown_fields(j, {"estimates"}));
  std::map<std::string, Estimate, std::less<>> estimates;
  std::set<std::pair<std::uint32_t, std::string>> by_samples;
  for (const Json& item : *items) {
    CAIRN_RETURN_IF_ERROR(expect_object(item, "estimates[]"));
    CAIRN_RETURN_IF_ERROR(reject_unknown_fields(item, {"key", "srtt_ms", "rttvar_ms", "samples"}));
    std::string key;
    Estimate e;
    CAIRN_RETURN_IF_ERROR(read_string(item, "key", key));
    CAIRN_RETURN_IF_ERROR(read_finite_nonneg(item, "srtt_ms", e.srtt_ms));
    CAIRN_RETURN_IF_ERROR(read_finite_nonneg(item, "rttvar_ms", e.rttvar_ms));
    CAIRN_RETURN_IF_ERROR(read_u32(item, "samples", e.samples));
    if (e.samples == 0) return snapshot_error("samples", "must be positive");
    if (!estimates.emplace(key, e).second) return snapshot_error("key", "repeats a key");
    by_samples.emplace(e.samples, std::move(key));
  }
  while (estimates.size() > keys_max_) {
    auto fewest = by_samples.begin();
    estimates.erase(fewest->second);
    by_samples.erase(fewest);
  }
  estimates_ = std::move(estimates);
  by_samples_ = std::move(by_samples);
  return Status();
}

// ---- TimerHeap --------------------------------------------------------------------------

Status TimerHeap::arm(std::uint64_t id, std::int64_t at) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) {
    by_time_.erase({it->second, id});
    it->second = at;
    by_time_.emplace(std::make_pair(at, id), true);
    return Status();
  }
  if (by_id_.size() >= capacity_) {
    return too_large("timer heap is full (" + std::to_string(capacity_) + " timers)",
                     "too_many_timers", Json(JsonObject{{"capacity", u64(capacity_)}}));
  }
  by_id_.emplace(id, at);
  by_time_.emplace(std::make_pair(at, id), true);
  CAIRN_ASSERT(by_time_.size() == by_id_.size());
  return Status();
}

bool TimerHeap::cancel(std::uint64_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  by_time_.erase({it->second, id});
  by_id_.erase(it);
  return true;
}

std::optional<std::int64_t> TimerHeap::next() const {
  if (by_time_.empty()) return std::nullopt;
  return by_time_.begin()->first.first;
}

std::vector<std::uint64_t> TimerHeap::pop_due(std::int64_t now, std::size_t max) {
  std::vector<std::uint64_t> due;
  while (due.size() < max && !by_time_.empty() && by_time_.begin()->first.first <= now) {
    std::uint64_t id = by_time_.begin()->first.second;
    by_time_.erase(by_time_.begin());
    by_id_.erase(id);
    due.push_back(id);
  }
  CAIRN_ASSERT(by_time_.size() == by_id_.size());
  return due;
}

// ---- RecordRing ---------------------------------------------------------------------------

void RecordRing::push(std::string_view name, Json record) {
  if (depth_max_ == 0 || names_max_ == 0) {
    ++dropped_;
    return;
  }
  auto it = rings_.find(name);
  if (it == rings_.end()) {
    if (rings_.size() >= names_max_) {
      auto oldest = by_touch_.begin();
      auto victim = rings_.find(oldest->second);
      CAIRN_ASSERT(victim != rings_.end());
      dropped_ += victim->second.items.size();
      rings_.erase(victim);
      by_touch_.erase(oldest);
    }
    it = rings_.emplace(std::string(name), Ring{}).first;
  } else {
    by_touch_.erase(it->second.touched);
  }
  Ring& r = it->second;
  r.touched = ++clock_;
  by_touch_.emplace(r.touched, it->first);
  r.items.push_back(std::move(record));
  if (r.items.size() > depth_max_) {
    r.items.pop_front();
    ++dropped_;
  }
  CAIRN_ASSERT(by_touch_.size() == rings_.size());
}

std::vector<Json> RecordRing::recent(std::string_view name) const {
  auto it = rings_.find(name);
  if (it == rings_.end()) return {};
  return std::vector<Json>(it->second.items.begin(), it->second.items.end());
}

// ---- Counters ----------------------------------------------------------------------------

void Counters::add(std::string_view name, std::uint64_t n) {
  auto it = values_.find(name);
  if (it == values_.end()) it = values_.emplace(std::string(name), 0).first;
  std::uint64_t& v = it->second;
  v = n > kMax - v ? kMax : v + n;
}

std::uint64_t Counters::get(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? 0 : it->second;
}

Json Counters::to_json() const {
  JsonObject o;
  o.reserve(values_.size());
  for (const auto& [name, v] : values_) o.emplace_back(name, u64(v));
  return Json(std::move(o));
}

Status Counters::from_json(const Json& j) {
  CAIRN_RETURN_IF_ERROR(expect_object(j, "counters"));
  std::map<std::string, std::uint64_t, std::less<>> values;
  for (const auto& [name, unused] : j.as_object()) {
    std::uint64_t v = 0;
    CAIRN_RETURN_IF_ERROR(read_uint(j, name, v));
    values.emplace(name, v);
  }
  values_ = std::move(values);
  return Status();
}

// ---- Completions ---------------------------------------------------------------------------

Result<std::uint64_t> Completions::begin(std::size_t result_bytes_max) {
  if (caps_.size() >= in_flight_max_) {
    return too_large(
        std::to_string(caps_.size()) + " completions are in flight (limit " +
            std::to_string(in_flight_max_) + ")",
        "too_many_completions",
        Json(JsonObject{{"in_flight", u64(caps_.size())}, {"limit", u64(in_flight_max_)}}));
  }
  // Skip 0 (wrapped) and ids still pending (after set_next_id).
  while (next_ == 0 || caps_.count(next_) != 0) ++next_;
  std::uint64_t id = next_++;
  caps_.emplace(id, result_bytes_max);
  return id;
}

Result<std::string> Completions::complete(std::uint64_t id, std::string result) {
  auto it = caps_.find(id);
  if (it == caps_.end()) {
    return not_found("no pending completion " + std::to_string(id), "unknown_completion",
                     Json(JsonObject{{"id", u64(id)}}));
  }
  std::size_t cap = it->second;
  caps_.erase(it);
  if (result.size() > cap) {
    return too_large(
        "completion " + std::to_string(id) + " result is " + std::to_string(result.size()) +
            " bytes (limit " + std::to_string(cap) + ")",
        "completion_too_large",
        Json(JsonObject{{"id", u64(id)}, {"bytes", u64(result.size())}, {"limit", u64(cap)}}));
  }
  return Result<std::string>(std::move(result));
}

Status Completions::fail(std::uint64_t id, std::string_view detail, Code code) {
  auto it = caps_.find(id);
  if (it == caps_.end()) {
    return not_found("no pending completion " + std::to_string(id), "unknown_completion",
                     Json(JsonObject{{"id", u64(id)}}));
  }
  caps_.erase(it);
  std::string message = utf8_prefix(detail, kDetailBytesMax);
  // "truncated": the message is not the detail verbatim (cut or repaired).
  bool truncated = message != detail;
  if (message.empty()) message = "completion failed";
  return Status(
      code == Code::kOk ? Code::kInternal : code, std::move(message), "completion_failed",
      Json(JsonObject{
          {"id", u64(id)}, {"detail_bytes", u64(detail.size())}, {"truncated", Json(truncated)}}));
}

}  // namespace cairn::engine

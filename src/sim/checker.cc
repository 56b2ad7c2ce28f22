// checker.cc — invariant checks over the durable log and the store.
#include "sim/checker.h"

#include <algorithm>
#include <utility>

#include "core/keys.h"
#include "model/fact.h"

namespace cairn::sim {

namespace {

constexpr std::size_t kPage = 1'000;

std::string short_id(std::string_view id) {
  return std::string(id.substr(0, 12));
}

std::string data_string(const Event& e, std::string_view key) {
  const Json* j = e.data.find(key);
  return j != nullptr && j->is_string() ? j->as_string() : std::string();
}

std::int64_t data_int(const Event& e, std::string_view key) {
  const Json* j = e.data.find(key);
  if (j == nullptr) return -1;
  auto v = j->int_if();
  return v ? *v : -1;
}

std::uint64_t data_epoch(const Event& e) {
  const std::int64_t v = data_int(e, "epoch");
  return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

std::string lease_text(std::string_view holder, std::uint64_t epoch, std::int64_t end, bool live) {
  if (!live) return "no lease";
  return "lease of " + std::string(holder) + " epoch " + std::to_string(epoch) + " until " +
         std::to_string(end);
}

}  // namespace

Checker::Checker(store::MemoryStore& store, CheckerConfig config)
    : store_(store), config_(std::move(config)) {}

void Checker::report(std::string invariant, std::string detail) {
  if (violations_.size() >= config_.violations_max) return;
  violations_.push_back(Violation{std::move(invariant), step_, std::move(detail)});
}

bool Checker::found(std::string_view invariant) const {
  for (const Violation& v : violations_) {
    if (v.invariant == invariant) return true;
  }
  return false;
}

bool Checker::store_has(const std::string& key) {
  auto r = store_.get(key);
  return r.ok() && r->has_value();
}

// ---- the durable log ----------------------------------------------------------------------------

void Checker::scan() {
  for (;;) {
    const std::string after = last_seq_ == 0 ? std::string() : keys::event(last_seq_);
    auto page = store_.range(keys::kEvent, after, kPage);
    if (!page.ok()) {
      report("I8", "the store's event log cannot be read: " + page.status().to_string());
      return;
    }
    for (const store::Entry& entry : page->entries) {
      auto e = decode_event(entry.value);
      if (!e.ok()) {
        report("I8", "undecodable event record " + entry.key + ": " + e.status().to_string());
        return;
      }
      check_event(*e, entry.value);
    }
    if (!page->more) break;
  }
  // The store applies whole batches: every wake a fact owed is due by now.
  check_wakes();
  for (; acks_checked_ < acks_.size(); ++acks_checked_) check_ack(acks_[acks_checked_]);
}

void Checker::check_event(const Event& e, std::string_view raw) {
  if (e.seq != last_seq_ + 1) {
    report("I8", "event log gap: expected seq " + std::to_string(last_seq_ + 1) + ", found " +
                     std::to_string(e.seq));
  }
  last_seq_ = e.seq;
  event_digests_.push_back(sha256(raw));

  if (e.type == ev::kFactRecorded) return on_fact_recorded(e);
  if (e.type == ev::kIntentCreated) return on_intent_created(e);
  if (e.type == ev::kHintCreated) return on_hint_created(e);
  if (e.type == ev::kHintRevoked || e.type == ev::kHintExpired) {
    auto it = hints_.find(e.subject);
    if (it == hints_.end()) {
      report("I8", e.type + " for unknown hint " + short_id(e.subject));
      return;
    }
    if (!it->second.live && e.type == ev::kHintExpired) {
      report("I8", "hint " + short_id(e.subject) + " expired after it had already ended");
    }
    it->second.live = false;
    if (e.type == ev::kHintRevoked) it->second.revoked = true;
    return;
  }

  // Intent transitions.
  auto it = intents_.find(e.subject);
  if (it == intents_.end() || !it->second.defined) {
    report("I8", e.type + " (seq " + std::to_string(e.seq) + ") for unknown intent " +
                     short_id(e.subject));
    return;
  }
  IntentView& v = it->second;
  const std::string where = " on intent " + short_id(e.subject) + " (seq " + std::to_string(e.seq) +
                            ", at " + std::to_string(e.at) + ")";
  if (v.terminal) {
    report("I1", e.type + where + " after it reached the terminal state " +
                     std::string(state_name(v.final_state)));
    return;
  }
  auto end_lease = [&] {
    if (v.claimed) {
      auto h = held_.find(v.holder);
      if (h != held_.end()) h->second.erase(e.subject);
      auto& r = running_[budget_key(v.def)];
      r.first -= 1;
      r.second -= v.def.cost_units;
    }
    v.claimed = false;
    v.holder.clear();
  };
  auto finish = [&](IntentState s) {
    end_lease();
    v.terminal = true;
    v.final_state = s;
    v.deferred = false;
    deferred_.erase(e.subject);
    must_wake_.erase(e.subject);
  };

  if (e.type == ev::kIntentClaimed) return on_claimed(e, v);

  const std::string agent = data_string(e, "agent");
  const std::uint64_t epoch = data_epoch(e);
  const bool live = v.claimed && e.at < v.lease_end;
  const std::string lease = lease_text(v.holder, v.epoch, v.lease_end, v.claimed);

  if (e.type == ev::kIntentRenewed || e.type == ev::kIntentConcluded ||
      e.type == ev::kIntentFailed || e.type == ev::kIntentDead) {
    if (!live || epoch != v.epoch || agent != v.holder) {
      report("I1", e.type + where + " accepted from " + agent + " with epoch " +
                       std::to_string(epoch) + ", but the log shows " + lease +
                       (v.claimed && !live ? " (ended)" : ""));
    }
    if (e.type == ev::kIntentRenewed) {
      v.renewed_epochs.insert(epoch);
      const std::int64_t end = data_int(e, "lease_expires_at");
      if (end < v.lease_end) {
        report("I1", "renewal" + where + " moved the lease end backwards");
      }
      v.lease_end = end;
    } else if (e.type == ev::kIntentConcluded) {
      ++v.concluded;
      v.result = data_string(e, "result");
      if (v.concluded > 1) report("I2", "intent " + short_id(e.subject) + " concluded twice");
      if (!store_has(keys::fact(v.result))) {
        report("I2", "concluded" + where + " but its result fact " + short_id(v.result) +
                         " is not in the store");
      }
      if (!store_has(keys::fact_concludes(v.result, e.subject))) {
        report("I2", "concluded" + where + " but the result fact " + short_id(v.result) +
                         " is not linked to it (x/fc)");
      }
      if (facts_.find(v.result) == facts_.end()) {
        report("I2", "concluded" + where + " with a result fact the log never recorded");
      }
      finish(IntentState::kConcluded);
    } else if (e.type == ev::kIntentFailed) {
      v.failed_epochs.insert(epoch);
      end_lease();
    } else {
      v.failed_epochs.insert(epoch);
      finish(IntentState::kDead);
    }
    return;
  }
  if (e.type == ev::kIntentReleased) {
    if (!v.claimed || epoch != v.epoch || agent != v.holder) {
      report("I1", "released" + where + " by " + agent + " with epoch " + std::to_string(epoch) +
                       ", but the log shows " + lease);
    }
    end_lease();
    return;
  }
  if (e.type == ev::kIntentExpired) {
    if (!v.claimed || e.at < v.lease_end || epoch != v.epoch) {
      report("I1", "expired" + where + " with epoch " + std::to_string(epoch) +
                       ", but the log shows " + lease);
    }
    end_lease();
    return;
  }
  if (e.type == ev::kIntentCancelled) {
    finish(IntentState::kCancelled);
    return;
  }
  // Admission transitions (I7): each must be true of the log at its time.
  if (e.type == ev::kIntentDeferred) {
    const std::string key = data_string(e, "key");
    const auto first = first_missing(v.def, e.at);
    if (v.claimed || v.deferred) {
      report("I7", "deferred" + where + " while it was " + (v.claimed ? "claimed" : "deferred"));
    } else if (!first) {
      report("I7", "deferred" + where + " on " + key + ", but every dependency is ready");
    } else if (*first != key) {
      report("I7",
             "deferred" + where + " on " + key + ", but its first missing dependency is " + *first);
    }
    ++deferrals_;
    v.deferred = true;
    deferred_.insert(e.subject);
    return;
  }
  if (e.type == ev::kIntentReady) {
    if (!v.deferred) report("I7", "ready" + where + " but it was not deferred");
    if (const auto first = first_missing(v.def, e.at)) {
      report("I7", "ready" + where + " while its dependency " + *first + " is not");
    }
    ++wakes_;
    v.deferred = false;
    deferred_.erase(e.subject);
    must_wake_.erase(e.subject);
    return;
  }
  if (e.type == ev::kIntentStale) {
    if (v.claimed) report("I7", "stale" + where + " while claimed");
    if (v.def.stale_after_ms <= 0 || e.at < v.def.created_at + v.def.stale_after_ms) {
      report("I7", "stale" + where + " before created_at + stale_after_ms (" +
                       std::to_string(v.def.created_at) + " + " +
                       std::to_string(v.def.stale_after_ms) + ")");
    }
    finish(IntentState::kStale);
    return;
  }
  if (e.type == ev::kIntentCoalesced) {
    const std::string into = data_string(e, "into");
    auto w = intents_.find(into);
    if (v.claimed) report("I7", "coalesced" + where + " while claimed");
    if (w == intents_.end() || !w->second.defined || into == e.subject) {
      report("I7", "coalesced" + where + " into unknown intent " + short_id(into));
    } else if (v.def.identity.empty() || w->second.def.identity != v.def.identity ||
               w->second.def.lane != v.def.lane) {
      report("I7", "coalesced" + where + " into " + short_id(into) +
                       ", which has another (lane, identity)");
    } else if (w->second.terminal || w->second.claimed) {
      report("I7",
             "coalesced" + where + " into " + short_id(into) + ", which is no longer waiting");
    }
    finish(IntentState::kCoalesced);
    return;
  }
  report("I8", "unknown event type " + e.type + where);
}

void Checker::on_fact_recorded(const Event& e) {
  auto rec = store_.get(keys::fact(e.subject));
  if (!rec.ok() || !rec->has_value()) {
    report("I3", "fact.recorded (seq " + std::to_string(e.seq) + ") but fact " +
                     short_id(e.subject) + " is not in the store");
    return;
  }
  auto f = decode_fact_record((*rec)->value);
  if (!f.ok()) {
    report("I4",
           "fact " + short_id(e.subject) + " record does not decode: " + f.status().to_string());
    return;
  }
  auto canon = canonicalize_fact(f->body, config_.limits);
  if (!canon.ok() || canon->id != e.subject || f->id != e.subject) {
    report("I4", "fact " + short_id(e.subject) + " does not re-hash to its id" +
                     (canon.ok() ? " (re-hash " + short_id(canon->id) + ")" : ""));
  }
  for (const std::string& d : f->body.derived_from) {
    if (facts_.find(d) == facts_.end()) {
      report("I5", "fact " + short_id(e.subject) + " is derived from " + short_id(d) +
                       ", which the log had not recorded");
    }
  }
  if (!facts_.emplace(e.subject, sha256((*rec)->value)).second) {
    report("I4", "fact " + short_id(e.subject) + " recorded twice");
  }
  fact_kinds_.insert(f->body.kind);
  std::int64_t& newest = kind_newest_at_[f->body.kind];
  newest = std::max(newest, e.at);
  on_fact_for_waiters(e);
}

// ---- admission (I6 budgets, I7)
// ------------------------------------------------------------------

std::string Checker::budget_key(const IntentDef& d) const {
  // docs/planner.md: "lane/provider" when configured, else "lane" when
  // configured (or the built-in default lane), else unconfigured under its
  // most specific name. Budgets off: every lane is its own unlimited key.
  const AdmissionConfig& a = config_.admission;
  if (!a.budgets) return d.lane;
  const std::string specific = d.provider.empty() ? d.lane : d.lane + "/" + d.provider;
  if (a.lanes.count(specific) != 0) return specific;
  if (a.lanes.count(d.lane) != 0) return d.lane;
  if (a.default_lane && d.lane == kPlanDefaultLane) return d.lane;
  return specific;
}

const LaneBudget* Checker::budget_for(const std::string& key) const {
  const AdmissionConfig& a = config_.admission;
  if (auto it = a.lanes.find(key); it != a.lanes.end()) return &it->second;
  if (a.default_lane && key == kPlanDefaultLane) return &kDefaultLaneBudget;
  return nullptr;
}

bool Checker::ready(const std::string& key, std::int64_t at) const {
  auto k = parse_dependency_key(key);
  if (!k.ok()) return false;
  if (k->type == DependencyKey::Type::kFactId) return facts_.count(k->name) != 0;
  auto newest = kind_newest_at_.find(k->name);
  if (newest == kind_newest_at_.end()) return false;
  return k->ttl_ms == 0 || at - newest->second < k->ttl_ms;
}

std::optional<std::string> Checker::first_missing(const IntentDef& d, std::int64_t at) const {
  for (const std::string& key : d.requires_) {
    if (!ready(key, at)) return key;
  }
  return std::nullopt;
}

void Checker::on_fact_for_waiters(const Event& e) {
  // Time only ever makes a dependency less ready; a fact is the one thing
  // that clears a wait. A deferred intent this fact completes owes an
  // intent.ready in the same commit (checked at the end of the scan).
  for (const std::string& id : deferred_) {
    const IntentView& v = intents_.find(id)->second;
    if (!first_missing(v.def, e.at)) must_wake_.emplace(id, e.subject);
  }
}

void Checker::check_wakes() {
  for (const auto& [id, fact] : must_wake_) {
    report("I7", "intent " + short_id(id) + " stayed deferred after fact " + short_id(fact) +
                     " made every dependency ready: the commit that recorded the fact did not " +
                     "reopen it (it would wait for a poll)");
  }
  must_wake_.clear();
}

void Checker::check_claim_admission(const Event& e, IntentView& v, const std::string& where) {
  if (v.deferred) report("I7", "claim" + where + " of a deferred intent");
  if (const auto first = first_missing(v.def, e.at)) {
    report("I7", "claim" + where + " while its dependency " + *first + " is not ready");
  }
  if (v.def.stale_after_ms > 0 && e.at >= v.def.created_at + v.def.stale_after_ms) {
    report("I7", "claim" + where + " of an intent past its stale_after_ms");
  }
  if (!config_.admission.budgets) return;
  const std::string key = budget_key(v.def);
  const LaneBudget* b = budget_for(key);
  const auto& r = running_[key];
  if (b == nullptr || v.def.cost_units > b->max_cost_units) {
    report("I6", "claim" + where + " in budget " + key + ", which has no budget for it");
  } else if (r.first >= b->max_concurrency || r.second + v.def.cost_units > b->max_cost_units) {
    report("I6", "claim" + where + " in budget " + key + " with " + std::to_string(r.first) +
                     " claimed (cost " + std::to_string(r.second) + " + " +
                     std::to_string(v.def.cost_units) + "), over max_concurrency " +
                     std::to_string(b->max_concurrency) + " / max_cost_units " +
                     std::to_string(b->max_cost_units));
  }
}

void Checker::on_intent_created(const Event& e) {
  auto rec = store_.get(keys::intent_def(e.subject));
  if (!rec.ok() || !rec->has_value()) {
    report("I3", "intent.created but intent " + short_id(e.subject) + " is not in the store");
    return;
  }
  auto def = decode_intent_def((*rec)->value);
  if (!def.ok()) {
    report("I8", "intent " + short_id(e.subject) + " definition does not decode");
    return;
  }
  IntentView& v = intents_[e.subject];
  if (v.defined) {
    report("I8", "intent " + short_id(e.subject) + " created twice");
    return;
  }
  for (const std::string& f : def->from_facts) {
    if (facts_.find(f) == facts_.end()) {
      report("I5", "intent " + short_id(e.subject) + " is grounded in " + short_id(f) +
                       ", which the log had not recorded");
    }
  }
  v.defined = true;
  v.def = std::move(def).value();
  if (const Json* t = v.def.spec.find("token"); t != nullptr && t->is_string()) {
    note_token(intent_tokens_, t->as_string(), e.seq, "intents");
  }
}

void Checker::on_hint_created(const Event& e) {
  auto rec = store_.get(keys::hint(e.subject));
  if (!rec.ok() || !rec->has_value()) {
    report("I3", "hint.created but hint " + short_id(e.subject) + " is not in the store");
    return;
  }
  auto h = decode_hint_record((*rec)->value);
  if (!h.ok()) {
    report("I8", "hint " + short_id(e.subject) + " record does not decode");
    return;
  }
  HintView& v = hints_[e.subject];
  if (v.recorded) {
    report("I8", "hint " + short_id(e.subject) + " created twice");
    return;
  }
  for (const std::string& f : h->d.derived_from) {
    if (facts_.find(f) == facts_.end()) {
      report("I5", "hint " + short_id(e.subject) + " cites " + short_id(f) +
                       ", which the log had not recorded");
    }
  }
  v.recorded = true;
  v.rec = std::move(h).value();
  // Born expired (expires_at not after creation): never live.
  v.live = v.rec.d.expires_at == 0 || v.rec.d.expires_at > v.rec.created_at;
  note_token(hint_tokens_, v.rec.d.reason, e.seq, "hints");
}

void Checker::on_claimed(const Event& e, IntentView& v) {
  const std::string agent = data_string(e, "agent");
  const std::uint64_t epoch = data_epoch(e);
  const std::string where = " on intent " + short_id(e.subject) + " (seq " + std::to_string(e.seq) +
                            ", at " + std::to_string(e.at) + ")";
  if (v.claimed) {
    report("I1", "claim by " + agent + where + " while the log shows the " +
                     lease_text(v.holder, v.epoch, v.lease_end, true) +
                     (e.at < v.lease_end ? " (two live leases)" : " (never ended)"));
  }
  if (epoch != v.epoch + 1) {
    report("I1", "claim" + where + " has epoch " + std::to_string(epoch) + ", expected " +
                     std::to_string(v.epoch + 1));
  }
  auto& held = held_[agent];
  if (config_.leases_per_agent_max != 0 && held.size() >= config_.leases_per_agent_max) {
    report("I6", "claim by " + agent + where + " while it already holds " +
                     std::to_string(held.size()) + " leases (limit " +
                     std::to_string(config_.leases_per_agent_max) + ")");
  }
  for (const auto& [hid, h] : hints_) {
    if (!h.live || !h.recorded) continue;
    if (h.rec.d.expires_at != 0 && e.at >= h.rec.d.expires_at) continue;
    if (!h.rec.d.selector.matches(v.def)) continue;
    const HintEffect& fx = h.rec.d.effect;
    const std::string by = " by hint " + short_id(hid);
    switch (fx.type) {
      case HintEffectType::kDeny:
        report("I6", "claim" + where + " of an intent denied" + by);
        break;
      case HintEffectType::kDefer:
        if (e.at < fx.until) {
          report("I6",
                 "claim" + where + " of an intent deferred until " + std::to_string(fx.until) + by);
        }
        break;
      case HintEffectType::kRequire:
        if (fact_kinds_.count(fx.fact_kind) == 0) {
          report("I6",
                 "claim" + where + " before any fact of kind " + fx.fact_kind + " required" + by);
        }
        break;
      case HintEffectType::kCap: {
        std::int64_t n = 0;
        for (const auto& [iid, other] : intents_) {
          if (other.claimed && iid != e.subject && h.rec.d.selector.matches(other.def)) ++n;
        }
        if (n >= fx.n) {
          report("I6", "claim" + where + " while " + std::to_string(n) +
                           " matching intents are claimed, capped at " + std::to_string(fx.n) + by);
        }
        break;
      }
      case HintEffectType::kPriority:
        break;
    }
  }
  check_claim_admission(e, v, where);
  auto& r = running_[budget_key(v.def)];
  r.first += 1;
  r.second += v.def.cost_units;
  v.claimed = true;
  v.epoch = epoch;
  v.lease_end = data_int(e, "lease_expires_at");
  v.holder = agent;
  v.claimed_epochs.insert(epoch);
  held.insert(e.subject);
}

void Checker::note_token(std::map<std::string, std::uint64_t>& seen, const std::string& token,
                         std::uint64_t seq, std::string_view what) {
  if (token.empty()) return;
  auto [it, fresh] = seen.emplace(token, seq);
  if (fresh) return;
  const std::uint64_t before = it->second;
  it->second = seq;
  // Idempotency records are durable: not even a crash lets a retry run twice.
  report("IDEM", "one idempotent request (token " + token + ") created two " + std::string(what) +
                     " (seq " + std::to_string(before) + " and " + std::to_string(seq) + ")");
}

// ---- publishes and acknowledgements -------------------------------------------------------------

void Checker::on_publish(const std::vector<Event>& events) {
  for (const Event& e : events) {
    if (e.seq <= last_published_) {
      report("I3", "published event seq " + std::to_string(e.seq) + " after seq " +
                       std::to_string(last_published_));
    }
    last_published_ = e.seq;
    auto rec = store_.get(keys::event(e.seq));
    if (!rec.ok() || !rec->has_value()) {
      report("I3", "published event seq " + std::to_string(e.seq) + " (" + e.type +
                       ") is not in the store");
      continue;
    }
    auto stored = decode_event((*rec)->value);
    if (!stored.ok() || !(*stored == e)) {
      report("I3", "published event seq " + std::to_string(e.seq) + " (" + e.type +
                       ") differs from the stored one");
    }
  }
}

void Checker::on_ack(AckedWrite w) {
  w.step = step_;
  acks_.push_back(std::move(w));
}

void Checker::check_ack(const AckedWrite& w) {
  const std::string at = " (acknowledged at step " + std::to_string(w.step) + ")";
  auto iv = intents_.find(w.id);
  const IntentView* v = iv == intents_.end() ? nullptr : &iv->second;
  switch (w.kind) {
    case AckedWrite::Kind::kFact:
      if (facts_.find(w.id) == facts_.end()) {
        report("I3", "acknowledged fact " + short_id(w.id) + " is not in the log" + at);
      }
      break;
    case AckedWrite::Kind::kIntent:
      if (v == nullptr || !v->defined) {
        report("I3", "acknowledged intent " + short_id(w.id) + " is not in the log" + at);
      }
      break;
    case AckedWrite::Kind::kHint: {
      auto h = hints_.find(w.id);
      if (h == hints_.end() || !h->second.recorded) {
        report("I3", "acknowledged hint " + short_id(w.id) + " is not in the log" + at);
      }
      break;
    }
    case AckedWrite::Kind::kClaim:
      if (v == nullptr || v->claimed_epochs.count(w.epoch) == 0) {
        report("I3", "acknowledged claim of " + short_id(w.id) + " epoch " +
                         std::to_string(w.epoch) + " is not in the log" + at);
      }
      break;
    case AckedWrite::Kind::kHeartbeat:
      if (v == nullptr || v->renewed_epochs.count(w.epoch) == 0) {
        report("I3", "acknowledged heartbeat of " + short_id(w.id) + " epoch " +
                         std::to_string(w.epoch) + " is not in the log" + at);
      }
      break;
    case AckedWrite::Kind::kConclude:
      if (v == nullptr || v->concluded == 0 || v->result != w.result) {
        report("I3", "acknowledged conclusion of " + short_id(w.id) + " with " +
                         short_id(w.result) + " is not in the log" + at);
      }
      break;
    case AckedWrite::Kind::kFail:
      if (v == nullptr || v->failed_epochs.count(w.epoch) == 0) {
        report("I3", "acknowledged failure of " + short_id(w.id) + " epoch " +
                         std::to_string(w.epoch) + " is not in the log" + at);
      }
      break;
    case AckedWrite::Kind::kCancel:
      if (v == nullptr || !v->terminal || v->final_state != IntentState::kCancelled) {
        report("I3", "acknowledged cancellation of " + short_id(w.id) + " is not in the log" + at);
      }
      break;
    case AckedWrite::Kind::kRevoke: {
      auto h = hints_.find(w.id);
      if (h == hints_.end() || !h->second.revoked) {
        report("I3",
               "acknowledged revocation of hint " + short_id(w.id) + " is not in the log" + at);
      }
      break;
    }
  }
}

void Checker::check_acks_against(const Blackboard& bb) {
  for (const AckedWrite& w : acks_) {
    const std::string at =
        " after the restart (acknowledged at step " + std::to_string(w.step) + ")";
    const Intent* in = bb.intent(w.id);
    switch (w.kind) {
      case AckedWrite::Kind::kFact:
        if (!bb.has_fact(w.id)) report("I3", "acknowledged fact " + short_id(w.id) + " lost" + at);
        break;
      case AckedWrite::Kind::kIntent:
        if (in == nullptr) report("I3", "acknowledged intent " + short_id(w.id) + " lost" + at);
        break;
      case AckedWrite::Kind::kHint:
        if (bb.hint(w.id) == nullptr) {
          report("I3", "acknowledged hint " + short_id(w.id) + " lost" + at);
        }
        break;
      case AckedWrite::Kind::kClaim:
      case AckedWrite::Kind::kHeartbeat:
      case AckedWrite::Kind::kFail:
        if (in == nullptr || in->st.epoch < w.epoch) {
          report("I3", "intent " + short_id(w.id) + " is back before acknowledged epoch " +
                           std::to_string(w.epoch) + at);
        }
        break;
      case AckedWrite::Kind::kConclude:
        if (in == nullptr || in->st.state != IntentState::kConcluded || in->st.result != w.result) {
          report("I3", "acknowledged conclusion of " + short_id(w.id) + " lost" + at);
        }
        break;
      case AckedWrite::Kind::kCancel:
        if (in == nullptr || in->st.state != IntentState::kCancelled) {
          report("I3", "acknowledged cancellation of " + short_id(w.id) + " lost" + at);
        }
        break;
      case AckedWrite::Kind::kRevoke: {
        const Hint* h = bb.hint(w.id);
        if (h == nullptr || !h->revoked) {
          report("I3", "acknowledged revocation of hint " + short_id(w.id) + " lost" + at);
        }
        break;
      }
    }
  }
}

// ---- replay and the final pass ------------------------------------------------------------------

void Checker::check_plan(const Blackboard& bb, const AdmissionProbe& probe, std::int64_t now_ms) {
  ++plans_checked_;
  if (probe.plan == nullptr) {
    report("I7", "the engine cannot plan its own state: " + probe.plan_error);
    return;
  }
  const Plan& plan = *probe.plan;
  // Exactly one reason for every open and deferred intent, and none for others.
  std::map<std::string_view, const PlanDecision*> by_id;
  for (const PlanDecision& d : plan.decisions) {
    if (!by_id.emplace(d.id, &d).second) {
      report("I7", "the plan gives intent " + short_id(d.id) + " more than one reason");
    }
  }
  std::size_t waiting = 0;
  for (const auto& [id, in] : bb.intents()) {
    const IntentState st = in.st.state;
    if (st != IntentState::kOpen && st != IntentState::kDeferred) continue;
    ++waiting;
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      report("I7", std::string(state_name(st)) + " intent " + short_id(id) +
                       " has no reason in the plan");
      continue;
    }
    if (probe.timers_due) continue;  // a tick would change states: compare once it ran
    const PlanDecision& d = *it->second;
    const std::string what = std::string(state_name(st)) + " intent " + short_id(id);
    if (d.reason == PlanReason::kStale) {
      report("I7", what + " is stale in the plan, yet no timer is due");
    } else if (d.reason == PlanReason::kCoalescedInto) {
      report("I7", what + " is coalesced into " + short_id(d.arg) +
                       " in the plan, yet the core keeps both waiting (claim_next may hand "
                       "out either)");
    } else if (st == IntentState::kDeferred) {
      if (d.reason != PlanReason::kMissingDependency || !d.hint.empty()) {
        report("I7", what + " has plan reason " + d.text() + ", not its own missing dependency");
      } else if (ready(d.arg, now_ms)) {
        report("I7", what + " waits on " + d.arg + ", which the log shows ready");
      } else if (first_missing(in.def, now_ms) != d.arg) {
        report("I7", what + " waits on " + d.arg + ", but its first missing dependency is " +
                         first_missing(in.def, now_ms).value_or("none"));
      }
    } else if (d.reason == PlanReason::kMissingDependency && d.hint.empty()) {
      report("I7", what + " is open while the plan says " + d.text() + " (no timer is due)");
    }
  }
  if (waiting != plan.decisions.size()) {
    report("I7", "the plan has " + std::to_string(plan.decisions.size()) + " decisions for " +
                     std::to_string(waiting) + " open and deferred intents");
  }
  // I6 in the state: budgets hold what runs plus what the plan admits.
  for (const PlanLaneUsage& u : plan.lanes) {
    if (!u.configured) continue;
    if (u.running + u.admitted > u.budget.max_concurrency ||
        u.running_cost + u.admitted_cost > u.budget.max_cost_units) {
      report("I6", "budget " + u.key + " holds " + std::to_string(u.running) + " running + " +
                       std::to_string(u.admitted) + " admitted (cost " +
                       std::to_string(u.running_cost + u.admitted_cost) + "), over " +
                       std::to_string(u.budget.max_concurrency) + " / " +
                       std::to_string(u.budget.max_cost_units));
    }
    if (!config_.admission.budgets) continue;
    auto r = running_.find(u.key);
    const std::int64_t logged = r == running_.end() ? 0 : r->second.first;
    if (logged != u.running) {
      report("I6", "budget " + u.key + " runs " + std::to_string(u.running) +
                       " intents in the engine, " + std::to_string(logged) + " per the log");
    }
  }
  if (probe.timers_due) return;
  // No long-poll waits while the plan admits work its filter matches.
  auto wanted = [](const std::vector<std::string>& set, const std::string& v) {
    return set.empty() || std::find(set.begin(), set.end(), v) != set.end();
  };
  for (const AdmissionProbe::Waiter& w : probe.parked) {
    for (const std::string& id : plan.admitted) {
      const Intent* in = bb.intent(id);
      if (in == nullptr || !wanted(w.filter.kinds, in->def.kind) ||
          !wanted(w.filter.lanes, in->def.lane)) {
        continue;
      }
      report("I7", "a long-poll of " + w.agent + " stays parked while the plan admits intent " +
                       short_id(id) + ", which its filter matches (the wake was missed)");
      break;
    }
  }
}

void Checker::check_admission(Blackboard& fresh, const AdmissionProbe& probe, std::int64_t now_ms) {
  if (probe.plan == nullptr || probe.timers_due) return;
  // Claim order is plan order: an unfiltered claim_next on the same state
  // takes the plan's first admitted intent, and finds none when it admits none.
  auto got = fresh.claim_next("cairn-sim-probe", ClaimFilter{});
  const std::string want = probe.plan->admitted.empty() ? std::string() : probe.plan->admitted[0];
  const std::string took = got.ok() ? got->id : std::string();
  if (!got.ok() && got.status().reason() != "no_work") {
    report("I7",
           "claim_next refused at " + std::to_string(now_ms) + ": " + got.status().to_string());
  } else if (took != want) {
    report("I7", "claim_next takes " + (took.empty() ? std::string("nothing") : short_id(took)) +
                     " but the plan admits " +
                     (want.empty() ? std::string("nothing") : short_id(want) + " first"));
  }
}

void Checker::check_replay(const Blackboard& bb, std::int64_t now_ms, const AdmissionProbe* probe) {
  ++replays_checked_;
  SimClock clock(now_ms);
  SeededRng rng(1);
  Blackboard fresh(clock, rng, bb.config());
  if (Status st = fresh.load(store_); !st.ok()) {
    report("I8", "the store does not load into a fresh blackboard: " + st.to_string());
    return;
  }
  if (fresh.state_hash() != bb.state_hash()) {
    report("I8", "the engine's state differs from a fresh load of the store (engine seq " +
                     std::to_string(bb.last_seq()) + ", store seq " +
                     std::to_string(fresh.last_seq()) + ")");
    return;
  }
  if (probe != nullptr) {
    check_plan(bb, *probe, now_ms);
    check_admission(fresh, *probe, now_ms);
  }
}

void Checker::final_checks() {
  scan();
  // The stored log is exactly the one checked, byte for byte.
  std::uint64_t n = 0;
  std::string after;
  for (;;) {
    auto page = store_.range(keys::kEvent, after, kPage);
    if (!page.ok()) break;
    for (const store::Entry& entry : page->entries) {
      if (n < event_digests_.size() && sha256(entry.value) != event_digests_[n]) {
        report("I4", "event record " + entry.key + " changed after it was written");
      }
      ++n;
    }
    if (!page->more || page->entries.empty()) break;
    after = page->entries.back().key;
  }
  if (n != last_seq_) {
    report("I8", "the store holds " + std::to_string(n) + " events, the log checked " +
                     std::to_string(last_seq_));
  }
  // Every fact: unchanged, re-hashes, resolves.
  after.clear();
  for (;;) {
    auto page = store_.range(keys::kFact, after, kPage);
    if (!page.ok()) break;
    for (const store::Entry& entry : page->entries) {
      auto f = decode_fact_record(entry.value);
      if (!f.ok()) {
        report("I4", "fact record " + entry.key + " does not decode");
        continue;
      }
      auto canon = canonicalize_fact(f->body, config_.limits);
      if (!canon.ok() || canon->id != f->id || entry.key != keys::fact(f->id)) {
        report("I4", "stored fact " + short_id(f->id) + " does not re-hash to its id");
      }
      auto known = facts_.find(f->id);
      if (known == facts_.end()) {
        report("I8", "stored fact " + short_id(f->id) + " has no fact.recorded event");
      } else if (known->second != sha256(entry.value)) {
        report("I4", "fact " + short_id(f->id) + " changed after it was recorded");
      }
      for (const std::string& d : f->body.derived_from) {
        if (!store_has(keys::fact(d))) {
          report("I5", "fact " + short_id(f->id) + " derives from missing " + short_id(d));
        }
      }
    }
    if (!page->more || page->entries.empty()) break;
    after = page->entries.back().key;
  }
  // Every intent's grounding resolves; concluded intents keep their result.
  for (const auto& [id, v] : intents_) {
    for (const std::string& f : v.def.from_facts) {
      if (!store_has(keys::fact(f))) {
        report("I5", "intent " + short_id(id) + " is grounded in missing " + short_id(f));
      }
    }
    if (v.terminal && v.final_state == IntentState::kConcluded) {
      auto rec = store_.get(keys::intent_status(id));
      auto st = rec.ok() && rec->has_value() ? decode_intent_status((*rec)->value)
                                             : Result<IntentStatus>(not_found("no status"));
      if (!st.ok() || st->state != IntentState::kConcluded || st->result != v.result) {
        report("I2", "intent " + short_id(id) + " concluded in the log but its stored status " +
                         "disagrees");
      }
    }
  }
}

}  // namespace cairn::sim

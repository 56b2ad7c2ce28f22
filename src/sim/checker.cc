// checker.cc — invariant checks over the durable log and the store.
#include "sim/checker.h"

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
    }
    v.claimed = false;
    v.holder.clear();
  };
  auto finish = [&](IntentState s) {
    end_lease();
    v.terminal = true;
    v.final_state = s;
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

void Checker::check_replay(const Blackboard& bb, std::int64_t now_ms) {
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

// engine.cc — the poll cycle, dispatch, group commit and snapshots.
#include "engine/engine.h"

#include <algorithm>
#include <array>
#include <type_traits>

#include "core/keys.h"
#include "model/json_fields.h"
#include "model/json_parse.h"
#include "model/names.h"
#include "model/sha256.h"

namespace cairn::engine {

namespace {

constexpr std::array<std::string_view, std::variant_size_v<Command>> kCommandNames = {
    "post_fact",   "create_intent", "create_hint", "claim",     "claim_next",
    "heartbeat",   "conclude",      "fail",        "release",   "cancel",
    "revoke_hint", "get_intent",    "get_hint",    "get_state", "get_plan"};
constexpr std::size_t kFirstRead = 11;  // index of GetIntent
static_assert(std::is_same_v<std::variant_alternative_t<kFirstRead, Command>, GetIntent>);

// 2: the dedup window left the snapshot (its records are in the store).
constexpr int kSnapshotVersion = 2;

std::string dedup_key(std::string_view caller, std::string_view key) {
  std::string k(caller);
  k += '\x1f';
  k += key;
  return k;
}

Json claim_json(const ClaimReply& c) {
  return Json(JsonObject{{"id", Json(c.id)},
                         {"epoch", Json(c.epoch)},
                         {"lease_expires_at", Json(c.lease_expires_at)}});
}

std::string u64_hex(std::uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[static_cast<std::size_t>(i)] = kDigits[v & 0xf];
    v >>= 4;
  }
  return s;
}

bool parse_u64_hex(std::string_view s, std::uint64_t& out) {
  if (s.size() != 16) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<std::uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<std::uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
  }
  out = v;
  return true;
}

Json status_json(const Status& s) {
  if (s.ok()) return Json("ok");
  return Json(JsonObject{{"code", Json(s.reason())}, {"message", Json(s.message())}});
}

}  // namespace

std::string_view command_name(const Command& c) {
  return kCommandNames[c.index()];
}

bool is_mutation(const Command& c) {
  return c.index() < kFirstRead;
}

std::string describe(const Effect& e) {
  JsonObject o;
  if (const auto* c = std::get_if<CommitEffect>(&e)) {
    // Keys and values are folded into one digest: the trace stays small and
    // still changes when any byte of the batch does.
    Sha256 h;
    std::string len;
    auto part = [&](std::string_view s) {
      len.clear();
      keys::append_u64(len, s.size());
      h.update(len);
      h.update(s);
    };
    for (const auto& p : c->batch.preconditions) {
      part(p.key);
      part(std::to_string(p.version));
    }
    for (const auto& m : c->batch.mutations) {
      part(m.op == store::Mutation::Op::kPut ? "put" : "del");
      part(m.key);
      part(m.value);
    }
    o.emplace_back("commit", Json(c->commit_id));
    o.emplace_back("mutations", Json(static_cast<std::uint64_t>(c->batch.mutations.size())));
    o.emplace_back("digest", Json(to_hex(h.finish())));
  } else if (const auto* r = std::get_if<ReplyEffect>(&e)) {
    o.emplace_back("reply", Json(r->request));
    o.emplace_back("status", status_json(r->status));
    o.emplace_back("body", r->body);
  } else if (const auto* p = std::get_if<PublishEffect>(&e)) {
    JsonArray evs;
    for (const auto& ev : p->events) evs.push_back(event_to_json(ev));
    o.emplace_back("publish", Json(std::move(evs)));
  } else if (const auto* s = std::get_if<ResyncEffect>(&e)) {
    o.emplace_back("resync", Json(s->commit_id));
  } else if (std::get_if<CatchUpEffect>(&e) != nullptr) {
    o.emplace_back("catch_up", Json(true));
  }
  return to_json(Json(std::move(o)));
}

Engine::Engine(EngineConfig config, std::uint64_t seed, std::int64_t now_wall_ms)
    : config_(std::move(config)),
      clock_(now_wall_ms, 0),
      rng_(seed),
      bb_(clock_, rng_, config_.core),
      gate_(config_.leases_per_agent_max),
      backoff_(config_.agent_backoff_base_ms, config_.agent_backoff_cap_ms),
      governor_(config_.down_after_expiries),
      dedup_(config_.dedup_capacity),
      record_prefix_(keys::idempotency_prefix(config_.node)),
      records_(config_.record_depth_max, config_.record_names_max) {
  if (shared()) marker_base_ = rng_.hex(8);
}

Status Engine::load(store::Store& store) {
  CAIRN_ASSERT(!busy() && ingress_.empty());
  if (shared()) {
    // Read before the state: a commit by another node while we load makes
    // this version stale, so our first commit conflicts and catches up.
    CAIRN_ASSIGN_OR_RETURN(std::optional<store::Entry> seq, store.get(keys::kEventSeq));
    seq_version_ = seq ? seq->version : store::kAbsent;
  }
  CAIRN_RETURN_IF_ERROR(bb_.load(store));
  return load_idempotency(store);
}

Status Engine::catch_up(store::Store& store) {
  if (!shared() || inflight_) return Status();
  // Asked for or not, and whether it works or not: the next cycle runs. If
  // the store cannot be read, that cycle's commit fails or conflicts.
  catch_up_wanted_ = false;
  CAIRN_ASSIGN_OR_RETURN(Blackboard::CatchUp c, bb_.catch_up(store));
  counters_.add("catch_up.calls");
  // Still behind: no commit may pass until the rest is read.
  seq_version_ = c.more ? store::kAbsent : c.seq_version;
  if (c.more) want_catch_up();
  if (!c.events.empty()) {
    counters_.add("catch_up.events", c.events.size());
    after_events(c.events);
    carry_.push_back(PublishEffect{std::move(c.events)});
  }
  return Status();
}

// ---- idempotency records ------------------------------------------------------------------
// k/<n:20> → {"caller", "key", "status", "body"}: the final reply to a keyed
// mutation, in the batch that answered it.

namespace {

// A reply a retry should get again. `unavailable` (backoff, a down agent, a
// busy store) says "not now": the retry must run again, so it is not kept.
bool final_reply(const Status& s) {
  return s.code() != Code::kUnavailable && s.code() != Code::kOutcomeUnknown;
}

std::string idempotency_record_value(const std::string& caller, const std::string& key,
                                     const Status& status, const Json& body) {
  return to_json(Json(JsonObject{{"caller", Json(caller)},
                                 {"key", Json(key)},
                                 {"status", status_to_json(status)},
                                 {"body", body}}));
}

}  // namespace

Status Engine::load_idempotency(store::Store& store) {
  dedup_.clear();
  unrecord_.clear();
  next_record_ = 1;
  constexpr std::size_t kPage = 1'024;
  std::string after;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(store::RangePage page, store.range(record_prefix_, after, kPage));
    for (const store::Entry& e : page.entries) {
      const std::string_view digits = std::string_view(e.key).substr(record_prefix_.size());
      std::uint64_t n = 0;
      bool ok = digits.size() == 20;
      for (char c : digits) {
        ok = ok && c >= '0' && c <= '9';
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
      }
      auto j = parse_json(e.value);
      if (!ok || n == 0 || !j.ok()) return internal_error("corrupt idempotency record " + e.key);
      std::string caller, key;
      StoredReply reply;
      const Json* st = j->find("status");
      if (!read_string(*j, "caller", caller).ok() || !read_string(*j, "key", key).ok() ||
          st == nullptr || !status_from_json(*st, reply.status).ok() ||
          !read_value(*j, "body", reply.body, Presence::kOptional).ok()) {
        return internal_error("corrupt idempotency record " + e.key);
      }
      dedup_.finish(caller, key, std::move(reply), n);
      next_record_ = std::max(next_record_, n + 1);
    }
    if (!page.more || page.entries.empty()) break;
    after = page.entries.back().key;
  }
  counters_.add("dedup.loaded", dedup_.done());
  return Status();
}

void Engine::requeue_unrecord(Inflight& f) {
  // The batch did not land: its deletes of evicted records go with the next.
  unrecord_.insert(unrecord_.end(), f.unrecord.begin(), f.unrecord.end());
  f.unrecord.clear();
}

bool Engine::record_replies(std::vector<Pending>& replies, store::Batch& batch,
                            Inflight& inflight) {
  bool added = false;
  for (Pending& p : replies) {
    if (p.idempotency_key.empty() || !final_reply(p.status)) continue;
    p.record = next_record_++;
    inflight.last_record = p.record;
    batch.mutations.push_back(
        store::Mutation{store::Mutation::Op::kPut, keys::idempotency_record(p.record, config_.node),
                        idempotency_record_value(p.caller, p.idempotency_key, p.status, p.body)});
    added = true;
  }
  if (added) {
    // Records evicted from the window since the last batch go with this one.
    for (std::uint64_t n : dedup_.take_evicted()) unrecord_.push_back(n);
    inflight.unrecord = std::move(unrecord_);
    unrecord_.clear();
    for (std::uint64_t n : inflight.unrecord) {
      batch.mutations.push_back(store::Mutation{
          store::Mutation::Op::kDelete, keys::idempotency_record(n, config_.node), {}});
    }
  }
  return added;
}

Status Engine::submit(Request request) {
  if (ingress_.size() >= config_.ingress_max) {
    counters_.add("ingress.overloaded");
    return unavailable(
        "the engine's ingress queue is full; retry later", "overloaded",
        Json(JsonObject{{"ingress_max", Json(static_cast<std::uint64_t>(config_.ingress_max))}}));
  }
  counters_.add("ingress.accepted");
  ingress_.push_back(std::move(request));
  return Status();
}

std::vector<Request> Engine::take_ingress(bool mutations_only) {
  std::vector<Request> out;
  std::deque<Request> kept;
  for (Request& r : ingress_) {
    if (mutations_only && !is_mutation(r.command)) {
      kept.push_back(std::move(r));
    } else {
      out.push_back(std::move(r));
    }
  }
  ingress_ = std::move(kept);
  if (!out.empty()) counters_.add("ingress.taken", out.size());
  return out;
}

// ---- dispatch -----------------------------------------------------------------

Json Engine::claim_next(const Request& r, const ClaimNext& c, Status& status) {
  JsonArray claims;
  const std::size_t max = c.max;
  for (std::size_t i = 0; i < max; ++i) {
    if (Status g = gate_.admit(r.caller, bb_.held_by(r.caller)); !g.ok()) {
      if (claims.empty()) status = std::move(g);
      break;
    }
    auto got = bb_.claim_next(r.caller, c.filter, c.ttl_ms);
    if (!got.ok()) {
      if (got.status().reason() != "no_work" && claims.empty()) status = got.take_status();
      break;
    }
    const Intent* in = bb_.intent(got->id);
    CAIRN_ASSERT(in != nullptr);
    claims.push_back(Json(JsonObject{{"intent", intent_to_json(*in)},
                                     {"epoch", Json(got->epoch)},
                                     {"lease_expires_at", Json(got->lease_expires_at)}}));
  }
  return Json(JsonObject{{"claims", Json(std::move(claims))}});
}

// The filter and lease of a ClaimNext are checked before looking for work,
// so a request that finds nothing (or parks) is refused the same way as one
// that finds an intent. The filter is bounded: it is matched against every
// open intent scanned.
Status Engine::check_claim_next(const ClaimNext& c) const {
  const ModelLimits& limits = config_.core.limits;
  const std::size_t items_max = config_.claim_filter_items_max;
  for (const auto* list : {&c.filter.kinds, &c.filter.lanes}) {
    const std::string_view field = list == &c.filter.kinds ? "kinds" : "lanes";
    if (list->size() > items_max) {
      return too_large(
          std::string(field) + " names more than " + std::to_string(items_max) + " values",
          "too_large", Json(JsonObject{{"field", Json(field)}}));
    }
    for (const std::string& v : *list) {
      CAIRN_RETURN_IF_ERROR(list == &c.filter.kinds ? check_kind(field, v, limits)
                                                    : check_name(field, v, limits));
    }
  }
  if (c.ttl_ms != 0 && (c.ttl_ms < limits.lease_ttl_ms_min || c.ttl_ms > limits.lease_ttl_ms_max)) {
    return field_error("lease_ttl_ms", "must be within " + std::to_string(limits.lease_ttl_ms_min) +
                                           ".." + std::to_string(limits.lease_ttl_ms_max));
  }
  return Status();
}

void Engine::execute(const Request& r, Status& status, Json& body) {
  const std::int64_t now_ms = clock_.wall_ms();
  auto claim_gates = [&]() -> Status {
    CAIRN_RETURN_IF_ERROR(governor_.admit(r.caller, now_ms));
    if (!backoff_.should_retry(r.caller, now_ms)) {
      return unavailable("the agent is backing off after repeated failures", "agent_backoff",
                         Json(JsonObject{{"retry_at", Json(backoff_.retry_at(r.caller))}}));
    }
    return Status();
  };
  auto fill = [&](auto&& result, auto&& to_body) {
    if (result.ok()) {
      body = to_body(result.value());
    } else {
      status = result.take_status();
    }
  };
  const Command& cmd = r.command;
  switch (cmd.index()) {
    case 0: {  // PostFact
      FactBody b = std::get_if<PostFact>(&cmd)->body;
      if (b.creator.empty()) b.creator = r.caller;
      auto drafts = rule_hints(b);  // governance: the hints the fact will cause
      if (!drafts.ok()) {
        status = drafts.take_status();
        break;
      }
      fill(bb_.post_fact(std::move(b)), [](const PostFactReply& p) {
        return Json(JsonObject{{"id", Json(p.id)},
                               {"seq", Json(p.seq)},
                               {"recorded_at", Json(p.recorded_at)},
                               {"created", Json(p.created)}});
      });
      if (status.ok()) body.set("hints", emit_rule_hints(*drafts));
      break;
    }
    case 1: {  // CreateIntent
      IntentDraft d = std::get_if<CreateIntent>(&cmd)->draft;
      if (d.creator.empty()) d.creator = r.caller;
      fill(bb_.create_intent(std::move(d)), [](const CreateIntentReply& c) {
        Json j(JsonObject{{"id", Json(c.id)},
                          {"state", Json(state_name(c.state))},
                          {"created", Json(c.created)}});
        if (!c.coalesced_into.empty()) j.set("coalesced_into", Json(c.coalesced_into));
        return j;
      });
      if (status.ok() && body.find("created")->as_bool()) {
        const Intent* in = bb_.intent(body.find("id")->as_string());
        const std::string key = bb_.budget_key(in->def);
        if (bb_.budget_of(key) == nullptr) {
          counters_.add("admission.no_budget");
          notice(Notice{"no_budget",
                        "intent " + in->def.id + " is in lane " + key +
                            ", which has no budget: it waits no_budget(" + key + ") until lanes." +
                            key + " is configured",
                        Json(JsonObject{{"intent", Json(in->def.id)}, {"lane", Json(key)}})});
        }
      }
      break;
    }
    case 2: {  // CreateHint
      HintDraft d = std::get_if<CreateHint>(&cmd)->draft;
      if (d.creator.empty()) d.creator = r.caller;
      fill(bb_.create_hint(std::move(d)), [](const HintReply& h) {
        return Json(
            JsonObject{{"id", Json(h.id)}, {"seq", Json(h.seq)}, {"created", Json(h.created)}});
      });
      break;
    }
    case 3: {  // Claim
      const Claim& c = *std::get_if<Claim>(&cmd);
      status = claim_gates();
      if (status.ok()) status = gate_.admit(r.caller, bb_.held_by(r.caller));
      if (!status.ok()) break;
      fill(bb_.claim(c.intent, r.caller, c.ttl_ms), claim_json);
      break;
    }
    case 4: {  // ClaimNext
      const ClaimNext& c = *std::get_if<ClaimNext>(&cmd);
      if (c.max < 1 || c.max > config_.claim_next_max) {
        status = field_error("max", "must be within 1.." + std::to_string(config_.claim_next_max));
        break;
      }
      if (c.wait_ms < 0 || c.wait_ms > config_.long_poll_ms_max) {
        status =
            field_error("wait_ms", "must be within 0.." + std::to_string(config_.long_poll_ms_max));
        break;
      }
      status = check_claim_next(c);
      if (!status.ok()) break;
      status = claim_gates();
      if (!status.ok()) break;
      body = claim_next(r, c, status);
      break;
    }
    case 5: {  // Heartbeat
      const Heartbeat& h = *std::get_if<Heartbeat>(&cmd);
      fill(bb_.heartbeat(h.intent, r.caller, h.epoch, h.ttl_ms), claim_json);
      break;
    }
    case 6: {  // Conclude
      const Conclude& c = *std::get_if<Conclude>(&cmd);
      // Governance: result checks refuse a bad result of the holder's
      // current claim (the intent stays claimed); rules fire on the result
      // fact like on a posted one. The fact is built as the blackboard will.
      std::vector<HintDraft> drafts;
      if (const Intent* in = governance() != nullptr ? bb_.intent(c.intent) : nullptr) {
        if (in->st.state == IntentState::kClaimed && in->st.holder == r.caller &&
            in->st.epoch == c.epoch) {
          status = check_result(*governance(), in->def.kind, c.result);
          if (!status.ok()) {
            counters_.add("governance.result_check_failed");
            break;
          }
        }
        FactBody fact = c.result;
        fact.creator = r.caller;
        fact.derived_from = in->def.from_facts;
        for (const std::string& extra : c.result.derived_from) {
          if (std::find(fact.derived_from.begin(), fact.derived_from.end(), extra) ==
              fact.derived_from.end()) {
            fact.derived_from.push_back(extra);
          }
        }
        auto d = rule_hints(fact);
        if (!d.ok()) {
          status = d.take_status();
          break;
        }
        drafts = std::move(d).value();
      }
      fill(bb_.conclude(c.intent, r.caller, c.epoch, c.result), [](const ConcludeReply& cr) {
        return Json(JsonObject{{"result", Json(cr.result)}, {"state", Json("concluded")}});
      });
      if (status.ok()) body.set("hints", emit_rule_hints(drafts));
      break;
    }
    case 7: {  // Fail
      const Fail& f = *std::get_if<Fail>(&cmd);
      fill(bb_.fail(f.intent, r.caller, f.epoch, f.error, f.retryable), [](const FailReply& fr) {
        JsonObject o{{"state", Json(state_name(fr.state))}};
        if (fr.not_before != 0) o.emplace_back("not_before", Json(fr.not_before));
        return Json(std::move(o));
      });
      break;
    }
    case 8: {  // Release
      const Release& rel = *std::get_if<Release>(&cmd);
      status = bb_.release(rel.intent, r.caller, rel.epoch);
      if (status.ok()) {
        const Intent* in = bb_.intent(rel.intent);
        body = Json(JsonObject{{"state", Json(state_name(in->st.state))}});
      }
      break;
    }
    case 9: {  // Cancel
      const Cancel& c = *std::get_if<Cancel>(&cmd);
      status = bb_.cancel(c.intent, r.caller);
      if (status.ok()) body = Json(JsonObject{{"state", Json("cancelled")}});
      break;
    }
    case 10: {  // RevokeHint
      const RevokeHint& h = *std::get_if<RevokeHint>(&cmd);
      status = bb_.revoke_hint(h.hint, r.caller, h.admin);
      if (status.ok()) body = Json(JsonObject{{"revoked", Json(true)}});
      break;
    }
    case 11: {  // GetIntent
      const Intent* in = bb_.intent(std::get_if<GetIntent>(&cmd)->intent);
      if (in == nullptr) {
        status = not_found("no intent " + std::get_if<GetIntent>(&cmd)->intent, "not_found");
      } else {
        body = intent_to_json(*in);
      }
      break;
    }
    case 12: {  // GetHint
      const Hint* h = bb_.hint(std::get_if<GetHint>(&cmd)->hint);
      if (h == nullptr) {
        status = not_found("no hint " + std::get_if<GetHint>(&cmd)->hint, "not_found");
      } else {
        body = hint_to_json(*h, now_ms);
      }
      break;
    }
    case 13: {  // GetState
      JsonObject by_state;
      for (int i = 0; i < kIntentStateCount; ++i) {
        const auto s = static_cast<IntentState>(i);
        by_state.emplace_back(std::string(state_name(s)),
                              Json(static_cast<std::uint64_t>(bb_.count(s))));
      }
      JsonObject lanes;
      for (const auto& [lane, counts] : bb_.lane_counts()) {
        JsonObject per;
        for (int i = 0; i < kIntentStateCount; ++i) {
          per.emplace_back(std::string(state_name(static_cast<IntentState>(i))),
                           Json(static_cast<std::uint64_t>(counts[static_cast<std::size_t>(i)])));
        }
        lanes.emplace_back(lane, Json(std::move(per)));
      }
      body = Json(JsonObject{{"intents", Json(std::move(by_state))},
                             {"lanes", Json(std::move(lanes))},
                             {"facts", Json(static_cast<std::uint64_t>(bb_.fact_count()))},
                             {"last_seq", Json(bb_.last_seq())}});
      if (governance() != nullptr) body.set("contract", governance_identity(*governance()));
      break;
    }
    case 14: {  // GetPlan
      Result<Plan> p = plan(std::get_if<GetPlan>(&cmd)->at_ms);
      if (p.ok()) {
        body = plan_to_json(*p);
      } else {
        status = p.take_status();
      }
      break;
    }
    default:
      CAIRN_UNREACHABLE();
  }
  if (status.ok() && body.is_null()) body = Json::object();
}

// ---- the plan -------------------------------------------------------------------------

PlanInput Engine::plan_input(std::int64_t at_ms) const {
  PlanInput in = bb_.plan_input(at_ms > 0 ? at_ms : clock_.wall_ms(), config_.plan.limits);
  in.first_response_budget_ms = config_.plan.first_response_budget_ms;
  in.all_responses_budget_ms = config_.plan.all_responses_budget_ms;
  in.lane_duration_ms = config_.plan.lane_duration_ms;
  in.default_duration_ms = config_.plan.default_duration_ms;
  // Claim times (the time left of a running intent) and warm latency
  // estimates per (kind, lane).
  std::vector<std::pair<std::string, std::string>> kinds;
  kinds.reserve(in.intents.size());
  for (PlanIntent& pi : in.intents) {
    if (pi.state == PlanIntentState::kClaimed) {
      auto c = claimed_at_.find(pi.id);
      pi.claimed_at = c != claimed_at_.end() ? c->second : 0;
    }
    kinds.emplace_back(pi.kind, pi.lane);
  }
  std::sort(kinds.begin(), kinds.end());
  kinds.erase(std::unique(kinds.begin(), kinds.end()), kinds.end());
  for (const auto& [kind, lane] : kinds) {
    if (auto e = latency_.get(kind, lane); e && e->warm()) {
      const auto ms = static_cast<std::int64_t>(e->srtt_ms + 0.5);
      in.estimates.emplace(std::make_pair(kind, lane),
                           std::clamp<std::int64_t>(ms, 1, config_.plan.limits.duration_ms_max));
    }
  }
  return in;
}

Result<Plan> Engine::plan(std::int64_t at_ms) const {
  return compute_plan(plan_input(at_ms), bb_.plan_facts(), config_.plan.limits);
}

void Engine::notice(Notice n) {
  if (notices_.size() >= config_.notices_max) notices_.pop_front();
  notices_.push_back(std::move(n));
}

std::vector<Notice> Engine::take_notices() {
  std::vector<Notice> out(std::make_move_iterator(notices_.begin()),
                          std::make_move_iterator(notices_.end()));
  notices_.clear();
  return out;
}

void Engine::dispatch(Request& r, std::vector<Pending>& out, bool resumed, std::uint32_t races) {
  counters_.add(std::string("commands.") + std::string(command_name(r.command)));
  const bool keyed = !r.idempotency_key.empty() && is_mutation(r.command);
  if (keyed && !resumed) {
    switch (dedup_.state(r.caller, r.idempotency_key)) {
      case DedupWindow::State::kDone: {
        counters_.add("dedup.replayed");
        const StoredReply& s = dedup_.reply(r.caller, r.idempotency_key);
        out.push_back(Pending{r.id, r.caller, {}, s.status, s.body, {}});
        return;
      }
      case DedupWindow::State::kPending:
        // The original is parked, in this cycle or in flight: answer this
        // retry with its reply when that is released.
        counters_.add("dedup.joined");
        waiting_[dedup_key(r.caller, r.idempotency_key)].push_back(r.id);
        return;
      case DedupWindow::State::kUnknown:
        dedup_.begin(r.caller, r.idempotency_key);
        break;
    }
  }
  Status status;
  Json body;
  execute(r, status, body);
  if (const auto* cn = std::get_if<ClaimNext>(&r.command);
      cn != nullptr && status.ok() && cn->wait_ms > 0 && body.find("claims")->size() == 0) {
    const std::int64_t deadline = clock_.wall_ms() + cn->wait_ms;
    if (parked_.size() < config_.parked_max) {
      // Nothing to hand out yet: wait (no busy polling) until a commit makes
      // work available or the deadline passes.
      counters_.add("claims.parked");
      parked_.push_back(Parked{std::move(r), deadline});
      return;
    }
    counters_.add("claims.park_full");
  }
  // Shared mode: a mutation's reply, whatever it says, is only released
  // after a commit proves the state it read was current. (A long-poll that
  // parked again above has no reply yet and needs no commit.)
  if (is_mutation(r.command)) cycle_mutated_ = true;
  Pending p{};
  p.id = r.id;
  p.status = std::move(status);
  p.body = std::move(body);
  p.races = races;
  if (shared()) {
    p.caller = r.caller;
    if (keyed) p.idempotency_key = r.idempotency_key;
    p.redo = std::move(r);
  } else {
    p.caller = std::move(r.caller);
    if (keyed) p.idempotency_key = std::move(r.idempotency_key);
  }
  out.push_back(std::move(p));
}

// ---- governance --------------------------------------------------------------------

Result<std::vector<HintDraft>> Engine::rule_hints(const FactBody& fact) const {
  std::vector<HintDraft> drafts;
  const Governance* g = governance();
  if (g == nullptr) return drafts;
  // Most facts match no rule: decide that before hashing the fact.
  const bool fires = std::any_of(g->rules.begin(), g->rules.end(), [&](const GovernanceRule& r) {
    return rule_matches(r, fact.kind, fact.content);
  });
  if (!fires) return drafts;
  // An invalid fact is refused by the blackboard; a repeat fires nothing.
  auto canon = canonicalize_fact(fact, config_.core.limits);
  if (!canon.ok() || bb_.has_fact(canon->id)) return drafts;
  drafts = hints_for_fact(*g, fact, canon->id, clock_.wall_ms());
  for (const HintDraft& d : drafts) {
    if (Status s = validate_hint_draft(d, config_.core.limits); !s.ok()) {
      // The loader checks rules against the same bounds: a contract bug,
      // not the caller's; nothing is recorded.
      return internal_error("a contract rule emits an invalid hint for this fact: " + s.message(),
                            "invalid_rule_hint",
                            Json(JsonObject{{"hint", Json(d.id)}, {"error", status_to_json(s)}}));
    }
    if (bb_.hint(d.id) != nullptr) {
      return conflict("the hint " + d.id + " a contract rule emits for this fact already exists",
                      "id_exists", Json(JsonObject{{"hint", Json(d.id)}}));
    }
  }
  return drafts;
}

Json Engine::emit_rule_hints(std::vector<HintDraft>& drafts) {
  JsonArray ids;
  for (HintDraft& d : drafts) {
    // rule_hints() checked every way create_hint can refuse it, and the fact
    // it derives from was recorded just now.
    auto h = bb_.create_hint(std::move(d));
    CAIRN_ASSERT_MSG(h.ok(), "a checked contract hint was refused");
    counters_.add("governance.hints_emitted");
    ids.emplace_back(h->id);
  }
  drafts.clear();
  return Json(std::move(ids));
}

// ---- releasing replies ----------------------------------------------------------------

void Engine::answer_waiting(const Pending& p, const Status& status, const Json& body,
                            std::vector<Effect>& effects) {
  if (p.idempotency_key.empty()) return;
  auto w = waiting_.find(dedup_key(p.caller, p.idempotency_key));
  if (w == waiting_.end()) return;
  for (RequestId dup : w->second) effects.push_back(ReplyEffect{dup, status, body});
  waiting_.erase(w);
}

void Engine::release(std::vector<Pending>& replies, std::vector<Effect>& effects) {
  for (Pending& p : replies) {
    counters_.add(std::string("replies.") + std::string(p.status.reason()));
    answer_waiting(p, p.status, p.body, effects);
    if (!p.idempotency_key.empty()) {
      if (final_reply(p.status)) {
        dedup_.finish(p.caller, p.idempotency_key, StoredReply{p.status, p.body}, p.record);
      } else {
        dedup_.forget(p.caller, p.idempotency_key);  // "not now": a retry runs again
      }
    }
    effects.push_back(ReplyEffect{p.id, std::move(p.status), std::move(p.body)});
  }
  replies.clear();
}

void Engine::fail_all(std::vector<Pending>& replies, const Status& why,
                      std::vector<Effect>& effects) {
  for (Pending& p : replies) {
    counters_.add(std::string("replies.") + std::string(why.reason()));
    answer_waiting(p, why, Json(), effects);
    if (!p.idempotency_key.empty()) {
      // Nothing (known to be) applied: a retry with the key runs again.
      dedup_.forget(p.caller, p.idempotency_key);
    }
    effects.push_back(ReplyEffect{p.id, why, Json()});
  }
  replies.clear();
}

bool Engine::work_may_have_appeared(const std::vector<Event>& events) const {
  for (const Event& e : events) {
    if (e.type == ev::kIntentCreated || e.type == ev::kIntentReleased ||
        e.type == ev::kIntentReady || e.type == ev::kIntentExpired || e.type == ev::kIntentFailed ||
        e.type == ev::kHintRevoked || e.type == ev::kHintExpired || e.type == ev::kFactRecorded ||
        e.type == ev::kIntentConcluded || e.type == ev::kIntentCancelled ||
        e.type == ev::kIntentDead) {
      return true;  // new or freed work, a lifted gate, or a freed lease slot
    }
  }
  return false;
}

void Engine::after_events(const std::vector<Event>& events) {
  for (const Event& e : events) {
    records_.push("events", event_to_json(e));
    counters_.add(std::string("events.") + e.type);
    const Json* agent_j = e.data.find("agent");
    const std::string agent =
        agent_j != nullptr && agent_j->is_string() ? agent_j->as_string() : "";
    if (e.type == ev::kIntentClaimed) {
      claimed_at_[e.subject] = e.at;
    } else if (e.type == ev::kIntentConcluded) {
      if (auto it = claimed_at_.find(e.subject); it != claimed_at_.end()) {
        if (const Intent* in = bb_.intent(e.subject)) {
          latency_.record(in->def.kind, in->def.lane, static_cast<double>(e.at - it->second));
        }
        claimed_at_.erase(it);
      }
      backoff_.record_success(agent);
      governor_.record_success(agent);
    } else if (e.type == ev::kIntentFailed || e.type == ev::kIntentDead) {
      claimed_at_.erase(e.subject);
      backoff_.record_failure(agent, e.at);
    } else if (e.type == ev::kIntentExpired) {
      claimed_at_.erase(e.subject);
      governor_.record_expiry(agent, e.at);
    } else if (e.type == ev::kIntentReleased || e.type == ev::kIntentCancelled) {
      claimed_at_.erase(e.subject);
    }
  }
  if (work_may_have_appeared(events)) resume_parked_ = parked_.size();
}

// ---- commits ----------------------------------------------------------------------------------

void Engine::complete_commit(std::uint64_t commit_id, Result<store::CommitInfo> outcome) {
  if (!inflight_ || inflight_->commit_id != commit_id || resync_needed_) {
    counters_.add("commit.unknown_completion");
    return;
  }
  if (outcome.ok()) {
    counters_.add("commit.ok");
    commit_failures_ = 0;
    commit_retry_at_ = 0;
    if (inflight_->drained) bb_.accept();
    if (shared() && !inflight_->events.empty()) seq_version_ = outcome->version;
    release(inflight_->replies, carry_);
    after_events(inflight_->events);
    carry_.push_back(PublishEffect{std::move(inflight_->events)});
    inflight_.reset();
    return;
  }
  Status why = outcome.take_status();
  if (why.code() == Code::kOutcomeUnknown) {
    counters_.add("commit.outcome_unknown");
    // The callers hear outcome_unknown now; their idempotency keys stay
    // pending until resync() learns whether the batch landed, so a retry can
    // never run a second time a command that did happen (a retried create
    // would otherwise make a second intent).
    for (const Pending& p : inflight_->replies) {
      counters_.add(std::string("replies.") + std::string(why.reason()));
      answer_waiting(p, why, Json(), carry_);
      carry_.push_back(ReplyEffect{p.id, why, Json()});
    }
    resync_needed_ = true;
    carry_.push_back(ResyncEffect{commit_id});
    return;  // inflight_ stays until resync() learns what happened
  }
  if (shared() && why.code() == Code::kConflict) {
    lost_race(why);
    return;
  }
  counters_.add("commit.failed");
  ++commit_failures_;
  std::int64_t wait = config_.commit_retry_base_ms;
  for (std::uint32_t i = 1; i < commit_failures_ && wait < config_.commit_retry_cap_ms; ++i) {
    wait *= 2;
  }
  commit_retry_at_ = clock_.wall_ms() + std::min(wait, config_.commit_retry_cap_ms);
  if (inflight_->drained) undo_batch();
  requeue_unrecord(*inflight_);
  fail_all(inflight_->replies, why, carry_);
  inflight_.reset();
}

void Engine::undo_batch() {
  bb_.rollback();
  // The batch may have claimed work that is free again: the long-polls that
  // parked meanwhile (finding nothing) get another look.
  resume_parked_ = parked_.size();
}

void Engine::lost_race(const Status& why) {
  counters_.add("commit.lost_race");
  if (inflight_->drained) undo_batch();
  requeue_unrecord(*inflight_);
  std::deque<Redo> again;
  for (Pending& p : inflight_->replies) {
    if (p.redo && p.races < config_.lost_races_max) {
      again.push_back(Redo{std::move(*p.redo), p.races + 1});
      continue;
    }
    p.record = 0;  // its record was not written
    if (p.redo) {
      counters_.add("commit.lost_race_final");
      p.status =
          conflict("other nodes changed the blackboard first " + std::to_string(p.races + 1) +
                       " times in a row; nothing was applied, retry",
                   "lost_race",
                   Json(JsonObject{
                       {"races", Json(static_cast<std::uint64_t>(p.races + 1))},
                       {"keys", why.details().find("keys") != nullptr ? *why.details().find("keys")
                                                                      : Json::array()}}));
      p.body = Json();
      if (!p.idempotency_key.empty()) {
        answer_waiting(p, p.status, p.body, carry_);
        dedup_.forget(p.caller, p.idempotency_key);  // nothing happened: a retry runs
        p.idempotency_key.clear();
      }
    }
    // A replayed reply (or a lost race's final answer) stands.
    std::vector<Pending> one;
    one.push_back(std::move(p));
    release(one, carry_);
  }
  for (auto it = again.rbegin(); it != again.rend(); ++it) redo_.push_front(std::move(*it));
  inflight_.reset();
  want_catch_up();
}

void Engine::want_catch_up() {
  catch_up_wanted_ = true;
  carry_.push_back(CatchUpEffect{});
}

Status Engine::resync(store::Store& store) {
  if (!resync_needed_) return Status();
  CAIRN_ASSERT(inflight_.has_value());
  CAIRN_ASSIGN_OR_RETURN(std::optional<store::Entry> seq, store.get(keys::kEventSeq));
  std::uint64_t durable = 0;
  if (seq) {
    for (char c : seq->value) {
      if (c < '0' || c > '9') return internal_error("corrupt " + std::string(keys::kEventSeq));
      durable = durable * 10 + static_cast<std::uint64_t>(c - '0');
    }
  }
  // Every batch with events writes the sequence key, and sequences only
  // grow: the store holds the in-doubt batch exactly when it holds its last
  // sequence number. A batch without events carries idempotency records:
  // it landed exactly when its newest record is there.
  bool applied = false;
  std::optional<store::Entry> marker;
  if (shared()) {
    // Other nodes may have advanced the sequence since: the node's commit
    // marker tells whether this batch landed. A batch without mutations
    // (preconditions only) has nothing that could have landed.
    if (!inflight_->marker.empty()) {
      CAIRN_ASSIGN_OR_RETURN(marker, store.get(std::string(keys::kCommitMarker) + config_.node));
      applied = marker && marker->value == inflight_->marker;
    }
  } else if (!inflight_->events.empty()) {
    applied = durable == inflight_->last_seq;
  } else {
    CAIRN_ASSERT(inflight_->last_record != 0);
    CAIRN_ASSIGN_OR_RETURN(std::optional<store::Entry> rec,
                           store.get(keys::idempotency_record(inflight_->last_record)));
    applied = rec.has_value();
  }
  for (Pending& p : inflight_->replies) {
    if (p.idempotency_key.empty()) continue;
    if (applied && final_reply(p.status)) {
      // A retry with the key now gets the reply the command really had.
      dedup_.finish(p.caller, p.idempotency_key,
                    StoredReply{std::move(p.status), std::move(p.body)}, p.record);
    } else {
      dedup_.forget(p.caller, p.idempotency_key);  // nothing happened: a retry runs
    }
  }
  if (applied) {
    counters_.add("resync.applied");
    if (inflight_->drained) bb_.accept();
    if (shared() && !inflight_->events.empty()) seq_version_ = marker->version;
    after_events(inflight_->events);
    carry_.push_back(PublishEffect{std::move(inflight_->events)});
  } else {
    counters_.add("resync.not_applied");
    if (inflight_->drained) undo_batch();
    requeue_unrecord(*inflight_);
  }
  resync_needed_ = false;
  inflight_.reset();
  if (shared()) want_catch_up();
  return Status();
}

// ---- the poll cycle ---------------------------------------------------------------------------

PollResult Engine::poll(std::int64_t now_ms) {
  PollResult out;
  out.effects = std::move(carry_);
  carry_.clear();
  if (now_ms > clock_.wall_ms()) clock_.advance_ms(now_ms - clock_.wall_ms());

  // While a failed store cools down, requests wait in the ingress queue.
  // After a lost race the cycle waits for the catch-up it asked for.
  if (!busy() && !catch_up_wanted_ && clock_.wall_ms() >= commit_retry_at_) {
    // 1. Ingress: parked long-polls that may now find work go first (they
    // have waited longest), then queued requests, within the cycle budget.
    std::vector<Request> cycle;
    std::vector<std::uint32_t> races;  // shared mode: races each lost so far
    // Requests of a lost race go first: their keys are pending already.
    while (!redo_.empty() && cycle.size() < config_.commands_per_cycle_max) {
      cycle.push_back(std::move(redo_.front().request));
      races.push_back(redo_.front().races);
      redo_.pop_front();
    }
    // Timers first (expiries in the blackboard): a backoff or a defer hint
    // that ended makes work claimable by time alone, and the long-polls
    // waiting for it run in this very cycle.
    cycle_mutated_ = false;
    const TickReport t = bb_.tick();
    if (t.backoffs_ended > 0 || t.defers_ended > 0) resume_parked_ = parked_.size();
    std::size_t resumed = 0;  // the first `resumed` entries of `cycle` were parked or redone
    if (resume_parked_ > 0) {
      while (!parked_.empty() && resume_parked_ > 0 &&
             cycle.size() < config_.commands_per_cycle_max) {
        --resume_parked_;
        Parked p = std::move(parked_.front());
        parked_.pop_front();
        if (auto* cn = std::get_if<ClaimNext>(&p.request.command)) {
          cn->wait_ms = std::max<std::int64_t>(0, p.deadline - clock_.wall_ms());
        }
        cycle.push_back(std::move(p.request));
      }
      resume_parked_ = std::min(resume_parked_, parked_.size());
    }
    resumed = cycle.size();
    while (!ingress_.empty() && cycle.size() < config_.commands_per_cycle_max) {
      cycle.push_back(std::move(ingress_.front()));
      ingress_.pop_front();
    }
    races.resize(cycle.size(), 0);

    // 2. Long-poll deadlines.
    std::vector<Pending> pending;
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (it->deadline <= clock_.wall_ms()) {
        counters_.add("claims.long_poll_timeout");
        Request& r = it->request;
        Pending p{r.id,
                  r.caller,
                  r.idempotency_key,
                  Status(),
                  Json(JsonObject{{"claims", Json::array()}}),
                  {}};
        if (shared()) {
          // If the cycle's commit loses a race it runs once more, not waiting.
          std::get<ClaimNext>(r.command).wait_ms = 0;
          cycle_mutated_ = true;
          p.redo = std::move(r);
        }
        pending.push_back(std::move(p));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }

    // 3. Dispatch.
    for (std::size_t i = 0; i < cycle.size(); ++i) {
      dispatch(cycle[i], pending, i < resumed, races[i]);
    }

    // 4. Group commit — the blackboard's delta and the idempotency records
    // of the keyed replies — or release at once when there is nothing to write.
    Inflight f{next_commit_id_, bb_.last_seq(), {}, {}, false, 0, {}};
    store::Batch batch;
    if (bb_.has_pending()) {
      PendingCommit p = bb_.drain();
      batch = std::move(p.batch);
      f.events = std::move(p.events);
      f.last_seq = f.events.empty() ? bb_.last_seq() : f.events.back().seq;
      f.drained = true;
    }
    const bool recorded = record_replies(pending, batch, f);
    if (recorded || f.drained || (shared() && cycle_mutated_)) {
      if (shared()) {
        // The store's event sequence must be the one this state was read at.
        batch.preconditions.push_back(
            store::Precondition::unchanged(std::string(keys::kEventSeq), seq_version_));
        if (!batch.mutations.empty()) {
          f.marker = marker_base_ + ':' + std::to_string(f.commit_id);
          batch.mutations.push_back(store::Mutation{store::Mutation::Op::kPut,
                                                    std::string(keys::kCommitMarker) + config_.node,
                                                    f.marker});
        }
      }
      ++next_commit_id_;
      counters_.add("commit.batches");
      counters_.add("commit.mutations", batch.mutations.size());
      f.replies = std::move(pending);
      const std::uint64_t id = f.commit_id;
      inflight_ = std::move(f);
      out.effects.push_back(CommitEffect{id, std::move(batch)});
    } else {
      release(pending, out.effects);
    }
  }

  // 6. Deadlines. Long-polls still to run again (past the cycle budget) make
  // the next poll due at once.
  out.next_deadline = bb_.next_deadline();
  if (resume_parked_ > 0 && !busy() && !catch_up_wanted_ && clock_.wall_ms() >= commit_retry_at_) {
    out.next_deadline = clock_.wall_ms();
  }
  if (commit_retry_at_ > clock_.wall_ms() &&
      (!out.next_deadline || commit_retry_at_ < *out.next_deadline)) {
    out.next_deadline = commit_retry_at_;
  }
  for (const Parked& p : parked_) {
    if (!out.next_deadline || p.deadline < *out.next_deadline) out.next_deadline = p.deadline;
  }
  return out;
}

bool Engine::abandon(RequestId id) {
  auto it = std::find_if(parked_.begin(), parked_.end(),
                         [&](const Parked& p) { return p.request.id == id; });
  if (it == parked_.end()) return false;
  Request r = std::move(it->request);
  parked_.erase(it);
  counters_.add("claims.abandoned");
  const Status why = unavailable("the client went away before work came", "abandoned");
  const bool keyed = !r.idempotency_key.empty();
  Pending p{r.id, r.caller, keyed ? r.idempotency_key : "", why, Json(), {}};
  answer_waiting(p, why, Json(), carry_);
  if (keyed) dedup_.forget(r.caller, r.idempotency_key);
  carry_.push_back(ReplyEffect{r.id, why, Json()});
  return true;
}

// ---- snapshot / restore ----------------------------------------------------------------------

Result<Json> Engine::snapshot() const {
  if (!ingress_.empty() || busy() || !parked_.empty() || !carry_.empty() || bb_.has_pending()) {
    return conflict("the engine has work in flight; snapshot when idle", "busy");
  }
  JsonArray rng;
  for (std::uint64_t w : rng_.state()) rng.emplace_back(u64_hex(w));
  JsonObject claimed;
  for (const auto& [id, at] : claimed_at_) claimed.emplace_back(id, Json(at));
  return Json(JsonObject{{"version", Json(kSnapshotVersion)},
                         {"incarnation", Json(incarnation_)},
                         {"rng", Json(std::move(rng))},
                         {"next_commit_id", Json(u64_hex(next_commit_id_))},
                         {"backoff", backoff_.to_json()},
                         {"governor", governor_.to_json()},
                         {"latency", latency_.to_json()},
                         {"counters", counters_.to_json()},
                         {"claimed_at", Json(std::move(claimed))}});
}

Result<std::unique_ptr<Engine>> Engine::restore(EngineConfig config, const Json& snap,
                                                store::Store& store, std::int64_t now_wall_ms) {
  CAIRN_RETURN_IF_ERROR(expect_object(snap, "snapshot"));
  std::int64_t version = 0;
  CAIRN_RETURN_IF_ERROR(read_int(snap, "version", version));
  if (version != kSnapshotVersion) {
    return invalid("unknown snapshot version " + std::to_string(version), "bad_snapshot");
  }
  auto e = std::unique_ptr<Engine>(new Engine(std::move(config), 0, now_wall_ms));
  std::uint64_t incarnation = 0;
  CAIRN_RETURN_IF_ERROR(read_uint(snap, "incarnation", incarnation));
  e->incarnation_ = incarnation + 1;
  std::vector<std::string> rng;
  CAIRN_RETURN_IF_ERROR(read_string_array(snap, "rng", rng));
  std::array<std::uint64_t, 4> state{};
  if (rng.size() != state.size()) return invalid("snapshot rng state", "bad_snapshot");
  for (std::size_t i = 0; i < state.size(); ++i) {
    if (!parse_u64_hex(rng[i], state[i])) return invalid("snapshot rng state", "bad_snapshot");
  }
  e->rng_.set_state(state);
  std::string next;
  CAIRN_RETURN_IF_ERROR(read_string(snap, "next_commit_id", next));
  if (!parse_u64_hex(next, e->next_commit_id_)) return invalid("next_commit_id", "bad_snapshot");
  auto part = [&](std::string_view key) -> const Json& {
    static const Json kNull;
    const Json* j = snap.find(key);
    return j == nullptr ? kNull : *j;
  };
  CAIRN_RETURN_IF_ERROR(e->backoff_.from_json(part("backoff")));
  CAIRN_RETURN_IF_ERROR(e->governor_.from_json(part("governor")));
  CAIRN_RETURN_IF_ERROR(e->latency_.from_json(part("latency")));
  CAIRN_RETURN_IF_ERROR(e->counters_.from_json(part("counters")));
  if (const JsonObject* c = part("claimed_at").object_if()) {
    for (const auto& [id, at] : *c) {
      auto v = at.int_if();
      if (!v) return invalid("claimed_at", "bad_snapshot");
      e->claimed_at_[id] = *v;
    }
  }
  CAIRN_RETURN_IF_ERROR(e->load(store));
  e->counters_.add("engine.restored");
  return e;
}

}  // namespace cairn::engine

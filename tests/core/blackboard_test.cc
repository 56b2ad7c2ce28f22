// blackboard_test.cc — facts, intents, hints, events, group commit and
// loading, as a user of the core relies on them.
#include "core/blackboard.h"

#include <gtest/gtest.h>

#include <set>

#include "core/keys.h"
#include "core/test_env.h"
#include "model/json_parse.h"
#include "store/fault_store.h"

namespace cairn {
namespace {

using testing::CoreEnv;

FactBody body(const char* kind, Json content, std::vector<std::string> derived = {}) {
  FactBody b;
  b.kind = kind;
  b.content = std::move(content);
  b.creator = "tester";
  b.derived_from = std::move(derived);
  return b;
}

// ---- facts -----------------------------------------------------------------------

TEST(Facts, IdIsTheSha256OfTheCanonicalFiveFields) {
  CoreEnv e;
  auto r = e.bb.post_fact(body("obs", Json(JsonObject{{"b", Json(2)}, {"a", Json(1)}})));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // Computed independently: JCS of the five fields with defaults filled in.
  const std::string canonical =
      R"({"content":{"a":1,"b":2},"content_type":"application/json","creator":"tester",)"
      R"("derived_from":[],"kind":"obs"})";
  EXPECT_EQ(r->id, to_hex(sha256(canonical)));
  EXPECT_TRUE(r->created);
}

TEST(Facts, PostingTwiceYieldsTheSameIdAndSeqAndNoSecondCopy) {
  CoreEnv e;
  auto a = e.bb.post_fact(body("obs", Json("x")));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(e.flush().ok());
  const auto keys_before = e.store.size();
  const auto seq_before = e.bb.last_seq();
  auto b = e.bb.post_fact(body("obs", Json("x")));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(a->seq, b->seq);
  EXPECT_FALSE(b->created);
  EXPECT_FALSE(e.bb.has_pending());
  EXPECT_EQ(e.bb.last_seq(), seq_before);
  ASSERT_TRUE(e.flush().ok());
  EXPECT_EQ(e.store.size(), keys_before);
}

TEST(Facts, DerivedFromMustResolve) {
  CoreEnv e;
  const std::string ghost(64, 'a');
  auto r = e.bb.post_fact(body("obs", Json(1), {ghost}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_EQ(r.status().reason(), "unknown_reference");
  EXPECT_EQ(to_json(r.status().details()),
            R"({"field":"derived_from","missing":[")" + ghost + R"("]})");
  EXPECT_FALSE(e.bb.has_pending());
}

TEST(Facts, StoredRecordRoundTripsAndRehashes) {
  CoreEnv e;
  const std::string parent = e.fact("obs", 1);
  e.clock.advance_ms(5);
  auto r = e.bb.post_fact(body("derived", Json(JsonObject{{"k", Json("€")}}), {parent}));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(e.flush().ok());
  auto f = Blackboard::read_fact(e.store, r->id);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->id, r->id);
  EXPECT_EQ(f->seq, r->seq);
  EXPECT_EQ(f->recorded_at, e.clock.wall_ms());
  EXPECT_EQ(f->body.derived_from, std::vector<std::string>{parent});
  auto canon = canonicalize_fact(f->body, ModelLimits{});
  ASSERT_TRUE(canon.ok());
  EXPECT_EQ(canon->id, r->id);
}

TEST(Facts, BadInputIsRefusedWithTypedErrors) {
  CoreEnv e;
  struct Case {
    FactBody b;
    Code code;
    const char* reason;
  };
  FactBody big = body("obs", Json(std::string(2u << 20, 'x')));
  FactBody badkind = body("has space", Json(1));
  FactBody nokind = body("", Json(1));
  FactBody badct = body("obs", Json(1));
  badct.content_type = "text/plain; charset=utf-8";
  FactBody dup = body("obs", Json(1), {std::string(64, 'a'), std::string(64, 'a')});
  FactBody badid = body("obs", Json(1), {"not-a-fact-id"});
  FactBody nocreator = body("obs", Json(1));
  nocreator.creator = "";
  Case cases[] = {
      {big, Code::kTooLarge, "too_large"},         {badkind, Code::kInvalid, "invalid_field"},
      {nokind, Code::kInvalid, "invalid_field"},   {badct, Code::kInvalid, "invalid_field"},
      {dup, Code::kInvalid, "invalid_field"},      {badid, Code::kInvalid, "invalid_field"},
      {nocreator, Code::kInvalid, "invalid_field"}};
  for (auto& c : cases) {
    auto r = e.bb.post_fact(c.b);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code) << r.status().to_string();
    EXPECT_EQ(r.status().reason(), c.reason) << r.status().to_string();
  }
  EXPECT_EQ(e.bb.last_seq(), 0u);
  EXPECT_FALSE(e.bb.has_pending());
}

// ---- intents ---------------------------------------------------------------------

TEST(Intents, MustBeGroundedInExistingFacts) {
  CoreEnv e;
  IntentDraft d;
  d.kind = "work";
  d.creator = "alice";
  auto r = e.bb.create_intent(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "not_grounded");
  d.from_facts = {std::string(64, 'b')};
  r = e.bb.create_intent(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "unknown_reference");
  EXPECT_EQ(e.bb.intent_count(), 0u);
}

TEST(Intents, DefaultsAreFilledAndRecordsRoundTrip) {
  CoreEnv e;
  IntentDraft d;
  d.kind = "work";
  d.creator = "alice";
  d.from_facts = {e.fact()};
  d.spec = Json(JsonObject{{"url", Json("https://example.org")}});
  auto r = e.bb.create_intent(d);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(e.flush().ok());
  const Intent* in = e.bb.intent(r->id);
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->def.lane, "default");
  EXPECT_EQ(in->def.lease_ttl_ms, ModelLimits{}.lease_ttl_ms_default);
  EXPECT_EQ(in->def.max_attempts, ModelLimits{}.max_attempts_default);
  EXPECT_EQ(r->id.size(), 32u);
  auto def = e.store.get(keys::intent_def(r->id));
  ASSERT_TRUE(def.ok() && def->has_value());
  auto back = decode_intent_def((*def)->value);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(encode_intent_def(*back), encode_intent_def(in->def));
}

TEST(Intents, ClientChosenIdIsIdempotentForIdenticalFields) {
  CoreEnv e;
  IntentDraft d = e.draft(e.fact());
  d.id = "job-1";
  auto a = e.bb.create_intent(d);
  ASSERT_TRUE(a.ok() && a->created);
  ASSERT_TRUE(e.flush().ok());
  auto b = e.bb.create_intent(d);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->created);
  d.priority = 5;
  auto c = e.bb.create_intent(d);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().reason(), "id_exists");
}

TEST(Intents, ConcludeRecordsAResultFactLinkedToTheIntent) {
  CoreEnv e;
  const std::string id = e.intent();
  auto c = e.bb.claim(id, "a1");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(e.flush().ok());
  FactBody res = e.result(42);
  auto r = e.bb.conclude(id, "a1", c->epoch, res);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(e.flush().ok());
  auto f = Blackboard::read_fact(e.store, r->result);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->body.creator, "a1");
  EXPECT_EQ(f->body.derived_from, e.bb.intent(id)->def.from_facts);
  auto link = e.store.get(keys::fact_concludes(r->result, id));
  ASSERT_TRUE(link.ok());
  EXPECT_TRUE(link->has_value());
  EXPECT_EQ(e.bb.intent(id)->st.result, r->result);
}

// An agent that asks for one lane gets that lane's work however much waits
// in the lanes before it: other lanes' intents do not use up claim_scan_max.
TEST(Intents, ClaimNextLaneFilterIsNotStarvedByOtherLanesBacklog) {
  for (const bool budgets : {false, true}) {
    SCOPED_TRACE(budgets ? "budgets on" : "budgets off");
    CoreConfig cfg;
    cfg.claim_scan_max = 8;
    cfg.admission.budgets = budgets;
    if (budgets) {
      cfg.admission.lanes.emplace("a", LaneBudget{100, 100});
      cfg.admission.lanes.emplace("b", LaneBudget{100, 100});
      cfg.admission.lanes.emplace("b/gpu", LaneBudget{100, 100});
    }
    CoreEnv e(1, cfg);
    const std::string seed = e.fact("seed");
    auto mk = [&](const char* lane, const char* provider) {
      IntentDraft d = e.draft(seed);
      d.lane = lane;
      d.provider = provider;
      auto r = e.bb.create_intent(std::move(d));
      CAIRN_ASSERT_MSG(r.ok(), r.status().to_string().c_str());
      return r->id;
    };
    for (int i = 0; i < 20; ++i) mk("a", "");  // before "b" in key order, more than the scan
    const std::string in_b = mk("b", "");
    const std::string in_b_gpu = mk("b", "gpu");  // budget "b/gpu" when configured
    ASSERT_TRUE(e.flush().ok());
    const ClaimFilter only_b{{}, {"b"}};
    auto c1 = e.bb.claim_next("agent", only_b);
    ASSERT_TRUE(c1.ok()) << c1.status().to_string();
    auto c2 = e.bb.claim_next("agent", only_b);
    ASSERT_TRUE(c2.ok()) << c2.status().to_string();
    EXPECT_EQ((std::set<std::string>{c1->id, c2->id}), (std::set<std::string>{in_b, in_b_gpu}));
    auto none = e.bb.claim_next("agent", only_b);
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.status().reason(), "no_work");
    // A lane named like a budget key's prefix is not matched by it.
    EXPECT_FALSE(e.bb.claim_next("agent", ClaimFilter{{}, {"b/g"}}).ok());
  }
}

// Intents a deny or defer hint gates sit at the head of their lane; claims
// set them aside instead of re-checking them until the scan bound runs out,
// and take them up again when the hint ends, a defer passes or the batch that
// made the hint rolls back.
TEST(Intents, HintGatedIntentsDoNotStarveTheWorkBehindThem) {
  for (const bool budgets : {false, true}) {
    SCOPED_TRACE(budgets ? "budgets on" : "budgets off");
    CoreConfig cfg;
    cfg.claim_scan_max = 8;
    cfg.admission.budgets = budgets;
    CoreEnv e(1, cfg);
    const std::string seed = e.fact("seed");
    auto mk = [&](const char* kind, std::int64_t priority) {
      IntentDraft d = e.draft(seed, kind);
      d.priority = priority;
      auto r = e.bb.create_intent(std::move(d));
      CAIRN_ASSERT_MSG(r.ok(), r.status().to_string().c_str());
      return r->id;
    };
    std::set<std::string> gated;
    for (int i = 0; i < 20; ++i) gated.insert(mk("deploy", 10));  // ahead in claim order
    const std::string work = mk("work", 0);
    HintDraft deny;
    deny.kind = "freeze";
    deny.selector.kind = "deploy";
    deny.effect.type = HintEffectType::kDeny;
    deny.creator = "ops";
    auto h = e.bb.create_hint(deny);
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE(e.flush().ok());
    // Each claim scans at most 8 entries; the gated ones are set aside, so the
    // third claim reaches `work` (without the cache every claim would fail).
    Result<ClaimReply> c = not_found("none", "no_work");
    int tries = 0;
    while (!c.ok() && tries < 4) {
      c = e.bb.claim_next("agent", {});
      ++tries;
    }
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    EXPECT_EQ(c->id, work);
    EXPECT_EQ(tries, 3);
    ASSERT_TRUE(e.flush().ok());
    // Nothing else is claimable while the hint lives.
    EXPECT_FALSE(e.bb.claim_next("agent", {}).ok());
    // Revoked: the gated intents come back, best first.
    ASSERT_TRUE(e.bb.revoke_hint(h->id, "ops").ok());
    auto again = e.bb.claim_next("agent", {});
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    EXPECT_EQ(gated.count(again->id), 1u);
    ASSERT_TRUE(e.flush().ok());

    // A defer hint: set aside until it passes.
    HintDraft defer = deny;
    defer.effect.type = HintEffectType::kDefer;
    defer.effect.until = e.clock.wall_ms() + 5'000;
    ASSERT_TRUE(e.bb.create_hint(defer).ok());
    ASSERT_TRUE(e.flush().ok());
    EXPECT_FALSE(e.bb.claim_next("agent", {}).ok());
    EXPECT_FALSE(e.bb.claim_next("agent", {}).ok());
    e.clock.advance_ms(5'000);
    auto after = e.bb.claim_next("agent", {});
    ASSERT_TRUE(after.ok()) << after.status().to_string();
    EXPECT_EQ(gated.count(after->id), 1u);
    ASSERT_TRUE(e.flush().ok());

    // A hint whose batch fails: what it gated is claimable after the rollback.
    HintDraft deny2 = deny;
    deny2.id = "freeze-2";
    ASSERT_TRUE(e.bb.create_hint(deny2).ok());
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(e.bb.claim_next("agent", {}).ok());
    e.bb.drain();
    e.bb.rollback();
    auto back = e.bb.claim_next("agent", {});
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(gated.count(back->id), 1u);
    ASSERT_TRUE(e.flush().ok());
  }
}

TEST(Intents, ClaimNextFollowsPriorityThenNewestAndFilters) {
  CoreEnv e;
  auto mk = [&](const char* kind, int prio, const char* lane) {
    IntentDraft d = e.draft(e.fact("seed", ++e.facts_made), kind);
    d.priority = prio;
    d.lane = lane;
    auto r = e.bb.create_intent(d);
    CAIRN_ASSERT(r.ok());
    CAIRN_ASSERT(e.flush().ok());
    return r->id;
  };
  const auto low = mk("work", 1, "default");
  const auto high_old = mk("work", 5, "default");
  const auto high_new = mk("work", 5, "default");
  const auto other_lane = mk("work", 9, "gpu");
  const auto other_kind = mk("crawl", 100, "default");

  ClaimFilter f;
  f.kinds = {"work"};
  f.lanes = {"default"};
  auto c1 = e.bb.claim_next("a1", f);
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ(c1->id, high_new);
  auto c2 = e.bb.claim_next("a1", f);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->id, high_old);
  auto c3 = e.bb.claim_next("a1", f);
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ(c3->id, low);
  auto none = e.bb.claim_next("a1", f);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().reason(), "no_work");
  auto any = e.bb.claim_next("a2", ClaimFilter{});
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->id, other_kind);
  auto gpu = e.bb.claim_next("a2", ClaimFilter{{}, {"gpu"}});
  ASSERT_TRUE(gpu.ok());
  EXPECT_EQ(gpu->id, other_lane);
  EXPECT_EQ(e.bb.held_by("a1"), 3u);
  EXPECT_EQ(e.bb.held_by("a2"), 2u);
}

TEST(Intents, FailBacksOffThenBecomesClaimableAndDiesAtMaxAttempts) {
  CoreEnv e;
  const std::string id = e.intent("work", 2);
  auto c = e.bb.claim(id, "a1");
  ASSERT_TRUE(c.ok());
  auto f = e.bb.fail(id, "a1", c->epoch, "flaky", true);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->state, IntentState::kOpen);
  EXPECT_GT(f->not_before, e.clock.wall_ms());
  ASSERT_TRUE(e.flush().ok());
  EXPECT_EQ(e.bb.next_deadline(), f->not_before);
  EXPECT_EQ(e.bb.claim(id, "a2").status().reason(), "backoff");
  e.clock.set_wall_ms(f->not_before);
  EXPECT_EQ(e.bb.tick().backoffs_ended, 1u);
  auto c2 = e.bb.claim(id, "a2");
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->epoch, 2u);
  EXPECT_EQ(e.bb.intent(id)->st.attempts, 2);
  auto f2 = e.bb.fail(id, "a2", c2->epoch, "flaky again", true);
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(f2->state, IntentState::kDead);
  EXPECT_EQ(e.bb.intent(id)->st.last_error, "flaky again");
}

TEST(Intents, FailureDetailIsTruncatedAtACharacterBoundary) {
  CoreEnv e;
  const std::string id = e.intent();
  auto c = e.bb.claim(id, "a1");
  ASSERT_TRUE(c.ok());
  std::string detail;
  while (detail.size() < 5000) detail += "é";  // 2 bytes each
  detail = "x" + detail;                       // misalign the boundary
  ASSERT_TRUE(e.bb.fail(id, "a1", c->epoch, detail, true).ok());
  const std::string& kept = e.bb.intent(id)->st.last_error;
  EXPECT_LE(kept.size(), ModelLimits{}.error_bytes_max);
  EXPECT_TRUE(is_valid_utf8(kept));
  EXPECT_EQ(kept.size(), ModelLimits{}.error_bytes_max - 1);
}

TEST(Intents, ExpiryKeepsTheEpochUntilTheNextClaim) {
  CoreEnv e;
  const std::string id = e.intent();
  ASSERT_TRUE(e.bb.claim(id, "a1").ok());
  ASSERT_TRUE(e.flush().ok());
  EXPECT_EQ(e.bb.next_deadline(), e.clock.wall_ms() + 10'000);
  e.clock.advance_ms(10'000);
  EXPECT_EQ(e.bb.tick().leases_expired, 1u);
  EXPECT_EQ(e.bb.intent(id)->st.state, IntentState::kOpen);
  EXPECT_EQ(e.bb.intent(id)->st.epoch, 1u);
  EXPECT_TRUE(e.bb.intent(id)->st.holder.empty());
  auto c = e.bb.claim(id, "a2");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->epoch, 2u);
}

// ---- hints ---------------------------------------------------------------------------

HintDraft hint_for(const std::string& kind, HintEffectType t) {
  HintDraft h;
  h.kind = "policy";
  h.selector.kind = kind;
  h.effect.type = t;
  h.creator = "ops";
  h.reason = "testing";
  return h;
}

TEST(Hints, DenyBlocksClaimsUntilRevoked) {
  CoreEnv e;
  const std::string id = e.intent("work");
  const std::string other = e.intent("crawl");
  auto h = e.bb.create_hint(hint_for("work", HintEffectType::kDeny));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(e.flush().ok());
  auto c = e.bb.claim(id, "a1");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().reason(), "denied_by_hint");
  EXPECT_EQ(c.status().details().find("hint")->as_string(), h->id);
  EXPECT_TRUE(e.bb.claim(other, "a1").ok());  // the selector does not match it
  auto next = e.bb.claim_next("a2", ClaimFilter{});
  EXPECT_EQ(next.status().reason(), "no_work");
  EXPECT_EQ(e.bb.revoke_hint(h->id, "mallory").code(), Code::kForbidden);
  ASSERT_TRUE(e.bb.revoke_hint(h->id, "ops").ok());
  EXPECT_TRUE(e.bb.claim(id, "a1").ok());
}

TEST(Hints, ExpireOnTheirOwnAndStopApplying) {
  CoreEnv e;
  const std::string id = e.intent("work");
  HintDraft d = hint_for("work", HintEffectType::kDeny);
  d.expires_at = e.clock.wall_ms() + 500;
  auto h = e.bb.create_hint(d);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(e.flush().ok());
  EXPECT_EQ(e.bb.next_deadline(), d.expires_at);
  EXPECT_EQ(e.bb.claim(id, "a1").status().reason(), "denied_by_hint");
  e.clock.advance_ms(500);
  // Expired by time even before the timer runs.
  EXPECT_TRUE(e.bb.claim(id, "a1").ok());
  EXPECT_EQ(e.bb.tick().hints_expired, 1u);
  EXPECT_FALSE(e.bb.hint_live(*e.bb.hint(h->id)));
}

TEST(Hints, DeferCapRequireAndPriority) {
  CoreEnv e;
  const std::string a = e.intent("work");
  const std::string b = e.intent("work");
  // cap 1: only one "work" intent claimed at a time.
  HintDraft cap = hint_for("work", HintEffectType::kCap);
  cap.effect.n = 1;
  auto capped = e.bb.create_hint(cap);
  ASSERT_TRUE(capped.ok());
  ASSERT_TRUE(e.bb.claim(a, "a1").ok());
  EXPECT_EQ(e.bb.claim(b, "a2").status().reason(), "capped_by_hint");
  ASSERT_TRUE(e.bb.revoke_hint(capped->id, "ops").ok());

  // require: no fact of kind "approval" yet.
  HintDraft req = hint_for("work", HintEffectType::kRequire);
  req.effect.fact_kind = "approval";
  auto required = e.bb.create_hint(req);
  ASSERT_TRUE(required.ok());
  EXPECT_EQ(e.bb.claim(b, "a2").status().reason(), "requires_fact");
  ASSERT_TRUE(e.flush().ok());
  e.fact("approval", 1);
  ASSERT_TRUE(e.bb.revoke_hint(required->id, "ops").ok());

  // defer until a wall time.
  HintDraft def = hint_for("work", HintEffectType::kDefer);
  def.effect.until = e.clock.wall_ms() + 1'000;
  auto deferred = e.bb.create_hint(def);
  ASSERT_TRUE(deferred.ok());
  EXPECT_EQ(e.bb.claim(b, "a2").status().reason(), "deferred_by_hint");
  e.clock.advance_ms(1'000);
  EXPECT_TRUE(e.bb.claim(b, "a2").ok());
  ASSERT_TRUE(e.flush().ok());

  // priority: lifts an older, lower-priority intent above a newer one.
  const std::string low = e.intent("crawl");
  const std::string newer = e.intent("work");
  HintDraft pri = hint_for("crawl", HintEffectType::kPriority);
  pri.effect.n = 10;
  ASSERT_TRUE(e.bb.create_hint(pri).ok());
  auto next = e.bb.claim_next("a3", ClaimFilter{});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->id, low);
  (void)newer;
}

TEST(Hints, BadHintsAreRefused) {
  CoreEnv e;
  HintDraft h = hint_for("work", HintEffectType::kCap);
  h.effect.n = -1;
  EXPECT_EQ(e.bb.create_hint(h).status().code(), Code::kInvalid);
  HintDraft r = hint_for("work", HintEffectType::kRequire);
  EXPECT_EQ(e.bb.create_hint(r).status().code(), Code::kInvalid);  // no fact_kind
  HintDraft d = hint_for("work", HintEffectType::kDeny);
  d.derived_from = {std::string(64, 'c')};
  EXPECT_EQ(e.bb.create_hint(d).status().reason(), "unknown_reference");
  EXPECT_EQ(e.bb.revoke_hint("nope", "ops").code(), Code::kNotFound);
  EXPECT_FALSE(e.bb.has_pending());
}

// ---- events and group commit ----------------------------------------------------------

TEST(Events, SequenceIsGapFreeAndStored) {
  CoreEnv e;
  const std::string id = e.intent();
  auto c = e.bb.claim(id, "a1");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(e.bb.heartbeat(id, "a1", c->epoch).ok());
  ASSERT_TRUE(e.bb.conclude(id, "a1", c->epoch, e.result()).ok());
  ASSERT_TRUE(e.flush().ok());
  auto evs = Blackboard::read_events(e.store, 0, 1000);
  ASSERT_TRUE(evs.ok());
  ASSERT_EQ(evs->size(), e.bb.last_seq());
  for (std::size_t i = 0; i < evs->size(); ++i) EXPECT_EQ((*evs)[i].seq, i + 1);
  std::vector<std::string> types;
  for (auto& ev : *evs) types.push_back(ev.type);
  EXPECT_EQ(types,
            (std::vector<std::string>{"fact.recorded", "intent.created", "intent.claimed",
                                      "intent.renewed", "fact.recorded", "intent.concluded"}));
  auto tail = Blackboard::read_events(e.store, 4, 10);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ(tail->front().seq, 5u);
}

TEST(GroupCommit, ManyCommandsOneBatchWithTheirEventsInOrder) {
  CoreEnv e;
  const std::string f = e.fact();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(e.bb.create_intent(e.draft(f)).ok());
  PendingCommit p = e.bb.drain();
  EXPECT_EQ(p.events.size(), 10u);
  for (std::size_t i = 1; i < p.events.size(); ++i) {
    EXPECT_EQ(p.events[i].seq, p.events[i - 1].seq + 1);
  }
  ASSERT_TRUE(e.store.commit(p.batch).ok());
  e.bb.accept();
  EXPECT_EQ(e.bb.count(IntentState::kOpen), 10u);
}

TEST(LaneCounts, FollowEveryTransitionRollbackAndReload) {
  CoreEnv e;
  const std::string f = e.fact();
  std::vector<std::string> ids;
  for (const char* lane : {"batch", "batch", "urgent"}) {
    IntentDraft d = e.draft(f);
    d.lane = lane;
    auto r = e.bb.create_intent(std::move(d));
    ASSERT_TRUE(r.ok());
    ids.push_back(r->id);
  }
  ASSERT_TRUE(e.flush().ok());
  using LC = Blackboard::LaneCounts;
  auto counts = [&](const std::string& lane) {
    auto it = e.bb.lane_counts().find(lane);
    return it == e.bb.lane_counts().end() ? LC{} : it->second;
  };
  const auto open = static_cast<std::size_t>(IntentState::kOpen);
  const auto claimed = static_cast<std::size_t>(IntentState::kClaimed);
  const auto cancelled = static_cast<std::size_t>(IntentState::kCancelled);
  EXPECT_EQ(counts("batch")[open], 2u);
  EXPECT_EQ(counts("urgent")[open], 1u);
  EXPECT_EQ(e.bb.lane_counts().size(), 2u);

  ASSERT_TRUE(e.bb.claim(ids[2], "a1", 0).ok());
  ASSERT_TRUE(e.flush().ok());
  EXPECT_EQ(counts("urgent")[open], 0u);
  EXPECT_EQ(counts("urgent")[claimed], 1u);

  // A rolled-back batch leaves the counts as they were.
  ASSERT_TRUE(e.bb.cancel(ids[0], "alice").ok());
  EXPECT_EQ(counts("batch")[cancelled], 1u);
  e.bb.drain();
  e.bb.rollback();
  EXPECT_EQ(counts("batch")[open], 2u);
  EXPECT_EQ(counts("batch")[cancelled], 0u);

  // A reload from the store counts the same.
  SeededRng rng(3);
  Blackboard again(e.clock, rng);
  ASSERT_TRUE(again.load(e.store).ok());
  EXPECT_EQ(again.lane_counts(), e.bb.lane_counts());
}

TEST(GroupCommit, FailedCommitRollsBackEverythingOfTheBatch) {
  CoreEnv e;
  const std::string id = e.intent();
  const std::string other = e.intent();
  const Digest durable = e.bb.state_hash();
  const std::uint64_t seq = e.bb.last_seq();

  store::FaultStore faulty(&e.store);
  auto c = e.bb.claim(id, "a1");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(e.bb.post_fact(body("obs", Json("new"))).ok());
  ASSERT_TRUE(e.bb.cancel(other, "alice").ok());
  HintDraft h = hint_for("work", HintEffectType::kDeny);
  ASSERT_TRUE(e.bb.create_hint(h).ok());
  PendingCommit p = e.bb.drain();
  faulty.fail_next_commit(store::CommitFault::kUnavailable);
  auto r = faulty.commit(p.batch);
  ASSERT_FALSE(r.ok());
  e.bb.rollback();
  EXPECT_EQ(e.bb.state_hash(), durable);
  EXPECT_EQ(e.bb.last_seq(), seq);
  EXPECT_EQ(e.bb.intent(id)->st.state, IntentState::kOpen);
  EXPECT_EQ(e.bb.held_by("a1"), 0u);
  EXPECT_TRUE(e.bb.hints().empty());
  // The next batch continues the sequence without a gap and commits.
  auto c2 = e.bb.claim(id, "a1");
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->epoch, 1u);
  ASSERT_TRUE(e.flush().ok());
  EXPECT_EQ(e.last_events.front().seq, seq + 1);
  Blackboard again(e.clock, e.rng);
  ASSERT_TRUE(again.load(e.store).ok());
  EXPECT_EQ(again.state_hash(), e.bb.state_hash());
}

TEST(GroupCommit, RollbackOfANewIntentAndItsClaim) {
  CoreEnv e;
  const std::string f = e.fact();
  const Digest durable = e.bb.state_hash();
  auto cr = e.bb.create_intent(e.draft(f));
  ASSERT_TRUE(cr.ok());
  ASSERT_TRUE(e.bb.claim(cr->id, "a1").ok());
  (void)e.bb.drain();
  e.bb.rollback();
  EXPECT_EQ(e.bb.intent(cr->id), nullptr);
  EXPECT_EQ(e.bb.state_hash(), durable);
  EXPECT_EQ(e.bb.count(IntentState::kClaimed), 0u);
}

TEST(Load, RestartResumesExactlyIncludingLeasesAndSequence) {
  CoreEnv e;
  const std::string a = e.intent();
  const std::string b = e.intent();
  auto c = e.bb.claim(a, "a1");
  ASSERT_TRUE(c.ok());
  HintDraft h = hint_for("crawl", HintEffectType::kDeny);
  h.expires_at = e.clock.wall_ms() + 60'000;
  ASSERT_TRUE(e.bb.create_hint(h).ok());
  auto cb = e.bb.claim(b, "a2");
  ASSERT_TRUE(cb.ok());
  ASSERT_TRUE(e.bb.fail(b, "a2", cb->epoch, "later", true).ok());
  ASSERT_TRUE(e.flush().ok());

  SeededRng rng2(99);
  Blackboard again(e.clock, rng2);
  ASSERT_TRUE(again.load(e.store).ok());
  EXPECT_EQ(again.state_hash(), e.bb.state_hash());
  EXPECT_EQ(again.last_seq(), e.bb.last_seq());
  EXPECT_EQ(again.intent(a)->st.lease_expires_at, c->lease_expires_at);
  EXPECT_EQ(again.held_by("a1"), 1u);
  EXPECT_EQ(again.next_deadline(), e.bb.next_deadline());
  EXPECT_EQ(again.fact_count(), e.bb.fact_count());
  // The restarted blackboard fences and continues like the original.
  EXPECT_EQ(again.heartbeat(a, "a1", 0).status().reason(), "stale_epoch");
  EXPECT_TRUE(again.heartbeat(a, "a1", c->epoch).ok());
  PendingCommit p = again.drain();
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].seq, e.bb.last_seq() + 1);
}

}  // namespace
}  // namespace cairn

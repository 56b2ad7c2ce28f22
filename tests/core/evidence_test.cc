// evidence_test.cc — the evidence chain: known-answer vectors computed outside
// cairn (Python's hashlib over canonical JSON written by hand here), record
// round trips, and tampering — every field of every link, deletions,
// reorderings, wholesale replacements, edited actions — reported at the first
// bad sequence number.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "core/evidence.h"
#include "model/event.h"
#include "model/json.h"
#include "model/json_parse.h"
#include "model/rng.h"
#include "model/sha256.h"
#include "support/test_data.h"

namespace cairn {
namespace {

using cairn::testing::J;

// Three actions, written with their members out of order; `canonical` is their
// RFC 8785 form written by hand. The expected hashes were computed with
//
//   python3 -c 'import hashlib; print(hashlib.sha256(TEXT.encode()).hexdigest())'
//
// over `canonical` and over the preimage
// {"action_hash":…,"action_type":…,"at":…,"prev_hash":…,"seq":…,"v":1}.
struct Vector {
  const char* action;
  const char* canonical;
  const char* action_type;
  std::int64_t at;
  const char* action_hash;
  const char* chain_hash;
};

const Vector kVectors[] = {
    {R"({"type":"fact.recorded","subject":"f1","data":{"n":1.5,"kind":"build"},"at":1700000000000})",
     R"({"at":1700000000000,"data":{"kind":"build","n":1.5},"subject":"f1","type":"fact.recorded"})",
     "fact.recorded", 1700000000000,
     "707ca4064bc39c9d9ed0bfba420390d7d3ed567149917272ad904c74f55e882b",
     "73a685d1c4091cee6beacf9277a24a30e33ba9e0ba81bfec25c429b608143612"},
    {R"({"b":[true,null,"\u00e9"],"a":-7.0})", "{\"a\":-7,\"b\":[true,null,\"\xc3\xa9\"]}",
     "intent.claimed", 1700000000005,
     "a0234478f0c1dfc3e30e356d89e9f97da8406365f8d9e417d0fda4f50cd0e736",
     "ec226026dfd47d7e343b82fde615dfa515116eaf7f3034869ed196375f8db895"},
    {"{ }", "{}", "hint.created", 1700000000005,
     "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
     "53d0a865dfc18d7f709f36476d39d2f739cb19a1d2af18225902f2f389b4fc9d"},
};

const char* kZeros = "0000000000000000000000000000000000000000000000000000000000000000";

TEST(Evidence, KnownAnswerVectors) {
  EvidenceHead head;
  EXPECT_EQ(to_hex(head.chain_hash), kZeros);
  EXPECT_EQ(to_hex(kEvidenceGenesisHash), kZeros);
  std::vector<EvidenceLink> chain;
  std::string prev = kZeros;
  std::uint64_t seq = 0;
  for (const Vector& v : kVectors) {
    ++seq;
    Json action = J(v.action);
    ASSERT_EQ(to_jcs(action), v.canonical);
    // The action hash is the hash of the hand-written canonical text.
    ASSERT_EQ(to_hex(sha256(v.canonical)), v.action_hash);
    EXPECT_EQ(to_hex(evidence_action_hash(action)), v.action_hash);

    // The preimage, written by hand.
    std::string preimage = std::string("{\"action_hash\":\"") + v.action_hash +
                           "\",\"action_type\":\"" + v.action_type +
                           "\",\"at\":" + std::to_string(v.at) + ",\"prev_hash\":\"" + prev +
                           "\",\"seq\":" + std::to_string(seq) + ",\"v\":1}";
    Digest prev_digest;
    Digest action_digest;
    ASSERT_TRUE(from_hex(prev, prev_digest));
    ASSERT_TRUE(from_hex(v.action_hash, action_digest));
    EXPECT_EQ(evidence_preimage(seq, prev_digest, action_digest, v.action_type, v.at), preimage);
    // …which is also what the JCS writer makes of the same object.
    Json pre = J(preimage);
    EXPECT_EQ(to_jcs(pre), preimage);

    Result<EvidenceLink> l = next_evidence_link(head, v.action_type, action, v.at);
    ASSERT_TRUE(l.ok()) << l.status().to_string();
    EXPECT_EQ(l->seq, seq);
    EXPECT_EQ(to_hex(l->prev_hash), prev);
    EXPECT_EQ(to_hex(l->action_hash), v.action_hash);
    EXPECT_EQ(l->action_type, v.action_type);
    EXPECT_EQ(l->at, v.at);
    EXPECT_EQ(to_hex(l->chain_hash), v.chain_hash);
    head = EvidenceHead::after(*l);
    prev = v.chain_hash;
    chain.push_back(*l);
  }
  EvidenceReport r = verify_chain(chain, 1);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.checked, 3u);
  EXPECT_EQ(r.head.seq, 3u);
  EXPECT_EQ(to_hex(r.head.chain_hash), kVectors[2].chain_hash);
}

// A chain of `n` links over varied actions and times.
std::vector<EvidenceLink> make_chain(std::size_t n, std::vector<Json>* actions = nullptr) {
  const char* types[] = {"fact.recorded", "intent.created", "intent.claimed", "intent.concluded",
                         "hint.created"};
  std::vector<EvidenceLink> chain;
  EvidenceHead head;
  for (std::size_t i = 0; i < n; ++i) {
    Json action = Json::object();
    action.set("i", Json(static_cast<std::uint64_t>(i)));
    action.set("payload", Json(std::string(i % 7, 'x')));
    Result<EvidenceLink> l = next_evidence_link(
        head, types[i % 5], action, 1'700'000'000'000 + static_cast<std::int64_t>(i / 2));
    EXPECT_TRUE(l.ok());
    head = EvidenceHead::after(*l);
    chain.push_back(*l);
    if (actions) actions->push_back(action);
  }
  return chain;
}

TEST(Evidence, ChainVerifiesFromEveryStart) {
  std::vector<EvidenceLink> chain = make_chain(12);
  for (std::uint64_t from = 1; from <= 12; ++from) {
    std::span<const EvidenceLink> tail(chain.begin() + static_cast<std::ptrdiff_t>(from - 1),
                                       chain.end());
    EvidenceReport r = verify_chain(tail, from);
    EXPECT_TRUE(r.ok()) << from << ": " << r.problem->message;
    EXPECT_EQ(r.checked, 13 - from);
    EXPECT_EQ(r.head, EvidenceHead::after(chain.back()));
  }
  // An empty range is a verified empty range.
  EvidenceReport empty = verify_chain({}, 1);
  EXPECT_TRUE(empty.ok());
  EXPECT_EQ(empty.checked, 0u);
  EXPECT_EQ(empty.head.seq, 0u);
  // from 0 means from the start.
  EXPECT_TRUE(verify_chain(chain, 0).ok());
  // A range that does not start at `from` is a gap at `from`.
  std::span<const EvidenceLink> tail(chain.begin() + 3, chain.end());
  EvidenceReport r = verify_chain(tail, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problem->seq, 3u);
  EXPECT_EQ(r.problem->fault, EvidenceFault::kGap);
}

// From a later start with the caller's anchor (link from-1's chain_hash), the
// first prev_hash is checked against it instead of trusted.
TEST(Evidence, AnAnchorChecksTheFirstLinksPrevHash) {
  std::vector<EvidenceLink> chain = make_chain(8);
  std::span<const EvidenceLink> tail(chain.begin() + 4, chain.end());  // seq 5..8
  EXPECT_TRUE(verify_chain(tail, 5, {}, chain[3].chain_hash).ok());
  EvidenceReport wrong = verify_chain(tail, 5, {}, chain[2].chain_hash);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.problem->seq, 5u);
  EXPECT_EQ(wrong.problem->fault, EvidenceFault::kBrokenLink);
  EXPECT_EQ(wrong.checked, 0u);
  // Without an anchor the same range is trusted from its first prev_hash.
  EXPECT_TRUE(verify_chain(tail, 5).ok());
  // A stored record decodes back into its link.
  auto back = decode_evidence_link(encode_evidence_link(chain[6]));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, chain[6]);
  EXPECT_FALSE(decode_evidence_link("{not json").ok());
}

// Flips one field of a link's stored record (as an edit of the database would).
enum class Field { kSeq, kPrevHash, kActionHash, kActionType, kAt, kChainHash };

Json tamper(Json record, Field f) {
  auto flip_hex = [](const Json& v) {
    std::string s = v.as_string();
    s[17] = s[17] == 'a' ? 'b' : 'a';
    return Json(s);
  };
  switch (f) {
    case Field::kSeq:
      record.set("seq", Json(record.find("seq")->as_number() + 100));
      break;
    case Field::kPrevHash:
      record.set("prev_hash", flip_hex(*record.find("prev_hash")));
      break;
    case Field::kActionHash:
      record.set("action_hash", flip_hex(*record.find("action_hash")));
      break;
    case Field::kActionType:
      record.set("action_type", Json(record.find("action_type")->as_string() + "x"));
      break;
    case Field::kAt:
      record.set("at", Json(record.find("at")->as_number() + 1));
      break;
    case Field::kChainHash:
      record.set("chain_hash", flip_hex(*record.find("chain_hash")));
      break;
  }
  return record;
}

TEST(Evidence, EditingAnyFieldOfAnyLinkIsFoundAtThatSeq) {
  const std::size_t n = 9;
  std::vector<EvidenceLink> chain = make_chain(n);
  struct Expect {
    Field field;
    EvidenceFault fault;
  };
  const Expect fields[] = {
      {Field::kSeq, EvidenceFault::kGap},
      {Field::kPrevHash, EvidenceFault::kHashMismatch},
      {Field::kActionHash, EvidenceFault::kHashMismatch},
      {Field::kActionType, EvidenceFault::kHashMismatch},
      {Field::kAt, EvidenceFault::kHashMismatch},
      {Field::kChainHash, EvidenceFault::kHashMismatch},
  };
  for (std::size_t k = 0; k < n; ++k) {
    for (const Expect& e : fields) {
      // Through the stored record: encode, edit, decode, verify.
      std::vector<EvidenceLink> stored;
      for (std::size_t i = 0; i < n; ++i) {
        Json record = evidence_link_to_json(chain[i]);
        if (i == k) record = tamper(record, e.field);
        Result<EvidenceLink> l = evidence_link_from_json(J(to_json(record)));
        ASSERT_TRUE(l.ok()) << l.status().to_string();
        stored.push_back(*l);
      }
      for (std::uint64_t from : {std::uint64_t{1}, std::uint64_t{k + 1}}) {
        std::span<const EvidenceLink> range(stored.begin() + static_cast<std::ptrdiff_t>(from - 1),
                                            stored.end());
        EvidenceReport r = verify_chain(range, from);
        ASSERT_FALSE(r.ok()) << "link " << k << " field " << static_cast<int>(e.field);
        EXPECT_EQ(r.problem->seq, k + 1) << "field " << static_cast<int>(e.field);
        EXPECT_EQ(r.problem->fault, e.fault) << "field " << static_cast<int>(e.field);
        EXPECT_EQ(r.checked, k + 1 - from);
        EXPECT_EQ(r.head.seq, k);
      }
    }
  }
}

TEST(Evidence, DeletionsAndReorderingsAreGapsAtTheFirstBadSeq) {
  const std::size_t n = 8;
  std::vector<EvidenceLink> chain = make_chain(n);
  for (std::size_t k = 0; k + 1 < n; ++k) {  // deleting the last link: see TruncationIsVisible...
    std::vector<EvidenceLink> c = chain;
    c.erase(c.begin() + static_cast<std::ptrdiff_t>(k));
    EvidenceReport r = verify_chain(c, 1);
    ASSERT_FALSE(r.ok()) << k;
    EXPECT_EQ(r.problem->seq, k + 1);
    EXPECT_EQ(r.problem->fault, EvidenceFault::kGap);
    EXPECT_EQ(r.problem->message,
              "expected seq " + std::to_string(k + 1) + ", found seq " + std::to_string(k + 2));
  }
  for (std::size_t k = 0; k + 1 < n; ++k) {
    std::vector<EvidenceLink> c = chain;
    std::swap(c[k], c[k + 1]);
    EvidenceReport r = verify_chain(c, 1);
    ASSERT_FALSE(r.ok()) << k;
    EXPECT_EQ(r.problem->seq, k + 1);
    EXPECT_EQ(r.problem->fault, EvidenceFault::kGap);
  }
  // A repeated link.
  std::vector<EvidenceLink> c = chain;
  c.insert(c.begin() + 4, c[3]);
  EvidenceReport r = verify_chain(c, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problem->seq, 5u);
  EXPECT_EQ(r.problem->fault, EvidenceFault::kGap);
}

TEST(Evidence, ReplacingALinkWholesaleBreaksTheNextLink) {
  const std::size_t n = 6;
  std::vector<EvidenceLink> chain = make_chain(n);
  for (std::size_t k = 0; k + 1 < n; ++k) {
    std::vector<EvidenceLink> c = chain;
    EvidenceHead before = k == 0 ? EvidenceHead{} : EvidenceHead::after(chain[k - 1]);
    // A consistent link for another action, rehashed by someone who knows the scheme.
    Result<EvidenceLink> forged = next_evidence_link(before, "intent.cancelled", Json("forged"), 1);
    ASSERT_TRUE(forged.ok());
    c[k] = *forged;
    EvidenceReport r = verify_chain(c, 1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.problem->seq, k + 2);
    EXPECT_EQ(r.problem->fault, EvidenceFault::kBrokenLink);
    EXPECT_EQ(r.checked, k + 1);
  }
  // A first link that does not start at genesis.
  std::vector<EvidenceLink> c = chain;
  c[0].prev_hash[0] ^= 1;
  c[0].chain_hash =
      evidence_chain_hash(1, c[0].prev_hash, c[0].action_hash, c[0].action_type, c[0].at);
  EvidenceReport r = verify_chain(c, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problem->seq, 1u);
  EXPECT_EQ(r.problem->fault, EvidenceFault::kBrokenLink);
  EXPECT_EQ(r.problem->message, "prev_hash of seq 1 is not the genesis hash");
}

TEST(Evidence, TruncationIsVisibleOnlyAsAShorterChain) {
  // Removing the newest links leaves a valid prefix: the caller compares
  // last_seq with the sequence it knows was reached.
  std::vector<EvidenceLink> chain = make_chain(5);
  chain.pop_back();
  EvidenceReport r = verify_chain(chain, 1);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.head.seq, 4u);
}

TEST(Evidence, EditedActionsAreFoundWhenActionsAreGiven) {
  std::vector<Json> actions;
  std::vector<EvidenceLink> chain = make_chain(7, &actions);
  EXPECT_TRUE(verify_chain(chain, 1, actions).ok());
  for (std::size_t k = 0; k < actions.size(); ++k) {
    std::vector<Json> edited = actions;
    edited[k].set("payload", Json("changed"));
    EvidenceReport r = verify_chain(chain, 1, edited);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.problem->seq, k + 1);
    EXPECT_EQ(r.problem->fault, EvidenceFault::kActionMismatch);
  }
  // Member order does not matter: the action is hashed canonically.
  std::vector<Json> reordered;
  for (const Json& a : actions) {
    Json b = Json::object();
    b.set("payload", *a.find("payload"));
    b.set("i", *a.find("i"));
    reordered.push_back(b);
  }
  EXPECT_TRUE(verify_chain(chain, 1, reordered).ok());
}

TEST(Evidence, RecordsRoundTripAndBadRecordsAreRefused) {
  std::vector<EvidenceLink> chain = make_chain(3);
  Json record = evidence_link_to_json(chain[1]);
  EXPECT_EQ(to_json(record), std::string("{\"seq\":2,\"prev_hash\":\"") +
                                 to_hex(chain[0].chain_hash) + "\",\"action_hash\":\"" +
                                 to_hex(chain[1].action_hash) +
                                 "\",\"action_type\":\"intent.created\",\"at\":1700000000000," +
                                 "\"chain_hash\":\"" + to_hex(chain[1].chain_hash) + "\"}");
  Result<EvidenceLink> back = evidence_link_from_json(record);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, chain[1]);

  struct Bad {
    const char* field;
    Json value;  // null: remove the member
  };
  std::string upper = to_hex(chain[1].chain_hash);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  std::vector<Bad> bad = {
      {"seq", Json()},
      {"seq", Json(0)},
      {"seq", Json(-1)},
      {"seq", Json(1.5)},
      {"prev_hash", Json("ab")},
      {"action_hash", Json(3)},
      {"chain_hash", Json(upper)},
      {"action_type", Json("has space")},
      {"action_type", Json("")},
      {"at", Json(-5)},
      {"at", Json("1")},
  };
  for (const Bad& b : bad) {
    Json r = record;
    if (b.value.is_null()) {
      r.erase(b.field);
    } else {
      r.set(b.field, b.value);
    }
    Result<EvidenceLink> l = evidence_link_from_json(r);
    ASSERT_FALSE(l.ok()) << b.field << " " << to_json(b.value);
    EXPECT_EQ(l.status().code(), Code::kInvalid);
    EXPECT_EQ(l.status().details().find("field")->as_string(), b.field) << l.status().to_string();
  }
  Json extra = record;
  extra.set("note", Json("x"));
  EXPECT_EQ(evidence_link_from_json(extra).status().reason(), "unknown_field");
  EXPECT_EQ(evidence_link_from_json(Json(3)).status().code(), Code::kInvalid);
}

TEST(Evidence, NextLinkRefusesBadInput) {
  EvidenceHead head;
  EXPECT_EQ(next_evidence_link(head, "bad type", Json(), 0).status().code(), Code::kInvalid);
  EXPECT_EQ(next_evidence_link(head, "", Json(), 0).status().code(), Code::kInvalid);
  EXPECT_EQ(next_evidence_link(head, "t", Json(), -1).status().code(), Code::kInvalid);
  EXPECT_EQ(next_evidence_link(head, "t", Json(), std::int64_t{1} << 53).status().code(),
            Code::kInvalid);
  EXPECT_TRUE(next_evidence_link(head, "t", Json(), (std::int64_t{1} << 53) - 1).ok());
  EvidenceHead last{9007199254740991ULL, {}};
  EXPECT_EQ(next_evidence_link(last, "t", Json(), 0).status().code(), Code::kInvalid);
}

TEST(Evidence, ReportJson) {
  std::vector<EvidenceLink> chain = make_chain(4);
  EXPECT_EQ(to_json(evidence_report_to_json(verify_chain(chain, 1))),
            "{\"ok\":true,\"from\":1,\"checked\":4,\"last_seq\":4,\"head\":\"" +
                to_hex(chain[3].chain_hash) + "\"}");
  chain[2].at += 1;
  EXPECT_EQ(to_json(evidence_report_to_json(verify_chain(chain, 1))),
            "{\"ok\":false,\"from\":1,\"checked\":2,\"last_seq\":2,\"head\":\"" +
                to_hex(chain[1].chain_hash) +
                "\",\"problem\":{\"seq\":3,\"fault\":\"hash_mismatch\",\"message\":\"chain_hash "
                "of seq 3 does not match its fields\"}}");
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

// The blackboard's direct writers (event_jcs, next_evidence_link_jcs,
// encode_evidence_link) give exactly what the Json-building forms give, so
// what the chain stores verifies with the general code and the API form.
TEST(Evidence, DirectWritersMatchTheJsonForms) {
  SeededRng rng(7);
  EvidenceHead head;
  const std::vector<Json> datas = {
      Json::object(),
      J(R"({"zeta":1,"alpha":[1,2.5,-3e-7],"Éclair":"ü\u0001\"","b":{"y":null,"x":true}})"),
      J(R"({"agent":"a-1","epoch":3,"lease_expires_at":1700000000123})"),
  };
  for (int i = 0; i < 200; ++i) {
    Event e;
    e.seq = head.seq + 1;
    e.type = i % 2 == 0 ? "intent.claimed" : "fact.recorded";
    e.subject = rng.hex(8) + (i % 3 == 0 ? "/ü" : "");
    e.data = datas[rng.uniform(datas.size())];
    e.at = 1'700'000'000'000 + static_cast<std::int64_t>(rng.uniform(1'000'000));
    ASSERT_EQ(event_jcs(e), to_jcs(event_to_json(e)));
    auto slow = next_evidence_link(head, e.type, event_to_json(e), e.at);
    auto fast = next_evidence_link_jcs(head, e.type, event_jcs(e), e.at);
    ASSERT_TRUE(slow.ok() && fast.ok());
    ASSERT_EQ(*slow, *fast);
    ASSERT_EQ(encode_evidence_link(*fast), to_json(evidence_link_to_json(*fast)));
    head = EvidenceHead::after(*fast);
  }
}

}  // namespace
}  // namespace cairn

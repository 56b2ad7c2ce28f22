// evidence.h — the append-only evidence chain of accepted mutations (pure).
//
// Every accepted mutation appends one link
//
//   {seq, prev_hash, action_hash, action_type, at, chain_hash}
//
//   seq          1, 2, 3, … without gaps
//   prev_hash    the previous link's chain_hash; for seq 1 the genesis hash,
//                64 zeros (32 zero bytes)
//   action_hash  SHA-256 of the RFC 8785 canonical JSON (to_jcs) of the action
//   action_type  what was done, a kind-like name (e.g. "intent.claimed")
//   at           wall ms when it was accepted
//   chain_hash   SHA-256 of the link's preimage (below)
//
// The preimage is the canonical JSON of an object with the five linked fields
// and the encoding version, hashes in lowercase hex:
//
//   {"action_hash":"<hex>","action_type":"<t>","at":<ms>,"prev_hash":"<hex>","seq":<n>,"v":1}
//
// (members sorted as RFC 8785 sorts them; numbers as integers). Editing any
// field of a stored link changes its recomputed chain_hash; deleting or
// reordering links breaks the seq sequence; replacing a link wholesale breaks
// the next link's prev_hash. `verify_chain` finds the first of these.
//
// Who may call: the engine, when it accepts a mutation (next_link), and the
// server, to answer GET /v1/evidence and `cairn verify --evidence`.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "model/json.h"
#include "model/sha256.h"
#include "model/status.h"

namespace cairn {

inline constexpr std::int64_t kEvidenceEncodingVersion = 1;

struct EvidenceLink {
  std::uint64_t seq = 0;
  Digest prev_hash{};
  Digest action_hash{};
  std::string action_type;
  std::int64_t at = 0;  // wall ms
  Digest chain_hash{};

  friend bool operator==(const EvidenceLink&, const EvidenceLink&) = default;
};

// Where the chain ends: the last link's seq and chain_hash (0 and the genesis
// hash for an empty chain).
struct EvidenceHead {
  std::uint64_t seq = 0;
  Digest chain_hash{};  // genesis: all zero

  static EvidenceHead after(const EvidenceLink& l) { return EvidenceHead{l.seq, l.chain_hash}; }
  friend bool operator==(const EvidenceHead&, const EvidenceHead&) = default;
};

// The genesis prev_hash: 32 zero bytes ("000…0" in hex).
inline constexpr Digest kEvidenceGenesisHash{};

// SHA-256 of to_jcs(action).
Digest evidence_action_hash(const Json& action);

// The canonical preimage of a link's chain_hash (see above).
std::string evidence_preimage(std::uint64_t seq, const Digest& prev_hash, const Digest& action_hash,
                              std::string_view action_type, std::int64_t at);
// SHA-256 of the preimage.
Digest evidence_chain_hash(std::uint64_t seq, const Digest& prev_hash, const Digest& action_hash,
                           std::string_view action_type, std::int64_t at);

// The link that follows `head` for `action`. Errors (`invalid`,
// "invalid_field"): action_type not a kind (model/names.h), `at` outside
// 0..2^53-1, or the chain at 2^53-1 links.
Result<EvidenceLink> next_evidence_link(const EvidenceHead& head, std::string_view action_type,
                                        const Json& action, std::int64_t at);
// The same for an action given as its canonical JSON (to_jcs(action)), for
// callers that can write it without building a Json (the blackboard: event_jcs).
Result<EvidenceLink> next_evidence_link_jcs(const EvidenceHead& head, std::string_view action_type,
                                            std::string_view action_jcs, std::int64_t at);

// {"seq","prev_hash","action_hash","action_type","at","chain_hash"} — the
// storage record and the API form. Decoding checks shapes only (types, hex,
// seq ≥ 1, kind charset), not the hashes: that is verify_chain's job, so a
// tampered but well-formed link decodes and is then reported by seq.
Json evidence_link_to_json(const EvidenceLink& l);
// to_json(evidence_link_to_json(l)), written directly: the storage record.
std::string encode_evidence_link(const EvidenceLink& l);
Result<EvidenceLink> evidence_link_from_json(const Json& v);
// A stored record (encode_evidence_link's bytes) back into a link: JSON
// parsing, then evidence_link_from_json.
Result<EvidenceLink> decode_evidence_link(std::string_view record);

enum class EvidenceFault : std::uint8_t {
  kGap,             // a link is missing, repeated or out of order at this seq
  kBrokenLink,      // prev_hash is not the previous link's chain_hash (or genesis)
  kHashMismatch,    // chain_hash does not match the link's own fields
  kActionMismatch,  // action_hash does not match the action given for this seq
};
// "gap", "broken_link", "hash_mismatch", "action_mismatch".
std::string_view evidence_fault_name(EvidenceFault f);

struct EvidenceProblem {
  std::uint64_t seq = 0;  // the first bad sequence number
  EvidenceFault fault = EvidenceFault::kGap;
  std::string message;
};

struct EvidenceReport {
  std::uint64_t from = 0;
  std::uint64_t checked = 0;  // links found good before the problem (or all)
  EvidenceHead head;          // the last good link (from-1 and the first prev_hash if none)
  std::optional<EvidenceProblem> problem;

  bool ok() const { return !problem.has_value(); }
};

// Recomputes the chain over `links`, which must be the stored links with
// seq ≥ from in seq order (from 0 is taken as 1). Checks, link by link and in
// this order: seq = previous seq + 1 (the first must be `from`), chain_hash,
// prev_hash (genesis when seq is 1; from a later start, `anchor` — the
// chain_hash of link from-1, when the caller has it — or else the first
// link's own prev_hash, trusted), and — when `actions` is not empty — that
// action_hash is the hash of actions[i]. REQUIRES: actions is empty or as long
// as links (asserted). Stops at the first problem.
EvidenceReport verify_chain(std::span<const EvidenceLink> links, std::uint64_t from,
                            std::span<const Json> actions = {},
                            std::optional<Digest> anchor = std::nullopt);

// {"ok", "from", "checked", "last_seq", "head", "problem"?: {"seq", "fault",
// "message"}} for replies and the CLI.
Json evidence_report_to_json(const EvidenceReport& r);

}  // namespace cairn

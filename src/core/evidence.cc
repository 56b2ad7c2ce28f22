// evidence.cc — evidence links: hashing, records, verification.
#include "core/evidence.h"

#include <string>
#include <utility>

#include "model/assert.h"
#include "model/json_fields.h"
#include "model/json_parse.h"
#include "model/limits.h"
#include "model/names.h"

namespace cairn {

namespace {

constexpr std::uint64_t kMaxSafe = 9007199254740991ULL;  // 2^53 - 1

Status read_digest(const Json& obj, std::string_view key, Digest& out) {
  std::string hex;
  CAIRN_RETURN_IF_ERROR(read_string(obj, key, hex));
  if (!is_hex_digest(hex) || !from_hex(hex, out)) {
    return field_error(key, "must be 64 lowercase hex characters");
  }
  return Status();
}

std::string seq_text(std::uint64_t seq) {
  return std::to_string(seq);
}

}  // namespace

Digest evidence_action_hash(const Json& action) {
  return sha256(to_jcs(action));
}

std::string evidence_preimage(std::uint64_t seq, const Digest& prev_hash, const Digest& action_hash,
                              std::string_view action_type, std::int64_t at) {
  // The members in RFC 8785 order, written directly (equal to to_jcs of the
  // object; evidence_test checks both against hand-written vectors).
  std::string out;
  out.reserve(240 + action_type.size());
  out += "{\"action_hash\":\"";
  append_hex(out, action_hash);
  out += "\",\"action_type\":";
  append_json_string(out, action_type);
  out += ",\"at\":";
  out += std::to_string(at);
  out += ",\"prev_hash\":\"";
  append_hex(out, prev_hash);
  out += "\",\"seq\":";
  out += std::to_string(seq);
  out += ",\"v\":";
  out += std::to_string(kEvidenceEncodingVersion);
  out += '}';
  return out;
}

Digest evidence_chain_hash(std::uint64_t seq, const Digest& prev_hash, const Digest& action_hash,
                           std::string_view action_type, std::int64_t at) {
  return sha256(evidence_preimage(seq, prev_hash, action_hash, action_type, at));
}

Result<EvidenceLink> next_evidence_link(const EvidenceHead& head, std::string_view action_type,
                                        const Json& action, std::int64_t at) {
  return next_evidence_link_jcs(head, action_type, to_jcs(action), at);
}

Result<EvidenceLink> next_evidence_link_jcs(const EvidenceHead& head, std::string_view action_type,
                                            std::string_view action_jcs, std::int64_t at) {
  CAIRN_RETURN_IF_ERROR(check_kind("action_type", action_type, ModelLimits{}));
  if (at < 0 || static_cast<std::uint64_t>(at) > kMaxSafe) {
    return field_error("at", "must be within 0..2^53-1");
  }
  if (head.seq >= kMaxSafe) return field_error("seq", "would pass 2^53-1");
  EvidenceLink l;
  l.seq = head.seq + 1;
  l.prev_hash = head.chain_hash;
  l.action_hash = sha256(action_jcs);
  l.action_type = std::string(action_type);
  l.at = at;
  l.chain_hash = evidence_chain_hash(l.seq, l.prev_hash, l.action_hash, l.action_type, l.at);
  return l;
}

std::string encode_evidence_link(const EvidenceLink& l) {
  CAIRN_ASSERT(l.seq >= 1 && l.seq <= kMaxSafe);
  std::string out;
  out.reserve(280 + l.action_type.size());
  out += "{\"seq\":";
  out += std::to_string(l.seq);
  out += ",\"prev_hash\":\"";
  append_hex(out, l.prev_hash);
  out += "\",\"action_hash\":\"";
  append_hex(out, l.action_hash);
  out += "\",\"action_type\":";
  append_json_string(out, l.action_type);
  out += ",\"at\":";
  out += std::to_string(l.at);
  out += ",\"chain_hash\":\"";
  append_hex(out, l.chain_hash);
  out += "\"}";
  return out;
}

Json evidence_link_to_json(const EvidenceLink& l) {
  CAIRN_ASSERT(l.seq >= 1 && l.seq <= kMaxSafe);
  JsonObject o;
  o.reserve(6);
  o.emplace_back("seq", Json(l.seq));
  o.emplace_back("prev_hash", Json(to_hex(l.prev_hash)));
  o.emplace_back("action_hash", Json(to_hex(l.action_hash)));
  o.emplace_back("action_type", Json(l.action_type));
  o.emplace_back("at", Json(l.at));
  o.emplace_back("chain_hash", Json(to_hex(l.chain_hash)));
  return Json(std::move(o));
}

Result<EvidenceLink> evidence_link_from_json(const Json& v) {
  CAIRN_RETURN_IF_ERROR(expect_object(v, "evidence link"));
  CAIRN_RETURN_IF_ERROR(reject_unknown_fields(
      v, {"seq", "prev_hash", "action_hash", "action_type", "at", "chain_hash"}));
  EvidenceLink l;
  CAIRN_RETURN_IF_ERROR(read_uint(v, "seq", l.seq));
  if (l.seq == 0) return field_error("seq", "must be at least 1");
  CAIRN_RETURN_IF_ERROR(read_digest(v, "prev_hash", l.prev_hash));
  CAIRN_RETURN_IF_ERROR(read_digest(v, "action_hash", l.action_hash));
  CAIRN_RETURN_IF_ERROR(read_string(v, "action_type", l.action_type));
  CAIRN_RETURN_IF_ERROR(check_kind("action_type", l.action_type, ModelLimits{}));
  CAIRN_RETURN_IF_ERROR(read_int(v, "at", l.at));
  if (l.at < 0) return field_error("at", "must not be negative");
  CAIRN_RETURN_IF_ERROR(read_digest(v, "chain_hash", l.chain_hash));
  return l;
}

std::string_view evidence_fault_name(EvidenceFault f) {
  switch (f) {
    case EvidenceFault::kGap:
      return "gap";
    case EvidenceFault::kBrokenLink:
      return "broken_link";
    case EvidenceFault::kHashMismatch:
      return "hash_mismatch";
    case EvidenceFault::kActionMismatch:
      return "action_mismatch";
  }
  CAIRN_ASSERT_MSG(false, "unknown evidence fault");
  return {};
}

Result<EvidenceLink> decode_evidence_link(std::string_view record) {
  CAIRN_ASSIGN_OR_RETURN(Json j, parse_json(record));
  return evidence_link_from_json(j);
}

EvidenceReport verify_chain(std::span<const EvidenceLink> links, std::uint64_t from,
                            std::span<const Json> actions, std::optional<Digest> anchor) {
  CAIRN_ASSERT_MSG(actions.empty() || actions.size() == links.size(),
                   "verify_chain: one action per link");
  if (from == 0) from = 1;
  EvidenceReport r;
  r.from = from;
  r.head.seq = from - 1;
  r.head.chain_hash = kEvidenceGenesisHash;
  if (from > 1 && !links.empty()) r.head.chain_hash = anchor ? *anchor : links[0].prev_hash;
  auto fail = [&](std::uint64_t seq, EvidenceFault f, std::string message) {
    r.problem = EvidenceProblem{seq, f, std::move(message)};
    return r;
  };
  for (std::size_t i = 0; i < links.size(); ++i) {
    const EvidenceLink& l = links[i];
    const std::uint64_t expected = r.head.seq + 1;
    if (l.seq != expected) {
      return fail(expected, EvidenceFault::kGap,
                  "expected seq " + seq_text(expected) + ", found seq " + seq_text(l.seq));
    }
    if (evidence_chain_hash(l.seq, l.prev_hash, l.action_hash, l.action_type, l.at) !=
        l.chain_hash) {
      return fail(l.seq, EvidenceFault::kHashMismatch,
                  "chain_hash of seq " + seq_text(l.seq) + " does not match its fields");
    }
    if (l.prev_hash != r.head.chain_hash) {
      return fail(l.seq, EvidenceFault::kBrokenLink,
                  l.seq == 1 ? std::string("prev_hash of seq 1 is not the genesis hash")
                             : "prev_hash of seq " + seq_text(l.seq) +
                                   " is not the chain_hash of seq " + seq_text(l.seq - 1));
    }
    if (!actions.empty() && evidence_action_hash(actions[i]) != l.action_hash) {
      return fail(l.seq, EvidenceFault::kActionMismatch,
                  "action_hash of seq " + seq_text(l.seq) + " does not match the action");
    }
    r.head = EvidenceHead::after(l);
    ++r.checked;
  }
  return r;
}

Json evidence_report_to_json(const EvidenceReport& r) {
  JsonObject o;
  o.emplace_back("ok", Json(r.ok()));
  o.emplace_back("from", Json(r.from));
  o.emplace_back("checked", Json(r.checked));
  o.emplace_back("last_seq", Json(r.head.seq));
  o.emplace_back("head", Json(to_hex(r.head.chain_hash)));
  if (r.problem) {
    o.emplace_back("problem", Json(JsonObject{
                                  {"seq", Json(r.problem->seq)},
                                  {"fault", Json(evidence_fault_name(r.problem->fault))},
                                  {"message", Json(r.problem->message)},
                              }));
  }
  return Json(std::move(o));
}

}  // namespace cairn

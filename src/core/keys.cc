// keys.cc — key builders.
#include "core/keys.h"

#include "model/assert.h"

namespace cairn::keys {

void append_u64(std::string& out, std::uint64_t v) {
  char buf[20];
  for (int i = 19; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(buf, 20);
}

namespace {
std::string join(std::string_view prefix, std::string_view rest) {
  std::string k;
  k.reserve(prefix.size() + rest.size());
  k += prefix;
  k += rest;
  return k;
}
}  // namespace

std::string fact(std::string_view id) {
  return join(kFact, id);
}
std::string intent_def(std::string_view id) {
  return join(kIntentDef, id);
}
std::string intent_status(std::string_view id) {
  return join(kIntentStatus, id);
}
std::string hint(std::string_view id) {
  return join(kHint, id);
}

std::string event(std::uint64_t seq) {
  std::string k(kEvent);
  append_u64(k, seq);
  return k;
}

std::string evidence(std::uint64_t seq) {
  std::string k(kEvidence);
  append_u64(k, seq);
  return k;
}

std::string idempotency_prefix(std::string_view node) {
  if (node.empty()) return std::string(kIdempotency);
  std::string k(kNodeIdempotency);
  k += node;
  k += '/';
  return k;
}

std::string idempotency_record(std::uint64_t n, std::string_view node) {
  std::string k = idempotency_prefix(node);
  append_u64(k, n);
  return k;
}

std::string fact_by_seq(std::uint64_t seq) {
  std::string k(kFactsBySeq);
  append_u64(k, seq);
  return k;
}

std::string fact_by_kind_prefix(std::string_view kind) {
  std::string k(kFactsByKind);
  k += kind;
  k += '|';
  return k;
}

std::string fact_by_kind(std::string_view kind, std::uint64_t seq) {
  std::string k = fact_by_kind_prefix(kind);
  append_u64(k, seq);
  return k;
}

std::string fact_concludes(std::string_view fact_id, std::string_view intent_id) {
  std::string k(kFactConcludes);
  k += fact_id;
  k += '|';
  k += intent_id;
  return k;
}

std::string intent_by_state_prefix(IntentState s) {
  std::string k(kIntentsByState);
  k += state_name(s);
  k += '|';
  return k;
}

std::string intent_by_state(IntentState s, std::string_view id) {
  std::string k = intent_by_state_prefix(s);
  k += id;
  return k;
}

std::string open_intent_lane_prefix(std::string_view lane) {
  std::string k(kOpenIntents);
  k += lane;
  k += '|';
  return k;
}

std::string open_intent(std::string_view lane, std::int64_t priority, std::uint64_t created_seq,
                        std::string_view id) {
  // Higher priority first: store (2^62 - priority); newer first: (2^64-1 - seq).
  constexpr std::int64_t kBias = std::int64_t{1} << 62;
  CAIRN_ASSERT(priority > -kBias && priority < kBias);
  std::string k = open_intent_lane_prefix(lane);
  append_u64(k, static_cast<std::uint64_t>(kBias - priority));
  k += '|';
  append_u64(k, ~created_seq);
  k += '|';
  k += id;
  return k;
}

std::string lease(std::int64_t expires_at_ms, std::string_view id) {
  CAIRN_ASSERT(expires_at_ms >= 0);
  std::string k(kLeases);
  append_u64(k, static_cast<std::uint64_t>(expires_at_ms));
  k += '|';
  k += id;
  return k;
}

std::string_view last_part(std::string_view key) {
  auto pos = key.rfind('|');
  return pos == std::string_view::npos ? key : key.substr(pos + 1);
}

}  // namespace cairn::keys

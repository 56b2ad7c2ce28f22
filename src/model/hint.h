// hint.h — Hints: constraints with provenance that gate intents (pure).
//
// A hint selects intents (by kind, lane, identity and/or creator; an empty
// field matches any value) and applies one effect while it is live:
//
//   deny          — matching intents may not be claimed
//   cap N         — at most N matching intents may be claimed at once
//   defer until T — matching intents may not be claimed before wall time T
//   priority ±N   — matching intents are ordered as if their priority were +N
//   require K     — matching intents may not be claimed until a fact of kind K exists
//
// A hint is live until it is revoked or its `expires_at` (wall ms, 0 = never)
// passes. `derived_from` cites the facts that justify it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/intent.h"
#include "model/json.h"
#include "model/limits.h"
#include "model/status.h"

namespace cairn {

struct HintSelector {
  std::string kind;  // intent kind
  std::string lane;
  std::string identity;
  std::string creator;  // intent creator

  bool matches(const IntentDef& d) const {
    return (kind.empty() || kind == d.kind) && (lane.empty() || lane == d.lane) &&
           (identity.empty() || identity == d.identity) &&
           (creator.empty() || creator == d.creator);
  }
};

enum class HintEffectType : std::uint8_t { kDeny, kCap, kDefer, kPriority, kRequire };
std::string_view effect_name(HintEffectType t);

struct HintEffect {
  HintEffectType type = HintEffectType::kDeny;
  std::int64_t n = 0;      // cap: max concurrent claims; priority: delta
  std::int64_t until = 0;  // defer: wall ms
  std::string fact_kind;   // require: fact kind
};

struct HintDraft {
  std::string id;  // optional client-chosen id; generated when empty
  std::string kind;
  HintSelector selector;
  HintEffect effect;
  std::int64_t expires_at = 0;  // wall ms; 0 = never
  std::string reason;
  std::vector<std::string> derived_from;
  std::string creator;
};

// Validates shape and bounds (not references).
Status validate_hint_draft(const HintDraft& d, const ModelLimits& limits);

// Parses {id?, kind, selector:{kind?,lane?,identity?,creator?},
// effect:{type, n?|delta?|until?|fact_kind?}, expires_at?, reason?,
// derived_from?, creator?}.
Result<HintDraft> hint_draft_from_json(const Json& obj, std::string_view default_creator);

struct Hint {
  HintDraft d;
  std::int64_t created_at = 0;
  std::uint64_t created_seq = 0;
  bool revoked = false;
  std::int64_t ended_at = 0;  // when revoked or observed expired (0 while live)

  bool live(std::int64_t now_ms) const {
    return !revoked && ended_at == 0 && (d.expires_at == 0 || now_ms < d.expires_at);
  }
};

Json hint_to_json(const Hint& h, std::int64_t now_ms);
std::string encode_hint_record(const Hint& h);
Result<Hint> decode_hint_record(std::string_view bytes);

}  // namespace cairn

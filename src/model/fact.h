// fact.h — Facts: immutable, content-addressed observations and results (pure).
//
// A fact's id is the lowercase hex SHA-256 of the RFC 8785 canonical JSON of
// exactly five fields:
//
//   {"content": <any JSON>, "content_type": "...", "creator": "...",
//    "derived_from": ["<fact id>", ...], "kind": "..."}
//
// with absent optional fields set to their defaults first (content_type
// "application/json", derived_from []). Anyone can verify a fact by
// re-hashing those fields. Server metadata (seq, recorded_at) is not hashed.
// `derived_from` keeps the order the creator gave it (it is hashed as given)
// and may not repeat an id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.h"
#include "model/limits.h"
#include "model/status.h"

namespace cairn {

inline constexpr std::string_view kDefaultContentType = "application/json";

struct FactBody {
  std::string kind;
  Json content;
  std::string content_type = std::string(kDefaultContentType);
  std::vector<std::string> derived_from;
  std::string creator;
};

// A validated body with its canonical bytes and id.
struct CanonicalFact {
  std::string canonical;  // JCS of the five hashed fields
  std::string id;         // hex SHA-256 of `canonical`
};

// Validates the body (kind, creator, content_type, derived_from ids, content
// size) and computes its canonical form and id. References are not resolved
// here (that needs the blackboard).
Result<CanonicalFact> canonicalize_fact(const FactBody& body, const ModelLimits& limits);

// The object that is hashed, as a Json value (for clients and tests).
Json fact_hashed_object(const FactBody& body);

// A recorded fact: body plus server metadata.
struct Fact {
  std::string id;
  FactBody body;
  std::uint64_t seq = 0;         // event sequence number that recorded it
  std::int64_t recorded_at = 0;  // wall ms
};

// Parses a client's fact object {kind, content, content_type?, derived_from?,
// creator?}; `creator` defaults to `default_creator`. Unknown members are
// refused. Shape only: call canonicalize_fact to validate.
Result<FactBody> fact_body_from_json(const Json& obj, std::string_view default_creator);

// The API form: the five hashed fields plus id, seq, recorded_at.
Json fact_to_json(const Fact& f);

// Storage record: {"fact": <canonical>, "id", "seq", "recorded_at"}.
std::string encode_fact_record(std::string_view id, std::uint64_t seq, std::int64_t recorded_at,
                               std::string_view canonical);
Result<Fact> decode_fact_record(std::string_view bytes);

}  // namespace cairn

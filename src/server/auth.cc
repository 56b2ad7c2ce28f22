// auth.cc — bearer tokens (see auth.h).
#include "server/auth.h"

#include "server/errors.h"

namespace cairn::server {

Auth::Auth(const std::vector<TokenConfig>& tokens) {
  for (const TokenConfig& t : tokens) {
    Entry e;
    if (!from_hex(t.sha256_hex, e.digest)) continue;  // validate_config refuses these
    e.name = t.name;
    e.scope = t.scope;
    tokens_.push_back(std::move(e));
  }
}

Result<Principal> Auth::authenticate(std::string_view authorization) const {
  if (tokens_.empty()) return Principal{false, std::string(), Scope::kAdmin};
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      authorization.substr(0, kBearer.size()) != kBearer) {
    return unauthenticated("a bearer token is required (Authorization: Bearer <token>)");
  }
  const Digest d = sha256(authorization.substr(kBearer.size()));
  const Entry* match = nullptr;
  for (const Entry& e : tokens_) {
    unsigned diff = 0;
    for (std::size_t i = 0; i < d.size(); ++i) diff |= static_cast<unsigned>(d[i] ^ e.digest[i]);
    // Branch-free select keeps the loop's timing independent of the match.
    const bool eq = diff == 0;
    match = eq ? &e : match;
  }
  if (match == nullptr) return unauthenticated("unknown bearer token");
  return Principal{true, match->name, match->scope};
}

Status Auth::require(const Principal& p, Scope needed) {
  if (p.scope >= needed) return Status();
  return forbidden("this route needs the '" + std::string(scope_name(needed)) +
                       "' scope; the token has '" + std::string(scope_name(p.scope)) + "'",
                   "insufficient_scope");
}

}  // namespace cairn::server

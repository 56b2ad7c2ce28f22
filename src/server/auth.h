// auth.h — bearer-token authentication (shell).
//
// Tokens live in the config as SHA-256 hex digests with a name and a scope.
// A presented token is hashed and compared with every configured digest in
// constant time (no early exit on the first differing byte, and every entry
// is compared), so timing reveals neither a token nor which entry matched.
// With no tokens configured, auth is off and every caller is anonymous with
// the admin scope (cairnd then only listens on loopback).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/sha256.h"
#include "model/status.h"
#include "server/config.h"

namespace cairn::server {

struct Principal {
  bool authenticated = false;  // false when auth is off
  std::string name;            // the token's name
  Scope scope = Scope::kAdmin;
};

class Auth {
 public:
  explicit Auth(const std::vector<TokenConfig>& tokens);
  bool enabled() const { return !tokens_.empty(); }
  // `authorization` is the raw header. unauthenticated (401) when auth is on
  // and the header is missing, malformed or unknown.
  Result<Principal> authenticate(std::string_view authorization) const;
  // forbidden (403) when `p` lacks `needed`.
  static Status require(const Principal& p, Scope needed);

 private:
  struct Entry {
    Digest digest;
    std::string name;
    Scope scope;
  };
  std::vector<Entry> tokens_;
};

}  // namespace cairn::server

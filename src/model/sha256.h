// sha256.h — SHA-256 digests (pure).
//
// Native builds compute with OpenSSL's EVP interface (SHA-NI where the CPU has
// it); the wasm32 build uses the portable implementation in sha256.cc.
// Both sit behind this one interface; the portable one is always compiled so
// native tests can cross-check the two.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cairn {

using Digest = std::array<std::uint8_t, 32>;

// One-shot digest of `data`.
Digest sha256(std::string_view data);

// Incremental hashing (e.g. length-prefixed parts, evidence chains).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  Digest finish();  // The hasher is reset afterwards and may be reused.

 private:
  struct State;
  alignas(8) std::uint8_t state_[128];  // backend state, see sha256*.cc
};

// The portable implementation, exposed for cross-checking in tests.
Digest sha256_portable(std::string_view data);

// Lowercase hex of a digest (64 chars) and the reverse (nullopt-like: false on
// malformed input).
std::string to_hex(const Digest& d);
void append_hex(std::string& out, const Digest& d);
bool from_hex(std::string_view hex, Digest& out);

// True when `s` is 64 lowercase hex characters (the form of every fact id).
bool is_hex_digest(std::string_view s);

}  // namespace cairn

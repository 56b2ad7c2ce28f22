// sha256_portable.h — the portable FIPS 180-4 SHA-256 core (pure, internal).
//
// Used by sha256_portable() (sha256.cc) and by the wasm32 backend of sha256()
// and Sha256 (sha256_builtin.cc). Not part of the public model API: include
// model/sha256.h instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/sha256.h"

namespace cairn::sha256_detail {

// Incremental state: 108 bytes, so it fits Sha256's 128-byte state buffer.
struct PortableState {
  std::uint32_t h[8];          // chaining value
  std::uint64_t length_bytes;  // total bytes absorbed
  std::uint8_t block[64];      // pending partial block
  std::uint32_t block_bytes;   // bytes used in `block` (< 64)
};

void portable_init(PortableState& s);
void portable_update(PortableState& s, std::string_view data);
// Writes the digest; the state must be re-initialised before reuse.
void portable_final(PortableState& s, Digest& out);

}  // namespace cairn::sha256_detail

// sha256.cc — code shared by both SHA-256 backends: hex helpers and the
// portable FIPS 180-4 implementation (pure).
//
// The portable core is always compiled: it is the wasm32 backend
// (sha256_builtin.cc) and the reference native tests cross-check OpenSSL
// against.
#include "model/sha256.h"

#include <algorithm>
#include <cstring>

#include "model/assert.h"
#include "model/sha256_portable.h"

namespace cairn {
namespace sha256_detail {
namespace {

constexpr std::uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr std::uint32_t kInitialHash[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

inline std::uint32_t rotr(std::uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}

inline std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

inline void store_be32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

// FIPS 180-4 §6.2.2: one 64-byte block into the chaining value.
void compress(std::uint32_t h[8], const std::uint8_t* block) {
  std::uint32_t w[64];
  for (int t = 0; t < 16; ++t) w[t] = load_be32(block + 4 * t);
  for (int t = 16; t < 64; ++t) {
    const std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    const std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int t = 0; t < 64; ++t) {
    const std::uint32_t big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const std::uint32_t ch = (e & f) ^ (~e & g);
    const std::uint32_t t1 = k + big_s1 + ch + kRoundConstants[t] + w[t];
    const std::uint32_t big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const std::uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    const std::uint32_t t2 = big_s0 + maj;
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += k;
}

}  // namespace

void portable_init(PortableState& s) {
  std::memcpy(s.h, kInitialHash, sizeof s.h);
  s.length_bytes = 0;
  s.block_bytes = 0;
}

void portable_update(PortableState& s, std::string_view data) {
  CAIRN_ASSERT(s.block_bytes < 64);
  const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
  std::size_t n = data.size();
  s.length_bytes += n;
  if (s.block_bytes > 0) {
    const std::size_t take = std::min<std::size_t>(n, 64 - s.block_bytes);
    std::memcpy(s.block + s.block_bytes, p, take);
    s.block_bytes += static_cast<std::uint32_t>(take);
    p += take;
    n -= take;
    if (s.block_bytes < 64) return;
    compress(s.h, s.block);
    s.block_bytes = 0;
  }
  for (; n >= 64; n -= 64, p += 64) compress(s.h, p);
  if (n > 0) std::memcpy(s.block, p, n);
  s.block_bytes = static_cast<std::uint32_t>(n);
}

void portable_final(PortableState& s, Digest& out) {
  CAIRN_ASSERT(s.block_bytes < 64);
  const std::uint64_t length_bits = s.length_bytes * 8;
  // Padding: 0x80, zeros to 56 mod 64, then the 64-bit big-endian bit length.
  s.block[s.block_bytes++] = 0x80;
  if (s.block_bytes > 56) {
    std::memset(s.block + s.block_bytes, 0, 64 - s.block_bytes);
    compress(s.h, s.block);
    s.block_bytes = 0;
  }
  std::memset(s.block + s.block_bytes, 0, 56 - s.block_bytes);
  store_be32(s.block + 56, static_cast<std::uint32_t>(length_bits >> 32));
  store_be32(s.block + 60, static_cast<std::uint32_t>(length_bits));
  compress(s.h, s.block);
  s.block_bytes = 0;
  for (int i = 0; i < 8; ++i) store_be32(out.data() + 4 * i, s.h[i]);
}

}  // namespace sha256_detail

Digest sha256_portable(std::string_view data) {
  sha256_detail::PortableState s;
  sha256_detail::portable_init(s);
  sha256_detail::portable_update(s, data);
  Digest d;
  sha256_detail::portable_final(s, d);
  return d;
}

namespace {

constexpr char kHex[] = "0123456789abcdef";

// 0..15 for a lowercase hex digit, -1 otherwise.
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

void append_hex(std::string& out, const Digest& d) {
  const std::size_t at = out.size();
  out.resize(at + 2 * d.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    out[at + 2 * i] = kHex[d[i] >> 4];
    out[at + 2 * i + 1] = kHex[d[i] & 0xF];
  }
}

std::string to_hex(const Digest& d) {
  std::string out;
  append_hex(out, d);
  return out;
}

bool from_hex(std::string_view hex, Digest& out) {
  if (hex.size() != 2 * out.size()) return false;
  Digest d;
  for (std::size_t i = 0; i < d.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    d[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  out = d;
  return true;
}

bool is_hex_digest(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (hex_value(c) < 0) return false;
  }
  return true;
}

}  // namespace cairn

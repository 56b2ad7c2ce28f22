// sha256_openssl.cc — native backend of sha256() and Sha256 on OpenSSL 3's
// EVP interface (uses SHA-NI / AVX2 code paths where the CPU has them).
//
// Not built for wasm32 (see sha256_builtin.cc). OpenSSL does no I/O here;
// the only shared state is the fetched EVP_MD, created once and immutable.
#include <openssl/evp.h>

#include <new>

#include "model/assert.h"
#include "model/sha256.h"

namespace cairn {
namespace {

// Explicitly fetched once: EVP_sha256() would make OpenSSL 3 look the
// implementation up again on every init. Never freed (lives for the process).
const EVP_MD* sha256_md() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  CAIRN_ASSERT_MSG(md != nullptr, "OpenSSL has no SHA256 implementation");
  return md;
}

}  // namespace

Digest sha256(std::string_view data) {
  Digest d;
  unsigned int len = 0;
  const int ok = EVP_Digest(data.data(), data.size(), d.data(), &len, sha256_md(), nullptr);
  CAIRN_ASSERT_MSG(ok == 1 && len == d.size(), "EVP_Digest(SHA256) failed");
  return d;
}

struct Sha256::State {
  EVP_MD_CTX* ctx;
};

namespace {

void init_ctx(EVP_MD_CTX* ctx) {
  const int ok = EVP_DigestInit_ex(ctx, sha256_md(), nullptr);
  CAIRN_ASSERT_MSG(ok == 1, "EVP_DigestInit_ex(SHA256) failed");
}

}  // namespace

Sha256::Sha256() {
  static_assert(sizeof(State) <= sizeof(state_) && alignof(State) <= 8);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  CAIRN_ASSERT_MSG(ctx != nullptr, "EVP_MD_CTX_new failed");
  init_ctx(ctx);
  new (state_) State{ctx};
}

Sha256::~Sha256() {
  State& s = *std::launder(reinterpret_cast<State*>(state_));
  EVP_MD_CTX_free(s.ctx);
  s.~State();
}

void Sha256::update(std::string_view data) {
  const int ok = EVP_DigestUpdate(std::launder(reinterpret_cast<State*>(state_))->ctx, data.data(),
                                  data.size());
  CAIRN_ASSERT_MSG(ok == 1, "EVP_DigestUpdate failed");
}

Digest Sha256::finish() {
  EVP_MD_CTX* ctx = std::launder(reinterpret_cast<State*>(state_))->ctx;
  Digest d;
  unsigned int len = 0;
  const int ok = EVP_DigestFinal_ex(ctx, d.data(), &len);
  CAIRN_ASSERT_MSG(ok == 1 && len == d.size(), "EVP_DigestFinal_ex failed");
  init_ctx(ctx);
  return d;
}

}  // namespace cairn

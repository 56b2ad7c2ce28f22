// sha256_builtin.cc — wasm32 backend of sha256() and Sha256 on the portable
// FIPS 180-4 implementation (sha256.cc). The native build uses
// sha256_openssl.cc instead; both give identical digests.
#include <new>

#include "model/assert.h"
#include "model/sha256.h"
#include "model/sha256_portable.h"

namespace cairn {

Digest sha256(std::string_view data) {
  return sha256_portable(data);
}

struct Sha256::State {
  sha256_detail::PortableState portable;
};

Sha256::Sha256() {
  static_assert(sizeof(State) <= sizeof(state_), "portable SHA-256 state must fit Sha256::state_");
  static_assert(alignof(State) <= 8, "Sha256::state_ is 8-byte aligned");
  State* s = new (state_) State;
  sha256_detail::portable_init(s->portable);
}

Sha256::~Sha256() {
  std::launder(reinterpret_cast<State*>(state_))->~State();
}

void Sha256::update(std::string_view data) {
  sha256_detail::portable_update(std::launder(reinterpret_cast<State*>(state_))->portable, data);
}

Digest Sha256::finish() {
  State& s = *std::launder(reinterpret_cast<State*>(state_));
  Digest d;
  sha256_detail::portable_final(s.portable, d);
  sha256_detail::portable_init(s.portable);
  return d;
}

}  // namespace cairn

// sha256_test.cc — SHA-256: NIST FIPS 180-4 example vectors through every
// entry point, incremental vs one-shot, the hex helpers, and (natively) the
// OpenSSL backend cross-checked against the portable implementation.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "model/sha256.h"

namespace cairn {
namespace {

struct Vector {
  std::string message;
  const char* digest_hex;
};

std::vector<Vector> nist_vectors() {
  return {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",  // 448 bits
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmn"
       "opq"
       "rsmnopqrstnopqrstu",  // 896 bits
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
      {std::string(1'000'000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
}

TEST(Sha256, NistVectorsOneShot) {
  for (const Vector& v : nist_vectors()) {
    EXPECT_EQ(to_hex(sha256(v.message)), v.digest_hex) << v.message.size();
    EXPECT_EQ(to_hex(sha256_portable(v.message)), v.digest_hex) << v.message.size();
  }
}

TEST(Sha256, NistVectorsIncremental) {
  Sha256 h;  // reused across messages: finish() resets it
  for (const Vector& v : nist_vectors()) {
    for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{63}, std::size_t{64},
                              std::size_t{65}, std::size_t{1000}}) {
      if (chunk == 1 && v.message.size() > 10'000) continue;
      for (std::size_t at = 0; at < v.message.size(); at += chunk) {
        h.update(std::string_view(v.message).substr(at, chunk));
      }
      EXPECT_EQ(to_hex(h.finish()), v.digest_hex) << v.message.size() << " by " << chunk;
    }
    // One million 'a' the way FIPS 180-4 describes it, and empty updates.
    h.update("");
    h.update(v.message);
    h.update("");
    EXPECT_EQ(to_hex(h.finish()), v.digest_hex);
  }
}

TEST(Sha256, PaddingBoundaries) {
  // Lengths around the 55/56/64-byte padding edges, incremental == one-shot.
  for (std::size_t n = 0; n <= 200; ++n) {
    const std::string m(n, static_cast<char>('a' + n % 26));
    const Digest one = sha256(m);
    EXPECT_EQ(one, sha256_portable(m)) << n;
    Sha256 h;
    h.update(m.substr(0, n / 3));
    h.update(m.substr(n / 3));
    EXPECT_EQ(h.finish(), one) << n;
  }
}

TEST(Sha256, BinaryInput) {
  const std::string zeros(3, '\0');
  EXPECT_EQ(to_hex(sha256(zeros)),
            "709e80c88487a2411e1ee4dfb9f22a861492d20c4765150c0c794abd70f8147c");
  EXPECT_EQ(sha256(zeros), sha256_portable(zeros));
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(to_hex(sha256(all)),
            "40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880");
  EXPECT_EQ(sha256(all), sha256_portable(all));
}

TEST(Sha256, FinishResetsTheHasher) {
  Sha256 h;
  h.update("garbage");
  (void)h.finish();
  h.update("abc");
  EXPECT_EQ(to_hex(h.finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(h.finish()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Hex) {
  const Digest d = sha256("abc");
  const std::string hex = to_hex(d);
  EXPECT_EQ(hex.size(), 64u);
  EXPECT_TRUE(is_hex_digest(hex));
  std::string out = "id:";
  append_hex(out, d);
  EXPECT_EQ(out, "id:" + hex);

  Digest back{};
  EXPECT_TRUE(from_hex(hex, back));
  EXPECT_EQ(back, d);

  Digest untouched{};
  std::string upper = hex;
  upper[0] = 'B';
  EXPECT_FALSE(from_hex(upper, untouched));          // lowercase only, like to_hex
  EXPECT_FALSE(from_hex(hex.substr(1), untouched));  // too short
  EXPECT_FALSE(from_hex(hex + "0", untouched));      // too long
  EXPECT_FALSE(from_hex("", untouched));
  std::string bad = hex;
  bad[63] = 'g';
  EXPECT_FALSE(from_hex(bad, untouched));
  EXPECT_EQ(untouched, Digest{});  // left alone on failure

  EXPECT_FALSE(is_hex_digest(upper));
  EXPECT_FALSE(is_hex_digest(bad));
  EXPECT_FALSE(is_hex_digest(hex.substr(1)));
  EXPECT_FALSE(is_hex_digest(hex + "a"));
  EXPECT_FALSE(is_hex_digest(""));
  EXPECT_TRUE(is_hex_digest(std::string(64, '0')));
  EXPECT_TRUE(is_hex_digest(std::string(64, 'f')));
}

#ifndef __wasi__
// The native sha256()/Sha256 run OpenSSL; on wasm32 they are the portable
// code itself, so this cross-check only means something natively.
TEST(Sha256, OpenSslMatchesPortable) {
  std::mt19937_64 rng(0xC0FFEE);
  for (int i = 0; i < 2000; ++i) {
    const std::size_t n = rng() % 4097;
    std::string m(n, '\0');
    for (char& c : m) c = static_cast<char>(rng());
    const Digest portable = sha256_portable(m);
    ASSERT_EQ(sha256(m), portable) << "length " << n;
    Sha256 h;
    std::size_t at = 0;
    while (at < n) {
      const std::size_t step = 1 + rng() % 200;
      h.update(std::string_view(m).substr(at, step));
      at += step;
    }
    ASSERT_EQ(h.finish(), portable) << "length " << n;
  }
}
#endif

}  // namespace
}  // namespace cairn

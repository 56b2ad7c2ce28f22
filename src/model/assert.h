// assert.h — always-on invariant checks for every layer of cairn.
//
// CAIRN_ASSERT guards invariants that only a bug can break (a state transition
// out of its table, an encode/decode that does not round-trip). It stays on in
// release builds. Bad input from a caller is never asserted: it is an error
// value (see status.h).
#pragma once

namespace cairn {

// Reports the failed check and aborts the process. Never returns.
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* msg);

}  // namespace cairn

#define CAIRN_ASSERT(cond)                                      \
  do {                                                          \
    if (!(cond)) [[unlikely]]                                   \
      ::cairn::assert_fail(#cond, __FILE__, __LINE__, nullptr); \
  } while (false)

#define CAIRN_ASSERT_MSG(cond, msg)                           \
  do {                                                        \
    if (!(cond)) [[unlikely]]                                 \
      ::cairn::assert_fail(#cond, __FILE__, __LINE__, (msg)); \
  } while (false)

#define CAIRN_UNREACHABLE() ::cairn::assert_fail("unreachable", __FILE__, __LINE__, nullptr)

// assert.cc — the one place in the pure layers allowed to write to stderr:
// the last words of a process whose invariant broke. The purity test
// (tests/purity) allow-lists exactly this file for <cstdio>.
#include "model/assert.h"

#include <cstdio>
#include <cstdlib>

namespace cairn {

void assert_fail(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "cairn: assertion failed: %s at %s:%d%s%s\n", expr, file, line,
               msg != nullptr ? ": " : "", msg != nullptr ? msg : "");
  std::fflush(stderr);
  std::abort();
}

}  // namespace cairn

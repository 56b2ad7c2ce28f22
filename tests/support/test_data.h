// test_data.h — small helpers the pure modules' tests share: read a data
// file, parse JSON text that a test writes inline. Tests only; header-only so
// each test binary (native, ASan, wasm32) takes just what it uses.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "model/json.h"
#include "model/json_parse.h"

namespace cairn::testing {

// Appends the bytes of `path` to `out`; false when it cannot be read.
inline bool read_file(const std::string& path, std::string* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char buf[8192];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  const bool ok = std::ferror(f) == 0;
  std::fclose(f);
  return ok;
}

// JSON a test writes inline; a parse error fails the test (and gives null).
inline Json J(std::string_view text) {
  Result<Json> r = parse_json(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().to_string();
  return r.ok() ? r.value() : Json();
}

}  // namespace cairn::testing

// UTF-8 for text that comes from outside: truncate_utf8 and utf8_prefix.
#include "model/names.h"

#include <gtest/gtest.h>

#include "model/json.h"

namespace cairn {
namespace {

TEST(Utf8, TruncateNeverSplitsASequence) {
  EXPECT_EQ(truncate_utf8("h\xC3\xA9llo", 2), "h");  // é is two bytes
  EXPECT_EQ(truncate_utf8("h\xC3\xA9llo", 3), "h\xC3\xA9");
  EXPECT_EQ(truncate_utf8("abc", 10), "abc");
}

TEST(Utf8, PrefixReplacesInvalidBytesAndKeepsTheBound) {
  EXPECT_EQ(utf8_prefix("oops\n\xFF\n", 100), "oops\n\xEF\xBF\xBD\n");
  EXPECT_EQ(utf8_prefix("\x80", 100), "\xEF\xBF\xBD") << "a lone continuation byte";
  EXPECT_EQ(utf8_prefix("\xC3", 100), "\xEF\xBF\xBD") << "a sequence cut short";
  EXPECT_EQ(utf8_prefix("a\xC3\xA9", 2), "a") << "the bound never splits a sequence";
  EXPECT_EQ(utf8_prefix("a\xFF", 3), "a") << "a replacement that does not fit is left out";
  const std::string valid = "caf\xC3\xA9";
  EXPECT_EQ(utf8_prefix(valid, 100), valid);
  for (std::string_view raw : {"\xFF\xFE", "x\xE2\x82", "\xF4\x90\x80\x80", "ok"}) {
    const std::string out = utf8_prefix(raw, 7);
    EXPECT_TRUE(is_valid_utf8(out)) << raw;
    EXPECT_LE(out.size(), 7u);
  }
}

}  // namespace
}  // namespace cairn

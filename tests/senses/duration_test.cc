// Durations as cairn.yaml spells them.
#include "senses/duration.h"

#include <gtest/gtest.h>

namespace cairn::senses {
namespace {

TEST(Duration, UnitsScale) {
  EXPECT_EQ(parse_duration_ms("250ms").value(), 250);
  EXPECT_EQ(parse_duration_ms("5s").value(), 5'000);
  EXPECT_EQ(parse_duration_ms("10m").value(), 600'000);
  EXPECT_EQ(parse_duration_ms("1h").value(), 3'600'000);
  EXPECT_EQ(parse_duration_ms("2d").value(), 172'800'000);
  EXPECT_EQ(parse_duration_ms("366d").value(), kDurationMsMax);
}

TEST(Duration, RefusesWhatIsNotADuration) {
  for (const char* bad : {"", "5", "0s", "-5s", "5 s", "1.5s", "s", "5sec", "5S", "5s ", " 5s",
                          "367d", "9999999999999d", "5ms5", "0x10s"}) {
    auto r = parse_duration_ms(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().reason(), "invalid_duration") << bad;
  }
}

}  // namespace
}  // namespace cairn::senses

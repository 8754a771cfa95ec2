// Byte sizes, bit rates, byte rates and durations as flags and device descriptions give them.
#include "core/quantity.h"

#include <gtest/gtest.h>

namespace ll {
namespace {

TEST(Quantity, ByteSizesArePowersOf1024) {
  const std::pair<const char*, uint64_t> good[] = {
      {"4096", 4096},          {"450M", 450ull << 20}, {"4G", 4ull << 30},     {"1.5GiB", 3ull << 29},
      {"2k", 2048},            {"1T", 1ull << 40},     {"512MB", 512ull << 20}, {"7B", 7}};
  for (const auto& [text, bytes] : good) {
    auto r = parse_byte_size(text);
    ASSERT_TRUE(r.ok()) << text << ": " << r.error();
    EXPECT_EQ(r.value(), bytes) << text;
  }
  for (const char* bad : {"", "G", "4X", "-1G", "1..2M", "99999999999T"}) EXPECT_FALSE(parse_byte_size(bad).ok()) << bad;
  EXPECT_NE(parse_byte_size("4X").error().find("unknown unit"), std::string::npos);
}

TEST(Quantity, BitRatesNameBitsPerSecond) {
  EXPECT_EQ(parse_bit_rate("20mbit").value(), 20'000'000u);
  EXPECT_EQ(parse_bit_rate("1.5Gbit").value(), 1'500'000'000u);
  for (const char* bad : {"20", "20mbps", "20M", "0kbit", "200gbit"}) EXPECT_FALSE(parse_bit_rate(bad).ok()) << bad;
}

TEST(Quantity, ByteRatesAreDecimal) {
  EXPECT_DOUBLE_EQ(parse_byte_rate("125M").value(), 125e6);
  EXPECT_DOUBLE_EQ(parse_byte_rate("117M").value(), 117e6);
  EXPECT_DOUBLE_EQ(parse_byte_rate("1G").value(), 1e9);
  EXPECT_DOUBLE_EQ(parse_byte_rate("2KB/s").value(), 2e3);
  EXPECT_DOUBLE_EQ(parse_byte_rate("1e9").value(), 1e9);
  for (const char* bad : {"", "0", "-5M", "5X", "M", "inf"}) {
    auto r = parse_byte_rate(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().find("bytes per second"), std::string::npos) << r.error();
  }
}

TEST(Quantity, DurationsInSecondsMillisecondsOrMicroseconds) {
  EXPECT_DOUBLE_EQ(parse_duration("0.5ms").value(), 0.5e-3);
  EXPECT_DOUBLE_EQ(parse_duration("2us").value(), 2e-6);
  EXPECT_DOUBLE_EQ(parse_duration("3s").value(), 3);
  EXPECT_DOUBLE_EQ(parse_duration("0.25").value(), 0.25);
  EXPECT_DOUBLE_EQ(parse_duration("0").value(), 0);
  for (const char* bad : {"", "ms", "-1ms", "5min", "nan"}) EXPECT_FALSE(parse_duration(bad).ok()) << bad;
}

}  // namespace
}  // namespace ll

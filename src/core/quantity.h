#pragma once
// The one parser for quantities given on the command line and in device descriptions:
// byte sizes ("450M"), bit rates of links ("20mbit"), byte rates ("125M"), durations ("0.5ms"),
// and a device's energy figures: watts ("4W"), joules ("40nJ") and percent ("15%").
#include <cstdint>
#include <string>

#include "core/status.h"

namespace ll {

// "512M", "2G", "1.5GiB", "4096" (bytes) -> bytes; K, M, G and T are powers of 1024, as memory is sized.
Result<uint64_t> parse_byte_size(const std::string& text);
// "20mbit", "1.5gbit", "512kbit" (decimal, as tc writes rates) -> bits per second, 1kbit to 100gbit.
Result<uint64_t> parse_bit_rate(const std::string& text);
// "125M", "1G", "1e9", "125MB/s" -> bytes per second above 0; K, M and G are decimal, as network
// rates are quoted.
Result<double> parse_byte_rate(const std::string& text);
// "0.5ms", "2us", "0.001s", "0.001" -> seconds, not negative.
Result<double> parse_duration(const std::string& text);
// "0.5": a finite number, not negative; errors begin with `what`.
Result<double> parse_non_negative(const std::string& text, const std::string& what);
// "4W", "4", "500mW" -> watts; "40nJ", "0.04uJ", "4e-8" -> joules (per byte); "15%", "15" -> percent.
// Each number is finite and not negative; core/energy_figures.h checks their ranges.
Result<double> parse_watts(const std::string& text);
Result<double> parse_joules(const std::string& text);
Result<double> parse_percent(const std::string& text);

}  // namespace ll

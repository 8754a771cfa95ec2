#pragma once
// What a device and a link can do, as plain data: per-unit compute times measured with the
// real kernels, usable memory, and link round-trip time and bandwidth. Profiles are saved
// as JSON, cached, and fed to the planner.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/energy_figures.h"
#include "core/status.h"
#include "graph/graph.h"

namespace ll::profile {

struct DeviceProfile {
  std::string name;
  int threads = 1;
  uint64_t usable_memory_bytes = 0;
  std::string simd;                              // SIMD target the kernels ran on
  bool weights_mapped = true;                    // timed on the file's mapping (false: a copy, --no-mmap)
  std::string model;                             // the model the timings belong to
  int64_t decode_context = 0;                    // positions in the KV cache while decoding was timed
  int64_t prompt_chunk = 0;                      // tokens per timed prompt chunk
  std::vector<double> decode_seconds;            // per unit: one token at decode_context
  std::vector<double> prompt_seconds_per_token;  // per unit: one token of a prompt chunk
  std::optional<EnergyFigures> energy;           // described by its owner; none: unknown
  std::optional<double> battery_percent;         // none: on mains power, or unknown
};

// One direction of a link; a planner uses the reverse direction when only that was measured.
struct LinkProfile {
  std::string from;
  std::string to;
  double rtt_seconds = 0;
  double bandwidth_bytes_per_s = 0;
};

struct ClusterProfile {
  std::vector<DeviceProfile> devices;  // in ring order
  std::vector<LinkProfile> links;
};

nlohmann::json to_json(const DeviceProfile& p);
nlohmann::json to_json(const LinkProfile& l);
nlohmann::json to_json(const ClusterProfile& c);
Result<DeviceProfile> device_profile_from_json(const nlohmann::json& j);
Result<LinkProfile> link_profile_from_json(const nlohmann::json& j);
// Accepts {"devices": [...], "links": [...]} or a single device profile.
Result<ClusterProfile> cluster_profile_from_json(const nlohmann::json& j);

Result<nlohmann::json> read_json_file(const std::string& path);
Status write_json_file(const std::string& path, const nlohmann::json& j);

// A roofline device for tests and what-ifs: each unit takes the longer of its FLOPs at
// `flops_per_s` and its bytes (weights, plus the KV cache it reads) at `bytes_per_s`.
DeviceProfile synthetic_profile(const graph::Graph& g, double flops_per_s, double bytes_per_s, uint64_t memory_bytes,
                                const std::string& name = "synthetic");

}  // namespace ll::profile

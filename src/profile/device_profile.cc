#include "profile/device_profile.h"

#include <cmath>
#include <fstream>

#include "core/regular_file.h"

namespace ll::profile {
namespace {

using nlohmann::json;


// Reads `key` of object `j` into `out`, or says which field is missing or mistyped.
template <typename T>
Status get_field(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Errorf("missing field '{}'", key);
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    return Status::Errorf("field '{}' has the wrong type", key);
  }
  return Status::Ok();
}

Status check_times(const std::vector<double>& v, const char* key) {
  for (double t : v) {
    if (!std::isfinite(t) || t < 0) return Status::Errorf("'{}' holds a negative or non-finite time", key);
  }
  return Status::Ok();
}

}  // namespace

json to_json(const DeviceProfile& p) {
  json j = {{"name", p.name},
          {"threads", p.threads},
          {"usable_memory_bytes", p.usable_memory_bytes},
          {"simd", p.simd},
          {"weights_mapped", p.weights_mapped},
          {"model", p.model},
          {"decode_context", p.decode_context},
          {"prompt_chunk", p.prompt_chunk},
          {"decode_seconds", p.decode_seconds},
          {"prompt_seconds_per_token", p.prompt_seconds_per_token}};
  if (p.energy) {
    j["energy"] = {{"compute_watts", p.energy->compute_watts},
                   {"idle_watts", p.energy->idle_watts},
                   {"radio_joules_per_byte", p.energy->radio_joules_per_byte}};
  }
  if (p.battery_percent) j["battery_percent"] = *p.battery_percent;
  return j;
}

json to_json(const LinkProfile& l) {
  return {{"from", l.from},
          {"to", l.to},
          {"rtt_seconds", l.rtt_seconds},
          {"bandwidth_bytes_per_s", l.bandwidth_bytes_per_s}};
}

json to_json(const ClusterProfile& c) {
  json devices = json::array(), links = json::array();
  for (const auto& d : c.devices) devices.push_back(to_json(d));
  for (const auto& l : c.links) links.push_back(to_json(l));
  return {{"devices", devices}, {"links", links}};
}

Result<DeviceProfile> device_profile_from_json(const json& j) {
  if (!j.is_object()) return Status::Error("a device profile must be a JSON object");
  DeviceProfile p;
  for (Status field : {get_field(j, "name", p.name), get_field(j, "threads", p.threads),
                       get_field(j, "usable_memory_bytes", p.usable_memory_bytes), get_field(j, "simd", p.simd),
                       get_field(j, "model", p.model), get_field(j, "decode_context", p.decode_context),
                       get_field(j, "prompt_chunk", p.prompt_chunk), get_field(j, "decode_seconds", p.decode_seconds),
                       get_field(j, "prompt_seconds_per_token", p.prompt_seconds_per_token)}) {
    if (!field.ok()) return Status::Errorf("device profile '{}': {}", p.name, field.message());
  }
  if (p.name.empty()) return Status::Error("a device profile has an empty name");
  if (p.threads < 1) return Status::Errorf("device profile '{}': threads must be at least 1", p.name);
  if (p.decode_seconds.size() != p.prompt_seconds_per_token.size()) {
    return Status::Errorf("device profile '{}': {} decode times but {} prompt times", p.name, p.decode_seconds.size(),
                          p.prompt_seconds_per_token.size());
  }
  for (Status c : {check_times(p.decode_seconds, "decode_seconds"),
                   check_times(p.prompt_seconds_per_token, "prompt_seconds_per_token")}) {
    if (!c.ok()) return Status::Errorf("device profile '{}': {}", p.name, c.message());
  }
  // Profiles written before the field timed mapped weights.
  if (j.contains("weights_mapped")) {
    if (Status field = get_field(j, "weights_mapped", p.weights_mapped); !field.ok()) {
      return Status::Errorf("device profile '{}': {}", p.name, field.message());
    }
  }
  if (j.contains("energy")) {
    EnergyFigures e;
    const json& ej = j["energy"];
    if (!ej.is_object()) return Status::Errorf("device profile '{}': 'energy' must be an object", p.name);
    for (Status field : {get_field(ej, "compute_watts", e.compute_watts), get_field(ej, "idle_watts", e.idle_watts),
                         get_field(ej, "radio_joules_per_byte", e.radio_joules_per_byte)}) {
      if (!field.ok()) return Status::Errorf("device profile '{}': energy: {}", p.name, field.message());
    }
    LL_RETURN_IF_ERROR(check_energy_figures(e, p.name));
    p.energy = e;
  }
  if (j.contains("battery_percent")) {
    double percent = 0;
    if (Status field = get_field(j, "battery_percent", percent); !field.ok()) {
      return Status::Errorf("device profile '{}': {}", p.name, field.message());
    }
    LL_RETURN_IF_ERROR(check_battery_percent(percent, p.name));
    p.battery_percent = percent;
  }
  return p;
}

Result<LinkProfile> link_profile_from_json(const json& j) {
  if (!j.is_object()) return Status::Error("a link profile must be a JSON object");
  LinkProfile l;
  for (Status field :
       {get_field(j, "from", l.from), get_field(j, "to", l.to), get_field(j, "rtt_seconds", l.rtt_seconds),
        get_field(j, "bandwidth_bytes_per_s", l.bandwidth_bytes_per_s)}) {
    if (!field.ok()) return Status::Errorf("link profile: {}", field.message());
  }
  if (!std::isfinite(l.rtt_seconds) || l.rtt_seconds < 0 || !std::isfinite(l.bandwidth_bytes_per_s) ||
      l.bandwidth_bytes_per_s <= 0) {
    return Status::Errorf("link {} -> {}: the round-trip time must be >= 0 and the bandwidth > 0", l.from, l.to);
  }
  return l;
}

Result<ClusterProfile> cluster_profile_from_json(const json& j) {
  ClusterProfile c;
  if (j.is_object() && j.contains("decode_seconds")) {
    LL_ASSIGN_OR_RETURN(DeviceProfile d, device_profile_from_json(j));
    c.devices.push_back(std::move(d));
    return c;
  }
  if (!j.is_object() || !j.contains("devices") || !j["devices"].is_array()) {
    return Status::Error("a cluster profile is an object with a 'devices' array (and a 'links' array)");
  }
  for (const auto& d : j["devices"]) {
    LL_ASSIGN_OR_RETURN(DeviceProfile p, device_profile_from_json(d));
    for (const auto& other : c.devices) {
      if (other.name == p.name) return Status::Errorf("two devices are named '{}'", p.name);
    }
    c.devices.push_back(std::move(p));
  }
  if (j.contains("links")) {
    if (!j["links"].is_array()) return Status::Error("'links' must be an array");
    for (const auto& l : j["links"]) {
      LL_ASSIGN_OR_RETURN(LinkProfile p, link_profile_from_json(l));
      c.links.push_back(std::move(p));
    }
  }
  return c;
}

Result<json> read_json_file(const std::string& path) {
  LL_ASSIGN_OR_RETURN(const std::string text, read_regular_file(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Errorf("{} is not valid JSON", path);
  return j;
}

Status write_json_file(const std::string& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) return Status::Errorf("cannot write {}", path);
  return Status::Ok();
}

DeviceProfile synthetic_profile(const graph::Graph& g, double flops_per_s, double bytes_per_s, uint64_t memory_bytes,
                                const std::string& name) {
  DeviceProfile p;
  p.name = name;
  p.usable_memory_bytes = memory_bytes;
  p.simd = "synthetic";
  p.decode_context = 128;
  p.prompt_chunk = 32;
  const double chunk = static_cast<double>(p.prompt_chunk);
  for (const auto& u : g.units) {
    // A unit without FLOPs is a table lookup (the embedding): one row per token, next to nothing.
    const bool lookup = u.flops_fixed_per_token == 0 && u.flops_per_token_per_ctx == 0;
    const double bytes = lookup ? 0.0 : u.weight_bytes + static_cast<double>(u.kv_bytes_per_token) * p.decode_context;
    p.decode_seconds.push_back(std::max(u.decode_flops(p.decode_context) / flops_per_s, bytes / bytes_per_s));
    const double chunk_bytes = lookup ? 0.0 : static_cast<double>(u.weight_bytes);
    p.prompt_seconds_per_token.push_back(
        std::max(u.prompt_flops(p.prompt_chunk, 0) / flops_per_s, chunk_bytes / bytes_per_s) / chunk);
  }
  return p;
}

}  // namespace ll::profile


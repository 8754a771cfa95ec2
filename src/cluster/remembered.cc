#include "cluster/remembered.h"

#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/private_file.h"
#include "core/regular_file.h"
#include "profile/device_profile.h"

namespace ll::cluster {
namespace {

using nlohmann::json;

std::string in_dir(const std::string& dir, const std::string& file) { return dir + "/" + file; }

std::string to_hex(const std::string& bytes) {
  std::string hex(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  hex.pop_back();
  return hex;
}

Result<std::string> from_hex(const std::string& hex, size_t bytes) {
  std::string out(bytes, '\0');
  size_t n = 0;
  if (hex.size() != bytes * 2 ||
      sodium_hex2bin(reinterpret_cast<uint8_t*>(out.data()), out.size(), hex.data(), hex.size(), nullptr, &n, nullptr) != 0 ||
      n != bytes) {
    return Status::Errorf("not {} bytes of hex", bytes);
  }
  return out;
}

bool exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::symlink_status(path, ec));
}

}  // namespace

Result<std::string> config_dir() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/lingualinked";
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] != '/') {
    return Status::Error("neither XDG_CONFIG_HOME nor HOME is set to an absolute path: nowhere to keep keys");
  }
  return std::string(home) + "/.config/lingualinked";
}

Result<net::KeyPair> load_or_create_keypair(const std::string& dir, const std::string& file) {
  const std::string path = in_dir(dir, file);
  if (exists(path)) return net::load_keypair(path);
  LL_RETURN_IF_ERROR(make_private_dir(dir));
  const net::KeyPair keys = net::generate_keypair();
  LL_RETURN_IF_ERROR(net::save_keypair(path, keys));
  return keys;
}

Result<std::vector<PairedDevice>> load_paired_devices(const std::string& dir) {
  const std::string path = in_dir(dir, kDevicesFile);
  std::vector<PairedDevice> devices;
  if (!exists(path)) return devices;
  LL_ASSIGN_OR_RETURN(const std::string text, read_regular_file(path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("devices") || !j["devices"].is_array()) {
    return Status::Errorf("{}: not a list of paired devices ({{\"devices\": [...]}})", path);
  }
  for (const json& d : j["devices"]) {
    PairedDevice p;
    try {
      p.name = d.at("name").get<std::string>();
      p.public_key = d.at("public_key").get<std::string>();
      auto signing = from_hex(d.at("signing_key").get<std::string>(), crypto_sign_PUBLICKEYBYTES);
      if (!signing.ok()) return Status::Errorf("{}: device {}: signing_key: {}", path, p.name, signing.error());
      p.signing_key = std::move(signing).value();
      p.endpoint = d.value("endpoint", "");
      p.threads = d.value("threads", 0u);
      p.memory_limit = d.value("memory_limit", uint64_t{0});
      p.tokens_per_second = d.value("tokens_per_second", 0.0);
      p.paired_at = d.value("paired_at", int64_t{0});
      p.last_seen_ms = d.value("last_seen_ms", int64_t{0});
    } catch (const json::exception& e) {
      return Status::Errorf("{}: a device entry is malformed: {}", path, e.what());
    }
    if (!net::is_valid_z85_key(p.public_key)) return Status::Errorf("{}: device {}: public_key is not a Z85 key", path, p.name);
    devices.push_back(std::move(p));
  }
  return devices;
}

Status save_paired_devices(const std::string& dir, const std::vector<PairedDevice>& devices) {
  LL_RETURN_IF_ERROR(make_private_dir(dir));
  json list = json::array();
  for (const PairedDevice& d : devices) {
    list.push_back({{"name", d.name},
                    {"public_key", d.public_key},
                    {"signing_key", to_hex(d.signing_key)},
                    {"endpoint", d.endpoint},
                    {"threads", d.threads},
                    {"memory_limit", d.memory_limit},
                    {"tokens_per_second", d.tokens_per_second},
                    {"paired_at", d.paired_at},
                    {"last_seen_ms", d.last_seen_ms}});
  }
  return write_private_file(in_dir(dir, kDevicesFile), json{{"devices", list}}.dump(2) + "\n");
}

Result<std::string> remember_device(const std::string& dir, PairedDevice device) {
  LL_ASSIGN_OR_RETURN(std::vector<PairedDevice> devices, load_paired_devices(dir));
  std::erase_if(devices, [&](const PairedDevice& d) { return d.public_key == device.public_key; });
  const std::string base = device.name;
  for (int n = 2; std::any_of(devices.begin(), devices.end(), [&](const PairedDevice& d) { return d.name == device.name; }); ++n) {
    device.name = fmt::format("{}-{}", base, n);
  }
  devices.push_back(device);
  LL_RETURN_IF_ERROR(save_paired_devices(dir, devices));
  return device.name;
}

Status forget_device(const std::string& dir, const std::string& name) {
  LL_ASSIGN_OR_RETURN(std::vector<PairedDevice> devices, load_paired_devices(dir));
  const size_t removed = std::erase_if(devices, [&](const PairedDevice& d) { return d.name == name; });
  if (removed == 0) {
    std::string names;
    for (const PairedDevice& d : devices) names += (names.empty() ? "" : ", ") + d.name;
    return Status::Errorf("no paired device is called {} (paired: {})", name, names.empty() ? "none" : names);
  }
  return save_paired_devices(dir, devices);
}

Status remember_speeds(const std::string& dir, const std::vector<std::string>& keys, const std::string& profiles_path) {
  // Written by the profiler with the default mode: made owner-only like everything here.
  ::chmod(profiles_path.c_str(), 0600);
  LL_ASSIGN_OR_RETURN(const std::string text, read_regular_file(profiles_path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Errorf("{}: not JSON", profiles_path);
  LL_ASSIGN_OR_RETURN(const profile::ClusterProfile profiles, profile::cluster_profile_from_json(j));
  LL_ASSIGN_OR_RETURN(std::vector<PairedDevice> devices, load_paired_devices(dir));
  for (size_t i = 0; i < profiles.devices.size() && i < keys.size(); ++i) {
    double seconds = 0;
    for (double s : profiles.devices[i].decode_seconds) seconds += s;
    for (PairedDevice& d : devices) {
      if (d.public_key == keys[i] && seconds > 0) d.tokens_per_second = 1 / seconds;
    }
  }
  return save_paired_devices(dir, devices);
}

Result<std::set<std::string>> load_trusted_heads(const std::string& dir) {
  const std::string path = in_dir(dir, kTrustedHeadsFile);
  if (!exists(path)) return std::set<std::string>{};
  return net::load_allowed_keys(path);
}

Status add_trusted_head(const std::string& dir, const std::string& public_key, const std::string& name) {
  LL_RETURN_IF_ERROR(make_private_dir(dir));
  const std::string path = in_dir(dir, kTrustedHeadsFile);
  std::string text;
  if (exists(path)) {
    LL_ASSIGN_OR_RETURN(text, read_regular_file(path));
    LL_ASSIGN_OR_RETURN(const auto keys, net::load_allowed_keys(path));
    if (keys.count(public_key) != 0) return Status::Ok();
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  // The name is only a comment: keep it on one line.
  std::string label = name;
  std::replace_if(label.begin(), label.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  text += fmt::format("{} # {}\n", public_key, label);
  return write_private_file(path, text);
}

}  // namespace ll::cluster

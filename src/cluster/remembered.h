#pragma once
// What a device remembers between runs, in config_dir() (mode 0700, every file 0600):
//   head.key        the head's key pair
//   devices.json    the workers paired with this head: name, public and beacon-signing keys,
//                   last known endpoint, threads, memory and last measured speed
//   worker.key      this device's key pair as a worker
//   trusted_heads   the heads this worker obeys, one public key per line ("KEY # name")
// A key file that others may read is refused (net::load_keypair), as ssh does.
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "net/keys.h"

namespace ll::cluster {

// $XDG_CONFIG_HOME/lingualinked, or ~/.config/lingualinked when XDG_CONFIG_HOME is unset or relative.
Result<std::string> config_dir();

struct PairedDevice {
  std::string name;
  std::string public_key;   // Z85, the worker's CURVE key
  std::string signing_key;  // 32 bytes, Ed25519, verifies its beacons
  std::string endpoint;     // tcp://IP:PORT where it was last heard
  uint32_t threads = 0;
  uint64_t memory_limit = 0;
  double tokens_per_second = 0;  // last measured decoding speed of the whole model alone; 0: never measured
  int64_t paired_at = 0;         // unix seconds
  int64_t last_seen_ms = 0;      // unix milliseconds its last beacon taken was sent at; 0: never
                                 // (a head refuses beacons not newer, so a replay is ignored across runs)
};

// The key pair at `dir`/`file`, created (with `dir`) when missing.
Result<net::KeyPair> load_or_create_keypair(const std::string& dir, const std::string& file);
Result<std::vector<PairedDevice>> load_paired_devices(const std::string& dir);  // none when the file is missing
Status save_paired_devices(const std::string& dir, const std::vector<PairedDevice>& devices);
// Adds `device`, replacing one with the same key; a name another key has is made unique
// ("name-2"). Returns the name it is remembered by.
Result<std::string> remember_device(const std::string& dir, PairedDevice device);
// Forgets the device called `name`; an error naming the paired devices when there is none.
Status forget_device(const std::string& dir, const std::string& name);

// Each device's decoding speed alone (1 / its whole-model decode time) from a profiles JSON
// (`--save-profiles`, devices in the order of `keys`), remembered for the device with that key.
Status remember_speeds(const std::string& dir, const std::vector<std::string>& keys, const std::string& profiles_path);

Result<std::set<std::string>> load_trusted_heads(const std::string& dir);  // none when the file is missing
Status add_trusted_head(const std::string& dir, const std::string& public_key, const std::string& name);

inline constexpr char kHeadKeyFile[] = "head.key";
inline constexpr char kWorkerKeyFile[] = "worker.key";
inline constexpr char kDevicesFile[] = "devices.json";
inline constexpr char kTrustedHeadsFile[] = "trusted_heads";
inline constexpr char kLastProfilesFile[] = "last_profiles.json";  // of the last --cluster run

}  // namespace ll::cluster

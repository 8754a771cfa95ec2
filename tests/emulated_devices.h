#pragma once
// Emulated devices for the end-to-end tests: `lingualinked worker` processes on this machine,
// described as `--devices` describes them. LL_CLI_PATH is each test executable's own definition.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "emulate/device_spec.h"
#include "emulate/local_cluster.h"
#include "net/keys.h"
#include "test_data.h"

namespace ll::test {

// Null (with a test failure saying why) when the description or the start fails.
inline std::unique_ptr<emulate::LocalCluster> start_devices(const std::string& description,
                                                            std::vector<std::string> model_dirs = {}) {
  auto devices = emulate::parse_devices(description);
  EXPECT_TRUE(devices.ok()) << devices.error();
  if (!devices.ok()) return nullptr;
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  o.devices = std::move(devices).value();
  o.model_dirs = std::move(model_dirs);
  auto c = emulate::LocalCluster::start(o);
  EXPECT_TRUE(c.ok()) << c.error();
  return c.ok() ? std::move(c).value() : nullptr;
}

// "--workers HOST:PORT,... --worker-keys KEY,... --key FILE" as `run` and the other commands take
// them, with the head's key pair saved as `key_name`; empty (and a test failure) when it cannot be
// saved.
inline std::string cluster_flags(const emulate::LocalCluster& workers, const std::string& key_name = "head.key") {
  const std::string key_path = temp_path(key_name);
  const Status saved = net::save_keypair(key_path, workers.head_keys());
  EXPECT_TRUE(saved.ok()) << saved.message();
  if (!saved.ok()) return "";
  std::vector<std::string> endpoints, keys;
  for (const auto& w : workers.addresses()) {
    endpoints.push_back(w.endpoint.substr(6));  // HOST:PORT
    keys.push_back(w.public_key);
  }
  return fmt::format("--workers {} --worker-keys '{}' --key '{}'", fmt::join(endpoints, ","), fmt::join(keys, ","),
                     key_path);
}

}  // namespace ll::test

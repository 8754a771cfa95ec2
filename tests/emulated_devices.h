#pragma once
// Emulated devices for the end-to-end tests: `lingualinked worker` processes on this machine,
// described as `--devices` describes them. LL_CLI_PATH is each test executable's own definition.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "emulate/device_spec.h"
#include "emulate/local_cluster.h"

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

}  // namespace ll::test

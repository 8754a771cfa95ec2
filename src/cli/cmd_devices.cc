// `lingualinked devices`: the devices paired with this head, and which are reachable now;
// `lingualinked devices remove NAME` forgets one.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "cluster/discovery.h"
#include "cluster/remembered.h"
#include "plan/plan.h"

namespace ll::cli {

void add_devices_command(CLI::App& app) {
  auto wait = std::make_shared<double>(3);
  auto name = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("devices", "List the devices paired with this head and whether each is reachable now");
  cmd->add_option("--wait", *wait, "seconds to listen for the devices' beacons")
      ->check(seconds_range(0, 60))
      ->capture_default_str();
  CLI::App* remove = cmd->add_subcommand("remove", "Forget a paired device (pair it again to use it)");
  remove->add_option("name", *name, "the device's name, as `lingualinked devices` lists it")->required();
  remove->callback([name] {
    const std::string dir = or_exit(cluster::config_dir());
    if (Status st = cluster::forget_device(dir, *name); !st.ok()) fail(st.message());
    std::printf("forgot %s\n", name->c_str());
  });
  cmd->callback([cmd, wait] {
    if (cmd->got_subcommand("remove")) return;
    const std::string dir = or_exit(cluster::config_dir());
    const auto paired = or_exit(cluster::load_paired_devices(dir));
    if (paired.empty()) {
      std::printf("no paired devices (run `lingualinked pair` here and `lingualinked worker --join CODE` on each device)\n");
      return;
    }
    cluster::DiscoveryOptions o;
    o.wait = std::chrono::milliseconds(static_cast<int64_t>(*wait * 1000));
    const auto sightings = or_exit(cluster::discover(paired, o));
    std::vector<cluster::PairedDevice> updated;
    for (const auto& s : sightings) updated.push_back(s.device);
    if (Status st = cluster::save_paired_devices(dir, updated); !st.ok()) fail(st.message());
    std::printf("%-16s %-9s %-24s %7s %10s %12s\n", "name", "reachable", "address", "threads", "memory", "speed");
    for (const auto& s : sightings) {
      const cluster::PairedDevice& d = s.device;
      const std::string speed = d.tokens_per_second > 0 ? fmt::format("{:.1f} tok/s", d.tokens_per_second) : "-";
      std::printf("%-16s %-9s %-24s %7u %10s %12s\n", d.name.c_str(), s.reachable ? "yes" : "no",
                  d.endpoint.empty() ? "-" : d.endpoint.c_str(), d.threads,
                  d.memory_limit > 0 ? plan::format_mib(d.memory_limit).c_str() : "-", speed.c_str());
    }
  });
}

}  // namespace ll::cli

// `lingualinked pair`: one-time codes with which devices join this head (`worker --join CODE`).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "cluster/pairing.h"
#include "cluster/remembered.h"

namespace ll::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "head";
  return name;
}

}  // namespace

void add_pair_command(CLI::App& app) {
  struct Args {
    std::string listen = "tcp://0.0.0.0:7071";
    std::string address;
    size_t count = 1;
    double expires = 300;
    std::string name;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "pair", "Print one-time codes with which devices join this head (on each: lingualinked worker --join CODE)");
  cmd->add_option("--listen", a->listen, "where devices reach this head while they pair")->capture_default_str();
  cmd->add_option("--address", a->address,
                  "the IPv4 address written into the codes (default: the --listen address, else this machine's first)");
  cmd->add_option("-n,--count", a->count, "codes, one per device (each pairs one device)")
      ->check(CLI::Range(size_t{1}, size_t{16}))
      ->capture_default_str();
  cmd->add_option("--expires", a->expires, "seconds the codes stay valid")
      ->check(seconds_range(1, 3600))
      ->capture_default_str();
  cmd->add_option("--name", a->name, "this head's name on the devices (default: the host name)");
  cmd->callback([a] {
    const std::string dir = or_exit(cluster::config_dir());
    cluster::PairingOptions o;
    o.listen = a->listen;
    o.address = a->address;
    o.codes = a->count;
    o.ttl = std::chrono::milliseconds(static_cast<int64_t>(a->expires * 1000));
    o.head_keys = or_exit(cluster::load_or_create_keypair(dir, cluster::kHeadKeyFile));
    o.head_name = a->name.empty() ? host_name() : a->name;
    o.on_paired = [dir](const cluster::PairedDevice& d) -> Status {
      auto name = cluster::remember_device(dir, d);
      if (!name.ok()) return name.status();
      std::printf("paired %s\n", name.value().c_str());
      std::fflush(stdout);
      return Status::Ok();
    };
    auto server = or_exit(cluster::PairingServer::start(std::move(o)));
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    // stdout: one line per code (read by scripts and the tests), then one per paired device.
    for (const cluster::PairingCode& code : server->codes()) {
      std::printf("code %s qr %s\n", cluster::format_pairing_code(code).c_str(), cluster::qr_pairing_string(code).c_str());
    }
    std::fflush(stdout);
    std::fprintf(stderr,
                 "pair: on each device run `lingualinked worker --join CODE` within %.0f s (one code per device); "
                 "this head's key and paired devices are kept in %s\n",
                 a->expires, dir.c_str());
    while (!g_stop.load() && !server->finished()) {
      if (Status st = server->poll(std::chrono::milliseconds(200)); !st.ok()) fail(st.message());
    }
    // The last device's answer is only queued: serve a moment longer so that it leaves before the
    // socket closes (and a late request is refused rather than dropped).
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1); std::chrono::steady_clock::now() < until;) {
      (void)server->poll(std::chrono::milliseconds(100));
    }
    if (server->paired() < server->codes().size()) {
      fail(fmt::format("{} of {} codes paired a device; the rest are no longer valid (expired or revoked)", server->paired(),
                       server->codes().size()));
    }
  });
}

}  // namespace ll::cli

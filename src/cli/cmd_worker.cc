// `lingualinked worker`: serve a share of a model to heads on the network.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <optional>
#include <cstdio>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "cluster/beacon_announcer.h"
#include "cluster/pairing.h"
#include "cluster/remembered.h"
#include "cluster/worker.h"
#include "cluster/worker_security.h"
#include "core/log.h"
#include "core/quantity.h"
#include "core/thread_pool.h"

namespace ll::cli {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

// The port of a tcp:// endpoint; 0 when it has none.
uint16_t endpoint_port(const std::string& endpoint) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos) return 0;
  try {
    const int port = std::stoi(endpoint.substr(colon + 1));
    return port > 0 && port < 65536 ? static_cast<uint16_t>(port) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "worker";
  return name;
}

}  // namespace

void add_worker_command(CLI::App& app) {
  struct Args {
    std::string listen = "tcp://0.0.0.0:7070";
    std::string name;
    int threads = 0;
    std::string mem;
    std::string key;
    int key_fd = -1;
    std::vector<std::string> allow;
    std::string allow_file;
    std::string cache_dir;
    std::vector<std::string> models;
    bool insecure = false;
    std::string join;
    double session_lease = 30;
    size_t max_sessions = cluster::WorkerOptions{}.max_sessions;
    bool no_mmap = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("worker", "Serve a segment of a model to heads (one per device)");
  cmd->add_option("--listen", a->listen, "endpoint to bind (port 0: any free port)")->capture_default_str();
  cmd->add_option("--name", a->name, "name in logs and hello replies (default: the endpoint)");
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)")->check(thread_range());
  cmd->add_option("--mem", a->mem, "memory for weights, e.g. 2G (default and at most: the free memory)");
  cmd->add_option("--key", a->key, "this worker's key pair (from `lingualinked keygen`; default: the one remembered when it paired (--join), "
                  "with the heads it trusts, else a new one)");
  cmd->add_option("--key-fd", a->key_fd,
                  "read this worker's key pair (as in a key file) from this inherited file descriptor, e.g. a pipe "
                  "from the process that starts it, so the secret key is never on disk");
  // One key per --allow (or comma-separated): a key may start with '[' and end with ']', which
  // CLI11 would read as a list if the option took more arguments.
  cmd->add_option("--allow", a->allow, "public key of a head (or upstream worker) allowed to connect (repeatable)")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("--allow-file", a->allow_file, "file of allowed public keys, one per line");
  cmd->add_option("--cache-dir", a->cache_dir, "shard cache (default: $XDG_CACHE_HOME/lingualinked or ~/.cache/lingualinked)");
  cmd->add_option("--session-lease", a->session_lease,
                  "seconds without a message for a session (a step, or its head's keep-alive) after which the "
                  "worker frees it: its head died or lost its link")
      ->check(seconds_range(0.1, 86400))
      ->capture_default_str();
  cmd->add_option("--max-sessions", a->max_sessions, "sessions (one per head) held at once; a load beyond them is refused as busy")
      ->check(CLI::Range(size_t{1}, size_t{1024}))
      ->capture_default_str();
  cmd->add_option("--models", a->models,
                  "directory heads may load model files from (repeatable; default: the shard cache and the "
                  "directory the worker was started in)");
  cmd->add_flag("--insecure", a->insecure, "plain-text links without keys (loopback endpoints only)");
  cmd->add_flag("--no-mmap", a->no_mmap,
                "read a segment's weights into memory instead of using them where the file is mapped, repacked "
                "where this CPU's kernels read them faster so: slower to load, faster to generate");
  cmd->add_option("--join", a->join,
                  "pair with the head that printed this code (`lingualinked pair`), remember it, and serve it; "
                  "later a plain `lingualinked worker` serves the remembered heads");
  cmd->callback([a] {
    cluster::WorkerOptions o;
    o.listen = a->listen;
    o.name = a->name;
    o.threads = a->threads;
    o.cache_dir = a->cache_dir;
    o.session_lease = std::chrono::milliseconds(static_cast<int64_t>(a->session_lease * 1000));
    o.max_sessions = a->max_sessions;
    o.model_dirs = a->models;
    o.no_mmap = a->no_mmap;
    if (!a->mem.empty()) o.memory_limit = or_exit(parse_byte_size(a->mem));
    // Paired: the key and the trusted heads remembered in the configuration directory, announced
    // by beacons. Used with --join, and when no key or allowed head is given but some are remembered.
    const bool explicit_security = !a->key.empty() || a->key_fd >= 0 || !a->allow.empty() || !a->allow_file.empty() || a->insecure;
    const std::string config = or_exit(cluster::config_dir());
    bool paired = !a->join.empty();
    if (paired && (!a->key.empty() || a->key_fd >= 0 || a->insecure)) {
      fail("--join uses the key remembered in " + config + ": leave out --key, --key-fd and --insecure");
    }
    if (!paired && !explicit_security) paired = !or_exit(cluster::load_trusted_heads(config)).empty();
    net::KeyPair beacon_keys;
    if (paired) {
      // A mistyped code is named before anything is created.
      std::optional<cluster::PairingCode> code;
      if (!a->join.empty()) code = or_exit(cluster::parse_pairing_code(a->join));
      const net::KeyPair keys = or_exit(cluster::load_or_create_keypair(config, cluster::kWorkerKeyFile));
      if (code) {
        cluster::JoinRequest r;
        r.name = a->name.empty() ? host_name() : a->name;
        r.port = endpoint_port(a->listen);
        if (r.port == 0) fail("--join: give --listen with a fixed port (the head remembers it)");
        r.threads = static_cast<uint32_t>(thread_count_or_default(a->threads));
        if (!a->mem.empty()) r.memory_limit = or_exit(parse_byte_size(a->mem));
        std::fprintf(stderr, "worker: pairing with %s...\n", cluster::pairing_endpoint(*code).c_str());
        const cluster::JoinedHead head = or_exit(cluster::join_head(*code, keys, r));
        if (Status st = cluster::add_trusted_head(config, head.public_key, head.name); !st.ok()) fail(st.message());
        std::fprintf(stderr, "worker: paired with head %s (key %s), remembered in %s\n", head.name.c_str(),
                     head.public_key.c_str(), config.c_str());
      }
      o.security.keys = keys;
      beacon_keys = keys;
      o.security.allowed = or_exit(cluster::load_trusted_heads(config));
      for (const std::string& k : a->allow) o.security.allowed.insert(k);
      if (!a->allow_file.empty()) {
        const auto more = or_exit(net::load_allowed_keys(a->allow_file));
        o.security.allowed.insert(more.begin(), more.end());
      }
    } else {
      o.security = or_exit(cluster::worker_security({a->key, a->key_fd, a->allow, a->allow_file, a->insecure}));
    }
    auto worker = cluster::Worker::create(std::move(o));
    if (!worker.ok()) fail(worker.error());
    cluster::Worker& w = *worker.value();
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    // The first stdout line is read by `lingualinked demo` and the tests: keep its format.
    std::printf("listening %s key %s\n", w.endpoint().c_str(), a->insecure ? "none" : w.public_key().c_str());
    std::fflush(stdout);
    log::info(a->name.empty() ? w.endpoint() : a->name, "worker {}: {} threads ({}), memory limit {:.0f} MiB{}",
              w.endpoint(), w.threads(), simd_name(), w.memory_limit() / 1048576.0,
              a->insecure ? ", INSECURE plain-text links" : "");
    std::unique_ptr<cluster::BeaconAnnouncer> beacons;
    if (paired) {
      cluster::Beacon b;
      b.port = endpoint_port(w.endpoint());
      b.threads = static_cast<uint16_t>(std::min(w.threads(), 65535));
      b.memory_limit = w.memory_limit();
      beacons = or_exit(cluster::BeaconAnnouncer::start(beacon_keys, b));
    }
    Status st = w.serve(g_stop);
    if (!st.ok()) fail(st.message());
  });
}

}  // namespace ll::cli

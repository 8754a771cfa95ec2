#include "cluster/head_setup.h"

#include <fmt/format.h>

#include "net/endpoint.h"
#include "net/keys.h"

namespace ll::cluster {
namespace {

std::string to_endpoint(const std::string& w) { return w.find("://") == std::string::npos ? "tcp://" + w : w; }

}  // namespace

Result<HeadOptions> head_options(const HeadSetup& setup) {
  HeadOptions h;
  h.insecure = setup.insecure;
  if (setup.workers.empty()) return h;
  for (size_t i = 0; i < setup.workers.size(); ++i) {
    if (setup.workers[i].empty()) return Status::Error("--workers: an empty entry; give HOST:PORT,HOST:PORT,...");
    const std::string endpoint = to_endpoint(setup.workers[i]);
    if (auto s = net::check_endpoint(endpoint, /*for_bind=*/false); !s.ok()) {
      return Status::Error("--workers: " + s.message());
    }
    for (size_t j = 0; j < i; ++j) {
      if (to_endpoint(setup.workers[j]) == endpoint) {
        return Status::Errorf("{} is listed more than once in --workers (as worker {} and {}); "
                              "list each worker once",
                              endpoint, j + 1, i + 1);
      }
    }
  }
  std::vector<std::string> keys;
  if (!setup.insecure) {
    if (setup.key_path.empty()) {
      return Status::Error("--key FILE: the head's key pair (lingualinked keygen -o head.key), allowed by the workers");
    }
    LL_ASSIGN_OR_RETURN(h.keys, net::load_keypair(setup.key_path));
    auto parsed = net::parse_public_key_list(setup.worker_keys);
    if (!parsed.ok()) return Status::Error("--worker-keys: " + parsed.error());
    keys = std::move(parsed).value();
    if (keys.size() != setup.workers.size()) {
      return Status::Errorf("{} workers but {} --worker-keys: give each worker's public key, in order",
                            setup.workers.size(), keys.size());
    }
  }
  for (size_t i = 0; i < setup.workers.size(); ++i) {
    h.workers.push_back({to_endpoint(setup.workers[i]), setup.insecure ? std::string() : keys[i]});
  }
  return h;
}

}  // namespace ll::cluster

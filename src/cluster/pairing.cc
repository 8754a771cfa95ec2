#include "cluster/pairing.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <optional>

#include "cluster/beacon.h"
#include "core/log.h"

namespace ll::cluster {
namespace {

constexpr size_t kMaxCodes = 16;
constexpr size_t kMaxPending = 64;  // pairings between request and proof
constexpr std::chrono::seconds kPendingLife{30};  // a request without its proof after this is dropped
constexpr size_t kMaxNameBytes = 64;

// The IPv4 address of the first interface that is up and not loopback.
Result<std::array<uint8_t, 4>> this_machine_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return Status::Error("cannot list this machine's addresses");
  std::optional<in_addr> found;
  for (ifaddrs* a = list; a != nullptr && !found; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    if ((a->ifa_flags & IFF_UP) == 0 || (a->ifa_flags & IFF_LOOPBACK) != 0) continue;
    found = reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr;
  }
  freeifaddrs(list);
  if (!found) return Status::Error("this machine has no network address besides loopback: give --address");
  std::array<uint8_t, 4> out{};
  std::memcpy(out.data(), &found->s_addr, 4);
  return out;
}

Result<std::array<uint8_t, 4>> parse_ipv4(const std::string& text, const std::string& what) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return Status::Errorf("{}: {} is not an IPv4 address", what, text);
  std::array<uint8_t, 4> out{};
  std::memcpy(out.data(), &a.s_addr, 4);
  return out;
}

// Host and port of a bound tcp:// endpoint ("tcp://10.0.0.1:7071").
std::pair<std::string, uint16_t> host_and_port(const std::string& endpoint) {
  const std::string rest = endpoint.substr(endpoint.find("://") + 3);
  const size_t colon = rest.rfind(':');
  return {rest.substr(0, colon), static_cast<uint16_t>(std::stoi(rest.substr(colon + 1)))};
}

bool printable_name(const std::string& name) {
  return !name.empty() && name.size() <= kMaxNameBytes &&
         std::all_of(name.begin(), name.end(), [](char c) { return std::isgraph(static_cast<unsigned char>(c)) || c == ' '; });
}

PairingTranscript transcript(const std::string& head_key, const std::string& worker_key, const wire::PairRequest& r,
                             const std::string& head_nonce) {
  return {head_key, worker_key, r.signing_key(), r.nonce(), head_nonce};
}

}  // namespace

Result<std::unique_ptr<PairingServer>> PairingServer::start(PairingOptions o) {
  if (o.codes == 0 || o.codes > kMaxCodes) return Status::Errorf("codes: {} is not in 1..{}", o.codes, kMaxCodes);
  if (o.ttl.count() <= 0) return Status::Error("a code must live longer than 0 s");
  if (o.listen.rfind("tcp://", 0) != 0) return Status::Errorf("{}: pairing listens on tcp://HOST:PORT", o.listen);
  LL_RETURN_IF_ERROR(net::validate_keypair(o.head_keys));
  const std::array<uint8_t, 4> link_id = new_link_id();
  net::SecurityOptions security;
  security.keys = pairing_link_keys(link_id);
  security.any_client = true;
  net::Limits limits;
  limits.max_envelope_bytes = 4096;  // pairing messages are small
  limits.max_frames = 0;
  limits.max_frame_bytes = 0;
  LL_ASSIGN_OR_RETURN(auto server, net::Server::bind(o.listen, std::move(security), limits));
  auto [host, port] = host_and_port(server->endpoint());
  std::array<uint8_t, 4> ip{};
  if (!o.address.empty()) {
    LL_ASSIGN_OR_RETURN(ip, parse_ipv4(o.address, "--address"));
  } else if (host != "0.0.0.0" && host != "*") {
    LL_ASSIGN_OR_RETURN(ip, parse_ipv4(host, "the listen address"));
  } else {
    LL_ASSIGN_OR_RETURN(ip, this_machine_address());
  }
  std::vector<PairingCode> codes;
  for (size_t i = 0; i < o.codes; ++i) codes.push_back(new_pairing_code(ip, port, link_id, static_cast<uint8_t>(i)));
  return std::unique_ptr<PairingServer>(new PairingServer(std::move(o), std::move(server), std::move(codes)));
}

PairingServer::PairingServer(PairingOptions options, std::unique_ptr<net::Server> server, std::vector<PairingCode> codes)
    : options_(std::move(options)),
      server_(std::move(server)),
      codes_(std::move(codes)),
      used_(codes_.size(), false),
      expires_(Clock::now() + options_.ttl),
      refusals_({.what = "refused pairings", .sources = "keys"}, options_.log) {
  if (!options_.log) options_.log = [](const std::string& line) { log::info("pair", "{}", line); };
}

bool PairingServer::finished() const {
  return revoked_ || Clock::now() >= expires_ || std::all_of(used_.begin(), used_.end(), [](bool u) { return u; });
}

Status PairingServer::usable(uint32_t slot) const {
  if (revoked_) return Status::Error("pairing code refused: revoked after too many wrong codes; run `lingualinked pair` again");
  if (slot >= codes_.size()) return Status::Error("pairing code refused: wrong code");
  if (used_[slot]) return Status::Error("pairing code refused: already used (each code pairs one device)");
  if (Clock::now() >= expires_) {
    return Status::Errorf("pairing code refused: expired (codes last {} s); run `lingualinked pair` again",
                          std::chrono::duration_cast<std::chrono::seconds>(options_.ttl).count());
  }
  return Status::Ok();
}

void PairingServer::refuse(const net::Incoming& in, const std::string& why) {
  refusals_.log(in.peer_key, fmt::format("pair: refused {} (key {}): {}", in.peer_address, in.peer_key, why));
  wire::Envelope e;
  e.set_request_id(in.message.envelope().request_id());
  e.mutable_error()->set_message(why);
  (void)server_->send(in.peer, e);
}

Status PairingServer::poll(std::chrono::milliseconds timeout) {
  LL_ASSIGN_OR_RETURN(auto in, server_->receive(timeout));
  refusals_.flush();
  if (!in) return Status::Ok();
  const wire::Envelope& e = in->message.envelope();
  if (e.has_pair_request()) {
    on_request(*in);
  } else if (e.has_pair_proof()) {
    on_proof(*in);
  } else {
    refuse(*in, "only pairing messages are answered here");
  }
  return Status::Ok();
}

void PairingServer::on_request(const net::Incoming& in) {
  const wire::PairRequest& r = in.message.envelope().pair_request();
  if (Status st = usable(r.slot()); !st.ok()) return refuse(in, st.message());
  if (r.nonce().size() != kPairingNonceBytes || r.signing_key().size() != crypto_sign_PUBLICKEYBYTES) {
    return refuse(in, "malformed pairing request (nonce or signing key of the wrong size)");
  }
  if (!printable_name(r.name())) return refuse(in, "malformed pairing request: the name must be 1-64 printable characters");
  if (r.port() == 0 || r.port() > 65535) return refuse(in, "malformed pairing request: port out of range");
  const auto now = Clock::now();
  std::erase_if(pending_, [now](const auto& entry) { return now - entry.second.since > kPendingLife; });
  if (pending_.size() >= kMaxPending && pending_.count(in.peer_key) == 0) return refuse(in, "too many pairings at once");
  Pending& p = pending_[in.peer_key];
  p.since = now;
  p.slot = r.slot();
  p.request = r;
  p.head_nonce = random_nonce();
  wire::Envelope reply;
  reply.set_request_id(in.message.envelope().request_id());
  auto* c = reply.mutable_pair_challenge();
  c->set_head_key(options_.head_keys.public_key);
  c->set_head_name(options_.head_name);
  c->set_nonce(p.head_nonce);
  (void)server_->send(in.peer, reply);
}

void PairingServer::on_proof(const net::Incoming& in) {
  const auto it = pending_.find(in.peer_key);
  if (it == pending_.end()) return refuse(in, "no pairing request from this key");
  const Pending p = it->second;
  pending_.erase(it);
  if (Status st = usable(p.slot); !st.ok()) return refuse(in, st.message());
  const PairingCode& code = codes_[p.slot];
  const PairingTranscript t = transcript(options_.head_keys.public_key, in.peer_key, p.request, p.head_nonce);
  if (!pairing_mac_matches(in.message.envelope().pair_proof().mac(), pairing_mac(code, PairingRole::kWorker, t))) {
    // Revoked before the guesser hears back, so that nothing it sends next finds the codes live.
    if (++wrong_ >= options_.max_wrong_codes) {
      revoked_ = true;
      options_.log(fmt::format("pair: {} wrong codes: every code of this run is revoked", wrong_));
    }
    return refuse(in, "pairing code refused: wrong code");
  }
  PairedDevice d;
  d.name = p.request.name();
  d.public_key = in.peer_key;
  d.signing_key = p.request.signing_key();
  d.endpoint = fmt::format("tcp://{}:{}", in.peer_address, p.request.port());
  d.threads = p.request.threads();
  d.memory_limit = p.request.memory_limit();
  d.paired_at = unix_millis() / 1000;
  if (options_.on_paired) {
    if (Status st = options_.on_paired(d); !st.ok()) {
      options_.log("pair: cannot remember " + d.name + ": " + st.message());
      return refuse(in, "the head could not store the pairing");
    }
  }
  used_[p.slot] = true;
  ++paired_;
  options_.log(fmt::format("pair: paired {} ({}, key {})", d.name, d.endpoint, d.public_key));
  wire::Envelope reply;
  reply.set_request_id(in.message.envelope().request_id());
  reply.mutable_pair_accepted()->set_mac(pairing_mac(code, PairingRole::kHead, t));
  (void)server_->send(in.peer, reply);
}

namespace {

// The head's answer to `request_id`: its envelope, or an error (its ErrorReply, a lost link, silence).
Result<wire::Envelope> await_answer(net::Client& client, uint64_t request_id, std::chrono::milliseconds timeout,
                                    const std::string& endpoint) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    LL_ASSIGN_OR_RETURN(auto m, client.receive(std::chrono::milliseconds(100)));
    if (m && m->envelope().request_id() == request_id) {
      if (m->envelope().has_error()) return Status::Error("the head refused: " + m->envelope().error().message());
      return m->envelope();
    }
    if (!m && client.disconnected()) {
      return Status::Errorf("lost the link to {}: {}", endpoint, client.disconnect_reason());
    }
  }
  return Status::Errorf(
      "no answer from {} within {} s: is `lingualinked pair` still running there (its codes expire), and can this "
      "device reach that address?",
      endpoint, std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
}

}  // namespace

Result<JoinedHead> join_head(const PairingCode& code, const net::KeyPair& worker_keys, const JoinRequest& request) {
  const std::string endpoint = pairing_endpoint(code);
  net::SecurityOptions security;
  security.keys = worker_keys;
  net::Limits limits;
  limits.max_envelope_bytes = 4096;
  limits.max_frames = 0;
  limits.max_frame_bytes = 0;
  LL_ASSIGN_OR_RETURN(auto client, net::Client::connect(endpoint, pairing_link_keys(code.link_id).public_key, security, limits));
  const BeaconSigningKeys signing = beacon_signing_keys(worker_keys);
  wire::Envelope e;
  e.set_request_id(1);
  wire::PairRequest* r = e.mutable_pair_request();
  r->set_slot(code.slot);
  r->set_nonce(random_nonce());
  r->set_name(request.name);
  r->set_signing_key(signing.public_key);
  r->set_port(request.port);
  r->set_threads(request.threads);
  r->set_memory_limit(request.memory_limit);
  const wire::PairRequest sent = *r;
  LL_RETURN_IF_ERROR(client->send(e));
  LL_ASSIGN_OR_RETURN(const wire::Envelope challenge, await_answer(*client, 1, request.timeout, endpoint));
  if (!challenge.has_pair_challenge()) return Status::Errorf("{} answered with something else than a pairing challenge", endpoint);
  const wire::PairChallenge& c = challenge.pair_challenge();
  if (!net::is_valid_z85_key(c.head_key()) || c.nonce().size() != kPairingNonceBytes) {
    return Status::Errorf("{} sent a malformed pairing challenge", endpoint);
  }
  const PairingTranscript t = transcript(c.head_key(), worker_keys.public_key, sent, c.nonce());
  wire::Envelope proof;
  proof.set_request_id(2);
  proof.mutable_pair_proof()->set_mac(pairing_mac(code, PairingRole::kWorker, t));
  LL_RETURN_IF_ERROR(client->send(proof));
  LL_ASSIGN_OR_RETURN(const wire::Envelope accepted, await_answer(*client, 2, request.timeout, endpoint));
  if (!accepted.has_pair_accepted() ||
      !pairing_mac_matches(accepted.pair_accepted().mac(), pairing_mac(code, PairingRole::kHead, t))) {
    return Status::Errorf("{} did not prove that it holds the code: not the head that showed it", endpoint);
  }
  std::string name = c.head_name();
  if (!printable_name(name)) name = "head";
  return JoinedHead{c.head_key(), name};
}

}  // namespace ll::cluster

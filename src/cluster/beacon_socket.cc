#include "cluster/beacon_socket.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "cluster/beacon.h"

namespace ll::cluster {
namespace {

// The addresses of the IPv4 interfaces beacons may use: up and multicast-capable; loopback only
// when there is nothing else (a single machine).
std::vector<in_addr> multicast_interfaces() {
  std::vector<in_addr> out, loopback;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    if ((a->ifa_flags & IFF_UP) == 0) continue;
    const in_addr addr = reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr;
    if ((a->ifa_flags & IFF_LOOPBACK) != 0) {
      loopback.push_back(addr);
    } else if ((a->ifa_flags & IFF_MULTICAST) != 0) {
      out.push_back(addr);
    }
  }
  freeifaddrs(list);
  return out.empty() ? loopback : out;
}

Status errno_status(const char* what) { return Status::Errorf("beacons: {}: {}", what, std::strerror(errno)); }

}  // namespace

Result<std::unique_ptr<BeaconSender>> BeaconSender::open(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status("socket");
  const unsigned char ttl = 1, loop = 1;
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0) {
    const Status st = errno_status("setsockopt");
    ::close(fd);
    return st;
  }
  return std::unique_ptr<BeaconSender>(new BeaconSender(fd, port));
}

BeaconSender::~BeaconSender() { ::close(fd_); }

Status BeaconSender::send(const std::string& packet) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port_);
  inet_pton(AF_INET, kBeaconGroup, &to.sin_addr);
  bool sent = false;
  for (const in_addr& via : multicast_interfaces()) {
    if (setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &via, sizeof via) != 0) continue;
    sent |= ::sendto(fd_, packet.data(), packet.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
            static_cast<ssize_t>(packet.size());
  }
  return sent ? Status::Ok() : Status::Error("beacons: no interface could send one");
}

Result<std::unique_ptr<BeaconReceiver>> BeaconReceiver::open(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status("socket");
  // Several heads (or a head and `lingualinked devices`) may listen on one machine.
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(port);
  at.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) {
    const Status st = errno_status("bind");
    ::close(fd);
    return st;
  }
  ip_mreq join{};
  inet_pton(AF_INET, kBeaconGroup, &join.imr_multiaddr);
  bool joined = false;
  for (const in_addr& via : multicast_interfaces()) {
    join.imr_interface = via;
    joined |= setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join, sizeof join) == 0;
  }
  if (!joined) {
    const Status st = errno_status("cannot join the beacon group on any interface");
    ::close(fd);
    return st;
  }
  return std::unique_ptr<BeaconReceiver>(new BeaconReceiver(fd));
}

BeaconReceiver::~BeaconReceiver() { ::close(fd_); }

Result<std::optional<ReceivedBeacon>> BeaconReceiver::receive(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready < 0 && errno == EINTR) return std::optional<ReceivedBeacon>();
  if (ready < 0) return errno_status("poll");
  if (ready == 0) return std::optional<ReceivedBeacon>();
  char buf[512];
  sockaddr_in from{};
  socklen_t from_len = sizeof from;
  const ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
  if (n < 0) return errno_status("recvfrom");
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
  return std::optional<ReceivedBeacon>(ReceivedBeacon{std::string(buf, static_cast<size_t>(n)), ip});
}

}  // namespace ll::cluster

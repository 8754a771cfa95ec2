#pragma once
// A bandwidth-limited link for one emulated device: a network namespace `ll-<pid>-<n>` joined
// to this (root) namespace by a veth pair on a /24 of its own, 10.<77..86>.<k>.1 on the host
// side and .2 inside, with a default route through the host. The host side forwards (only
// that interface, not the whole host), so namespaces reach each other through the host. A
// rate puts a tbf qdisc on both ends: the host end's egress shapes traffic to the device, the
// namespace end's egress traffic from it. Without a rate the link is not shaped. Destruction
// deletes the veth pair and the namespace. Needs root, `ip` and `tc` (iproute2).
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace ll::emulate {

class ShapedLink {
 public:
  // Ok, or why links cannot be made here (not root, no `ip` or `tc`).
  static Status available();
  // rate_bps: bits per second in each direction (0: not shaped).
  static Result<std::unique_ptr<ShapedLink>> create(uint64_t rate_bps);
  ~ShapedLink();
  ShapedLink(const ShapedLink&) = delete;
  ShapedLink& operator=(const ShapedLink&) = delete;

  const std::string& netns() const { return netns_; }
  const std::string& netns_path() const { return netns_path_; }  // for setns(2)
  const std::string& address() const { return address_; }        // inside the namespace
  const std::string& host_address() const { return host_address_; }
  uint64_t rate_bps() const { return rate_bps_; }
  // "link shaped to 20 Mbit/s (netns ll-123-1, 10.77.1.2)" or "link not shaped (...)".
  std::string description() const;
  // The host end down (nothing passes either way, the device's connections stall as behind a
  // pulled cable) or up again. Not the namespace end: taking that down would delete its default route.
  Status set_up(bool up);

 private:
  ShapedLink() = default;
  Status setup(int slot);

  std::string netns_, netns_path_, host_if_, address_, host_address_;
  uint64_t rate_bps_ = 0;
  bool netns_created_ = false, veth_created_ = false;
};

// "20 Mbit/s", "1.5 Gbit/s", "512 kbit/s".
std::string format_bit_rate(uint64_t bps);

}  // namespace ll::emulate

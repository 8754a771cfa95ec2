#include "cluster/beacon_announcer.h"

#include "core/log.h"

namespace ll::cluster {

Result<std::unique_ptr<BeaconAnnouncer>> BeaconAnnouncer::start(const net::KeyPair& keys, Beacon beacon, uint16_t port,
                                                                std::chrono::milliseconds interval) {
  std::unique_ptr<BeaconAnnouncer> a(new BeaconAnnouncer());
  LL_ASSIGN_OR_RETURN(a->sender_, BeaconSender::open(port));
  a->keys_ = beacon_signing_keys(keys);
  beacon.public_key = keys.public_key;
  a->beacon_ = std::move(beacon);
  a->interval_ = interval;
  a->thread_ = std::thread([p = a.get()] { p->run(); });
  return a;
}

BeaconAnnouncer::~BeaconAnnouncer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void BeaconAnnouncer::run() {
  bool warned = false;
  std::unique_lock lock(mu_);
  while (!stop_) {
    Beacon b = beacon_;
    b.time_ms = unix_millis();
    const Status sent = sender_->send(sign_beacon(b, keys_));
    // Said once: a device without a network now may have one later.
    if (!sent.ok() && !warned) log::warn("beacon", "{} (will keep trying)", sent.message());
    warned = warned || !sent.ok();
    wake_.wait_for(lock, interval_, [this] { return stop_; });
  }
}

}  // namespace ll::cluster

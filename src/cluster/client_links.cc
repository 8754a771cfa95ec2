#include "cluster/client_links.h"

namespace ll::cluster {

Result<std::optional<net::Message>> ClientLinks::receive(size_t worker) {
  return clients_[worker]->receive(std::chrono::milliseconds(0));
}

std::vector<size_t> ClientLinks::poll(std::chrono::milliseconds timeout) {
  std::vector<zmq::pollitem_t> items;
  for (auto& c : clients_) items.push_back({c->socket().handle(), 0, ZMQ_POLLIN, 0});
  try {
    zmq::poll(items.data(), items.size(), timeout);
  } catch (const zmq::error_t&) {
    return {};  // EINTR: a signal; the caller checks for cancellation
  }
  std::vector<size_t> ready;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].revents & ZMQ_POLLIN) ready.push_back(i);
  }
  return ready;
}

Status ClientLinks::reconnect(size_t worker) {
  LL_ASSIGN_OR_RETURN(clients_[worker], connect_(worker));
  return Status::Ok();
}

}  // namespace ll::cluster

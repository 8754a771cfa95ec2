#pragma once
// PipelineLinks over the head's net::Client connections, one per worker.
// Threading: as net::Client, one thread at a time; `clients` must outlive this object.
#include <functional>
#include <memory>
#include <vector>

#include "cluster/pipeline_links.h"

namespace ll::cluster {

class ClientLinks final : public PipelineLinks {
 public:
  // `connect(i)` makes a new connection to worker i (for reconnect()).
  using Connect = std::function<Result<std::unique_ptr<net::Client>>(size_t)>;
  ClientLinks(std::vector<std::unique_ptr<net::Client>>& clients, Connect connect)
      : clients_(clients), connect_(std::move(connect)) {}
  size_t size() const override { return clients_.size(); }
  Status send(size_t worker, const wire::Envelope& e) override { return clients_[worker]->send(e); }
  Status send(size_t worker, const wire::Envelope& e, std::vector<zmq::message_t> frames) override {
    return clients_[worker]->send(e, std::move(frames));
  }
  Result<std::optional<net::Message>> receive(size_t worker) override;
  std::vector<size_t> poll(std::chrono::milliseconds timeout) override;
  bool disconnected(size_t worker) override { return clients_[worker]->disconnected(); }
  std::string disconnect_reason(size_t worker) override { return clients_[worker]->disconnect_reason(); }
  Status reconnect(size_t worker) override;

 private:
  std::vector<std::unique_ptr<net::Client>>& clients_;
  Connect connect_;
};

}  // namespace ll::cluster

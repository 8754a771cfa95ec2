#pragma once
// What a generation run uses of the head's links to its workers: link i leads to worker i, in
// pipeline order. The head drives runs over its sockets (ClientLinks); tests drive them over a
// fake, without processes or sockets.
// Threading: whoever drives the run owns its links; implementations need not be thread-safe.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "net/transport.h"
#include "wire.pb.h"

namespace ll::cluster {

class PipelineLinks {
 public:
  virtual ~PipelineLinks() = default;
  virtual size_t size() const = 0;
  virtual Status send(size_t worker, const wire::Envelope& e) = 0;
  // With tensor frames (a streamed shard's chunks).
  virtual Status send(size_t worker, const wire::Envelope& e, std::vector<zmq::message_t> frames) = 0;
  // A message that has already arrived from `worker`, or nullopt; never waits.
  virtual Result<std::optional<net::Message>> receive(size_t worker) = 0;
  // The workers with input within `timeout` (none when a signal interrupted the wait).
  virtual std::vector<size_t> poll(std::chrono::milliseconds timeout) = 0;
  // True once the link to `worker` is known to be lost, with the reason why.
  virtual bool disconnected(size_t worker) = 0;
  virtual std::string disconnect_reason(size_t worker) = 0;
  // Replaces the lost link to `worker` by a new connection to the same endpoint and pinned key
  // (disconnected() then says how that one fares); for taking a worker back after a loss.
  virtual Status reconnect(size_t worker) { return Status::Errorf("link {} cannot reconnect", worker); }
};

}  // namespace ll::cluster

#include "cluster/in_process_worker.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/log.h"

namespace ll::cluster {

Result<std::unique_ptr<InProcessWorker>> InProcessWorker::start(const std::string& listen, const net::KeyPair& head_keys,
                                                                bool insecure, int threads, bool no_mmap,
                                                                std::vector<std::string> model_dirs,
                                                                const std::string& name) {
  WorkerOptions o;
  o.model_dirs = std::move(model_dirs);
  o.listen = listen;
  o.name = name;
  o.threads = threads;
  o.no_mmap = no_mmap;
  o.security.insecure = insecure;
  if (!insecure) {
    o.security.keys = head_keys;
    o.security.allowed = {head_keys.public_key};  // the head itself; its peers come with its hello
  }
  std::unique_ptr<InProcessWorker> w(new InProcessWorker());
  w->insecure_ = insecure;
  LL_ASSIGN_OR_RETURN(w->worker_, Worker::create(std::move(o)));
  w->thread_ = std::thread([raw = w.get()] {
    Status st = raw->worker_->serve(raw->stop_);
    if (!st.ok()) log::error("head", "its own worker stopped: {}", st.message());
  });
  return w;
}

InProcessWorker::~InProcessWorker() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

WorkerAddress InProcessWorker::address() const {
  return {worker_->endpoint(), insecure_ ? std::string() : worker_->public_key()};
}

}  // namespace ll::cluster
